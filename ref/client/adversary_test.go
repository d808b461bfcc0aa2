// Tests from an adversarial review of the client against hostile servers,
// group members and peers. Each test's comment tells the fault it was
// written against, in the tense of the review: the test failed on that
// fault and passes on its fix.

package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// reviewServer runs an honest reference server on 127.0.0.1 and returns
// its address.
func reviewServer(t *testing.T) string {
	t.Helper()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: mem.New(), Static: static})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// offline makes a device of account that never connects, with clock
// (nil: the time).
func offline(t testing.TB, account string, clock func() time.Time) *Device {
	t.Helper()
	d, err := Init(filepath.Join(t.TempDir(), account), account, "127.0.0.1:1", Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// reviewDevice makes, registers and connects a primary device.
func reviewDevice(t *testing.T, addr, name string) (*Device, *Conn) {
	t.Helper()
	d, err := Init(filepath.Join(t.TempDir(), name), name, addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); d.Close() })
	go func() { // keep the events flowing
		for range c.Events {
		}
	}()
	return d, c
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// groupVersion returns the latest version d accepted of a group, and
// whether d has left it.
func groupVersion(d *Device, gid []byte) (uint64, bool) {
	var v uint64
	var left bool
	d.db.View(func(tx *bolt.Tx) error {
		if r, _ := getGroup(tx, gid); r != nil {
			v, left = r.Version, r.Left
		}
		return nil
	})
	return v, left
}

// TestRemovedMemberGetsNewSenderKey checks GRP-011 with an honest server:
// after accepting a state that removes carol, alice makes a new sender key
// and MUST give it only to the remaining group devices. alice's record of
// the group devices (the server's last fan-out answer) still names carol's
// device, so her next group message gives carol the new key, and carol,
// removed, can read what the group says after her removal.
func TestRemovedMemberGetsNewSenderKey(t *testing.T) {
	addr := reviewServer(t)
	alice, ac := reviewDevice(t, addr, "alice")
	bob, bc := reviewDevice(t, addr, "bob")
	carol, _ := reviewDevice(t, addr, "carol")
	ctx := context.Background()

	// bob creates the group; alice never talked to carol, so her first
	// group send meets state.fanout_mismatch and records the server's
	// group devices.
	gid, err := bc.CreateGroup(ctx, "g", "alice", "carol")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice and carol to hold the group", func() bool {
		v1, _ := groupVersion(alice, gid)
		v2, _ := groupVersion(carol, gid)
		return v1 == 1 && v2 == 1
	})
	if _, err := ac.SendTo(ctx, Conv{Group: gid}, "before"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "carol to read alice's first message", func() bool {
		ms, _ := carol.GroupMessages(gid)
		return len(ms) == 1
	})

	// bob removes carol; alice accepts it.
	if err := bc.RemoveMember(ctx, gid, "carol"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice to accept version 2 and carol to learn she left", func() bool {
		v, _ := groupVersion(alice, gid)
		_, left := groupVersion(carol, gid)
		return v == 2 && left
	})
	if _, err := ac.SendTo(ctx, Conv{Group: gid}, "after carol left"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bob to read alice's second message", func() bool {
		ms, _ := bob.GroupMessages(gid)
		return len(ms) == 2
	})
	time.Sleep(500 * time.Millisecond) // carol's deliveries, if any

	var own *group.SenderKey
	alice.db.View(func(tx *bolt.Tx) error {
		r, _ := getGroup(tx, gid)
		own = r.OwnKey
		return nil
	})
	var held []*group.SenderKey
	carol.db.View(func(tx *bolt.Tx) error {
		held, _ = getSenderKeys(tx, gid, alice.Address())
		return nil
	})
	for _, k := range held {
		if k.KeyID == own.KeyID && bytes.Equal(k.SigningKey, own.SigningKey) {
			k = k.Clone()
			k.Advance(own.Iteration)
			t.Errorf("carol, removed at version 2: got alice's sender key %d of epoch %d, made after the removal (its chain is alice's current one: %v); want none",
				k.KeyID, k.Epoch, bytes.Equal(k.ChainKey, own.ChainKey))
		}
	}
}

// reviewPeer is a device of another account (or of the same one) that
// sends content to one device over a pairwise session, as deliveries a
// server would make of it.
type reviewPeer struct {
	t     testing.TB
	addr  wire.Address
	s     *session.Session
	queue uint64
}

// newReviewPeer starts a session from ik, device addr, with to's prekeys.
func newReviewPeer(t testing.TB, to *Device, addr wire.Address, ik *keys.PrivateKey) *reviewPeer {
	t.Helper()
	s, err := session.Initiate(rand.Reader, ik, bundleOf(t, to))
	if err != nil {
		t.Fatal(err)
	}
	return &reviewPeer{t: t, addr: addr, s: s}
}

// deliver encrypts content (a fresh message id when it has none, sent-at
// 1000 when it has none) and returns it as a delivery of envelope type typ.
func (p *reviewPeer) deliver(typ uint64, c *wire.Content) *wire.Delivery {
	p.t.Helper()
	kind, ct, err := p.s.Encrypt(plaintext(p.t, c))
	if err != nil {
		p.t.Fatal(err)
	}
	k := uint64(wire.KindRatchet)
	if kind == session.KindPreKey {
		k = wire.KindPrekey
	}
	p.queue++
	return delivery(p.queue, p.addr, typ, k, ct, c)
}

