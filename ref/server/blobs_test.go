package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// blobData returns n bytes of a blob, different for each seed.
func blobData(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed, 0xB1}).Read(b)
	return b
}

// createBlob sends create-blob for data and returns the answer.
func (d *tdev) createBlob(data []byte) (*wire.BlobCreated, errcode.Code) {
	d.t.Helper()
	h := sha256.Sum256(data)
	var c wire.BlobCreated
	code, _ := d.try(wire.FrameCreateBlob, &wire.BlobCreate{Size: uint64(len(data)), Digest: h[:]}, &c)
	return &c, code
}

// putBlob sends put-blob and returns the bytes held and the answer's code.
func (d *tdev) putBlob(id string, offset int, data []byte) (uint64, errcode.Code) {
	d.t.Helper()
	var p wire.BlobProgress
	code, _ := d.try(wire.FramePutBlob, &wire.BlobPut{BlobID: id, Offset: uint64(offset), Data: data}, &p)
	return p.Received, code
}

// getBlob sends get-blob and returns the chunk and the answer's code.
func (d *tdev) getBlob(id string, offset, n int) (*wire.BlobChunk, errcode.Code) {
	d.t.Helper()
	var c wire.BlobChunk
	code, _ := d.try(wire.FrameGetBlob, &wire.BlobGet{BlobID: id, Offset: uint64(offset), Length: uint64(n)}, &c)
	return &c, code
}

// upload puts data[from:] in chunks of n bytes, which must all be taken.
func (d *tdev) upload(id string, data []byte, from, n int) {
	d.t.Helper()
	for off := from; off < len(data); off += n {
		end := min(off+n, len(data))
		got, code := d.putBlob(id, off, data[off:end])
		if code != 0 || got != uint64(end) {
			d.t.Fatalf("put-blob %s at %d: got %d held, %v; want %d", id, off, got, code, end)
		}
	}
}

// download gets a whole blob in chunks of n bytes.
func (d *tdev) download(id string, n int) []byte {
	d.t.Helper()
	var out []byte
	for {
		c, code := d.getBlob(id, len(out), n)
		if code != 0 {
			d.t.Fatalf("get-blob %s at %d: %v", id, len(out), code)
		}
		out = append(out, c.Data...)
		if uint64(len(out)) == c.Size {
			return out
		}
	}
}

// recorder is a random source that remembers what it gave in 16-byte
// reads.
type recorder struct {
	mu   sync.Mutex
	r    io.Reader
	gave [][]byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n == 16 {
		r.gave = append(r.gave, bytes.Clone(p[:n]))
	}
	return n, err
}

// TestBlobUploadDownload checks an upload in chunks and downloads in
// pieces (MED-003 to MED-005): ids of 16 bytes of the server's random
// source, any device may read a complete blob, and a chunk ends at the end
// of the blob.
func TestBlobUploadDownload(t *testing.T) {
	rec := &recorder{r: rand.NewChaCha8([32]byte{7})}
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.Rand = rec })
	a1, b1 := e.member("alice"), e.member("bob")
	data := blobData(server.BlobChunk+1000, 1)
	c, code := a1.createBlob(data)
	if code != 0 || c.Received != 0 {
		t.Fatalf("create-blob: got %+v, %v", c, code)
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.BlobID)
	if err != nil || len(raw) != 16 || len(c.BlobID) != 22 {
		t.Fatalf("blob id %q: want 16 bytes in base64url without padding", c.BlobID)
	}
	rec.mu.Lock()
	drawn := slices.ContainsFunc(rec.gave, func(b []byte) bool { return bytes.Equal(b, raw) })
	rec.mu.Unlock()
	if !drawn {
		t.Errorf("blob id %q: not drawn from the configured random source", c.BlobID)
	}
	a1.upload(c.BlobID, data, 0, server.BlobChunk)
	got, code := b1.getBlob(c.BlobID, server.BlobChunk-10, 100)
	if code != 0 || got.Size != uint64(len(data)) || !bytes.Equal(got.Data, data[server.BlobChunk-10:server.BlobChunk+90]) {
		t.Errorf("get-blob across the chunks: got %d bytes of %d, %v", len(got.Data), got.Size, code)
	}
	got, code = b1.getBlob(c.BlobID, len(data)-5, server.BlobChunk)
	if code != 0 || !bytes.Equal(got.Data, data[len(data)-5:]) {
		t.Errorf("get-blob at the end: got %d bytes, %v, want the last 5", len(got.Data), code)
	}
	if all := b1.download(c.BlobID, 300_000); !bytes.Equal(all, data) {
		t.Errorf("download: got %d bytes, not the uploaded ones", len(all))
	}
	// Another blob, another id.
	c2, _ := a1.createBlob(blobData(100, 2))
	if c2.BlobID == c.BlobID {
		t.Errorf("two blobs with id %q", c.BlobID)
	}
	// The same blob again: the same id, complete.
	if c3, _ := b1.createBlob(data); c3.BlobID == c.BlobID {
		t.Error("another account got alice's blob")
	}
	if c3, code := a1.createBlob(data); code != 0 || c3.BlobID != c.BlobID || c3.Received != uint64(len(data)) {
		t.Errorf("create-blob of a complete blob: got %+v, %v, want %s complete", c3, code, c.BlobID)
	}

	var m strings.Builder
	e.srv.WriteMetrics(context.Background(), &m)
	for _, want := range []string{"missive_blobs_completed_total 1\n", "missive_blob_bytes_received_total 525288\n"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics: no %q", want)
		}
	}
}

