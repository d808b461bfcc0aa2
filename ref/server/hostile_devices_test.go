// Tests from an adversarial review of the server against hostile and
// buggy devices. Each test's comment tells the fault it was written
// against, in the tense of the review: the test failed on that fault and
// passes on its fix.

package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestSyncToSelfIsBadRecipient checks check 4 of SRV-005 with MSG-013: a
// sync envelope that names the sending device is addressed where its type
// forbids, and is refused with policy.bad_recipient, before the fan-out
// check (check 6), whose "extra" list is for devices the account never had.
func TestSyncToSelfIsBadRecipient(t *testing.T) {
	e := start(t)
	a1 := e.member("alice")
	a2 := a1.link(true)
	for _, typ := range []uint64{wire.EnvelopeSync, wire.EnvelopeControl} {
		env := marker(a1, a1, 1, uint64(a2.id))
		env.Type = typ
		code, b := a1.try(wire.FrameSend, env, new(wire.SendResult))
		if code != errcode.PolicyBadRecipient {
			var extra []uint64
			if b != nil && b.Fanout != nil {
				extra = b.Fanout.Extra
			}
			t.Errorf("envelope type %d to alice/1 and alice/2 from alice/1: got %v (extra %v), want %v",
				typ, code, extra, errcode.PolicyBadRecipient)
		}
	}
}

// TestRateLimitSurvivesReconnect checks SRV-016: the rate limits are per
// device, so a device that connects again does not get a fresh burst. Over
// an elapsed time T a device's requests (other than send) can be allowed
// at most REQUEST_BURST + REQUEST_RATE*T times, and its sends at most
// SEND_BURST + SEND_RATE*T times, however many connections it uses.
func TestRateLimitSurvivesReconnect(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	bob.close() // bob's queue takes the sends
	const rounds = 5
	t.Run("requests", func(t *testing.T) {
		start := time.Now()
		allowed := 0
		for range rounds {
			var frames []*wire.Frame
			for range server.RequestBurst + 10 {
				body := mustMarshal(t, &wire.DeviceListFetch{Account: "bob"})
				frames = append(frames, &wire.Frame{Version: 1, Type: wire.FrameFetchDeviceList, Body: &body})
			}
			for _, f := range alice.pipeline(frames) {
				if answerCode(t, f) == 0 {
					allowed++
				}
			}
			alice.close()
			alice.connect(false) // a new connection of the same device
		}
		bound := server.RequestBurst + int(server.RequestRate*time.Since(start).Seconds()) + 1
		if allowed > bound {
			t.Errorf("fetch-device-list over %d connections of alice/1 in %v: got %d allowed, want at most %d",
				rounds, time.Since(start).Round(time.Millisecond), allowed, bound)
		}
	})
	t.Run("sends", func(t *testing.T) {
		start := time.Now()
		allowed, n := 0, 0
		for range rounds {
			var frames []*wire.Frame
			for range server.SendBurst + 10 {
				body := mustMarshal(t, numbered(alice, bob, n, wire.PriorityNormal, 1))
				n++
				frames = append(frames, &wire.Frame{Version: 1, Type: wire.FrameSend, Body: &body})
			}
			for _, f := range alice.pipeline(frames) {
				if answerCode(t, f) == 0 {
					allowed++
				}
			}
			alice.close()
			alice.connect(false)
		}
		bound := server.SendBurst + int(server.SendRate*time.Since(start).Seconds()) + 1
		if allowed > bound {
			t.Errorf("sends over %d connections of alice/1 in %v: got %d accepted, want at most %d",
				rounds, time.Since(start).Round(time.Millisecond), allowed, bound)
		}
	})
}