// plaintext completes content (the protocol version, a fresh message id
// when it has none, sent-at 1000 when it has none) and encodes it.
func plaintext(t testing.TB, c *wire.Content) []byte {
	t.Helper()
	c.Version = wire.ProtocolVersion
	if c.MessageID == nil {
		c.MessageID = make([]byte, 16)
		rand.Read(c.MessageID)
	}
	if c.SentAt == 0 {
		c.SentAt = 1000
	}
	pt, err := wire.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// delivery is a delivery of ciphertext ct that carries content c.
func delivery(queue uint64, from wire.Address, typ, kind uint64, ct []byte, c *wire.Content) *wire.Delivery {
	return &wire.Delivery{Version: 1, QueueID: queue, MessageID: c.MessageID, Sender: from, Type: typ,
		Priority: wire.PriorityNormal, Kind: kind, Ciphertext: ct, SentAt: c.SentAt, AcceptedAt: 1000,
		ExpiresAt: 1 << 50, Attempt: 1}
}

// sessionFrom makes d accept a list of account with device dev under ik
// (and its primary primaryIK), and receive one text from that device,
// which gives d a session with it; it returns the peer.
func sessionFrom(t testing.TB, d *Device, account string, version uint64, primaryIK *keys.PrivateKey, dev uint64, ik *keys.PrivateKey) *reviewPeer {
	t.Helper()
	devs := map[uint64]*keys.PrivateKey{1: primaryIK, dev: ik}
	acceptReviewList(t, d, account, version, primaryIK, devs)
	p := newReviewPeer(t, d, wire.Address{Account: account, Device: dev}, ik)
	text := "from " + account
	if _, _, err := d.receive(p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &text})); err != nil {
		t.Fatal(err)
	}
	return p
}

// noSessionMessages checks that d encrypts nothing to account under the
// sessions it had before what.
func noSessionMessages(t *testing.T, d *Device, account, what string) {
	t.Helper()
	msgs, err := (&Conn{d: d}).encryptFor(account, 0, []byte("a reply"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		t.Errorf("encryptFor %s after %s: got a message for device %d under the session with its old key, want none", account, what, m.Device)
	}
}

// acceptReviewList has d accept a list of account, signed by primary,
// listing the given devices with their keys.
func acceptReviewList(t testing.TB, d *Device, account string, version uint64, primary *keys.PrivateKey, devs map[uint64]*keys.PrivateKey) {
	t.Helper()
	var listed []wire.ListedDevice
	for id := uint64(1); id <= 5; id++ {
		if k, ok := devs[id]; ok {
			listed = append(listed, wire.ListedDevice{Device: id, IdentityKey: k.Public().Encode()})
		}
	}
	l, err := devices.Sign(primary, account, version, listed, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, account, l.Signed); return err }); err != nil {
		t.Fatal(err)
	}
}

// TestKeptDeleteShownOnArrival checks LIF-004 and LIF-005 on what a device
// shows: a hostile server (or plain reordering) delivers alice's delete
// for everyone before the message it deletes. The device keeps the delete
// and applies it when the message arrives, in its database; but the
// message event it emits for the arrival carries the message as it was
// before the kept delete applied, text included, so the user is shown a
// message its author deleted. Likewise a kept edit: the event shows the
// text before the edit.
func TestKeptDeleteShownOnArrival(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(target []byte) *wire.Content
		want   string
	}{
		{"delete", func(target []byte) *wire.Content {
			return &wire.Content{Type: wire.ContentDelete, SentAt: 2000, Target: &target}
		}, ""},
		{"edit", func(target []byte) *wire.Content {
			text := "the corrected text"
			return &wire.Content{Type: wire.ContentEdit, SentAt: 2000, Target: &target, Text: &text}
		}, "the corrected text"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dels []*wire.Delivery
			ready := make(chan struct{})
			welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
			srv := startFake(t, welcome, func(tc *transport.Conn) {
				<-ready
				for _, d := range dels {
					tc.Send(wire.FrameDeliver, 0, d)
				}
			}, func(tc *transport.Conn, f *wire.Frame) {
				if id := transport.RequestID(f); f.Type == wire.FrameSend {
					tc.Send(wire.FrameResult, id, &wire.SendResult{AcceptedAt: 1000})
				} else if id != 0 {
					tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyUnexpectedFrame)})
				}
			})
			bob, bobList := hostileDevice(t, "bob", srv.addr)
			welcome.DeviceList = &bobList
			aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
			acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
			alice := newReviewPeer(t, bob, wire.Address{Account: "alice", Device: 1}, aliceIK)

			id := make([]byte, 16)
			rand.Read(id)
			secret := "a text alice took back"
			change := alice.deliver(wire.EnvelopeChat, tt.change(id))
			msg := alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, MessageID: id, SentAt: 1000, Text: &secret})
			dels = []*wire.Delivery{change, msg}
			close(ready)

			c, err := bob.Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			timeout := time.After(10 * time.Second)
			for {
				select {
				case e := <-c.Events:
					if e.Kind != EventMessage {
						continue
					}
					stored, _ := bob.MessageByID(id)
					if got := e.Message.Shown(); got != tt.want {
						t.Errorf("message event after a kept %s: got shown text %q (deleted %v), want %q (the stored copy shows %q)",
							tt.name, got, e.Message.Deleted, tt.want, stored.Shown())
					}
					return
				case <-timeout:
					t.Fatal("no message event")
				}
			}
		})
	}
}

