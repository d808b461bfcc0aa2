package client_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestSmallMediaBudget checks what MED-009 leaves the reference client:
// every attachment is a blob of its own (a new key, so a new digest, even
// for the same picture sent twice), kept BLOB_TTL (30 days) after its
// upload, and each counts at least MEDIA_CHUNK. An account that sent 2048
// voice notes or photos of 100 kB in 30 days (68 a day) still sends one
// more: counted as at least BLOB_CHUNK each, as a first version of MED-009
// did, it could send none for days, holding 200 MB of its 1 GiB
// BLOB_QUOTA. The server's store is filled as those uploads would have
// left it.
func TestSmallMediaBudget(t *testing.T) {
	st := mem.New()
	w := newWorldOn(t, st)
	clk := w.clock
	alice := w.device("alice")
	w.device("bob")
	const small = 100_000
	sent := server.BlobQuota / server.BlobChunk
	for i := range sent {
		b := store.Blob{ID: fmt.Sprintf("past%d", i), Account: "alice", Size: small, Digest: bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 16),
			Received: small, Created: clk.now(), ExpiresAt: clk.now().Add(server.BlobTTL)}
		if _, _, err := st.CreateBlob(ctx, b, server.BlobQuota); err != nil {
			t.Fatalf("attachment %d of %d bytes in the last BLOB_TTL: %v", i+1, small, err)
		}
	}
	photo := bytes.Repeat([]byte("pixels "), small/7)
	if _, err := alice.c.SendMedia(ctx, client.Conv{Peer: "bob"}, photo, client.MediaOptions{Kind: wire.MediaImage, MIME: "image/jpeg"}); err != nil {
		t.Errorf("attachment %d of %d bytes within BLOB_TTL, %d MB of BLOB_QUOTA's %d held: got %v, want it sent",
			sent+1, len(photo), sent*small/1_000_000, server.BlobQuota/1_000_000, err)
	}
}
