package client

import (
	"context"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// ProcessedPairs returns how many processed pairs (CLI-001) the device
// keeps, for the tests of package client_test.
func (d *Device) ProcessedPairs() int {
	n := 0
	d.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketProcessed).Stats().KeyN
		return nil
	})
	return n
}

// FetchPrekeys fetches the bundles of an account's devices as a sender
// does, and uses none: the server hands out one-time prekeys of them.
func (c *Conn) FetchPrekeys(ctx context.Context, account string) error {
	return c.call(ctx, wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: account}, new(wire.FetchResult))
}

// OneTimePrekeys returns how many private one-time EC prekeys the device
// holds, and the id its next one gets.
func (d *Device) OneTimePrekeys() (held int, next uint32) {
	d.db.View(func(tx *bolt.Tx) error {
		held = tx.Bucket(bucketOPK).Stats().KeyN
		if v := getConfig(tx, "next-opk"); len(v) == 4 {
			next = binary.BigEndian.Uint32(v)
		}
		return nil
	})
	return held, next
}

// Replenishing reports whether a batch of one-time prekeys is being
// uploaded (Conn.replenish).
func (d *Device) Replenishing() bool { return d.replenishing.Load() }

// RotationDue reports whether the device's signed and last-resort prekeys
// are due to be replaced, or their replacement's upload is unanswered
// (PQX-012).
func (d *Device) RotationDue() bool { return d.rotationDue() }

// RotationUpload makes the upload of a new signed and last-resort prekey,
// or returns the one not yet answered, without sending it.
func (d *Device) RotationUpload() (*wire.PrekeyUpload, error) { return d.rotationUpload() }

// UploadPrekeys sends an upload of prekeys.
func (c *Conn) UploadPrekeys(ctx context.Context, up *wire.PrekeyUpload) error {
	return c.call(ctx, wire.FrameUploadPrekeys, up, new(wire.UploadResult))
}

// ReplenishUpload makes the upload of a batch of one-time prekeys, or
// returns the one not yet answered, without sending it.
func (d *Device) ReplenishUpload() (*wire.PrekeyUpload, error) {
	up, _, err := d.replenishUpload()
	return up, err
}

// ReplenishPending reports whether a batch's upload is unanswered.
func (d *Device) ReplenishPending() bool { return d.replenishPending() }

// KnownOneTimeEC returns how many one-time EC prekeys the device knows
// the server accepted (PQX-015).
func (d *Device) KnownOneTimeEC() int {
	n := 0
	d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHanded).ForEach(func(k, _ []byte) error {
			if k[0] == handedEC {
				n++
			}
			return nil
		})
	})
	return n
}

// UploadAndCount sends an upload of one-time prekeys and records its
// acceptance as replenish does, leaving "replenish" in place: the state a
// crash between the two would leave.
func (c *Conn) UploadAndCount(ctx context.Context, up *wire.PrekeyUpload) error {
	var res wire.UploadResult
	if err := c.call(ctx, wire.FrameUploadPrekeys, up, &res); err != nil {
		return err
	}
	return c.d.acceptedOneTime(up, &res, false)
}

// HandedAtEC returns when the device learned that the server handed out
// its one-time EC prekey id (0: not yet), and whether it knows the key
// accepted.
func (d *Device) HandedAtEC(id uint32) (at uint64, known bool) {
	d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHanded).Get(handedKey(handedEC, id))
		if len(v) == 8 {
			at, known = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return at, known
}

// RestartOneTimeIDs numbers the next one-time EC prekeys from 1 again, as
// faults.RestartPrekeyIDs does (or a database restored from a backup).
func (d *Device) RestartOneTimeIDs() {
	d.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "next-opk", u32(1)) })
}