// TestOpenedBeforeMedia checks MED-007 and LIF-009: bob opened alice's
// view-once picture on his device 2, which tells device 1 with opened
// content; a server that delivers the opened content before the media
// itself (reordering, or a media delivery that was slow) leaves device 1
// with the media key, unopened: the user can view the view-once media a
// second time there. Opened content must be applied as a join, whatever
// the order (read marks and deletions are kept for unknown messages; the
// opened flag is not).
func TestOpenedBeforeMedia(t *testing.T) {
	bob := offline(t, "bob", nil)
	bob2IK, _ := keys.GeneratePrivateKey(rand.Reader)
	acceptReviewList(t, bob, "bob", 1, bob.identity, map[uint64]*keys.PrivateKey{1: bob.identity, 2: bob2IK})
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	bob2 := newReviewPeer(t, bob, wire.Address{Account: "bob", Device: 2}, bob2IK)
	alice := newReviewPeer(t, bob, wire.Address{Account: "alice", Device: 1}, aliceIK)

	id := make([]byte, 16)
	rand.Read(id)
	opened := wire.OpenedSync{{Account: "alice", MessageID: id}}
	if _, _, err := bob.receive(bob2.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentOpened, Opened: &opened})); err != nil {
		t.Fatal(err)
	}
	once := true
	md := &wire.Media{Kind: wire.MediaImage, BlobID: "blob", Key: bytes.Repeat([]byte{7}, 32), Digest: make([]byte, 32),
		Size: 1040, MIME: "image/jpeg", ViewOnce: &once}
	if _, _, err := bob.receive(alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentMedia, MessageID: id, Media: md})); err != nil {
		t.Fatal(err)
	}
	m, err := bob.MessageByID(id)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Opened || len(m.Media.Key) != 0 {
		t.Errorf("view-once media opened on device 2 (opened content first, then the media): got opened %v, media key %x; want opened, key erased",
			m.Opened, m.Media.Key)
	}
}

// reviewLink links a companion to the primary of conn pc, with the given
// clock (nil: time.Now), connects it and returns it.
func reviewLink(t *testing.T, addr string, pc *Conn, clock func() time.Time) (*Device, *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, complete, err := pc.Link(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type res struct {
		d   *Device
		err error
	}
	done := make(chan res, 1)
	go func() {
		d, err := LinkCompanion(ctx, filepath.Join(t.TempDir(), "companion"), code, addr, Config{Clock: clock})
		done <- res{d, err}
	}()
	if _, err := complete(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	c, err := r.d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); r.d.Close() })
	go func() {
		for range c.Events {
		}
	}()
	return r.d, c
}

// TestHistoryEditedText checks LIF-003 across linking: alice sends bob
// "helo" and edits it to "hello"; she then links a companion, which fills
// its history from her (section 15.5). The primary sends the text of the
// original content, not the text it shows, so the companion shows the
// text the author replaced.
func TestHistoryEditedText(t *testing.T) {
	addr := reviewServer(t)
	alice, ac := reviewDevice(t, addr, "alice")
	reviewDevice(t, addr, "bob")
	ctx := context.Background()
	m, err := ac.Send(ctx, "bob", "helo")
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Edit(ctx, Conv{Peer: "bob"}, m.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if s, _ := alice.Sent(m.ID); s.Shown() != "hello" {
		t.Fatalf("alice shows %q after her edit, want hello", s.Shown())
	}
	comp, _ := reviewLink(t, addr, ac, nil)
	var got *Message
	eventually(t, "the companion's history", func() bool {
		ms, _ := comp.Messages("bob")
		if len(ms) > 0 {
			got = ms[0]
		}
		return got != nil
	})
	if got.Shown() != "hello" {
		t.Errorf("the companion's copy of alice's edited message: got %q, want %q (what alice's primary shows)", got.Shown(), "hello")
	}
}

// TestHistoryDropsTimer checks LIF-008 and DEV-021 across linking: alice's
// chat with bob has a timer of an hour, and she sends a message that
// disappears an hour after it was sent. A history entry has no field for
// a timer, so the primary leaves the message out of the history of a
// companion she links within the hour: there it would never disappear.
// A message sent before the timer is in the history.
func TestHistoryDropsTimer(t *testing.T) {
	addr := reviewServer(t)
	_, ac := reviewDevice(t, addr, "alice")
	reviewDevice(t, addr, "bob")
	ctx := context.Background()
	if _, err := ac.Send(ctx, "bob", "before the timer"); err != nil {
		t.Fatal(err)
	}
	if err := ac.SetTimer(ctx, Conv{Peer: "bob"}, 3600); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Send(ctx, "bob", "this disappears in an hour"); err != nil {
		t.Fatal(err)
	}
	comp, _ := reviewLink(t, addr, ac, nil)
	eventually(t, "the companion's history", func() bool {
		ms, _ := comp.Messages("bob")
		return len(ms) > 0
	})
	ms, err := comp.Messages("bob")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Shown())
	}
	if len(got) != 1 || got[0] != "before the timer" {
		t.Errorf("the companion's history: got %q, want only %q", got, "before the timer")
	}
}

