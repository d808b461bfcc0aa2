package client

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/wire"
)

// markBuckets hold the marks a device keeps of messages by id: deleted
// here, read or opened on some device of the account, disappeared. A mark
// is written as one byte; the device's first connection after that stamps
// it with the time (forgetMarks), and a connection MarkHorizon after the
// stamp forgets it (section 15.7).
var markBuckets = [][]byte{bucketDeleted, bucketRead, bucketOpened, bucketExpired}

// MarkHorizon is how long a device keeps a mark after it recorded it:
// MAX_TTL, after which no delivery of the message can come, and
// MAX_SENT_AHEAD more for a clock that moved forward (section 15.7).
const MarkHorizon = (wire.MaxTTL + 24*60*60) * time.Second

// forgetMarks stamps the marks recorded since the last call with the
// time, and drops those stamped more than MarkHorizon ago. The stamp is
// the first connection's after the mark, not the mark's own time, so a
// mark is kept at least MarkHorizon; stamped marks of devices of earlier
// versions (one byte) are taken as recorded now. It returns how many it
// dropped.
func (d *Device) forgetMarks() (int, error) {
	now := d.now().UnixMilli()
	limit := now - MarkHorizon.Milliseconds()
	type change struct {
		bucket, key []byte
		drop        bool
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// A read first, so that a connection with nothing to change costs no
	// write.
	var changes []change
	err := d.db.View(func(tx *bolt.Tx) error {
		for _, name := range markBuckets {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				switch {
				case len(v) != 8:
					changes = append(changes, change{name, bytes.Clone(k), false})
				case limit > 0 && int64(binary.BigEndian.Uint64(v)) < limit:
					changes = append(changes, change{name, bytes.Clone(k), true})
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(changes) == 0 {
		return 0, err
	}
	dropped := 0
	stamp := binary.BigEndian.AppendUint64(nil, uint64(max(now, 0)))
	err = d.db.Update(func(tx *bolt.Tx) error {
		for _, c := range changes {
			b := tx.Bucket(c.bucket)
			if !c.drop {
				// Still one byte (unless deleted and marked again since
				// the read, which only moves its stamp later).
				if v := b.Get(c.key); len(v) != 8 {
					if err := b.Put(c.key, stamp); err != nil {
						return err
					}
				}
				continue
			}
			if err := b.Delete(c.key); err != nil {
				return err
			}
			dropped++
		}
		return nil
	})
	return dropped, err
}
