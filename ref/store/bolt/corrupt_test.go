package bolt

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// TestCorruptChunkKey: a chunk key of a damaged file that is shorter than
// a chunk key fails the read of the blob with errCorrupt; it made ReadBlob
// panic (an index out of range), which took the server down with it, since
// reads had no recover as writes do.
func TestCorruptChunkKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "missive.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0).UTC()
	if err := s.CreateAccount(ctx, "alice", store.Device{ID: 1, IdentityKey: []byte{1}, Created: now}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateBlob(ctx, store.Blob{ID: "blob1", Account: "alice", Size: 10, Digest: make([]byte, 32), Created: now, ExpiresAt: now.Add(time.Hour)}, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBlob(ctx, "blob1", store.BlobAppend{Data: []byte("hello"), HashState: []byte("h"), Now: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketChunks)
		good := append(chunkPrefix("blob1"), make([]byte, 8)...)
		v := bytes.Clone(b.Get(good))
		if v == nil {
			t.Fatalf("no chunk at %q", good)
		}
		if err := b.Delete(good); err != nil {
			return err
		}
		return b.Put(append(chunkPrefix("blob1"), 0xff), v)
	})

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.ReadBlob(ctx, "blob1", 0, 5); !errors.Is(err, errCorrupt) {
		t.Errorf("reading a blob whose chunk key is damaged: got %v, want errCorrupt", err)
	}
}

// TestViewRecovers: a read whose function panics fails with errPanicked,
// as a write does, and the store goes on serving.
func TestViewRecovers(t *testing.T) {
	s := testStore(t, []string{"alice"})
	err := s.view(context.Background(), "test", func(*bbolt.Tx) error {
		var b []byte
		_ = b[1]
		return nil
	})
	if !errors.Is(err, errPanicked) {
		t.Errorf("a read that panicked: got %v, want errPanicked", err)
	}
	if _, err := s.Account(context.Background(), "alice"); err != nil {
		t.Errorf("a read after it: %v", err)
	}
}

// rawUpdate changes the file at path in one transaction of bbolt's own, as
// an older version, or a damage, left it; the store must not have it open.
func rawUpdate(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
