package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

var blobTests = []test{
	{"BlobCreate", testBlobCreate},
	{"BlobQuota", testBlobQuota},
	{"BlobAppend", testBlobAppend},
	{"BlobRead", testBlobRead},
	{"BlobLarge", testBlobLarge},
	{"BlobDelete", testBlobDelete},
	{"BlobExpire", testBlobExpire},
	{"BlobAppendConcurrent", testBlobAppendConcurrent},
	{"BlobReopen", testBlobReopen},
	{"BlobNoAliasing", testBlobNoAliasing},
}

// blobTTL and uploadTTL are the suite's expiry delays of complete and
// incomplete blobs.
const (
	blobTTL   = 30 * 24 * time.Hour
	uploadTTL = 24 * time.Hour
)

// newBlob returns the record of a blob of account with the given bytes,
// created at t0 plus ms milliseconds.
func newBlob(id, account string, data []byte, ms int64) store.Blob {
	d := sha256.Sum256(data)
	return store.Blob{ID: id, Account: account, Size: uint64(len(data)), Digest: d[:], HashState: []byte("h0"),
		Created: at(ms), ExpiresAt: at(ms).Add(uploadTTL)}
}

// create creates a blob that must be new.
func (h *harness) create(b store.Blob, quota int64) *store.Blob {
	h.Helper()
	got, existing, err := h.s.CreateBlob(h.ctx, b, quota)
	h.wantErr(fmt.Sprintf("CreateBlob(%q)", b.ID), err, nil)
	if existing {
		h.Fatalf("CreateBlob(%q): got an existing blob %q", b.ID, got.ID)
	}
	h.wantBlob("CreateBlob", got, b)
	return got
}

// appendAll uploads data[from:] to blob id in chunks of n bytes at t0 plus
// ms (the blob's bytes are data, and it holds the first from of them).
func (h *harness) appendAll(id string, data []byte, from, n int, ms int64) *store.Blob {
	h.Helper()
	var b *store.Blob
	for off := from; off < len(data); off += n {
		end := min(off+n, len(data))
		var err error
		b, err = h.s.AppendBlob(h.ctx, id, store.BlobAppend{Offset: uint64(off), Data: data[off:end],
			HashState: []byte(fmt.Sprint("h", end)), Now: at(ms), Expires: at(ms).Add(blobTTL)})
		h.wantErr(fmt.Sprintf("AppendBlob(%q, %d)", id, off), err, nil)
		if b.Received != uint64(end) {
			h.Fatalf("AppendBlob(%q, %d): got %d received, want %d", id, off, b.Received, end)
		}
	}
	return b
}

// wantBlob fails the test unless got is want (Received included).
func (h *harness) wantBlob(what string, got *store.Blob, want store.Blob) {
	h.Helper()
	if got == nil {
		h.Fatalf("%s: got nil, want blob %q", what, want.ID)
	}
	if got.ID != want.ID || got.Account != want.Account || got.Size != want.Size || got.Received != want.Received ||
		!bytes.Equal(got.Digest, want.Digest) || !bytes.Equal(got.HashState, want.HashState) ||
		!got.Created.Equal(want.Created) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		h.Errorf("%s: got %+v, want %+v", what, *got, want)
	}
}

// read reads a blob and fails the test on an error.
func (h *harness) read(id string, offset uint64, n int) []byte {
	h.Helper()
	_, data, err := h.s.ReadBlob(h.ctx, id, offset, n)
	h.wantErr(fmt.Sprintf("ReadBlob(%q, %d, %d)", id, offset, n), err, nil)
	return data
}

// pattern returns n bytes that differ from their neighbours.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return b
}