// unlinkedCompanion makes alice and bob, a group of the two, a companion
// of bob's that alice's first group message reaches (the server corrects
// her group devices to bob/1 and bob/2), and then unlinks it.
func unlinkedCompanion(t *testing.T) (addr string, ac, bc *Conn, gid []byte) {
	t.Helper()
	addr = reviewServer(t)
	_, ac = reviewDevice(t, addr, "alice")
	_, bc = reviewDevice(t, addr, "bob")
	ctx := context.Background()
	gid, err := ac.CreateGroup(ctx, "g", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob2, _ := reviewLink(t, addr, bc, nil)
	if _, err := ac.SendTo(ctx, Conv{Group: gid}, "to bob/1 and bob/2"); err != nil {
		t.Fatal(err)
	}
	if err := bc.Unlink(ctx, bob2.ID); err != nil {
		t.Fatal(err)
	}
	return addr, ac, bc, gid
}

// TestGroupSendAfterUnlink checks GRP-010 and GRP-011 with an honest
// server: bob links a companion, alice sends to their group (the server
// corrects her group devices to bob/1 and bob/2), then bob unlinks the
// companion. Once alice accepts bob's new list she makes a new sender key
// (GRP-011) and gives it to the group devices she recorded, the removed
// bob/2 among them: the server refuses a bundle of a removed device
// (auth.unknown_device), and the send fails there, before its send-group
// could have the server correct the group devices. Every later group send
// fails the same way: alice can no longer write to the group.
func TestGroupSendAfterUnlink(t *testing.T) {
	_, ac, _, gid := unlinkedCompanion(t)
	ctx := context.Background()
	// Any exchange with bob's account gives alice bob's new list.
	if _, err := ac.Send(ctx, "bob", "hi bob"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := ac.SendTo(ctx, Conv{Group: gid}, "still here"); err != nil {
			t.Errorf("group send %d after bob unlinked a companion: got error %v, want none", i+1, err)
		}
	}
}

// TestExpiredMessageByID checks LIF-008: once a device's clock passes a
// message's sent-at plus its expire-after, the device MUST NOT show it.
// Expiry is applied by the sweep of Messages, AllMessages and
// GroupMessages only; MessageByID, which missive save and open use to
// find the message they download and show, returns an expired media
// message with its key, and Download then fetches and decrypts it.
func TestExpiredMessageByID(t *testing.T) {
	bob, alice, later := bobOnAClock(t)
	expire := uint64(60)
	md := &wire.Media{Kind: wire.MediaImage, BlobID: "blob", Key: bytes.Repeat([]byte{7}, 32), Digest: make([]byte, 32),
		Size: 1040, MIME: "image/jpeg"}
	del := alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentMedia, SentAt: 1000, Media: md, Expire: &expire})
	if _, _, err := bob.receive(del); err != nil {
		t.Fatal(err)
	}
	later.Store(int64(2 * time.Minute)) // a minute past its expiry
	if m, err := bob.MessageByID(del.MessageID); err == nil {
		t.Errorf("MessageByID a minute after the message expired: got %q with media key %x, want no message", m.Shown(), m.Media.Key)
	}
}

