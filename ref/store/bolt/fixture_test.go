package bolt_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
)

// The files testdata/schemaN.db.gz were written by the code of schema N
// (commits db0ae0f~1, 8099f9d~1 and 934a9c2~1), by running this file's
// TestWriteFixture there:
//
//	MISSIVE_WRITE_FIXTURE=DIR go test ./ref/store/bolt -run TestWriteFixture
//
// then gzip -9 -n DIR/fixture.db, with testdata/schemaN.txt (DIR/fixture.txt)
// beside each: the queues as that code read them back. TestOpenOldFiles
// opens copies with the current code. This file uses only the store's
// interface, so that it runs on every schema's code.

var fixtureBase = time.Unix(1_800_000_000, 0).UTC()

// writeFixture fills the store at path: three accounts, a device added and
// one removed, envelopes to one and several devices at several
// priorities, attempt counts, acknowledgements, and a sweep that expires
// some. It returns, for each device, the highest queue id it was given.
func writeFixture(t *testing.T, path string) map[store.Address]uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"alice", "bob", "carol"} {
		if err := s.CreateAccount(ctx, name, store.Device{ID: 1, IdentityKey: []byte{1}, Created: fixtureBase}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := s.AddDevice(ctx, "bob", []byte{2}, fixtureBase); err != nil {
			t.Fatal(err)
		}
	}
	devices := []store.Address{{Account: "alice", Device: 1}, {Account: "bob", Device: 1}, {Account: "bob", Device: 2}, {Account: "bob", Device: 3}, {Account: "carol", Device: 1}}
	maxID := map[store.Address]uint64{}
	for i := range 120 {
		// Every envelope to one device, or to all of bob's.
		to := []store.Address{devices[i%len(devices)]}
		if i%7 == 0 {
			to = devices[1:4]
		}
		var es []store.Entry
		for _, a := range to {
			es = append(es, store.Entry{Recipient: a, Sender: devices[(i+1)%len(devices)], MessageID: []byte(fmt.Sprintf("m%03d", i)),
				Type: 1, Priority: uint8(i % 3), Ciphertext: []byte(fmt.Sprintf("ciphertext %d", i)), SentAt: uint64(1000 + i),
				AcceptedAt: fixtureBase, ExpiresAt: fixtureBase.Add(time.Duration(30+i%4*3600) * time.Second)})
		}
		if _, _, err := s.Enqueue(ctx, es, store.Quota{}, fixtureBase.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			maxID[e.Recipient] = max(maxID[e.Recipient], e.QueueID)
			if i%5 == 0 {
				if err := s.SetAttempt(ctx, e.Recipient, e.QueueID, uint32(1+i%3)); err != nil {
					t.Fatal(err)
				}
			}
			if i%4 == 1 {
				if err := s.Ack(ctx, e.Recipient, []uint64{e.QueueID}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := s.RemoveDevice(ctx, devices[3]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expire(ctx, fixtureBase.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return maxID
}

// describeFixture is the queues of the fixture's devices as s reads them.
func describeFixture(t *testing.T, s *bolt.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, a := range []store.Address{{Account: "alice", Device: 1}, {Account: "bob", Device: 1}, {Account: "bob", Device: 2}, {Account: "bob", Device: 3}, {Account: "carol", Device: 1}} {
		st, err := s.Stats(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s/%d: %d entries, %d bytes\n", a.Account, a.Device, st.Entries, st.Bytes)
		es, err := s.Pending(ctx, a, fixtureBase.Add(time.Minute), nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			fmt.Fprintf(&b, "  %d p%d a%d %s %s/%d %q %d %s\n", e.QueueID, e.Priority, e.Attempt, e.MessageID, e.Sender.Account, e.Sender.Device,
				e.Ciphertext, e.SentAt, e.ExpiresAt.Format(time.RFC3339))
		}
	}
	n, err := s.TotalEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "total %d\n", n)
	return b.String()
}

// TestWriteFixture writes fixture.db and fixture.txt for the code it runs
// on into $MISSIVE_WRITE_FIXTURE, or a temporary directory; then it checks
// that the compacted file it wrote reads back as fixture.txt says.
func TestWriteFixture(t *testing.T) {
	dir := os.Getenv("MISSIVE_WRITE_FIXTURE")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(t.TempDir(), "fixture.db")
	maxID := writeFixture(t, path)
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	desc := describeFixture(t, s)
	s.Close()
	var ids []string
	for a, id := range maxID {
		ids = append(ids, fmt.Sprintf("maxid %s/%d %d", a.Account, a.Device, id))
	}
	slices.Sort(ids)
	if err := os.WriteFile(filepath.Join(dir, "fixture.txt"), []byte(desc+strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Compacted, so that the file holds only its live pages.
	src, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := bbolt.Open(filepath.Join(dir, "fixture.db"), 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bbolt.Compact(dst, src, 0); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = bolt.Open(filepath.Join(dir, "fixture.db")); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := describeFixture(t, s); got != desc {
		t.Errorf("the compacted fixture reads:\n%s\nwant:\n%s", got, desc)
	}
}

// gunzipFile writes the gzip-compressed file from, decompressed, to to.
func gunzipFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOpenOldFiles opens a copy of each schema's fixture with the current
// code, checks that its queues read as that schema's code read them, and
// that every device's next queue id is above every id it had.
func TestOpenOldFiles(t *testing.T) {
	ctx := context.Background()
	for _, schema := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("schema%d", schema), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("schema%d.txt", schema)))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "old.db")
			gunzipFile(t, filepath.Join("testdata", fmt.Sprintf("schema%d.db.gz", schema)), path)
			s, err := bolt.Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			lines := strings.SplitAfter(string(want), "\n")
			var queues strings.Builder
			maxID := map[store.Address]uint64{}
			for _, l := range lines {
				var a store.Address
				var id uint64
				if _, err := fmt.Sscanf(l, "maxid %s %d", &a.Account, &id); err == nil {
					acc, dev, _ := strings.Cut(a.Account, "/")
					var d uint32
					fmt.Sscan(dev, &d)
					maxID[store.Address{Account: acc, Device: d}] = id
					continue
				}
				queues.WriteString(l)
			}
			if len(maxID) == 0 {
				t.Fatal("the fixture names no device's queue ids")
			}
			if got := describeFixture(t, s); got != queues.String() {
				t.Errorf("queues after migration:\n%s\nwant (as schema %d read them):\n%s", got, schema, queues.String())
			}
			for a, id := range maxID {
				e := []store.Entry{{Recipient: a, Sender: a, MessageID: []byte("new"), Type: 1, Ciphertext: []byte("new"),
					SentAt: 1, AcceptedAt: fixtureBase.Add(time.Minute), ExpiresAt: fixtureBase.Add(time.Hour)}}
				_, _, err := s.Enqueue(ctx, e, store.Quota{}, fixtureBase.Add(time.Hour))
				if a.Account == "bob" && a.Device == 3 {
					if err == nil {
						t.Errorf("enqueue to the removed device bob/3: got no error")
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if e[0].QueueID <= id {
					t.Errorf("%s/%d: new queue id %d, want more than %d", a.Account, a.Device, e[0].QueueID, id)
				}
			}
		})
	}
}
