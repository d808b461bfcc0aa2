package client

import bolt "go.etcd.io/bbolt"

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