// newCompanion makes bob's device 2, offline, and peers that send it
// content: bob's primary and alice/1.
func newCompanion(t *testing.T) (comp *Device, bob1, alice *reviewPeer) {
	t.Helper()
	comp = offline(t, "bob", nil)
	comp.db.Update(func(tx *bolt.Tx) error { return putConfig(tx, "device", u32(2)) })
	comp.ID = 2
	bob1IK, _ := keys.GeneratePrivateKey(rand.Reader)
	acceptReviewList(t, comp, "bob", 2, bob1IK, map[uint64]*keys.PrivateKey{1: bob1IK, 2: comp.identity})
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	acceptReviewList(t, comp, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	bob1 = newReviewPeer(t, comp, wire.Address{Account: "bob", Device: 1}, bob1IK)
	alice = newReviewPeer(t, comp, wire.Address{Account: "alice", Device: 1}, aliceIK)
	return comp, bob1, alice
}

// TestHistoryThenDelivery checks CLI-001 and DEV-021 across paths: a new
// companion of bob receives his primary's history, which holds alice's
// message X, and then X itself from alice/1 (a sender that fanned X out to
// the companion while the primary made the history, or a server that held
// the companion's copy back until the history was in). The device stored
// and showed X twice: the history entry is not a processed (sender, id)
// pair, and the delivery path did not look for a message with X's id. For
// a picture, known from the history by its caption alone, the device
// refused the delivery in full and never had the media the history could
// not carry; it keeps one copy, with the delivery's media.
func TestHistoryThenDelivery(t *testing.T) {
	caption := "a picture"
	md := &wire.Media{Kind: wire.MediaImage, BlobID: "blob", Key: bytes.Repeat([]byte{7}, 32), Digest: make([]byte, 32),
		Size: 1040, MIME: "image/jpeg", Caption: &caption}
	text := "hi bob"
	for _, c := range []struct {
		name    string
		shown   string
		content wire.Content
	}{
		{"text", text, wire.Content{Type: wire.ContentText, SentAt: 1000, Text: &text}},
		{"media", caption, wire.Content{Type: wire.ContentMedia, SentAt: 1000, Media: md}},
	} {
		t.Run(c.name, func(t *testing.T) {
			comp, bob1, alice := newCompanion(t)
			content := c.content
			content.MessageID = historyOfAlice(t, comp, bob1, c.shown)
			msg, _, err := comp.receive(alice.deliver(wire.EnvelopeChat, &content))
			if err != nil {
				t.Fatal(err)
			}
			ms, err := comp.Messages("alice")
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || msg != nil {
				t.Fatalf("alice's message X, from the history then delivered: got %d stored copies (and a new message event: %v), want 1 and none", len(ms), msg != nil)
			}
			if content.Media != nil && (ms[0].Media == nil || !bytes.Equal(ms[0].Media.Key, md.Key)) {
				t.Errorf("the picture known from the history, then delivered: got media %v, want the delivery's", ms[0].Media)
			}
		})
	}
}

// reviewGroup gives d (carol) version 1 of a group of alice (admin), bob
// and carol, signed by alice, and returns its id.
func reviewGroup(t *testing.T, d *Device, aliceIK *keys.PrivateKey) []byte {
	t.Helper()
	l, err := devices.Sign(aliceIK, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: aliceIK.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	ms := []wire.GroupMember{{Account: "alice", Role: wire.RoleAdmin}, {Account: "bob", Role: wire.RoleMember}, {Account: "carol", Role: wire.RoleMember}}
	s, err := group.Sign(aliceIK, wire.Address{Account: "alice", Device: 1}, l.Signed, gid, 1, ms, "g", 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.Update(func(tx *bolt.Tx) error { _, err := d.acceptGroupState(tx, s.Signed, gid); return err }); err != nil {
		t.Fatal(err)
	}
	return gid
}

// giveKey has d accept k, from device from, as a distribution would.
func giveKey(t *testing.T, d *Device, from wire.Address, k *group.SenderKey) error {
	t.Helper()
	dist := k.Distribution()
	return d.db.Update(func(tx *bolt.Tx) error { return d.acceptSenderKey(tx, from, &dist) })
}

// groupDelivery encrypts content with k, at group version 1, as a group
// delivery from from.
func groupDelivery(t *testing.T, k *group.SenderKey, from wire.Address, c *wire.Content) *wire.Delivery {
	t.Helper()
	msg, err := k.Encrypt(1, plaintext(t, c), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return delivery(1, from, wire.EnvelopeChat, wire.KindGroup, msg, c)
}

// TestDeleteTargetsAnotherAuthor checks LIF-001 and LIF-004 against a
// hostile group member helped by the server: the server sees the id X of
// alice's group message in her send-group, and delivers to carol first a
// message of bob's with the same id X, then alice's. Message ids are
// chosen by their sender, so nothing stops bob. alice then deletes her
// message for everyone: carol's device takes bob's message as the
// target (the first message of the group with id X), refuses the delete
// as policy.not_author, and keeps showing alice's message. The lifecycle
// model (history.Conversation.find) looks for the change's author's
// message first, and deletes alice's.
func TestDeleteTargetsAnotherAuthor(t *testing.T) {
	carol := offline(t, "carol", nil)
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	gid := reviewGroup(t, carol, aliceIK)
	aliceAddr, bobAddr := wire.Address{Account: "alice", Device: 1}, wire.Address{Account: "bob", Device: 1}
	aliceKey, _ := group.New(gid, 1, 1, rand.Reader)
	bobKey, _ := group.New(gid, 1, 1, rand.Reader)
	if err := giveKey(t, carol, aliceAddr, aliceKey); err != nil {
		t.Fatal(err)
	}
	if err := giveKey(t, carol, bobAddr, bobKey); err != nil {
		t.Fatal(err)
	}

	x := make([]byte, 16)
	rand.Read(x)
	decoy, secret := "bob's decoy", "alice's regretted message"
	for _, del := range []*wire.Delivery{
		groupDelivery(t, bobKey, bobAddr, &wire.Content{Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &decoy}),
		groupDelivery(t, aliceKey, aliceAddr, &wire.Content{Type: wire.ContentText, MessageID: x, SentAt: 1000, Text: &secret}),
	} {
		if _, _, err := carol.receive(del); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := carol.receive(groupDelivery(t, aliceKey, aliceAddr, &wire.Content{Type: wire.ContentDelete, SentAt: 2000, Target: &x}))
	ms, _ := carol.GroupMessages(gid)
	for _, m := range ms {
		if m.Peer == "alice" && m.Shown() != "" {
			t.Errorf("alice's message after her delete for everyone: got %q shown (delete: %v), want it deleted", m.Shown(), err)
		}
	}
}

// TestSenderKeyOutOfOrder checks GRP-006: a device keeps, per sender
// device and group, the MAX_SENDER_KEYS keys with the highest key ids.
// Holding bob's keys 1 and 3, carol receives his key 2 (its distribution
// reordered behind key 3's): the two highest are 2 and 3, and
// group.Receiver.Distribute keeps them; ref/client ignores key 2, so bob's
// messages under it fail with state.unknown_sender_key.
func TestSenderKeyOutOfOrder(t *testing.T) {
	carol := offline(t, "carol", nil)
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	gid := reviewGroup(t, carol, aliceIK)
	bobAddr := wire.Address{Account: "bob", Device: 1}
	var ks [4]*group.SenderKey
	for id := uint32(1); id <= 3; id++ {
		ks[id], _ = group.New(gid, 1, id, rand.Reader)
	}
	for _, id := range []int{1, 3, 2} {
		if err := giveKey(t, carol, bobAddr, ks[id]); err != nil {
			t.Fatal(err)
		}
	}
	text := "under key 2"
	_, _, err := carol.receive(groupDelivery(t, ks[2], bobAddr, &wire.Content{Type: wire.ContentText, Text: &text}))
	ms, _ := carol.GroupMessages(gid)
	if len(ms) != 1 {
		t.Errorf("bob's message under key 2, keys 1, 3, 2 distributed in that order: got %d messages (error %v), want it shown", len(ms), err)
	}
}

// TestHistoryAfterKeptDelete checks LIF-005 and LIF-004 on a new
// companion: alice deletes for everyone a message X she sent bob before
// the companion was linked. Her delete reaches the companion before the
// primary's history (which the primary made before the delete reached
// it, or which the server held back), so the companion keeps it; then the
// history brings X. A kept delete MUST be applied when its target becomes
// known; the history path never applies kept changes, and the companion
// shows the deleted message.
func TestHistoryAfterKeptDelete(t *testing.T) {
	comp, bob1, alice := newCompanion(t)

	x := make([]byte, 16)
	rand.Read(x)
	if _, _, err := comp.receive(alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentDelete, SentAt: 2000, Target: &x})); err != nil {
		t.Fatal(err)
	}
	h := wire.History{{MessageID: x, Account: "alice", Outgoing: false, Text: "alice took this back", SentAt: 1000}}
	if _, _, err := comp.receive(bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentHistory, History: &h})); err != nil {
		t.Fatal(err)
	}
	ms, err := comp.Messages("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Shown() != "" {
			t.Errorf("alice's message X, deleted for everyone (delete kept), then brought by the history: got %q shown, want it deleted", m.Shown())
		}
	}
}