func testBlobCreate(h *harness) {
	data := pattern(100, 1)
	b := newBlob("b1", "alice", data, 0)
	h.create(b, 0)
	got, err := h.s.Blob(h.ctx, "b1")
	h.wantErr("Blob", err, nil)
	h.wantBlob("Blob", got, b)
	if got.Complete() {
		h.Error("a new blob is complete")
	}
	// The same account, size and digest: the same blob, whatever the id.
	again := newBlob("b2", "alice", data, 10)
	got, existing, err := h.s.CreateBlob(h.ctx, again, 0)
	if err != nil || !existing {
		h.Fatalf("CreateBlob again: got existing %t, %v, want true, nil", existing, err)
	}
	h.wantBlob("CreateBlob again", got, b)
	if _, err := h.s.Blob(h.ctx, "b2"); err == nil {
		h.Error("CreateBlob again stored a second blob")
	}
	// Another account, or another size or digest: another blob.
	h.create(newBlob("b3", "bob", data, 0), 0)
	h.create(newBlob("b4", "alice", data[:99], 0), 0)
	other := newBlob("b5", "alice", data, 0)
	other.Digest = bytes.Repeat([]byte{7}, 32)
	h.create(other, 0)
	// An id taken.
	_, _, err = h.s.CreateBlob(h.ctx, newBlob("b1", "carol", pattern(5, 2), 0), 0)
	h.wantErr("CreateBlob with an id taken", err, store.ErrExists)
	_, err = h.s.Blob(h.ctx, "nothing")
	h.wantErr("Blob(nothing)", err, store.ErrNotFound)
	_, _, err = h.s.ReadBlob(h.ctx, "nothing", 0, 10)
	h.wantErr("ReadBlob(nothing)", err, store.ErrNotFound)
}

// testBlobQuota checks the quota of CreateBlob, in which a blob counts
// its charge: its size, at least store.MinBlobCharge (MED-009).
func testBlobQuota(h *harness) {
	const m = store.MinBlobCharge
	const quota = 3 * m
	h.create(newBlob("b1", "alice", pattern(60, 1), 0), quota) // counts m
	_, _, err := h.s.CreateBlob(h.ctx, newBlob("b2", "alice", pattern(2*m+1, 2), 0), quota)
	h.wantErr("CreateBlob over the quota", err, store.ErrQuota)
	h.create(newBlob("b3", "alice", pattern(2*m-1, 3), 0), quota) // one byte short of full
	_, _, err = h.s.CreateBlob(h.ctx, newBlob("b4", "alice", pattern(16, 4), 0), quota)
	h.wantErr("CreateBlob of a small blob, one byte of the quota left", err, store.ErrQuota)
	h.create(newBlob("b5", "bob", pattern(quota, 5), 0), quota) // quotas are per account
	// Resuming is not creating: it counts nothing.
	if _, existing, err := h.s.CreateBlob(h.ctx, newBlob("b6", "alice", pattern(60, 1), 1), quota); err != nil || !existing {
		h.Errorf("CreateBlob of a blob held when full: got %t, %v, want true, nil", existing, err)
	}
	// A deleted blob frees its charge.
	h.wantErr("DeleteBlob", h.s.DeleteBlob(h.ctx, "b1"), nil)
	h.create(newBlob("b7", "alice", pattern(16, 7), 2), quota)
	// So does an expired one, even before ExpireBlobs: b3 and b7 expire
	// uploadTTL after their creation.
	_, _, err = h.s.CreateBlob(h.ctx, newBlob("b8", "alice", pattern(1, 8), 3), quota)
	h.wantErr("CreateBlob when full", err, store.ErrQuota)
	late := newBlob("b9", "alice", pattern(quota, 9), 0)
	late.Created = at(2).Add(uploadTTL)
	h.create(late, quota)
	if _, err := h.s.Blob(h.ctx, "b3"); err == nil {
		h.Error("an expired blob is still there after CreateBlob")
	}
}

