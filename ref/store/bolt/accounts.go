package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// CreateAccount implements store.Store.
func (s *Store) CreateAccount(ctx context.Context, name string, primary store.Device) error {
	return s.update(ctx, "create account", func(tx *bbolt.Tx) error {
		accounts := tx.Bucket(bucketAccounts)
		if accounts.Get([]byte(name)) != nil {
			return fmt.Errorf("%q: %w", name, store.ErrExists)
		}
		if err := accounts.Put([]byte(name), encodeAccount([]store.Device{primary})); err != nil {
			return err
		}
		if primary.Removed {
			return nil
		}
		return createDevice(tx, store.Address{Account: name, Device: primary.ID}, primary.IdentityKey)
	})
}

// createDevice writes the records of a new live device.
func createDevice(tx *bbolt.Tx, a store.Address, identityKey []byte) error {
	k := appendAddr(nil, a)
	d := deviceRec{identityKey: identityKey}
	return tx.Bucket(bucketDevices).Put(k, d.encode())
}

// readAccount returns an account's devices, or ErrNotFound.
func readAccount(tx *bbolt.Tx, name string) ([]store.Device, error) {
	v := tx.Bucket(bucketAccounts).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("account %q: %w", name, store.ErrNotFound)
	}
	devices, err := decodeAccount(v)
	if err != nil {
		return nil, fmt.Errorf("account %q: %w", name, err)
	}
	if len(devices) == 0 {
		return nil, fmt.Errorf("account %q: no devices: %w", name, errCorrupt)
	}
	return devices, nil
}

// Account implements store.Store.
func (s *Store) Account(ctx context.Context, name string) (*store.Account, error) {
	var a *store.Account
	err := s.view(ctx, "account", func(tx *bbolt.Tx) error {
		devices, err := readAccount(tx, name)
		if err != nil {
			return err
		}
		a = &store.Account{Name: name, Devices: devices}
		return nil
	})
	return a, err
}

