package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
)

// TestStoreFail checks -store-fail's store: while its file exists, Enqueue
// and EnqueueMany fail; once it is gone, the calls reach the store.
func TestStoreFail(t *testing.T) {
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	flag := filepath.Join(dir, "store-fail")
	f := &failingStore{Store: st, path: flag}
	ctx := context.Background()
	entry := []store.Entry{{Recipient: store.Address{Account: "nobody", Device: 1}, Sender: store.Address{Account: "alice", Device: 1},
		MessageID: make([]byte, 16), Type: 1, Kind: 1, Ciphertext: []byte("x"), SentAt: 1,
		AcceptedAt: time.Unix(1, 0), ExpiresAt: time.Unix(3600, 0)}}
	call := []store.EnqueueCall{{Entries: entry, Forget: time.Unix(3600, 0)}}
	for _, failing := range []bool{true, false} {
		if failing {
			if err := os.WriteFile(flag, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Remove(flag); err != nil {
			t.Fatal(err)
		}
		_, _, err := f.Enqueue(ctx, entry, store.Quota{}, time.Unix(3600, 0))
		many := f.EnqueueMany(ctx, call)
		for what, err := range map[string]error{"Enqueue": err, "EnqueueMany": many[0].Err} {
			switch {
			case failing && !errors.Is(err, errStoreFail):
				t.Errorf("%s, file present: got %v, want errStoreFail", what, err)
			case !failing && errors.Is(err, errStoreFail):
				t.Errorf("%s, file removed: got %v, want the store's own result", what, err)
			}
		}
	}
}