func testBlobAppend(h *harness) {
	data := pattern(1000, 1)
	b := newBlob("b1", "alice", data, 0)
	h.create(b, 0)
	put := func(offset uint64, data []byte, ms int64) (*store.Blob, error) {
		return h.s.AppendBlob(h.ctx, "b1", store.BlobAppend{Offset: offset, Data: data, HashState: []byte(fmt.Sprint("h", offset+uint64(len(data)))),
			Now: at(ms), Expires: at(ms).Add(blobTTL)})
	}
	got, err := put(0, data[:300], 10)
	h.wantErr("AppendBlob(0)", err, nil)
	b.Received, b.HashState = 300, []byte("h300")
	h.wantBlob("AppendBlob(0)", got, b)
	for _, c := range []struct {
		name   string
		offset uint64
		data   []byte
	}{
		{"at 0 again", 0, data[:300]},
		{"before the bytes held", 299, data[299:400]},
		{"after the bytes held", 301, data[301:400]},
		{"past the size", 300, append(data[300:], 0)},
	} {
		_, err := put(c.offset, c.data, 20)
		h.wantErr("AppendBlob "+c.name, err, store.ErrConflict)
	}
	got, _ = h.s.Blob(h.ctx, "b1")
	h.wantBlob("Blob after refusals", got, b)
	got, err = put(300, data[300:], 30)
	h.wantErr("AppendBlob(300)", err, nil)
	b.Received, b.HashState, b.ExpiresAt = 1000, []byte("h1000"), at(30).Add(blobTTL)
	h.wantBlob("AppendBlob completing", got, b)
	if !got.Complete() {
		h.Error("a blob with every byte is not complete")
	}
	// A complete blob never changes.
	_, err = put(1000, []byte{1}, 40)
	h.wantErr("AppendBlob to a complete blob", err, store.ErrNotFound)
	_, err = h.s.AppendBlob(h.ctx, "nothing", store.BlobAppend{Data: []byte{1}, Now: at(0)})
	h.wantErr("AppendBlob to no blob", err, store.ErrNotFound)
	if got := h.read("b1", 0, 2000); !bytes.Equal(got, data) {
		h.Errorf("ReadBlob: got %d bytes, want the %d uploaded", len(got), len(data))
	}
	// An expired upload takes no more bytes.
	h.create(newBlob("b2", "alice", data[:10], 0), 0)
	_, err = h.s.AppendBlob(h.ctx, "b2", store.BlobAppend{Data: data[:5], Now: at(0).Add(uploadTTL)})
	h.wantErr("AppendBlob at the expiry time", err, store.ErrNotFound)
	_, err = h.s.AppendBlob(h.ctx, "b2", store.BlobAppend{Data: data[:5], Now: at(0).Add(uploadTTL - time.Millisecond)})
	h.wantErr("AppendBlob before the expiry time", err, nil)
}

func testBlobRead(h *harness) {
	data := pattern(97, 3)
	h.create(newBlob("b1", "alice", data, 0), 0)
	// Chunks of uneven sizes: 1, 10, 30, 56.
	off := 0
	for _, n := range []int{1, 10, 30} {
		h.appendAll("b1", data[:off+n], off, n, 0)
		off += n
	}
	for offset := range 42 {
		for n := 1; n <= 45; n++ {
			want := data[offset:min(offset+n, off)]
			if got := h.read("b1", uint64(offset), n); !bytes.Equal(got, want) {
				h.Fatalf("ReadBlob(%d, %d) of an incomplete blob: got %x, want %x", offset, n, got, want)
			}
		}
	}
	h.appendAll("b1", data, off, 56, 0)
	for offset := range len(data) + 2 {
		for _, n := range []int{1, 2, 9, 10, 11, 29, 31, 56, 57, 100} {
			var want []byte
			if offset < len(data) {
				want = data[offset:min(offset+n, len(data))]
			}
			if got := h.read("b1", uint64(offset), n); !bytes.Equal(got, want) {
				h.Fatalf("ReadBlob(%d, %d): got %x, want %x", offset, n, got, want)
			}
		}
	}
	b, _, err := h.s.ReadBlob(h.ctx, "b1", 0, 0)
	if err != nil || b.Size != 97 || !b.Complete() {
		h.Errorf("ReadBlob of nothing: got %+v, %v", b, err)
	}
	// A blob whose id begins another's keeps its own bytes.
	h.create(newBlob("b", "alice", pattern(20, 9), 0), 0)
	h.appendAll("b", pattern(20, 9), 0, 7, 0)
	if got := h.read("b", 0, 100); !bytes.Equal(got, pattern(20, 9)) {
		h.Errorf("ReadBlob(b): got %x", got)
	}
	if got := h.read("b1", 90, 100); !bytes.Equal(got, data[90:]) {
		h.Errorf("ReadBlob(b1) after b: got %x", got)
	}
}

func testBlobLarge(h *harness) {
	const chunk = 512 << 10
	data := pattern(5*chunk+12345, 4)
	h.create(newBlob("big", "alice", data, 0), 0)
	b := h.appendAll("big", data, 0, chunk, 0)
	if !b.Complete() {
		h.Fatal("not complete")
	}
	for _, off := range []int{0, chunk - 1, chunk, 3*chunk + 17, len(data) - chunk} {
		if got := h.read("big", uint64(off), chunk); !bytes.Equal(got, data[off:off+chunk]) {
			h.Errorf("ReadBlob(%d, %d): got %d bytes, not the uploaded ones", off, chunk, len(got))
		}
	}
	if got := h.read("big", uint64(len(data)-10), chunk); !bytes.Equal(got, data[len(data)-10:]) {
		h.Errorf("ReadBlob at the end: got %d bytes, want 10", len(got))
	}
}