// AddDevice implements store.Store.
func (s *Store) AddDevice(ctx context.Context, name string, identityKey []byte, created time.Time) (uint32, error) {
	var id uint32
	err := s.update(ctx, "add device", func(tx *bbolt.Tx) error {
		devices, err := readAccount(tx, name)
		if err != nil {
			return err
		}
		last := devices[len(devices)-1].ID
		if last == 1<<32-1 {
			return fmt.Errorf("account %q: device ids exhausted", name)
		}
		id = last + 1
		devices = append(devices, store.Device{ID: id, IdentityKey: identityKey, Created: created})
		if err := tx.Bucket(bucketAccounts).Put([]byte(name), encodeAccount(devices)); err != nil {
			return err
		}
		return createDevice(tx, store.Address{Account: name, Device: id}, identityKey)
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// RemoveDevice implements store.Store.
func (s *Store) RemoveDevice(ctx context.Context, a store.Address) error {
	return s.update(ctx, "remove device", func(tx *bbolt.Tx) error {
		devices, err := readAccount(tx, a.Account)
		if err != nil {
			return err
		}
		i := findDevice(devices, a.Device)
		if i < 0 {
			return fmt.Errorf("device %s/%d: %w", a.Account, a.Device, store.ErrNotFound)
		}
		if devices[i].Removed {
			return nil
		}
		devices[i].Removed = true
		if err := tx.Bucket(bucketAccounts).Put([]byte(a.Account), encodeAccount(devices)); err != nil {
			return err
		}
		return s.deleteDevice(tx, appendAddr(nil, a))
	})
}

// findDevice returns the index of device id in devices, or -1.
func findDevice(devices []store.Device, id uint32) int {
	for i, d := range devices {
		if d.ID == id {
			return i
		}
	}
	return -1
}

// deleteDevice deletes every record of the live device at address key ak:
// its prekeys, its used ids, its queue with its expiry index keys.
func (s *Store) deleteDevice(tx *bbolt.Tx, ak []byte) error {
	// The device's entries are those of the index and those this
	// transaction added; what the file no longer holds is passed over.
	key := string(ak)
	ids := s.idx.ids(key, nil)
	for _, op := range s.qtx.ops {
		if op.kind == opAdd && op.ak == key {
			ids = append(ids, op.id)
		}
	}
	messages := tx.Bucket(bucketMessages)
	for _, id := range ids {
		k := messageKey(id, ak)
		if v := messages.Get(k); v != nil {
			if err := s.deleteEntry(tx, ak, key, id, k, v); err != nil {
				return err
			}
		}
	}
	s.qtx.record(indexOp{ak: key, kind: opDrop})
	for _, b := range [][]byte{bucketOneTime, bucketUsedIDs} {
		if err := deletePrefix(tx.Bucket(b), ak); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketHandout).Delete(ak); err != nil {
		return err
	}
	return tx.Bucket(bucketDevices).Delete(ak)
}

// DeviceList implements store.Store.
func (s *Store) DeviceList(ctx context.Context, name string) ([]byte, uint64, error) {
	var (
		list    []byte
		version uint64
	)
	err := s.view(ctx, "device list", func(tx *bbolt.Tx) error {
		if _, err := readAccount(tx, name); err != nil {
			return err
		}
		v := tx.Bucket(bucketLists).Get([]byte(name))
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return errCorrupt
		}
		version, list = binary.BigEndian.Uint64(v), bytes.Clone(v[8:])
		return nil
	})
	return list, version, err
}

// PutDeviceList implements store.Store.
func (s *Store) PutDeviceList(ctx context.Context, name string, signed []byte, version uint64, add []store.Device, remove []uint32) error {
	return s.update(ctx, "put device list", func(tx *bbolt.Tx) error {
		devices, err := readAccount(tx, name)
		if err != nil {
			return err
		}
		var current uint64
		if v := tx.Bucket(bucketLists).Get([]byte(name)); len(v) >= 8 {
			current = binary.BigEndian.Uint64(v)
		}
		if version != current+1 {
			return fmt.Errorf("device list %d of %q after %d: %w", version, name, current, store.ErrConflict)
		}
		last := devices[len(devices)-1].ID
		for _, d := range add {
			if d.ID <= last {
				return fmt.Errorf("device list of %q adds id %d: %w", name, d.ID, store.ErrConflict)
			}
			last = d.ID
		}
		for _, id := range remove {
			if findDevice(devices, id) < 0 {
				return fmt.Errorf("device list of %q removes %d: %w", name, id, store.ErrNotFound)
			}
		}
		for _, d := range add {
			d.Removed = false
			devices = append(devices, d)
			if err := createDevice(tx, store.Address{Account: name, Device: d.ID}, d.IdentityKey); err != nil {
				return err
			}
		}
		for _, id := range remove {
			i := findDevice(devices, id)
			if devices[i].Removed {
				continue
			}
			devices[i].Removed = true
			if err := s.deleteDevice(tx, appendAddr(nil, store.Address{Account: name, Device: id})); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketAccounts).Put([]byte(name), encodeAccount(devices)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistory).Put(historyKey(name, version), signed); err != nil {
			return err
		}
		return tx.Bucket(bucketLists).Put([]byte(name), append(binary.BigEndian.AppendUint64(nil, version), signed...))
	})
}

// historyKey is the listhistory key of a version of an account's list.
func historyKey(name string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(appendBytes(nil, []byte(name)), version)
}

// DeviceListAt implements store.Store. A store written before the
// listhistory bucket existed holds only the current version of older
// accounts.
func (s *Store) DeviceListAt(ctx context.Context, name string, version uint64) ([]byte, error) {
	var list []byte
	err := s.view(ctx, "device list at", func(tx *bbolt.Tx) error {
		list = nil
		if _, err := readAccount(tx, name); err != nil {
			return err
		}
		if v := tx.Bucket(bucketHistory).Get(historyKey(name, version)); v != nil {
			list = bytes.Clone(v)
			return nil
		}
		if v := tx.Bucket(bucketLists).Get([]byte(name)); len(v) >= 8 && binary.BigEndian.Uint64(v) == version {
			list = bytes.Clone(v[8:])
		}
		return nil
	})
	return list, err
}