// TestBlobResume checks that an upload cut by a lost connection resumes
// where it stopped, from any device of the account (MED-003).
func TestBlobResume(t *testing.T) {
	e := start(t)
	b1 := e.member("bob")
	b2 := b1.link(true)
	data := blobData(3000, 3)
	c, _ := b1.createBlob(data)
	b1.upload(c.BlobID, data[:1000], 0, 500)
	b1.close()
	b1.connect(false)
	again, code := b1.createBlob(data)
	if code != 0 || again.BlobID != c.BlobID || again.Received != 1000 {
		t.Fatalf("create-blob to resume: got %+v, %v, want %s with 1000 bytes", again, code, c.BlobID)
	}
	if _, code := b1.putBlob(c.BlobID, 0, data[:500]); code != errcode.StateBlobOffset {
		t.Errorf("put-blob from the start again: got %v, want %v", code, errcode.StateBlobOffset)
	}
	b1.upload(c.BlobID, data[:2000], 1000, 1000)
	fromB2, _ := b2.createBlob(data)
	if fromB2.BlobID != c.BlobID || fromB2.Received != 2000 {
		t.Fatalf("create-blob from another device: got %+v, want %s with 2000 bytes", fromB2, c.BlobID)
	}
	b2.upload(c.BlobID, data, 2000, 1000)
	if all := b1.download(c.BlobID, 1024); !bytes.Equal(all, data) {
		t.Error("download after resuming: not the uploaded bytes")
	}
}

// TestBlobChecks checks put-blob (MED-004) and get-blob (MED-005) refusals
// in their order.
func TestBlobChecks(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a1, c1 := e.member("alice"), e.member("carol")
	data := blobData(1000, 4)
	c, _ := a1.createBlob(data)
	id := c.BlobID
	a1.upload(id, data[:400], 0, 400)
	puts := []struct {
		name   string
		from   *tdev
		id     string
		offset int
		data   []byte
		want   errcode.Code
	}{
		{"an unknown blob", a1, "nothing", 0, data[:10], errcode.StateUnknownBlob},
		{"another account's blob, at a wrong offset", c1, id, 0, data[:10], errcode.StateUnknownBlob},
		{"an offset behind", a1, id, 399, data[399:500], errcode.StateBlobOffset},
		{"an offset ahead", a1, id, 401, data[401:500], errcode.StateBlobOffset},
		{"past the size", a1, id, 400, append(slices.Clone(data[400:]), 0), errcode.StateBlobOffset},
	}
	for _, p := range puts {
		if _, code := p.from.putBlob(p.id, p.offset, p.data); code != p.want {
			t.Errorf("put-blob, %s: got %v, want %v", p.name, code, p.want)
		}
	}
	if _, code := a1.getBlob(id, 0, 10); code != errcode.StateUnknownBlob {
		t.Errorf("get-blob before completion: got %v, want %v", code, errcode.StateUnknownBlob)
	}
	a1.upload(id, data, 400, 300)
	for _, g := range []struct {
		name      string
		id        string
		offset, n int
		want      errcode.Code
		bytes     int
	}{
		{"the last byte", id, 999, 10, 0, 1},
		{"at the size", id, 1000, 10, errcode.StateBlobOffset, 0},
		{"past the size", id, 5000, 10, errcode.StateBlobOffset, 0},
		{"an unknown blob past any size", "nothing", 5000, 10, errcode.StateUnknownBlob, 0},
	} {
		got, code := c1.getBlob(g.id, g.offset, g.n)
		if code != g.want || len(got.Data) != g.bytes {
			t.Errorf("get-blob, %s: got %d bytes, %v, want %d, %v", g.name, len(got.Data), code, g.bytes, g.want)
		}
	}
	if _, code := a1.putBlob(id, 1000, data[:1]); code != errcode.StateUnknownBlob {
		t.Errorf("put-blob to a complete blob: got %v, want %v", code, errcode.StateUnknownBlob)
	}

	// A blob whose bytes are not the digest's is deleted at completion.
	wrong := blobData(1000, 5)
	w, _ := a1.createBlob(wrong)
	forged := slices.Clone(wrong)
	forged[999] ^= 1
	a1.upload(w.BlobID, forged[:999], 0, 500)
	if _, code := a1.putBlob(w.BlobID, 999, forged[999:]); code != errcode.AuthDigestMismatch {
		t.Fatalf("the last chunk, not the digest's: got %v, want %v", code, errcode.AuthDigestMismatch)
	}
	if _, err := e.st.Blob(ctx, w.BlobID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the blob after a digest mismatch: got %v, want it deleted", err)
	}
	if _, code := a1.getBlob(w.BlobID, 0, 10); code != errcode.StateUnknownBlob {
		t.Errorf("get-blob after a digest mismatch: got %v, want %v", code, errcode.StateUnknownBlob)
	}
	if _, code := a1.putBlob(w.BlobID, 999, wrong[999:]); code != errcode.StateUnknownBlob {
		t.Errorf("put-blob after a digest mismatch: got %v, want %v", code, errcode.StateUnknownBlob)
	}
	if again, _ := a1.createBlob(wrong); again.BlobID == w.BlobID || again.Received != 0 {
		t.Errorf("create-blob after a digest mismatch: got %+v, want a new, empty blob", again)
	}
}