func testBlobDelete(h *harness) {
	data := pattern(50, 5)
	const quota = store.MinBlobCharge // one blob
	h.create(newBlob("b1", "alice", data, 0), quota)
	h.appendAll("b1", data, 0, 20, 0)
	h.wantErr("DeleteBlob", h.s.DeleteBlob(h.ctx, "b1"), nil)
	_, err := h.s.Blob(h.ctx, "b1")
	h.wantErr("Blob after DeleteBlob", err, store.ErrNotFound)
	_, _, err = h.s.ReadBlob(h.ctx, "b1", 0, 10)
	h.wantErr("ReadBlob after DeleteBlob", err, store.ErrNotFound)
	h.wantErr("DeleteBlob again", h.s.DeleteBlob(h.ctx, "b1"), nil)
	// The same size and digest make a new blob, with none of the old bytes.
	h.create(newBlob("b2", "alice", data, 1), quota)
	if got := h.read("b2", 0, 100); len(got) != 0 {
		h.Errorf("ReadBlob of a new blob: got %d bytes, want 0", len(got))
	}
	// And the id can be used again.
	h.create(newBlob("b1", "bob", data, 1), quota)
}

func testBlobExpire(h *harness) {
	complete, partial, fresh := pattern(30, 1), pattern(40, 2), pattern(50, 3)
	h.create(newBlob("complete", "alice", complete, 0), 0)
	h.appendAll("complete", complete, 0, 30, 1000) // expires blobTTL after at(1000)
	h.create(newBlob("partial", "alice", partial, 0), 0)
	h.appendAll("partial", partial[:25], 0, 25, 0) // expires uploadTTL after at(0)
	h.create(newBlob("fresh", "bob", fresh, 5000), 0)
	expire := func(t time.Time, wantN int, wantBytes int64) {
		h.Helper()
		n, size, err := h.s.ExpireBlobs(h.ctx, t)
		if err != nil || n != wantN || size != wantBytes {
			h.Errorf("ExpireBlobs(%v): got %d, %d, %v, want %d, %d, nil", t, n, size, err, wantN, wantBytes)
		}
	}
	exists := func(id string, want bool) {
		h.Helper()
		_, err := h.s.Blob(h.ctx, id)
		if (err == nil) != want {
			h.Errorf("Blob(%q): got %v, want it to exist: %t", id, err, want)
		}
	}
	expire(at(0).Add(uploadTTL-1), 0, 0)
	expire(at(0).Add(uploadTTL), 1, 25)
	exists("partial", false)
	exists("complete", true)
	expire(at(5000).Add(uploadTTL), 1, 0)
	exists("fresh", false)
	expire(at(1000).Add(blobTTL-1), 0, 0)
	exists("complete", true)
	expire(at(1000).Add(blobTTL), 1, 30)
	exists("complete", false)
	expire(at(1e12), 0, 0)
	// An expired blob's size and digest make a new blob.
	h.create(newBlob("again", "alice", complete, 2e9), 0)
}

func testBlobAppendConcurrent(h *harness) {
	data := pattern(64, 1)
	h.create(newBlob("b1", "alice", data, 0), 0)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []int
		errs []error
	)
	for i := range n {
		wg.Go(func() {
			chunk := bytes.Repeat([]byte{byte(i)}, 16)
			_, err := h.s.AppendBlob(h.ctx, "b1", store.BlobAppend{Offset: 0, Data: chunk, Now: at(0)})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, i)
			} else {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		h.Fatalf("concurrent AppendBlob at 0: %d succeeded, want 1", len(won))
	}
	for _, err := range errs {
		h.wantErr("the losers of AppendBlob", err, store.ErrConflict)
	}
	if got := h.read("b1", 0, 100); !bytes.Equal(got, bytes.Repeat([]byte{byte(won[0])}, 16)) {
		h.Errorf("ReadBlob: got %x, want the winner's bytes only", got)
	}
}