// TestGroupSendRekeyMidSend checks GRP-011 and that a device does not
// crash on what an honest server sends: bob replaces his companion
// (unlinks device 2, links device 3). alice's next group message meets
// state.fanout_mismatch naming bob/3; the bundle fetch for bob/3 brings
// bob's new list, which leaves out bob/2, so accepting it drops alice's
// own sender key (GRP-011: a new key before the next message). sendGroup
// read the key before the fetch and encrypts with the record's key after
// it, now nil: the device panics.
func TestGroupSendRekeyMidSend(t *testing.T) {
	addr, ac, bc, gid := unlinkedCompanion(t)
	ctx := context.Background()
	reviewLink(t, addr, bc, nil) // bob/3
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("group send after bob replaced his companion: got a panic (%v), want the message sent", r)
			}
		}()
		_, err = ac.SendTo(ctx, Conv{Group: gid}, "to bob/1 and bob/3")
		return err
	}()
	if err != nil {
		t.Errorf("group send after bob replaced his companion: got error %v, want none", err)
	}
}

// TestSessionKeptAfterKeyChange checks DEV-004: a device encrypts to a
// device only with the identity key its latest accepted list gives it.
// bob has a session with alice/2 (identity key K_old). alice's next list
// that bob accepts lists device 2 with another key, K_new: a server that
// reused the id of an unlinked device for a new companion (SRV-001 says it
// never does; alice's primary signs whatever id the server reserved), or
// that served bob no list in between. accept keeps every session whose
// device id is still listed, so bob goes on encrypting to the old alice/2
// (a phone alice unlinked, say) under K_old, and decrypting what it sends
// as alice/2's.
func TestSessionKeptAfterKeyChange(t *testing.T) {
	bob := offline(t, "bob", nil)
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	oldIK, _ := keys.GeneratePrivateKey(rand.Reader)
	newIK, _ := keys.GeneratePrivateKey(rand.Reader)
	sessionFrom(t, bob, "alice", 1, aliceIK, 2, oldIK)
	// alice's list now gives device 2 another key.
	acceptReviewList(t, bob, "alice", 3, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK, 2: newIK})
	noSessionMessages(t, bob, "alice", "her list gave device 2 a new key")
}

// TestDownloadTrickle checks MED-002's "a server cannot keep it asking":
// a blob-chunk holds as many bytes as wanted, fewer only at the end of
// the blob. A server that answers every get-blob with one byte (and the
// right size) is asked again for every byte: a 4,096-byte blob takes
// 4,096 requests, a MAX_BLOB_SIZE one a hundred million. A chunk shorter
// than asked before the end should end the download, as the upload ends
// after a few puts beyond one per chunk.
func TestDownloadTrickle(t *testing.T) {
	const size = 4096
	srv, d, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameGetBlob {
			return false
		}
		tc.Send(wire.FrameResult, id, &wire.BlobChunk{Size: size, Data: []byte{0}})
		return true
	})
	m := &Message{Media: &wire.Media{Kind: wire.MediaFile, BlobID: "blob", Key: make([]byte, 32), Digest: make([]byte, 32), Size: size, MIME: "x/y"}}
	err := ends(t, d, "Download from a server that sends a byte at a time", func(ctx context.Context, c *Conn) error {
		_, err := c.Download(ctx, m, nil)
		return err
	})
	if n, want := srv.count(wire.FrameGetBlob), 1+maxUploadRetries; n > want {
		t.Errorf("get-blob requests for a %d-byte blob (one chunk) served a byte at a time: got %d (error %v), want at most %d", size, n, err, want)
	}
}

// TestEditAfterExpiryKept checks LIF-008 and section 18.4 (Expired:
// anything about it is ignored): alice's message disappears after a
// minute, and her edit of it (sent within the edit window) reaches bob
// after the message expired and was swept. The sweep deletes the record
// and leaves no trace of it, so the edit finds no target and is kept as
// pending (LIF-005), its text stored on bob's device with no end, for a
// message that disappeared.
func TestEditAfterExpiryKept(t *testing.T) {
	bob, alice, later := bobOnAClock(t)
	expire := uint64(60)
	text := "gone in a minute"
	msg := alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, SentAt: 1000, Text: &text, Expire: &expire})
	if _, _, err := bob.receive(msg); err != nil {
		t.Fatal(err)
	}
	later.Store(int64(2 * time.Minute))
	if ms, _ := bob.Messages("alice"); len(ms) != 0 {
		t.Fatalf("after its timer: %d messages, want none", len(ms))
	}
	edited := "gone in a minute, edited"
	target := msg.MessageID
	if _, _, err := bob.receive(alice.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentEdit, SentAt: 11000, Target: &target, Text: &edited})); err != nil {
		t.Fatal(err)
	}
	var kept int
	bob.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLifePending).ForEach(func(k, v []byte) error {
			if bytes.Contains(v, []byte(edited)) {
				kept++
			}
			return nil
		})
	})
	if kept != 0 {
		t.Errorf("an edit of a message that expired: got %d kept change(s) holding its text, want none (the message expired: anything about it is ignored)", kept)
	}
}