// TestBlobQuota checks BLOB_QUOTA: an account's unexpired blobs, complete
// or not, hold at most 1 GiB; sizes count as announced.
func TestBlobQuota(t *testing.T) {
	e := start(t)
	a1, b1 := e.member("alice"), e.member("bob")
	create := func(d *tdev, size uint64, seed byte) (*wire.BlobCreated, errcode.Code) {
		t.Helper()
		var c wire.BlobCreated
		code, _ := d.try(wire.FrameCreateBlob, &wire.BlobCreate{Size: size, Digest: bytes.Repeat([]byte{seed}, 32)}, &c)
		return &c, code
	}
	for i := range 10 {
		if _, code := create(a1, server.MaxBlobSize, byte(i)); code != 0 {
			t.Fatalf("blob %d of 100 MiB: %v", i, code)
		}
	}
	if _, code := create(a1, server.MaxBlobSize, 10); code != errcode.PolicyQuotaExceeded {
		t.Errorf("an eleventh blob of 100 MiB: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
	if _, code := create(a1, server.BlobQuota-10*server.MaxBlobSize, 11); code != 0 {
		t.Errorf("a blob up to the quota: got %v, want a result", code)
	}
	if _, code := create(a1, wire.MinBlobSize, 12); code != errcode.PolicyQuotaExceeded {
		t.Errorf("a small blob over the quota: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
	if c, code := create(a1, server.MaxBlobSize, 3); code != 0 || c.Received != 0 {
		t.Errorf("resuming a blob held when full: got %+v, %v", c, code)
	}
	if _, code := create(b1, server.MaxBlobSize, 10); code != 0 {
		t.Errorf("another account: got %v, want a result", code)
	}
	// Expired uploads give their room back.
	e.clock.Advance(server.BlobUploadTTL)
	if _, code := create(a1, server.MaxBlobSize, 10); code != 0 {
		t.Errorf("after the uploads expired: got %v, want a result", code)
	}
}

// TestBlobExpiry checks MED-006: an incomplete blob goes BLOB_UPLOAD_TTL
// after its creation, a complete one BLOB_TTL after its completion, and the
// sweep deletes them.
func TestBlobExpiry(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	a1, b1 := e.member("alice"), e.member("bob")

	partial := blobData(100, 6)
	p, _ := a1.createBlob(partial)
	a1.upload(p.BlobID, partial[:50], 0, 50)
	e.clock.Advance(server.BlobUploadTTL - time.Second)
	a1.upload(p.BlobID, partial[:60], 50, 10)
	e.clock.Advance(time.Second)
	if _, code := a1.putBlob(p.BlobID, 60, partial[60:]); code != errcode.StateUnknownBlob {
		t.Errorf("put-blob at BLOB_UPLOAD_TTL: got %v, want %v", code, errcode.StateUnknownBlob)
	}

	e.srv.Sweep(ctx)
	if _, err := e.st.Blob(ctx, p.BlobID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired upload after a sweep: got %v, want it deleted", err)
	}

	// Created now, complete an hour later: its time counts from then.
	done := blobData(100, 7)
	c, _ := a1.createBlob(done)
	e.clock.Advance(time.Hour)
	a1.upload(c.BlobID, done, 0, 100)
	e.clock.Advance(server.BlobTTL - time.Second)
	e.srv.Sweep(ctx)
	if got := b1.download(c.BlobID, 64); !bytes.Equal(got, done) {
		t.Error("download before BLOB_TTL: not the uploaded bytes")
	}
	e.clock.Advance(time.Second)
	if _, code := b1.getBlob(c.BlobID, 0, 10); code != errcode.StateUnknownBlob {
		t.Errorf("get-blob at BLOB_TTL, before a sweep: got %v, want %v", code, errcode.StateUnknownBlob)
	}
	e.srv.Sweep(ctx)
	if _, err := e.st.Blob(ctx, c.BlobID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired blob after a sweep: got %v, want it deleted", err)
	}
	if again, _ := a1.createBlob(done); again.BlobID == c.BlobID || again.Received != 0 {
		t.Errorf("create-blob after expiry: got %+v, want a new, empty blob", again)
	}
	var m strings.Builder
	e.srv.WriteMetrics(ctx, &m)
	if !strings.Contains(m.String(), "missive_blobs_expired_total 2\n") {
		t.Error("metrics: want 2 blobs expired")
	}
}