func testBlobReopen(h *harness) {
	if !h.f.Durable {
		h.Skip("not durable")
	}
	done, part := pattern(1000, 1), pattern(2000, 2)
	const quota = 2 * store.MinBlobCharge // the two blobs
	bd := newBlob("done", "alice", done, 0)
	h.create(bd, quota)
	h.appendAll("done", done, 0, 300, 10)
	bp := newBlob("part", "alice", part, 0)
	h.create(bp, quota)
	h.appendAll("part", part[:700], 0, 350, 20)
	h.reopen()
	bd.Received, bd.HashState, bd.ExpiresAt = 1000, []byte("h1000"), at(10).Add(blobTTL)
	bp.Received, bp.HashState = 700, []byte("h700")
	got, err := h.s.Blob(h.ctx, "done")
	h.wantErr("Blob(done)", err, nil)
	h.wantBlob("Blob(done) after reopen", got, bd)
	got, err = h.s.Blob(h.ctx, "part")
	h.wantErr("Blob(part)", err, nil)
	h.wantBlob("Blob(part) after reopen", got, bp)
	if got := h.read("done", 0, 5000); !bytes.Equal(got, done) {
		h.Errorf("ReadBlob(done) after reopen: got %d bytes, not the uploaded ones", len(got))
	}
	// The upload resumes, the quota is still counted, expiry still works.
	if b, existing, err := h.s.CreateBlob(h.ctx, newBlob("x", "alice", part, 30), quota); err != nil || !existing || b.ID != "part" {
		h.Errorf("CreateBlob to resume after reopen: got %v, %t, %v", b, existing, err)
	}
	_, _, err = h.s.CreateBlob(h.ctx, newBlob("y", "alice", pattern(1, 3), 30), quota)
	h.wantErr("CreateBlob over the quota after reopen", err, store.ErrQuota)
	h.appendAll("part", part, 700, 650, 40)
	if got := h.read("part", 0, 5000); !bytes.Equal(got, part) {
		h.Errorf("ReadBlob(part) after resuming: got %d bytes, not the uploaded ones", len(got))
	}
	if n, _, err := h.s.ExpireBlobs(h.ctx, at(1e12)); err != nil || n != 2 {
		h.Errorf("ExpireBlobs after reopen: got %d, %v, want 2, nil", n, err)
	}
}

func testBlobNoAliasing(h *harness) {
	data := pattern(40, 1)
	b := newBlob("b1", "alice", data, 0)
	want := b
	want.Digest = bytes.Clone(b.Digest)
	h.create(b, 0)
	b.Digest[0]++ // the caller changes what it passed
	chunk := bytes.Clone(data[:20])
	state := []byte("h20")
	if _, err := h.s.AppendBlob(h.ctx, "b1", store.BlobAppend{Data: chunk, HashState: state, Now: at(0)}); err != nil {
		h.Fatalf("AppendBlob: %v", err)
	}
	chunk[0]++
	state[0]++
	signed := []byte("state")
	h.wantErr("PutGroupState", h.s.PutGroupState(h.ctx, gid(1), 1, signed, nil, noBudget), nil)
	signed[0]++

	got, err := h.s.Blob(h.ctx, "b1")
	h.wantErr("Blob", err, nil)
	want.Received, want.HashState = 20, []byte("h20")
	h.wantBlob("Blob after changing the arguments", got, want)
	got.Digest[0]++ // and what it got
	got.HashState[0]++
	rec, read, err := h.s.ReadBlob(h.ctx, "b1", 0, 100)
	h.wantErr("ReadBlob", err, nil)
	h.wantBlob("ReadBlob after changing a result", rec, want)
	if !bytes.Equal(read, data[:20]) {
		h.Fatalf("ReadBlob: got %x, want %x", read, data[:20])
	}
	read[0]++
	if again := h.read("b1", 0, 100); !bytes.Equal(again, data[:20]) {
		h.Errorf("ReadBlob after changing a result: got %x, want %x", again, data[:20])
	}
	g, _, err := h.s.GroupState(h.ctx, gid(1))
	h.wantErr("GroupState", err, nil)
	g[0]++
	states, _, _ := h.s.GroupStates(h.ctx, gid(1), 1, 1)
	if len(states) != 1 || string(states[0]) != "state" {
		h.Errorf("GroupStates after changing the arguments and a result: got %q, want [state]", states)
	}
}
