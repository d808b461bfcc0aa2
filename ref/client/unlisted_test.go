package client

import (
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/wire"
)

// bundleOf returns a bundle of d's prekeys, as the server would serve it.
func bundleOf(t testing.TB, d *Device) []byte {
	t.Helper()
	up, err := d.newPrekeys(true, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(&wire.Bundle{Version: wire.ProtocolVersion, IdentityKey: d.identity.Public().Encode(),
		SignedPreKey: *up.SignedPreKey, KEMPreKey: (*up.OneTimeKEM)[0], OneTimePreKey: &(*up.OneTime)[0]})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prekeyDelivery returns a delivery of a text in a prekey message that ik
// sends to the owner of bundle, under the sender address from.
func prekeyDelivery(t *testing.T, ik *keys.PrivateKey, bundle []byte, from wire.Address, text string) *wire.Delivery {
	t.Helper()
	s, err := session.Initiate(rand.Reader, ik, bundle)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	pt, err := wire.Marshal(&wire.Content{Version: 1, Type: wire.ContentText, MessageID: id, SentAt: 1000, Text: &text})
	if err != nil {
		t.Fatal(err)
	}
	_, ct, err := s.Encrypt(pt)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Delivery{Version: 1, QueueID: 1, MessageID: id, Sender: from, Type: wire.EnvelopeChat,
		Priority: wire.PriorityNormal, Kind: wire.KindPrekey, Ciphertext: ct, SentAt: 1000, AcceptedAt: 1000,
		ExpiresAt: 1 << 50, Attempt: 1}
}

// TestPrekeyFromUnlistedDevice checks DEV-020: a prekey message makes a
// session only when the sender account's accepted list gives the sender
// device the message's identity key. A server that delivers one from a
// device of its own making, or from a listed device under a key of its
// own, gets auth.device_not_listed, no message shown and no session, so
// the device never encrypts to it (DEV-004).
func TestPrekeyFromUnlistedDevice(t *testing.T) {
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	serverIK, _ := keys.GeneratePrivateKey(rand.Reader) // the server's own key
	tests := []struct {
		name   string
		list   bool // bob holds alice's list (device 1 alone, with aliceIK)
		ik     *keys.PrivateKey
		device uint64
		want   error // nil: the message is shown
	}{
		{"listed device, its key", true, aliceIK, 1, nil},
		{"a device the list does not list", true, serverIK, 2, errcode.AuthDeviceNotListed},
		{"a listed device under another key", true, serverIK, 1, errcode.AuthDeviceNotListed},
		{"no list of the account", false, aliceIK, 1, errcode.AuthDeviceNotListed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bob, err := Init(filepath.Join(t.TempDir(), "bob"), "bob", "127.0.0.1:1", Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer bob.Close()
			if tt.list {
				l, err := devices.Sign(aliceIK, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: aliceIK.Public().Encode()}}, 1000, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if err := bob.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, "alice", l.Signed); return err }); err != nil {
					t.Fatal(err)
				}
			}
			from := wire.Address{Account: "alice", Device: tt.device}
			msg, _, err := bob.receive(prekeyDelivery(t, tt.ik, bundleOf(t, bob), from, "hello"))
			if tt.want == nil {
				if err != nil || msg == nil || msg.Text != "hello" {
					t.Fatalf("receive: got message %v, error %v; want hello, no error", msg, err)
				}
				return
			}
			if msg != nil || !errors.Is(err, tt.want) {
				t.Errorf("receive: got message %v, error %v; want no message, %v", msg, err, tt.want)
			}
			var s *session.Session
			bob.db.View(func(tx *bolt.Tx) error { s, _ = loadSession(tx, addrKey("alice", uint32(tt.device))); return nil })
			if s != nil {
				t.Errorf("session with alice/%d: got one, want none", tt.device)
			}
			msgs, err := (&Conn{d: bob}).encryptFor("alice", 0, []byte("a reply"))
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 0 {
				t.Errorf("encryptFor alice: got messages for %d devices, want none", len(msgs))
			}
		})
	}
}
