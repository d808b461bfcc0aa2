package bolt

import (
	"context"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// defaultPrivacy is the privacy of an account that never set one: contacts
// for both visibilities (spec section 13.7; visibility values of section
// 11.4).
var defaultPrivacy = store.Privacy{LastSeen: 1, Online: 1}

// mustExist fails with ErrNotFound unless the account exists.
func mustExist(tx *bbolt.Tx, name string) error {
	if tx.Bucket(bucketAccounts).Get([]byte(name)) == nil {
		return fmt.Errorf("account %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// setPresence puts v under the account's name in bucket b.
func (s *Store) setPresence(ctx context.Context, op string, b []byte, name string, v []byte) error {
	return s.update(ctx, op, func(tx *bbolt.Tx) error {
		if err := mustExist(tx, name); err != nil {
			return err
		}
		return tx.Bucket(b).Put([]byte(name), v)
	})
}

// getPresence calls decode with the value under the account's name in
// bucket b, nil when there is none.
func (s *Store) getPresence(ctx context.Context, op string, b []byte, name string, decode func([]byte) error) error {
	return s.view(ctx, op, func(tx *bbolt.Tx) error {
		if err := mustExist(tx, name); err != nil {
			return err
		}
		return decode(tx.Bucket(b).Get([]byte(name)))
	})
}

// SetPrivacy implements store.Store.
func (s *Store) SetPrivacy(ctx context.Context, name string, p store.Privacy) error {
	return s.setPresence(ctx, "set privacy", bucketPrivacy, name, []byte{p.LastSeen, p.Online})
}

// Privacy implements store.Store.
func (s *Store) Privacy(ctx context.Context, name string) (store.Privacy, error) {
	p := defaultPrivacy
	err := s.getPresence(ctx, "privacy", bucketPrivacy, name, func(v []byte) error {
		switch len(v) {
		case 0:
		case 2:
			p = store.Privacy{LastSeen: v[0], Online: v[1]}
		default:
			return errCorrupt
		}
		return nil
	})
	if err != nil {
		return store.Privacy{}, err
	}
	return p, nil
}

// SetContacts implements store.Store.
func (s *Store) SetContacts(ctx context.Context, name string, contacts []string) error {
	return s.setPresence(ctx, "set contacts", bucketContacts, name, encodeContacts(contacts))
}

// Contacts implements store.Store.
func (s *Store) Contacts(ctx context.Context, name string) ([]string, error) {
	var out []string
	err := s.getPresence(ctx, "contacts", bucketContacts, name, func(v []byte) error {
		if v == nil {
			return nil
		}
		names, err := decodeContacts(v)
		out = slices.Clip(names)
		return err
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// SetLastSeen implements store.Store.
func (s *Store) SetLastSeen(ctx context.Context, name string, t time.Time) error {
	return s.setPresence(ctx, "set last seen", bucketLastSeen, name, appendTime(nil, t))
}

// LastSeen implements store.Store.
func (s *Store) LastSeen(ctx context.Context, name string) (time.Time, error) {
	var t time.Time
	err := s.getPresence(ctx, "last seen", bucketLastSeen, name, func(v []byte) error {
		if v == nil {
			return nil
		}
		r := reader{b: v}
		t = r.time()
		return r.done()
	})
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}
