package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/store"
)

// liveDevice returns the record of a live device, or nil when the device is
// unknown or removed.
func liveDevice(tx *bbolt.Tx, ak []byte) (*deviceRec, error) {
	v := tx.Bucket(bucketDevices).Get(ak)
	if v == nil {
		return nil, nil
	}
	return decodeDevice(v)
}

// PutPrekeys implements store.Store.
func (s *Store) PutPrekeys(ctx context.Context, a store.Address, u store.PrekeyUpdate) (store.Counts, error) {
	var counts store.Counts
	err := s.update(ctx, "put prekeys", func(tx *bbolt.Tx) error {
		ak := appendAddr(nil, a)
		d, err := liveDevice(tx, ak)
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("device %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
		}
		// Check every id before writing anything.
		used := tx.Bucket(bucketUsedIDs)
		var keys [][]byte
		seen := make(map[string]bool)
		check := func(space byte, id uint32) error {
			k := binary.BigEndian.AppendUint32(append(append([]byte(nil), ak...), space), id)
			if seen[string(k)] || used.Get(k) != nil {
				return fmt.Errorf("device %s/%d: id %d: %w", a.Account, a.Device, id, store.ErrDuplicatePrekey)
			}
			seen[string(k)] = true
			keys = append(keys, k)
			return nil
		}
		if u.SignedPrekey != nil {
			if err := check(spaceSigned, u.SignedPrekey.ID); err != nil {
				return err
			}
		}
		if u.LastResort != nil {
			if err := check(kindKEM, u.LastResort.ID); err != nil {
				return err
			}
		}
		for _, k := range u.OneTimeEC {
			if err := check(kindEC, k.ID); err != nil {
				return err
			}
		}
		for _, k := range u.OneTimeKEM {
			if err := check(kindKEM, k.ID); err != nil {
				return err
			}
		}
		if u.Most > 0 && (int(d.ec)+len(u.OneTimeEC) > u.Most || int(d.kem)+len(u.OneTimeKEM) > u.Most) {
			return fmt.Errorf("device %s/%d: one-time prekeys: %d EC and %d KEM held, %d and %d more, at most %d of a kind: %w",
				a.Account, a.Device, d.ec, d.kem, len(u.OneTimeEC), len(u.OneTimeKEM), u.Most, store.ErrQuota)
		}
		for _, k := range keys {
			if err := used.Put(k, marker); err != nil {
				return err
			}
		}
		onetime := tx.Bucket(bucketOneTime)
		put := func(kind byte, ks []store.Prekey) error {
			for _, k := range ks {
				sk := binary.BigEndian.AppendUint64(append(append([]byte(nil), ak...), kind), d.nextSeq)
				d.nextSeq++
				if err := onetime.Put(sk, encodeOneTime(k)); err != nil {
					return err
				}
			}
			return nil
		}
		if err := put(kindEC, u.OneTimeEC); err != nil {
			return err
		}
		if err := put(kindKEM, u.OneTimeKEM); err != nil {
			return err
		}
		d.ec += uint32(len(u.OneTimeEC))
		d.kem += uint32(len(u.OneTimeKEM))
		if u.SignedPrekey != nil {
			d.signed = u.SignedPrekey
		}
		if u.LastResort != nil {
			d.lastResort = u.LastResort
		}
		counts = store.Counts{EC: int(d.ec), KEM: int(d.kem)}
		return tx.Bucket(bucketDevices).Put(ak, d.encode())
	})
	if err != nil {
		return store.Counts{}, err
	}
	return counts, nil
}

