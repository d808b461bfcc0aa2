package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// The replacement of the signed and last-resort prekeys (section 4.6,
// PQX-012, PQX-013). The configuration holds when the pair the server last
// accepted was first sent ("prekeys-at", u64be milliseconds), and the
// upload of a new pair not answered yet ("rotation", its CBOR), which is
// sent again as it is until it is answered, with when it was made
// ("rotation-at"); bucketReplaced holds each replaced key until
// PREKEY_GRACE after the device had its replacement's acceptance.

// Kinds of the keys of bucketReplaced.
const (
	replacedSigned     = 's'
	replacedLastResort = 'k'
)

// replacedKey is the key in bucketReplaced of a replaced prekey.
func replacedKey(kind byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{kind}, id)
}

// retired reports whether a replaced prekey's grace has ended at now: it
// is no longer used, though a sweep may not have deleted it yet.
func retired(tx *bolt.Tx, kind byte, id uint32, now time.Time) bool {
	v := tx.Bucket(bucketReplaced).Get(replacedKey(kind, id))
	return len(v) == 8 && !faults.Has(faults.KeepReplacedPrekeys) && now.UnixMilli() >= int64(binary.BigEndian.Uint64(v))
}

// rotationDue reports whether the pair the server last accepted is
// PREKEY_ROTATION old, or an upload of a new pair is unanswered. A
// database made before the replacement has no time: its pair is due. So
// is a pair accepted at a time after now: the clock has gone back since
// (it had run ahead, say a year), and the pair would otherwise be kept
// until the clock caught up with that time.
func (d *Device) rotationDue() bool {
	due := false
	d.db.View(func(tx *bolt.Tx) error {
		if getConfig(tx, "registered") == nil {
			return nil
		}
		at, now := getConfig(tx, "prekeys-at"), d.now().UnixMilli()
		due = getConfig(tx, "rotation") != nil || len(at) != 8 ||
			now-int64(binary.BigEndian.Uint64(at)) >= wire.PrekeyRotation*1000 || now < int64(binary.BigEndian.Uint64(at))
		return nil
	})
	return due && !faults.Has(faults.NoPrekeyRotation)
}

// rotationUpload returns the unanswered upload of a new pair, or makes
// one: the private keys are stored first (newPrekeys), then the upload.
// A crash between leaves keys no upload names, which the next accepted
// pair replaces (accepted).
func (d *Device) rotationUpload() (*wire.PrekeyUpload, error) {
	up, _, err := d.keptUpload("rotation", true, 0)
	return up, err
}

// dropKept ends the upload kept under name (keptUpload).
func dropKept(tx *bolt.Tx, name string) error {
	for _, k := range []string{name, name + "-at"} {
		if err := tx.Bucket(bucketConfig).Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// keptUpload returns the upload kept under name in the configuration, its
// answer not yet taken, to send again as it is (again); or it makes one
// (newPrekeys) and keeps it there, with the time it was made under
// name-at, until its answer comes: an upload whose answer is lost is sent
// again, and state.duplicate_prekey then taken as its acceptance, since
// the device gives an id to one key only (PQX-002, PQX-012, PQX-015).
func (d *Device) keptUpload(name string, first bool, n int) (up *wire.PrekeyUpload, again bool, err error) {
	var pending []byte
	d.db.View(func(tx *bolt.Tx) error {
		pending = bytes.Clone(getConfig(tx, name))
		return nil
	})
	if pending != nil {
		up = new(wire.PrekeyUpload)
		if err := cborDec.Unmarshal(pending, up); err != nil {
			return nil, false, fmt.Errorf("client: the stored upload %q: %w", name, err)
		}
		return up, true, nil
	}
	if up, err = d.newPrekeys(first, n); err != nil {
		return nil, false, err
	}
	b, err := cborEnc.Marshal(up)
	if err != nil {
		return nil, false, err
	}
	return up, false, d.db.Update(func(tx *bolt.Tx) error {
		if err := putConfig(tx, name+"-at", binary.BigEndian.AppendUint64(nil, uint64(d.now().UnixMilli()))); err != nil {
			return err
		}
		return putConfig(tx, name, b)
	})
}

// accepted records that the server accepted up's signed and last-resort
// prekeys: the older ones the device holds, not yet replaced, are replaced
// now, and kept until PREKEY_GRACE from now (PQX-013). Ids only grow
// (newPrekeys), so a newer pair, made meanwhile and not yet answered,
// stays. The pair's age counts from when its upload was made (PQX-012),
// now for an upload not stored as "rotation" (the first, at registration).
func (d *Device) accepted(up *wire.PrekeyUpload) error {
	now := d.now().UnixMilli()
	until := binary.BigEndian.AppendUint64(nil, uint64(now+wire.PrekeyGrace*1000))
	return d.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketReplaced)
		replace := func(kind byte, k []byte, current uint64) error {
			if len(k) != 4 || uint64(binary.BigEndian.Uint32(k)) >= current {
				return nil
			}
			rk := replacedKey(kind, binary.BigEndian.Uint32(k))
			if rb.Get(rk) != nil {
				return nil
			}
			return rb.Put(rk, until)
		}
		err := tx.Bucket(bucketSPK).ForEach(func(k, _ []byte) error {
			return replace(replacedSigned, k, up.SignedPreKey.ID)
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketKEM).ForEach(func(k, v []byte) error {
			if len(v) == 0 || v[0] != 1 {
				return nil // a one-time KEM prekey
			}
			return replace(replacedLastResort, k, up.LastResort.ID)
		})
		if err != nil {
			return err
		}
		sent := uint64(now)
		if v := getConfig(tx, "rotation-at"); len(v) == 8 && getConfig(tx, "rotation") != nil {
			sent = min(sent, binary.BigEndian.Uint64(v))
		}
		if err := dropKept(tx, "rotation"); err != nil {
			return err
		}
		return putConfig(tx, "prekeys-at", binary.BigEndian.AppendUint64(nil, sent))
	})
}

