package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "bolt",
		Open: func(t *testing.T, dir string) store.Store {
			t.Helper()
			s, err := bolt.Open(filepath.Join(dir, "missive.db"))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		},
		Durable: true,
	})
}