// TestHiddenPresenceNotPushed checks SRV-014 over time: an account whose
// online visibility does not let a subscriber see it shows that subscriber
// the state hidden, whether it is online or offline. The server pushes
// presence "when it changes"; for that subscriber it never changes, and a
// presence frame at the moment bob connects or disconnects tells alice
// exactly when he comes online and goes offline, which his privacy hides.
func TestHiddenPresenceNotPushed(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	e.member("carol")
	bob.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: wire.VisibilityNobody, Online: wire.VisibilityNobody}, new(wire.Empty))
	var res wire.PresenceResult
	alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, &res)
	if len(res.Updates) != 1 || res.Updates[0].State != wire.PresenceHidden || res.Updates[0].LastSeen != nil {
		t.Fatalf("subscribe result: got %+v, want bob hidden with no last seen", res.Updates)
	}
	var got []string
	for _, step := range []struct {
		what string
		do   func()
	}{
		{"bob goes offline", bob.close},
		{"bob comes online", func() { bob.connect(false) }},
		// Only a connected device changes its contacts or privacy: a push
		// then tells alice that bob is online (from a second review).
		{"bob sets his contacts to carol", func() {
			bob.do(wire.FrameSetContacts, &wire.Contacts{Accounts: []string{"carol"}}, new(wire.Empty))
		}},
		{"bob shows his presence to his contacts (not alice)", func() {
			bob.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: wire.VisibilityContacts, Online: wire.VisibilityContacts}, new(wire.Empty))
		}},
		{"bob goes offline again", bob.close},
	} {
		step.do()
		for _, u := range presencePushes(alice, 300*time.Millisecond) {
			got = append(got, fmt.Sprintf("%s: presence (state %d, last seen %v)", step.what, u.State, u.LastSeen))
		}
	}
	if len(got) > 0 {
		t.Errorf("pushes to alice, who may not see bob's presence: got %q, want none", got)
	}
}

