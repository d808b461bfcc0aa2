package server_test

import (
	"bytes"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/wire"
)

// ecPrekeys returns one-time EC prekeys of ids from to to, all of one key:
// the server checks that an id is new, not that a key is (a device that
// fills its quota need not make a key per id).
func ecPrekeys(t *testing.T, d *tdev, from, to int) *[]wire.OneTimePreKey {
	t.Helper()
	k, err := keys.GeneratePrivateKey(d.rnd)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.OneTimePreKey
	for id := from; id <= to; id++ {
		out = append(out, wire.OneTimePreKey{ID: uint64(id), Key: k.Public().Encode()})
	}
	return &out
}

// kemPrekey returns a one-time KEM prekey of d with an id, signed by d.
func kemPrekey(t *testing.T, d *tdev, id uint64) wire.KEMPreKey {
	t.Helper()
	k, err := keys.GenerateKEMPrivateKey(d.rnd)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := pqxdh.SignKEMPreKey(d.ik, k.Public(), d.rnd)
	if err != nil {
		t.Fatal(err)
	}
	return wire.KEMPreKey{ID: id, Key: k.Public().Encode(), Signature: sig}
}

// TestOneTimePrekeyLimit checks SRV-025: the server holds at most
// MAX_ONE_TIME_PREKEYS one-time prekeys of a kind for a device, refuses an
// upload that would go over it with policy.quota_exceeded and stores
// nothing of that upload (its signed prekey, its keys of the other kind,
// its ids), checks ids before the count, and counts what it holds: a
// fetch makes room.
func TestOneTimePrekeyLimit(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	upload := func(u *wire.PrekeyUpload) (wire.UploadResult, errcode.Code) {
		t.Helper()
		var r wire.UploadResult
		code, _ := alice.try(wire.FrameUploadPrekeys, u, &r)
		return r, code
	}
	const batch = wire.MaxPrekeysPerUpload
	for n := 0; n < server.MaxOneTimePrekeys; n += batch {
		r, code := upload(&wire.PrekeyUpload{OneTime: ecPrekeys(t, alice, n+1, n+batch)})
		if code != 0 || r.OneTimeEC != uint64(n+batch) {
			t.Fatalf("upload of EC prekeys %d to %d: got %+v, %v, want %d held", n+1, n+batch, r, code, n+batch)
		}
	}

	// One more EC prekey, with a signed prekey and a KEM prekey that
	// alone would fit: refused whole.
	spk, err := keys.GeneratePrivateKey(alice.rnd)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := pqxdh.SignSignedPreKey(alice.ik, spk.Public(), alice.rnd)
	if err != nil {
		t.Fatal(err)
	}
	over := &wire.PrekeyUpload{
		SignedPreKey: &wire.SignedPreKey{ID: 2, Key: spk.Public().Encode(), Signature: sig},
		OneTime:      ecPrekeys(t, alice, server.MaxOneTimePrekeys+1, server.MaxOneTimePrekeys+1),
		OneTimeKEM:   &[]wire.KEMPreKey{kemPrekey(t, alice, 2)},
	}
	if _, code := upload(over); code != errcode.PolicyQuotaExceeded {
		t.Fatalf("an upload that would leave %d EC prekeys held: got %v, want %v", server.MaxOneTimePrekeys+1, code, errcode.PolicyQuotaExceeded)
	}
	// Ids are checked first: a used id is still a duplicate.
	if _, code := upload(&wire.PrekeyUpload{OneTime: ecPrekeys(t, alice, 5, 5)}); code != errcode.StateDuplicatePrekey {
		t.Errorf("an id held already, with the EC prekeys full: got %v, want %v", code, errcode.StateDuplicatePrekey)
	}
	// Nothing of the refused upload was stored: its KEM id is free, no KEM
	// prekey is held, and fetches get the first signed prekey.
	var fr wire.FetchResult
	bob.do(wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: "alice"}, &fr)
	var b wire.Bundle
	if len(fr.Bundles) != 1 || wire.Unmarshal(fr.Bundles[0].Bundle, &b) != nil {
		t.Fatalf("fetch of alice: got %d bundles, want one that decodes", len(fr.Bundles))
	}
	if b.SignedPreKey.ID != 1 || !b.KEMPreKey.LastResort {
		t.Errorf("bundle after the refused upload: got signed prekey %d, last resort %t, want 1 and the last-resort KEM prekey (nothing of the upload stored)",
			b.SignedPreKey.ID, b.KEMPreKey.LastResort)
	}
	// The fetch took one EC prekey: one more fits, with the KEM prekey
	// of the refused upload, and then none.
	r, code := upload(&wire.PrekeyUpload{OneTime: over.OneTime, OneTimeKEM: over.OneTimeKEM})
	if code != 0 || r.OneTimeEC != server.MaxOneTimePrekeys || r.OneTimeKEM != 1 {
		t.Fatalf("the refused keys again after a fetch: got %+v, %v, want %d EC and 1 KEM held", r, code, server.MaxOneTimePrekeys)
	}
	if _, code := upload(&wire.PrekeyUpload{OneTime: ecPrekeys(t, alice, server.MaxOneTimePrekeys+2, server.MaxOneTimePrekeys+2)}); code != errcode.PolicyQuotaExceeded {
		t.Errorf("one EC prekey over the limit again: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
	// The limit is per kind: KEM prekeys go up to it too, and no further.
	for held := 1; held < server.MaxOneTimePrekeys; {
		var kem []wire.KEMPreKey
		for id := held + 2; id <= min(held+1+batch, server.MaxOneTimePrekeys+1); id++ { // KEM id 1 is the last resort
			kem = append(kem, kemPrekey(t, alice, uint64(id)))
		}
		held += len(kem)
		if r, code := upload(&wire.PrekeyUpload{OneTimeKEM: &kem}); code != 0 || r.OneTimeKEM != uint64(held) {
			t.Fatalf("upload of KEM prekeys up to %d held: got %+v, %v, want %d held", held, r, code, held)
		}
	}
	kem := []wire.KEMPreKey{kemPrekey(t, alice, server.MaxOneTimePrekeys+2)}
	if _, code := upload(&wire.PrekeyUpload{OneTimeKEM: &kem}); code != errcode.PolicyQuotaExceeded {
		t.Errorf("one KEM prekey over the limit: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
}

// TestBlobCharge checks MED-009: a blob counts against BLOB_QUOTA as its
// size or MEDIA_CHUNK, whichever is larger, so an account holds at most
// BLOB_QUOTA / MEDIA_CHUNK blobs. Blobs of MAX_BLOB_SIZE and one that
// leaves two media chunks of the quota, created and never uploaded: two
// blobs of 16 bytes fit, and a third does not (by their sizes, about 8
// thousand would).
func TestBlobCharge(t *testing.T) {
	if store.MinBlobCharge != wire.MediaChunk {
		t.Fatalf("store.MinBlobCharge: got %d, want MEDIA_CHUNK, %d", store.MinBlobCharge, wire.MediaChunk)
	}
	e := start(t)
	alice := e.member("alice")
	n := byte(0)
	create := func(size uint64) errcode.Code {
		t.Helper()
		n++
		code, _ := alice.try(wire.FrameCreateBlob, &wire.BlobCreate{Size: size, Digest: bytes.Repeat([]byte{n}, 32)}, new(wire.BlobCreated))
		return code
	}
	for range server.BlobQuota / server.MaxBlobSize {
		if code := create(server.MaxBlobSize); code != 0 {
			t.Fatalf("a blob of MAX_BLOB_SIZE within the quota: got %v, want a result", code)
		}
	}
	const rest = server.BlobQuota % server.MaxBlobSize // 24 MiB
	if code := create(rest - 2*wire.MediaChunk); code != 0 {
		t.Fatalf("a blob of %d bytes, two media chunks of the quota left after it: got %v, want a result", rest-2*wire.MediaChunk, code)
	}
	for i := range 2 {
		if code := create(wire.MinBlobSize); code != 0 {
			t.Fatalf("blob %d of 16 bytes, %d media chunks of the quota left: got %v, want a result", i+1, 2-i, code)
		}
	}
	if code := create(wire.MinBlobSize); code != errcode.PolicyQuotaExceeded {
		t.Errorf("a blob of 16 bytes, the quota full of blobs that count at least MEDIA_CHUNK: got %v, want %v", code, errcode.PolicyQuotaExceeded)
	}
}
