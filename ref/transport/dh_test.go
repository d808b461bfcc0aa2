package transport

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"net"
	"testing"

	"github.com/flynn/noise"
)

// TestDH25519 checks that the transport's DH function gives flynn/noise's
// DH25519 bytes: the same key pair from the same random bytes, the same
// shared secrets, the same refusal of a low-order point, with and without
// a handshake's state.
func TestDH25519(t *testing.T) {
	for _, d := range []*dh25519{nil, new(dh25519)} {
		for seed := range byte(8) {
			want, err := noise.DH25519.GenerateKeypair(testRand(seed))
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.GenerateKeypair(testRand(seed))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Private, want.Private) || !bytes.Equal(got.Public, want.Public) {
				t.Fatalf("seed %d: key pair %x, want %x", seed, got.Public, want.Public)
			}
			peer := keyPair(t, seed+100)
			for range 2 { // twice: nothing of the first stays to change the second
				w, err := noise.DH25519.DH(want.Private, peer.Public)
				if err != nil {
					t.Fatal(err)
				}
				g, err := d.DH(got.Private, peer.Public)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(g, w) {
					t.Fatalf("seed %d: DH %x, want %x", seed, g, w)
				}
			}
		}
		lowOrder := make([]byte, 32) // the point 0
		if _, err := d.DH(keyPair(t, 1).Private, lowOrder); err == nil {
			t.Error("DH with a low-order point succeeded")
		}
	}
}

// BenchmarkHandshakeIK is an IK handshake, both sides, over net.Pipe.
// Compare with BenchmarkHandshakeIKFloor.
func BenchmarkHandshakeIK(b *testing.B) {
	server, client := keyPair(b, 100), keyPair(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		x, y := net.Pipe()
		done := make(chan error, 1)
		go func() {
			_, err := Server(y, &ServerConfig{Static: server})
			done <- err
		}()
		if _, err := Client(x, &ClientConfig{Static: client, ServerKey: server.Public}); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		x.Close()
		y.Close()
	}
}

// BenchmarkHandshakeIKFloor is the ten X25519 operations of an IK
// handshake (five on each side) with crypto/ecdh, and nothing else.
func BenchmarkHandshakeIKFloor(b *testing.B) {
	k, _ := ecdh.X25519().NewPrivateKey(keyPair(b, 1).Private)
	p := k.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		for range 10 {
			if _, err := k.ECDH(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestStaticCacheKeepsBusyKey checks that a static key used in every other
// handshake stays in the cache while many other keys pass through it, as in
// a process that runs a server and many clients.
func TestStaticCacheKeepsBusyKey(t *testing.T) {
	c := staticCache{keys: generations[[32]byte, [32]byte]{size: staticGeneration}}
	key := func(i int) []byte {
		b := make([]byte, 32)
		b[0], b[1], b[2] = byte(i), byte(i>>8), byte(i>>16)
		return b
	}
	kept := func(i int) bool {
		_, ok := c.keys.get([32]byte(key(i)))
		return ok
	}
	public := func(i int) [32]byte {
		t.Helper()
		k, err := ecdh.X25519().NewPrivateKey(key(i))
		if err != nil {
			t.Fatal(err)
		}
		return [32]byte(k.PublicKey().Bytes())
	}
	if pub, ok := c.get(key(0)); !ok || pub != public(0) {
		t.Fatalf("key 0: got %x, %v; want %x", pub, ok, public(0))
	}
	for i := 1; i <= 3*staticGeneration; i++ {
		if pub, ok := c.get(key(i)); !ok || (i%500 == 0 && pub != public(i)) {
			t.Fatalf("key %d: got %x, %v", i, pub, ok)
		}
		if i%7 == 0 {
			if !kept(0) {
				t.Fatalf("after %d other keys, the busy key is no longer kept", i)
			}
			c.get(key(0))
		}
	}
	// The keys of many devices in one process, used in turn, are computed
	// once each.
	for round := range 3 {
		for i := 100000; i < 100000+staticGeneration/2; i++ {
			if round > 0 && !kept(i) {
				t.Fatalf("round %d: key %d is no longer kept", round, i)
			}
			c.get(key(i))
		}
	}
	if _, ok := c.get(make([]byte, 31)); ok {
		t.Error("a 31-byte key: got a public key")
	}
}

// TestStaticDHCache checks the static-static cache: a second IK handshake of
// the same device and server takes X25519(s, rs) from it on both sides, a
// handshake of another device or with another server key does not, and the
// cached values are the operation's (so the handshakes' keys are the same as
// without the cache: TestHandshakeVectors).
func TestStaticDHCache(t *testing.T) {
	server, other := keyPair(t, 100), keyPair(t, 101)
	device, device2 := keyPair(t, 1), keyPair(t, 2)
	want := func(priv, pub []byte) [32]byte {
		t.Helper()
		v, err := noise.DH25519.DH(priv, pub)
		if err != nil {
			t.Fatal(err)
		}
		return [32]byte(v)
	}
	cached := func(local, peer []byte) ([32]byte, bool) {
		return staticDH.get([64]byte(append(bytes.Clone(local), peer...)))
	}
	handshake := func(dev, srv noise.DHKey, serverKey []byte) error {
		t.Helper()
		x, y := net.Pipe()
		defer x.Close()
		defer y.Close()
		done := make(chan error, 1)
		go func() {
			_, err := Server(y, &ServerConfig{Static: srv})
			done <- err
		}()
		_, err := Client(x, &ClientConfig{Static: dev, ServerKey: serverKey})
		if err != nil {
			y.Close()
		}
		return errors.Join(err, <-done)
	}
	for _, c := range []struct {
		name             string
		dev, srv         noise.DHKey
		serverKey        []byte
		ok, cachedBefore bool
	}{
		{"first handshake", device, server, server.Public, true, false},
		{"again", device, server, server.Public, true, true},
		{"another device", device2, server, server.Public, true, false},
		{"another server key: the handshake fails, nothing is kept", device, other, server.Public, false, false},
	} {
		_, before := cached(c.dev.Public, c.srv.Public)
		if before != c.cachedBefore {
			t.Errorf("%s: before, the device's side cached: %v, want %v", c.name, before, c.cachedBefore)
		}
		err := handshake(c.dev, c.srv, c.serverKey)
		if (err == nil) != c.ok {
			t.Fatalf("%s: handshake error %v, want success %v", c.name, err, c.ok)
		}
		if !c.ok {
			if _, ok := cached(c.srv.Public, c.dev.Public); ok {
				t.Errorf("%s: the server kept an operation with the device", c.name)
			}
			continue
		}
		for _, side := range []struct{ local, priv, peer []byte }{
			{c.dev.Public, c.dev.Private, c.srv.Public}, {c.srv.Public, c.srv.Private, c.dev.Public},
		} {
			got, ok := cached(side.local, side.peer)
			if !ok || got != want(side.priv, side.peer) {
				t.Errorf("%s: cached %x (%v), want %x", c.name, got, ok, want(side.priv, side.peer))
			}
		}
	}
}