// TestSessionKeptAfterTrust checks DEV-004 in the case DEV-014 describes:
// alice's account was deleted and registered again, with a new primary
// key. bob held a session with the old alice/1; his device refuses the new
// list (auth.identity_changed) until his user accepts the new key (Trust),
// and then accepts it. The session with the old alice/1 survives both:
// bob's next message to alice is encrypted under the old identity's
// session (unreadable by the new alice, readable by whoever holds the old
// key), and no bundle of the new alice/1 is ever fetched, since a session
// with device 1 exists.
func TestSessionKeptAfterTrust(t *testing.T) {
	bob := offline(t, "bob", nil)
	oldIK, _ := keys.GeneratePrivateKey(rand.Reader)
	newIK, _ := keys.GeneratePrivateKey(rand.Reader)
	sessionFrom(t, bob, "alice", 1, oldIK, 1, oldIK)
	if err := bob.Trust("alice"); err != nil {
		t.Fatal(err)
	}
	acceptReviewList(t, bob, "alice", 1, newIK, map[uint64]*keys.PrivateKey{1: newIK})
	noSessionMessages(t, bob, "alice", "trusting her new key")
}

// TestLastResortReplay checks the replay set of section 4.6: a hostile
// server replays alice's first prekey message, made with bob's signed
// prekey and last-resort KEM prekey and no one-time key, after alice has
// replaced that session with a newer one and after bob has forgotten the
// delivery's processed pair (CLI-001 keeps it only MAX_TTL after expiry).
// Bob ran PQXDH on it again and replaced alice's current session with the
// old one, so that his replies went under a session alice had dropped (the
// old message was not shown twice only because bob's index of received
// messages knew its id).
func TestLastResortReplay(t *testing.T) {
	bob, aliceIK, bundle := bobLastResort(t)
	alice := wire.Address{Account: "alice", Device: 1}
	text := func(p *reviewPeer, s string) *wire.Delivery {
		d := p.deliver(wire.EnvelopeChat, &wire.Content{Type: wire.ContentText, Text: &s})
		d.ExpiresAt = 2000 // long ago: its processed pair can be forgotten
		return d
	}
	old := newReviewPeerWith(t, alice, aliceIK, bundle)
	first := text(old, "first session")
	if m, _, err := bob.receive(first); err != nil || m == nil {
		t.Fatalf("first prekey message: got %v, %v; want the message", m, err)
	}
	current := newReviewPeerWith(t, alice, aliceIK, bundle) // alice starts again
	if m, _, err := bob.receive(text(current, "second session")); err != nil || m == nil {
		t.Fatalf("second prekey message: got %v, %v; want the message", m, err)
	}
	if n, err := bob.forgetProcessed(); err != nil || n < 2 {
		t.Fatalf("forgetProcessed: got %d, %v; want the 2 pairs forgotten", n, err)
	}
	replay := *first
	replay.QueueID = 99
	m, _, err := bob.receive(&replay)
	if m != nil || !errors.Is(err, errcode.StateDuplicateMessage) {
		t.Errorf("replayed first prekey message: got message %v, error %v; want no message, %v", m, err, errcode.StateDuplicateMessage)
	}
	replyDecrypts(t, bob, current, "bob's reply after the replay, under alice's current session")
	if m, _, err := bob.receive(text(current, "still the second session")); err != nil || m == nil {
		t.Errorf("after the replay, alice's current session: got %v, %v; want the message", m, err)
	}
}

// bobLastResort is bobWithPrekeys with the bundle of bob's signed and
// last-resort KEM prekeys (no one-time key): each session started from it
// names the same keys.
func bobLastResort(t *testing.T) (*Device, *keys.PrivateKey, []byte) {
	t.Helper()
	bob, aliceIK, up := bobWithPrekeys(t)
	bundle, err := wire.Marshal(&wire.Bundle{Version: wire.ProtocolVersion, IdentityKey: bob.identity.Public().Encode(),
		SignedPreKey: *up.SignedPreKey, KEMPreKey: *up.LastResort})
	if err != nil {
		t.Fatal(err)
	}
	return bob, aliceIK, bundle
}

// replyDecrypts checks that d's reply to p's account (one device) decrypts
// in p's session.
func replyDecrypts(t *testing.T, d *Device, p *reviewPeer, what string) {
	t.Helper()
	msgs, err := (&Conn{d: d}).encryptFor(p.addr.Account, 0, []byte("a reply"))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%s: got %d messages, %v; want 1", what, len(msgs), err)
	}
	if _, err := p.s.Decrypt(rand.Reader, msgs[0].Ciphertext); err != nil {
		t.Errorf("%s: %v, want it to decrypt", what, err)
	}
}

// newReviewPeerWith starts a session from ik, device addr, with a bundle.
func newReviewPeerWith(t testing.TB, addr wire.Address, ik *keys.PrivateKey, bundle []byte) *reviewPeer {
	t.Helper()
	s, err := session.Initiate(rand.Reader, ik, bundle)
	if err != nil {
		t.Fatal(err)
	}
	return &reviewPeer{t: t, addr: addr, s: s}
}

