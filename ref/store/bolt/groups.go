package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// groupVersion returns a group's current version, 0 when the store does
// not hold it.
func groupVersion(tx *bbolt.Tx, gk []byte) (uint64, error) {
	return getUint64(tx.Bucket(bucketGroups), gk, 0)
}

// PutGroupState implements store.Store.
func (s *Store) PutGroupState(ctx context.Context, groupID []byte, version uint64, signed []byte, members []string, author store.Budget) error {
	gk := appendBytes(nil, groupID)
	var refuse error // a spent budget: the transaction keeps its time (takeBudget)
	// One key for each member (groupnames), so that the group commit
	// bounds the keys of a commit of many large states (maxBatchKeys).
	err := s.batch(ctx, "put group state", len(members)+3, func(tx *bbolt.Tx) error {
		refuse = nil
		current, err := groupVersion(tx, gk)
		if err != nil {
			return err
		}
		switch {
		case current == 0 && version > 1:
			return fmt.Errorf("group %x: %w", groupID, store.ErrNotFound)
		case version != current+1:
			return fmt.Errorf("group %x: version %d after %d: %w", groupID, version, current, store.ErrConflict)
		}
		if err := takeBudget(tx.Bucket(bucketGroupBudget), []byte(author.Account), author); err != nil {
			err = fmt.Errorf("group-state budget of %q: %w", author.Account, err)
			var spent *store.SpentError
			if errors.As(err, &spent) {
				refuse = err
				return nil
			}
			return err
		}
		if err := tx.Bucket(bucketStates).Put(binary.BigEndian.AppendUint64(bytes.Clone(gk), version), signed); err != nil {
			return err
		}
		if err := nameMembers(tx.Bucket(bucketGroupNames), gk, version, members); err != nil {
			return err
		}
		return tx.Bucket(bucketGroups).Put(gk, binary.BigEndian.AppendUint64(nil, version))
	})
	if err == nil {
		err = refuse
	}
	return err
}

// GroupState implements store.Store.
func (s *Store) GroupState(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	var (
		signed  []byte
		version uint64
	)
	gk := appendBytes(nil, groupID)
	err := s.view(ctx, "group state", func(tx *bbolt.Tx) error {
		var err error
		if version, err = groupVersion(tx, gk); err != nil {
			return err
		}
		if version == 0 {
			return fmt.Errorf("group %x: %w", groupID, store.ErrNotFound)
		}
		v := tx.Bucket(bucketStates).Get(binary.BigEndian.AppendUint64(bytes.Clone(gk), version))
		if v == nil {
			return fmt.Errorf("group %x: no state of its current version: %w", groupID, errCorrupt)
		}
		signed = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return signed, version, nil
}

// GroupStates implements store.Store.
func (s *Store) GroupStates(ctx context.Context, groupID []byte, from uint64, limit int) ([][]byte, uint64, error) {
	var (
		out     [][]byte
		current uint64
	)
	gk := appendBytes(nil, groupID)
	err := s.view(ctx, "group states", func(tx *bbolt.Tx) error {
		out = nil
		var err error
		if current, err = groupVersion(tx, gk); err != nil {
			return err
		}
		if current == 0 {
			return fmt.Errorf("group %x: %w", groupID, store.ErrNotFound)
		}
		c := tx.Bucket(bucketStates).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(gk), from)); k != nil && bytes.HasPrefix(k, gk) && len(out) < limit; k, v = c.Next() {
			if len(k) != len(gk)+8 {
				return errCorrupt
			}
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, current, nil
}

// nameMembers records in b (bucketGroupNames) that version of the group
// keyed gk names members: the first version that names each, when none
// did, and the last.
func nameMembers(b *bbolt.Bucket, gk []byte, version uint64, members []string) error {
	for _, m := range members {
		k := append(bytes.Clone(gk), m...)
		first := version
		if v := b.Get(k); v != nil {
			if len(v) != 16 {
				return errCorrupt
			}
			first = binary.BigEndian.Uint64(v)
		}
		if err := b.Put(k, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, first), version)); err != nil {
			return err
		}
	}
	return nil
}

// GroupSpan implements store.Store.
func (s *Store) GroupSpan(ctx context.Context, groupID []byte, account string) (first, last, current uint64, err error) {
	gk := appendBytes(nil, groupID)
	err = s.view(ctx, "group span", func(tx *bbolt.Tx) error {
		first, last = 0, 0
		var err error
		if current, err = groupVersion(tx, gk); err != nil {
			return err
		}
		if current == 0 {
			return fmt.Errorf("group %x: %w", groupID, store.ErrNotFound)
		}
		v := tx.Bucket(bucketGroupNames).Get(append(gk, account...))
		switch {
		case v == nil:
		case len(v) != 16:
			return errCorrupt
		default:
			first, last = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	return first, last, current, nil
}

// takeBudget takes a token of the bucket kept in b under key, recording
// its new full time, or fails with a *store.SpentError, having recorded
// the full time Budget.Take keeps with a refusal: the caller commits the
// transaction all the same. A Burst of 0 takes nothing.
func takeBudget(b *bbolt.Bucket, key []byte, budget store.Budget) error {
	if budget.Burst <= 0 {
		return nil
	}
	var full time.Time // before any Now: a bucket not recorded is full
	if v := b.Get(key); v != nil {
		r := reader{b: v}
		if full = r.time(); r.err != nil || len(r.b) != 0 {
			return errCorrupt
		}
	}
	next, wait, ok := budget.Take(full)
	if !next.Equal(full) {
		if err := b.Put(key, appendTime(nil, next)); err != nil {
			return err
		}
	}
	if !ok {
		return &store.SpentError{After: wait}
	}
	return nil
}