// TakeBundle implements store.Store. Concurrent fetches share a commit; each
// runs alone inside it, so no one-time key is handed out twice.
func (s *Store) TakeBundle(ctx context.Context, a store.Address, handout store.Budget) (*store.BundleKeys, store.Counts, error) {
	var (
		bundle *store.BundleKeys
		counts store.Counts
		refuse error
	)
	err := s.batch(ctx, "take bundle", 1, func(tx *bbolt.Tx) error {
		bundle, counts, refuse = nil, store.Counts{}, nil
		ak := appendAddr(nil, a)
		d, err := liveDevice(tx, ak)
		if err != nil {
			return err
		}
		if d == nil || d.signed == nil || d.lastResort == nil {
			refuse = fmt.Errorf("bolt: take bundle: device %s/%d: not reachable: %w", a.Account, a.Device, store.ErrNotFound)
			return nil
		}
		b := &store.BundleKeys{IdentityKey: d.identityKey, SignedPrekey: *d.signed}
		if d.ec > 0 || d.kem > 0 {
			err := takeBudget(tx.Bucket(bucketHandout), ak, handout)
			var spent *store.SpentError
			if errors.As(err, &spent) {
				// SRV-027: the last-resort key, and nothing removed.
				b.KEMPrekey, b.LastResort = *d.lastResort, true
				bundle, counts = b, store.Counts{EC: int(d.ec), KEM: int(d.kem)}
				return nil
			}
			if err != nil {
				return fmt.Errorf("hand-out budget of %s/%d: %w", a.Account, a.Device, err)
			}
		}
		onetime := tx.Bucket(bucketOneTime)
		kem, err := takeOldest(onetime, ak, kindKEM)
		if err != nil {
			return err
		}
		if kem != nil {
			b.KEMPrekey = *kem
			d.kem--
		} else {
			b.KEMPrekey = *d.lastResort
			b.LastResort = true
		}
		if b.OneTimeEC, err = takeOldest(onetime, ak, kindEC); err != nil {
			return err
		}
		if b.OneTimeEC != nil {
			d.ec--
		}
		if kem != nil || b.OneTimeEC != nil {
			if err := tx.Bucket(bucketDevices).Put(ak, d.encode()); err != nil {
				return err
			}
		}
		bundle, counts = b, store.Counts{EC: int(d.ec), KEM: int(d.kem)}
		return nil
	})
	switch {
	case err != nil:
		return nil, store.Counts{}, err
	case refuse != nil:
		return nil, store.Counts{}, refuse
	}
	return bundle, counts, nil
}

// takeOldest deletes and returns the first-uploaded one-time prekey of a
// kind, or nil when none remains.
func takeOldest(b *bbolt.Bucket, ak []byte, kind byte) (*store.Prekey, error) {
	prefix := append(append([]byte(nil), ak...), kind)
	c := b.Cursor()
	k, v := c.Seek(prefix)
	if faults.Has(faults.NewestHandoutFirst) && k != nil && bytes.HasPrefix(k, prefix) {
		// The mutant of SRV-028: the newest instead.
		for nk, _ := c.Next(); nk != nil && bytes.HasPrefix(nk, prefix); nk, _ = c.Next() {
			k = nk
		}
		k, v = c.Seek(k)
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	p, err := decodeOneTime(v)
	if err != nil {
		return nil, err
	}
	if kind == kindEC && faults.Has(faults.ReuseOneTimePrekeys) {
		return &p, nil
	}
	if err := c.Delete(); err != nil {
		return nil, err
	}
	return &p, nil
}

// PrekeyCounts implements store.Store.
func (s *Store) PrekeyCounts(ctx context.Context, a store.Address) (store.Counts, bool, error) {
	var (
		counts    store.Counts
		reachable bool
	)
	err := s.view(ctx, "prekey counts", func(tx *bbolt.Tx) error {
		d, err := liveDevice(tx, appendAddr(nil, a))
		if err != nil {
			return err
		}
		if d != nil {
			counts, reachable = store.Counts{EC: int(d.ec), KEM: int(d.kem)}, d.signed != nil && d.lastResort != nil
			return nil
		}
		// Not live: removed, or unknown.
		devices, err := readAccount(tx, a.Account)
		if err != nil {
			return err
		}
		if findDevice(devices, a.Device) < 0 {
			return fmt.Errorf("device %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return store.Counts{}, false, err
	}
	return counts, reachable, nil
}