// TestRefusedAnswerLinkKeepsLink checks DEV-005 and DEV-007 with the link
// diagram of section 15.3: a link ends when the primary answers without a
// list, when LINK_TTL passes, or when the primary disconnects. An
// answer-link that the server refuses (here a list of the wrong version)
// changes nothing: the primary can answer again with the right list, and
// the waiting companion gets its link-result. The server used to forget
// the link on the refusal without answering the companion, which then
// waited LINK_TTL (10 minutes) for nothing.
func TestRefusedAnswerLinkKeepsLink(t *testing.T) {
	e := start(t)
	alice := e.member("alice")
	comp := e.newDevice(alice.a, 0)
	linkID := bytes.Repeat([]byte{0x5C}, wire.LinkIDSize)
	alice.do(wire.FrameOpenLink, &wire.OpenLink{LinkID: linkID}, new(wire.Empty))
	answers := e.requestLink(comp, linkID)
	var n wire.LinkNotice
	if err := transport.DecodeBody(alice.push(wire.FrameLink), &n); err != nil {
		t.Fatal(err)
	}
	alice.a.listed = append(alice.a.listed, wire.ListedDevice{Device: n.Device, IdentityKey: comp.ik.Public().Encode()})
	// A list one version too far: refused (DEV-007).
	alice.signList()
	alice.signList()
	bad := alice.a.list
	if code, _ := alice.try(wire.FrameAnswerLink, &wire.AnswerLink{LinkID: linkID, DeviceList: &bad}, new(wire.Empty)); code != errcode.StateDeviceListRollback {
		t.Fatalf("answer-link with version %d after 1: got %v, want %v", alice.a.version, code, errcode.StateDeviceListRollback)
	}
	// The right list.
	alice.a.version -= 2
	alice.signList()
	good := alice.a.list
	code, _ := alice.try(wire.FrameAnswerLink, &wire.AnswerLink{LinkID: linkID, DeviceList: &good}, new(wire.Empty))
	if code != 0 {
		t.Errorf("answer-link with the right list after a refused one: got %v, want a result", code)
	}
	select {
	case a := <-answers:
		if a.err != nil || a.r.Device != n.Device {
			t.Errorf("companion's link-request: got device %d, %v, want device %d", a.r.Device, a.err, n.Device)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("companion's link-request: no answer 3 s after the primary's answers (it waits for LINK_TTL, %v)", server.LinkTTL)
	}
}

// slowAccount is a store whose Account, once armed, reads the account and
// then waits before it answers: a device list change can come between the
// read of a hello's checks (section 12.4, check 4) and the connection
// becoming the device's.
type slowAccount struct {
	store.Store
	hold    atomic.Pointer[chan struct{}]
	entered chan struct{}
}

func (s *slowAccount) Account(ctx context.Context, name string) (*store.Account, error) {
	a, err := s.Store.Account(ctx, name)
	if h := s.hold.Swap(nil); h != nil {
		s.entered <- struct{}{}
		<-*h
	}
	return a, err
}

// TestRemovedDuringHello checks DEV-009 across a connection's start: a
// device that the primary removes while the server is serving its hello
// is not served. The server checked the device in its hello before the
// removal, and the removal closed the connections the device had then
// (none); the hello then went on to a welcome, and the removed device
// could send for as long as it stayed connected.
func TestRemovedDuringHello(t *testing.T) {
	st := &slowAccount{Store: mem.New(), entered: make(chan struct{}, 1)}
	e := startWith(t, st, newClock(), nil)
	alice, bob := e.member("alice"), e.member("bob")
	alice2 := alice.link(true)
	alice2.close()

	release := make(chan struct{})
	st.hold.Store(&release)
	type hello struct {
		c   *transport.Conn
		err error
	}
	hellos := make(chan hello, 1)
	go func() {
		c, err := rawHello(alice2)
		hellos <- hello{c, err}
	}()
	<-st.entered         // alice/2's hello has read the account, and waits
	alice.unlink(alice2) // alice/2 removed: DEV-009
	close(release)
	h := <-hellos
	if h.c != nil {
		defer h.c.Close()
	}
	if h.err != nil {
		return // refused: what DEV-009 asks
	}
	// Welcomed: the connection must at least be closed before it serves
	// anything.
	env := marker(alice2, bob, 1)
	id := uint64(2)
	if err := h.c.Send(wire.FrameSend, id, env); err != nil {
		return
	}
	result := make(chan *wire.Frame, 1)
	go func() {
		defer close(result)
		for {
			f, err := h.c.Receive()
			if err != nil {
				return // closed
			}
			if transport.RequestID(f) == id {
				result <- f
				return
			}
		}
	}()
	select {
	case f := <-result:
		if f != nil && f.Type == wire.FrameResult {
			t.Errorf("alice/2, removed during its hello: got a welcome, and its send to bob accepted; want its hello refused with %v, or its connection closed", errcode.AuthUnknownDevice)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("alice/2, removed during its hello: got a welcome and a connection still open 3 s later; want its hello refused with %v, or its connection closed", errcode.AuthUnknownDevice)
	}
}

// TestUnlinkDoesNotWaitForRemovedDevice checks TRN-011 and SRV-020 with
// DEV-009: the primary's set-device-list that removes a companion is not
// held up by the companion's connection. The server closes a removed
// device's connection with an error frame that the primary's request
// writes itself; a companion that reads nothing (its connection's writes
// blocked) held the primary's request for up to WRITE_TIMEOUT.
func TestUnlinkDoesNotWaitForRemovedDevice(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	alice2, _ := deafCompanion(t, alice, bob)

	start := time.Now()
	alice.unlink(alice2)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("set-device-list removing alice/2, which reads nothing: got an answer after %v, want one at once (WRITE_TIMEOUT is %v)",
			took.Round(100*time.Millisecond), transport.WriteTimeout)
	}
}

// TestQueuedRequestBytes checks that the requests of a device that wait
// behind one being served hold a bounded number of bytes: a device that
// pipelines frames of MAX_FRAME_SIZE while its request waits (here for
// the store; for a device that reads nothing, up to WRITE_TIMEOUT) made the
// server read and hold 64 of them, 64 MiB per connection (from a review).
func TestQueuedRequestBytes(t *testing.T) {
	st := &slowList{Store: mem.New(), entered: make(chan struct{}, 1)}
	e := startWith(t, st, newClock(), nil)
	alice := e.member("alice")
	alice.close()
	c, err := rawHello(alice)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := make(chan struct{})
	defer close(release)
	st.hold.Store(&release)
	if err := c.Send(wire.FrameFetchDeviceList, 2, &wire.DeviceListFetch{Account: "alice"}); err != nil {
		t.Fatal(err)
	}
	<-st.entered // alice's request waits in the store
	body := make([]byte, 1_000_000)
	var sent atomic.Int64
	go func() {
		for id := uint64(3); id < 200; id++ {
			f, err := wire.Marshal(&wire.Frame{Version: 1, Type: wire.FrameFetchDeviceList, RequestID: &id, Body: &body})
			if err != nil || c.WriteFrame(f) != nil {
				return
			}
			sent.Add(int64(len(f)))
		}
	}()
	time.Sleep(2 * time.Second)
	// What the server read and holds, plus what the two sockets' buffers
	// hold on loopback (a few MiB each).
	t.Logf("%d MiB of frames taken while a request waited", sent.Load()>>20)
	if got := sent.Load(); got > 32<<20 {
		t.Errorf("frames of 1 MB written while a request waits: got %d MiB taken, want at most 32 (the server holds at most %d MiB of them)", got>>20, 4)
	}
}

// TestSubscriptionLimit checks SRV-024: a connection follows at most
// MAX_SUBSCRIPTIONS accounts in all, 256 at a time; a subscription past
// that is refused with policy.too_large and follows nothing more, and an
// account followed again is not counted twice. A connection could follow
// every account of the server, 256 per request (from a review).
func TestSubscriptionLimit(t *testing.T) {
	e := start(t)
	alice := e.member("alice")
	ctx := context.Background()
	names := make([]string, wire.MaxSubscriptions+1)
	for i := range names {
		names[i] = fmt.Sprintf("acct%04d", i)
		if err := e.st.CreateAccount(ctx, names[i], store.Device{ID: 1, IdentityKey: alice.ik.Public().Encode(), Created: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	subscribe := func(accounts ...string) errcode.Code {
		t.Helper()
		code, _ := alice.try(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: accounts}, new(wire.PresenceResult))
		return code
	}
	half := wire.MaxSubscriptions / 2
	for _, c := range []struct {
		name     string
		accounts []string
		want     errcode.Code
	}{
		{"the first half", names[:half], 0},
		{"the first half again", names[:half], 0},
		{"the second half, with part of the first", names[half/2 : wire.MaxSubscriptions], 0},
		{"one more", names[wire.MaxSubscriptions:], errcode.PolicyTooLarge},
		{"one followed already", names[:1], 0},
	} {
		if got := subscribe(c.accounts...); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// The last case also shows that the refusal followed nothing: with the
	// refused account followed, alice would follow 257 and be refused.
}

// TestRevokedDeviceRelaysNothing checks DEV-009 with SRV-015: once the
// primary's set-device-list that removes alice/2 is answered, alice/2's
// connection serves nothing more. revoke stops its requests, but its
// reader goes on relaying typing frames (and taking acks) until the error
// frame is written, which for a device that reads nothing is up to
// WRITE_TIMEOUT (twice, behind a blocked write) later.
func TestRevokedDeviceRelaysNothing(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	alice.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: wire.VisibilityEveryone, Online: wire.VisibilityEveryone}, new(wire.Empty))
	alice2, c := deafCompanion(t, alice, bob)
	alice.unlink(alice2) // answered: alice/2 is removed
	for len(bob.pushes) > 0 {
		<-bob.pushes
	}
	if err := c.Send(wire.FrameTyping, 0, &wire.Typing{Account: "bob", Typing: true}); err != nil {
		return // closed: nothing relayed
	}
	for wait := time.After(time.Second); ; {
		select {
		case f := <-bob.pushes:
			if f.Type != wire.FrameTyping {
				continue
			}
			var n wire.TypingNotice
			transport.DecodeBody(f, &n)
			t.Errorf("typing from alice/2 after its removal was answered: got a typing-notice from %s/%d at bob, want none", n.From.Account, n.From.Device)
			return
		case <-wait:
			return
		}
	}
}

// TestHiddenOnlineLastSeenPushed checks section 13.7 (SRV-014): presence
// is pushed when it changes as the subscriber sees it. Bob hides his
// online state from alice but shows her his last seen: offline she sees
// him hidden with a last seen, online hidden without one (what a
// subscribe answers). When he comes online her view changes, and she is
// pushed nothing: she keeps the last seen of his previous connection,
// which a subscribe no longer shows.
func TestHiddenOnlineLastSeenPushed(t *testing.T) {
	e := start(t)
	alice, bob := e.member("alice"), e.member("bob")
	bob.do(wire.FrameSetPrivacy, &wire.Privacy{LastSeen: wire.VisibilityEveryone, Online: wire.VisibilityNobody}, new(wire.Empty))
	alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, new(wire.PresenceResult))
	bob.close()
	var u wire.PresenceUpdate
	if err := transport.DecodeBody(alice.push(wire.FramePresence), &u); err != nil {
		t.Fatal(err)
	}
	if u.State != wire.PresenceHidden || u.LastSeen == nil {
		t.Fatalf("bob goes offline: got state %d, last seen %v, want hidden with a last seen", u.State, u.LastSeen)
	}
	bob.connect(false)
	var res wire.PresenceResult
	alice.do(wire.FrameSubscribePresence, &wire.PresenceSubscribe{Accounts: []string{"bob"}}, &res)
	now := res.Updates[0]
	var pushed *wire.PresenceUpdate
	for wait := time.After(500 * time.Millisecond); pushed == nil; {
		select {
		case f := <-alice.pushes:
			if f.Type == wire.FramePresence {
				pushed = new(wire.PresenceUpdate)
				transport.DecodeBody(f, pushed)
			}
		case <-wait:
			t.Errorf("bob comes online: got no presence push (alice keeps state %d, last seen %d), want one as subscribe shows it now (state %d, last seen %v)",
				u.State, *u.LastSeen, now.State, now.LastSeen)
			return
		}
	}
}

// deafCompanion links a companion of alice that connects again and reads
// nothing: it asks for 20 MiB of chunks of a blob of bob's, and a second
// later the server's writes to it block.
func deafCompanion(t *testing.T, alice, bob *tdev) (*tdev, *transport.Conn) {
	t.Helper()
	alice2 := alice.link(true)
	data := blobData(server.BlobChunk, 1)
	created, code := bob.createBlob(data)
	if code != 0 {
		t.Fatal(code)
	}
	bob.upload(created.BlobID, data, 0, server.BlobChunk)
	alice2.close()
	c, err := rawHello(alice2) // alice/2 again, reading nothing from now on
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for id := uint64(2); id < 2+server.RequestBurst; id++ {
		if err := c.Send(wire.FrameGetBlob, id, &wire.BlobGet{BlobID: created.BlobID, Length: server.BlobChunk}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	return alice2, c
}

// presencePushes returns the presence frames pushed to d within wait,
// passing over its other pushes (such as its own device list, pushed at
// its registration).
func presencePushes(d *tdev, wait time.Duration) []wire.PresenceUpdate {
	var out []wire.PresenceUpdate
	for deadline := time.After(wait); ; {
		select {
		case f := <-d.pushes:
			if f.Type == wire.FramePresence {
				var u wire.PresenceUpdate
				transport.DecodeBody(f, &u)
				out = append(out, u)
			}
		case <-deadline:
			return out
		}
	}
}
