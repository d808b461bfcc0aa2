package client

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/wire"
)

// One-time prekeys handed out (section 4.6, PQX-015). bucketHanded holds
// each one-time prekey the server accepted: kind ('e' EC, 'k' KEM) ||
// u32be id -> u64be time (ms) at which the device learned that the server
// had handed it out, 0 while the server may still hold it. The server
// hands out the oldest first (SRV-028), so the keys it holds are the
// newest of those it accepted: the counts it gives tell the others.
var bucketHanded = []byte("handed")

func init() { allBuckets = append(allBuckets, bucketHanded) }

// Kinds of the keys of bucketHanded.
const (
	handedEC  = 'e'
	handedKEM = 'k'
)

func handedKey(kind byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{kind}, id)
}

// replenishUpload returns the batch of one-time prekeys whose upload's
// answer was lost, to send again as it is (again), or makes a new one,
// kept as "replenish" until an answer comes (keptUpload): a lost answer
// would leave its keys uncounted, kept for good (PQX-015).
func (d *Device) replenishUpload() (up *wire.PrekeyUpload, again bool, err error) {
	return d.keptUpload("replenish", false, PrekeyBatch)
}

// replenishPending reports whether a batch's upload is unanswered.
func (d *Device) replenishPending() bool {
	pending := false
	d.db.View(func(tx *bolt.Tx) error {
		pending = getConfig(tx, "replenish") != nil
		return nil
	})
	return pending
}

// acceptedOneTime records the one-time prekeys of an upload the server
// accepted, and takes the counts it answered with (noteHeld; nil: none),
// in one transaction, which ends the upload kept as "replenish" when
// pending is set. A key recorded already keeps its entry: a batch counted
// and sent again (a crash before "replenish" went) keeps the marks the
// counts gave it since.
func (d *Device) acceptedOneTime(up *wire.PrekeyUpload, res *wire.UploadResult, pending bool) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b, held := tx.Bucket(bucketHanded), make([]byte, 8)
		record := func(k []byte) error {
			if b.Get(k) != nil {
				return nil
			}
			return b.Put(k, held)
		}
		if up.OneTime != nil {
			for _, k := range *up.OneTime {
				if err := record(handedKey(handedEC, uint32(k.ID))); err != nil {
					return err
				}
			}
		}
		if up.OneTimeKEM != nil {
			for _, k := range *up.OneTimeKEM {
				if err := record(handedKey(handedKEM, uint32(k.ID))); err != nil {
					return err
				}
			}
		}
		if pending {
			if err := dropKept(tx, "replenish"); err != nil {
				return err
			}
		}
		if res == nil {
			return nil
		}
		return d.noteHeld(tx, res.OneTimeEC, res.OneTimeKEM)
	})
}

// noteHeld takes the server's counts of the one-time prekeys it holds for
// the device: of those it accepted, all but the newest ec (kem) have been
// handed out, and each not marked yet is marked now.
func (d *Device) noteHeld(tx *bolt.Tx, ec, kem uint64) error {
	if faults.Has(faults.KeepHandedOut) {
		return nil
	}
	now := binary.BigEndian.AppendUint64(nil, uint64(d.now().UnixMilli()))
	b := tx.Bucket(bucketHanded)
	for _, k := range []struct {
		kind byte
		held uint64
	}{{handedEC, ec}, {handedKEM, kem}} {
		var mark [][]byte
		c := b.Cursor()
		var key, v []byte
		if next, _ := c.Seek([]byte{k.kind + 1}); next == nil { // past the kind's last key
			key, v = c.Last()
		} else {
			key, v = c.Prev()
		}
		for seen := uint64(0); key != nil && key[0] == k.kind; key, v = c.Prev() {
			if seen++; seen > k.held && len(v) == 8 && binary.BigEndian.Uint64(v) == 0 {
				mark = append(mark, bytes.Clone(key))
			}
		}
		for _, m := range mark {
			if err := b.Put(m, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// handedLongAgo reports whether a one-time prekey was learned handed out
// PREKEY_GRACE ago or more at now: it is no longer used (PQX-015), though
// a sweep may not have deleted it yet.
func handedLongAgo(tx *bolt.Tx, kind byte, id uint32, now time.Time) bool {
	v := tx.Bucket(bucketHanded).Get(handedKey(kind, id))
	if len(v) != 8 || faults.Has(faults.KeepHandedOut) {
		return false
	}
	at := binary.BigEndian.Uint64(v)
	return at != 0 && now.UnixMilli()-int64(at) >= wire.PrekeyGrace*1000
}

// forgetHandedOut deletes the private keys of the one-time prekeys learned
// handed out PREKEY_GRACE ago (PQX-015), and the entries of keys already
// gone (used, PQX-010); a time of learning after now becomes now. It
// returns how many keys it deleted.
func (d *Device) forgetHandedOut() (int, error) {
	if faults.Has(faults.KeepHandedOut) {
		return 0, nil
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketHanded)
		private := func(k []byte) (*bolt.Bucket, bool) {
			if k[0] == handedEC {
				return tx.Bucket(bucketOPK), tx.Bucket(bucketOPK).Get(k[1:]) != nil
			}
			v := tx.Bucket(bucketKEM).Get(k[1:])
			return tx.Bucket(bucketKEM), len(v) > 0 && v[0] == 0
		}
		var gone, old, ahead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != 5 || len(v) != 8 {
				gone = append(gone, bytes.Clone(k))
				return nil
			}
			_, held := private(k)
			at := int64(binary.BigEndian.Uint64(v))
			switch {
			case !held:
				gone = append(gone, bytes.Clone(k))
			case at != 0 && at > now.UnixMilli():
				ahead = append(ahead, bytes.Clone(k))
			case handedLongAgo(tx, k[0], binary.BigEndian.Uint32(k[1:]), now):
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range ahead {
			if err := b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(now.UnixMilli()))); err != nil {
				return err
			}
		}
		for _, k := range old {
			pb, _ := private(k)
			if err := pb.Delete(k[1:]); err != nil {
				return err
			}
			n++
		}
		for _, k := range append(gone, old...) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