// rotate uploads a new signed prekey and last-resort KEM prekey when they
// are due (PQX-012), one upload at a time. An answer of
// state.duplicate_prekey to an upload sent before is its acceptance: the
// device gives an id to one key only (PQX-002), so the server holds that
// key already, from an upload whose answer was lost.
func (c *Conn) rotate() {
	if !c.d.rotationDue() || !c.d.rotating.CompareAndSwap(false, true) {
		return
	}
	defer c.d.rotating.Store(false)
	up, err := c.d.rotationUpload()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = c.call(ctx, wire.FrameUploadPrekeys, up, new(wire.UploadResult))
		if err == nil || errcode.Of(err) == errcode.StateDuplicatePrekey {
			err = c.d.accepted(up)
		}
	}
	if err != nil {
		c.emit(Event{Kind: EventError, Err: fmt.Errorf("client: replacing the signed and last-resort prekeys: %w", err)})
	}
}

// forgetReplaced deletes the replaced prekeys whose grace has ended, with
// the ephemeral keys kept for the pairs they were in (PQX-013); it
// returns how many keys it deleted.
func (d *Device) forgetReplaced() (int, error) {
	if faults.Has(faults.KeepReplacedPrekeys) {
		return 0, nil
	}
	now := d.now()
	latest := uint64(now.UnixMilli() + wire.PrekeyGrace*1000)
	var old, ahead [][]byte
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketReplaced).ForEach(func(k, v []byte) error {
			switch {
			case len(k) == 5 && retired(tx, k[0], binary.BigEndian.Uint32(k[1:]), now):
				old = append(old, bytes.Clone(k))
			case len(v) == 8 && binary.BigEndian.Uint64(v) > latest:
				// Replaced while the clock ran ahead: kept PREKEY_GRACE
				// from now, not until the clock reaches that time.
				ahead = append(ahead, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(old)+len(ahead) == 0 {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(old), d.db.Update(func(tx *bolt.Tx) error {
		for _, k := range ahead {
			if err := tx.Bucket(bucketReplaced).Put(k, binary.BigEndian.AppendUint64(nil, latest)); err != nil {
				return err
			}
		}
		for _, k := range old {
			b := tx.Bucket(bucketSPK)
			if k[0] == replacedLastResort {
				b = tx.Bucket(bucketKEM)
			}
			if err := b.Delete(k[1:]); err != nil {
				return err
			}
			if err := tx.Bucket(bucketReplaced).Delete(k); err != nil {
				return err
			}
		}
		// The ephemeral keys of pairs a key of which is gone (section
		// 4.6's SHOULD): no prekey message can name that pair again.
		lr := tx.Bucket(bucketLastResort)
		var gone [][]byte
		err := lr.ForEach(func(k, _ []byte) error {
			if len(k) < 16 {
				return nil
			}
			spk, kem := binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:])
			if spk > 1<<32-1 || kem > 1<<32-1 ||
				tx.Bucket(bucketSPK).Get(u32(uint32(spk))) == nil || tx.Bucket(bucketKEM).Get(u32(uint32(kem))) == nil {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := lr.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