// TestGroupStateRecordsAuthor checks GRP-001 step 2 on a device that has
// recorded no key for the author's account (a new member that has not
// sent to the group: a state it fetches after a gap): the state's own list
// gives alice's key, which the device records, so that a later state
// forged by a server with another key for alice, adding a member of the
// server's, is refused as a changed key (DEV-014) instead of accepted.
func TestGroupStateRecordsAuthor(t *testing.T) {
	carol := offline(t, "carol", nil)
	aliceIK := newKey(t)
	gid := reviewGroup(t, carol, aliceIK)
	var got *keys.PublicKey
	carol.db.View(func(tx *bolt.Tx) error { got = recorded(tx, "alice"); return nil })
	if got == nil || !got.Equal(aliceIK.Public()) {
		t.Fatalf("alice's key after her state: got %v, want hers recorded", got)
	}
	forger := newKey(t)
	l, err := devices.Sign(forger, "alice", 2, []wire.ListedDevice{{Device: 1, IdentityKey: forger.Public().Encode()}}, 2000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ms := []wire.GroupMember{{Account: "alice", Role: wire.RoleAdmin}, {Account: "bob", Role: wire.RoleMember},
		{Account: "carol", Role: wire.RoleMember}, {Account: "mallory", Role: wire.RoleMember}}
	s, err := group.Sign(forger, wire.Address{Account: "alice", Device: 1}, l.Signed, gid, 2, ms, "g", 2000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	err = carol.db.Update(func(tx *bolt.Tx) error { _, err := carol.acceptGroupState(tx, s.Signed, gid); return err })
	if !errors.Is(err, errcode.AuthIdentityChanged) {
		t.Errorf("version 2 forged with another key for alice: got %v, want %v", err, errcode.AuthIdentityChanged)
	}
	if v, _ := groupVersion(carol, gid); v != 1 {
		t.Errorf("carol's group version after the forgery: got %d, want 1", v)
	}
}

// TestTrustNotUndoneByOldGroupState checks GRP-001 step 2 with DEV-014
// (from a review): carol recorded alice's key A1 and holds group version 1
// by her. alice's account is registered again with key A2; carol refuses
// the new list (DEV-014) and the user trusts the new key (Trust). carol
// then accepts version 2 of the group, which alice made with A1 before her
// account changed (a state carol missed). The user's decision must stand:
// alice's new list, with A2, is accepted. The old state recorded A1 again.
func TestTrustNotUndoneByOldGroupState(t *testing.T) {
	carol := offline(t, "carol", nil)
	a1 := newKey(t)
	a2 := newKey(t)
	l1, err := devices.Sign(a1, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: a1.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := carol.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, "alice", l1.Signed); return err }); err != nil {
		t.Fatal(err)
	}
	gid := reviewGroup(t, carol, a1)
	ms := []wire.GroupMember{{Account: "alice", Role: wire.RoleAdmin}, {Account: "bob", Role: wire.RoleMember}, {Account: "carol", Role: wire.RoleMember}}
	old, err := group.Sign(a1, wire.Address{Account: "alice", Device: 1}, l1.Signed, gid, 2, ms, "g2", 1500, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n1, err := devices.Sign(a2, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: a2.Public().Encode()}}, 3000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	err = carol.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, "alice", n1.Signed); return err })
	if err == nil {
		t.Fatal("new key accepted before Trust")
	}
	if err := carol.Trust("alice"); err != nil {
		t.Fatal(err)
	}
	if err := carol.db.Update(func(tx *bolt.Tx) error { _, err := carol.acceptGroupState(tx, old.Signed, gid); return err }); err != nil {
		t.Fatalf("alice's old version 2: %v", err)
	}
	err = carol.db.Update(func(tx *bolt.Tx) error { _, err := accept(tx, "alice", n1.Signed); return err })
	if err != nil {
		t.Errorf("alice's new list after Trust: got %v, want nil (the trusted key)", err)
	}
	var got *keys.PublicKey
	carol.db.View(func(tx *bolt.Tx) error { got = recorded(tx, "alice"); return nil })
	if got == nil || !got.Equal(a2.Public()) {
		t.Errorf("alice's recorded key after Trust: got %v, want the new key", got)
	}
}

// historyOfAlice gives comp, from bob1, a history that holds one message
// of alice's with text, sent at 1000, and returns its id.
func historyOfAlice(t *testing.T, comp *Device, bob1 *reviewPeer, text string) []byte {
	t.Helper()
	x := make([]byte, 16)
	rand.Read(x)
	h := wire.History{{MessageID: x, Account: "alice", Outgoing: false, Text: text, SentAt: 1000}}
	if _, _, err := comp.receive(bob1.deliver(wire.EnvelopeSync, &wire.Content{Type: wire.ContentHistory, History: &h})); err != nil {
		t.Fatal(err)
	}
	return x
}

// bobOnAClock makes bob's device, on a clock that starts at 1000 ms and
// goes on by what later holds, and a session from alice's device 1 to it.
func bobOnAClock(t *testing.T) (*Device, *reviewPeer, *atomic.Int64) {
	t.Helper()
	later := new(atomic.Int64)
	clock := func() time.Time { return time.UnixMilli(1000).Add(time.Duration(later.Load())) }
	bob := offline(t, "bob", clock)
	aliceIK, _ := keys.GeneratePrivateKey(rand.Reader)
	acceptReviewList(t, bob, "alice", 1, aliceIK, map[uint64]*keys.PrivateKey{1: aliceIK})
	return bob, newReviewPeer(t, bob, wire.Address{Account: "alice", Device: 1}, aliceIK), later
}
