package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// fakeServer is a scripted, hostile server on 127.0.0.1: it answers
// hello with welcome, then runs greet (when not nil) and passes every
// other frame but pings to handle.
type fakeServer struct {
	addr   string
	mu     sync.Mutex
	counts map[uint64]int
}

func (s *fakeServer) count(typ uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[typ]
}

func startFake(t *testing.T, welcome *wire.Welcome, greet func(tc *transport.Conn), handle func(tc *transport.Conn, f *wire.Frame)) *fakeServer {
	t.Helper()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{addr: ln.Addr().String(), counts: map[uint64]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				tc, err := transport.Server(nc, &transport.ServerConfig{Static: static})
				if err != nil {
					return
				}
				id, _, _, err := transport.ReadHello(tc, []uint64{1})
				if err != nil {
					return
				}
				if err := tc.Send(wire.FrameResult, id, welcome); err != nil {
					return
				}
				if greet != nil {
					greet(tc)
				}
				for {
					f, err := tc.Receive()
					if err != nil {
						return
					}
					s.mu.Lock()
					s.counts[f.Type]++
					s.mu.Unlock()
					if f.Type == wire.FramePing {
						tc.Send(wire.FramePong, 0, nil)
						continue
					}
					handle(tc, f)
				}
			}()
		}
	}()
	return s
}

// hostileDevice makes a registered device whose own list (device 1 alone)
// is accepted, for a server at addr.
func hostileDevice(t *testing.T, name, addr string) (*Device, []byte) {
	t.Helper()
	d, err := Init(filepath.Join(t.TempDir(), name), name, addr, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	l, err := devices.Sign(d.identity, name, 1, []wire.ListedDevice{{Device: 1, IdentityKey: d.identity.Public().Encode()}}, 1000, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	err = d.db.Update(func(tx *bolt.Tx) error {
		if _, err := accept(tx, name, l.Signed); err != nil {
			return err
		}
		return putConfig(tx, "registered", []byte{1})
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, l.Signed
}

// groupOf makes a group of alice (admin) and bob, and has d, alice's
// device, accept its versions 1 to n, signed with d's own list; it returns
// the group id and the signed states.
func groupOf(t *testing.T, d *Device, list []byte, n int) ([]byte, [][]byte) {
	t.Helper()
	gid := make([]byte, 16)
	rand.Read(gid)
	members := []wire.GroupMember{{Account: "alice", Role: wire.RoleAdmin}, {Account: "bob", Role: wire.RoleMember}}
	var states [][]byte
	for v := 1; v <= n; v++ {
		s, err := group.Sign(d.identity, d.Address(), list, gid, uint64(v), members, fmt.Sprint("version ", v), 1000, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.db.Update(func(tx *bolt.Tx) error { _, err := d.acceptGroupState(tx, s.Signed, gid); return err }); err != nil {
			t.Fatal(err)
		}
		states = append(states, s.Signed)
	}
	return gid, states
}

// hostileAlice starts a fake server that greets each connection with
// greet (when not nil) and answers with answer, which
// reports whether it answered (the server answers any other request with
// policy.unexpected_frame), and makes alice, a registered device of it.
func hostileAlice(t *testing.T, greet func(tc *transport.Conn), answer func(tc *transport.Conn, id uint64, f *wire.Frame) bool) (*fakeServer, *Device, []byte) {
	t.Helper()
	welcome := &wire.Welcome{Version: 1, Time: 1000, OneTimeEC: 100, OneTimeKEM: 100}
	srv := startFake(t, welcome, greet, func(tc *transport.Conn, f *wire.Frame) {
		if id := transport.RequestID(f); !answer(tc, id, f) && id != 0 { // acks and the like have no answer
			tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyUnexpectedFrame)})
		}
	})
	d, list := hostileDevice(t, "alice", srv.addr)
	welcome.DeviceList = &list
	return srv, d, list
}

// ends runs call on a connection of d and returns its error, failing the
// test when it has not returned after 10 s: a hostile server kept it going.
func ends(t *testing.T, d *Device, what string, call func(ctx context.Context, c *Conn) error) error {
	t.Helper()
	c, err := d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx, c) }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("%s: still going after 10 s, want an end", what)
		return nil
	}
}

// TestFanoutNamesNonMember checks GRP-010/16.4: the group devices
// are the devices of the group's member accounts. A malicious server answers
// send-group with state.fanout_mismatch naming "eve", who is no member of the
// group; alice must not give eve her sender key (eve could then read every
// group message the server fans out to her).
func TestFanoutNamesNonMember(t *testing.T) {
	// eve: a real account, with a valid list and bundle, not in the group.
	eve, eveList := hostileDevice(t, "eve", "127.0.0.1:1")
	eveBundle := bundleOf(t, eve)
	var sentToEve atomic.Int64
	_, alice, aliceList := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		switch f.Type {
		case wire.FrameSendGroup:
			devs := wire.GroupDevices{{Account: "eve", Devices: []uint64{1}}}
			tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.StateFanoutMismatch), Group: &devs})
		case wire.FrameFetchPrekeys:
			tc.Send(wire.FrameResult, id, &wire.FetchResult{Bundles: []wire.DeviceBundle{{Device: 1, Bundle: eveBundle}}, DeviceList: eveList})
		case wire.FrameSend:
			var env wire.Envelope
			if transport.DecodeBody(f, &env) == nil && env.Recipient == "eve" {
				sentToEve.Add(1)
			}
			tc.Send(wire.FrameResult, id, &wire.SendResult{AcceptedAt: 1000})
		default:
			return false
		}
		return true
	})
	gid, _ := groupOf(t, alice, aliceList, 1)
	sendErr := ends(t, alice, "a group send", func(ctx context.Context, c *Conn) error {
		_, err := c.SendTo(ctx, Conv{Group: gid}, "for members only")
		return err
	})
	if n := sentToEve.Load(); n > 0 {
		t.Errorf("send to group {alice, bob}: got %d envelope(s) with alice's sender key sent to eve, a non-member (send error %v); want none", n, sendErr)
	}
	if !errors.Is(sendErr, errcode.PolicyNotMember) {
		t.Errorf("send to group {alice, bob}, the server naming eve: got error %v, want %v", sendErr, errcode.PolicyNotMember)
	}
}

// TestUploadNoProgress checks that a server that never advances
// blob-progress cannot keep the client sending: a 1 KiB blob is one chunk,
// and the client stops with an error after a few puts beyond it.
func TestUploadNoProgress(t *testing.T) {
	srv, d, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		switch f.Type {
		case wire.FrameCreateBlob:
			tc.Send(wire.FrameResult, id, &wire.BlobCreated{BlobID: "blob", Received: 0})
		case wire.FramePutBlob:
			tc.Send(wire.FrameResult, id, &wire.BlobProgress{Received: 0}) // never any progress
		default:
			return false
		}
		return true
	})
	err := ends(t, d, "SendMedia against a server that takes nothing", func(ctx context.Context, c *Conn) error {
		_, err := c.SendMedia(ctx, Conv{Peer: "bob"}, make([]byte, 1024), MediaOptions{})
		return err
	})
	if err == nil {
		t.Error("SendMedia against a server that takes nothing: got no error, want one")
	}
	if n, want := srv.count(wire.FramePutBlob), 1+maxUploadRetries; n > want {
		t.Errorf("put-blob requests for one chunk: got %d, want at most %d", n, want)
	}
}

// TestDownloadNamedSize checks MED-002 against a hostile server: the media
// content names a blob of 1,040 bytes, and a server that claims a blob of
// MAX_BLOB_SIZE, serving 1 byte a chunk, ends the download at its first
// answer with auth.digest_mismatch.
func TestDownloadNamedSize(t *testing.T) {
	srv, d, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameGetBlob {
			return false
		}
		tc.Send(wire.FrameResult, id, &wire.BlobChunk{Size: wire.MaxBlobSize, Data: []byte{0}})
		return true
	})
	m := &Message{Media: &wire.Media{Kind: wire.MediaFile, BlobID: "blob", Key: make([]byte, 32), Digest: make([]byte, 32), Size: 1040, MIME: "x/y"}}
	err := ends(t, d, "Download from a server that claims another size", func(ctx context.Context, c *Conn) error {
		_, err := c.Download(ctx, m, nil)
		return err
	})
	if !errors.Is(err, errcode.AuthDigestMismatch) {
		t.Errorf("Download of a 1,040-byte blob the server says is %d bytes: got error %v, want %v", wire.MaxBlobSize, err, errcode.AuthDigestMismatch)
	}
	if n := srv.count(wire.FrameGetBlob); n != 1 {
		t.Errorf("get-blob requests: got %d, want 1", n)
	}
}

// TestSyncGroupDuplicates checks that a server cannot keep the client
// fetching group states (GRP-003): alice holds versions 1 and 2 of a group;
// a server answers set-group with state.group_rollback, then every
// get-group with MAX_GROUP_STATES copies of version 1, which move nothing
// forward. The change ends with the rollback, one get-group per retry.
func TestSyncGroupDuplicates(t *testing.T) {
	var v1 atomic.Pointer[[]byte] // version 1, once signed
	srv, alice, list := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		switch f.Type {
		case wire.FrameSetGroup:
			tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.StateGroupRollback)})
		case wire.FrameGetGroup:
			h := wire.GroupHistory{}
			for range wire.MaxGroupStates {
				h.States = append(h.States, *v1.Load())
			}
			tc.Send(wire.FrameResult, id, &h)
		default:
			return false
		}
		return true
	})
	gid, states := groupOf(t, alice, list, 2)
	v1.Store(&states[0])
	err := ends(t, alice, "AddMembers against a server that answers get-group with duplicates", func(ctx context.Context, c *Conn) error {
		return c.AddMembers(ctx, gid, "carol")
	})
	var re *transport.RemoteError
	if !errors.As(err, &re) || errcode.Code(re.Body.Code) != errcode.StateGroupRollback {
		t.Errorf("AddMembers: got error %v, want %v", err, errcode.StateGroupRollback)
	}
	if n := srv.count(wire.FrameGetGroup); n > 2 {
		t.Errorf("get-group requests: got %d, want at most 2 (one per retry of set-group)", n)
	}
}

// TestManyAnswers checks that a server that answers one request many
// times cannot stop the device's reader: the next request still gets its
// answer.
func TestManyAnswers(t *testing.T) {
	_, d, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameFetchDeviceList {
			return false
		}
		for range 5 {
			tc.Send(wire.FrameResult, id, &wire.DeviceListResult{DeviceList: []byte{1}})
		}
		return true
	})
	err := ends(t, d, "two requests to a server that answers each five times", func(ctx context.Context, c *Conn) error {
		for range 2 {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := c.call(cctx, wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "bob"}, new(wire.DeviceListResult))
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("the second request: got %v, want its answer", err)
	}
}

// TestListRefusedMessageRefused checks DEV-020 when the sender's list
// cannot be had: a prekey message from a device alice holds no list of
// makes her fetch the sender's list; a list that fails DEV-001 (here, one
// that does not decode) makes the message fail and be acknowledged, as a
// device not listed, and the connection goes on. A device that took it for
// a failed connection would leave the delivery unacknowledged, to stop
// every later connection the same way.
func TestListRefusedMessageRefused(t *testing.T) {
	var del atomic.Pointer[wire.Delivery]
	srv, alice, _ := hostileAlice(t, func(tc *transport.Conn) { tc.Send(wire.FrameDeliver, 0, del.Load()) },
		func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
			if f.Type != wire.FrameFetchDeviceList {
				return false
			}
			tc.Send(wire.FrameResult, id, &wire.DeviceListResult{DeviceList: []byte{1}})
			return true
		})
	mallory, _ := keys.GeneratePrivateKey(rand.Reader)
	del.Store(prekeyDelivery(t, mallory, bundleOf(t, alice), wire.Address{Account: "mallory", Device: 1}, "hi"))
	err := ends(t, alice, "a prekey message whose sender's list fails", func(ctx context.Context, c *Conn) error {
		for srv.count(wire.FrameAck) == 0 {
			select {
			case <-c.Done():
				return fmt.Errorf("the connection ended unacknowledged: %w", c.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("got %v, want the delivery acknowledged", err)
	}
}

// TestGroupFetchFailedNotAcked checks MSG-014 against a server that does
// not serve a request a delivery needs: a group message of a group the
// device holds no state of makes it fetch the group's states (GRP-003);
// when the server does not answer, answers that it is rate-limiting the
// device for longer than the request may wait, or that it is shutting
// down, the device does not acknowledge the delivery, which comes again on
// its next connection. It acknowledged it, as if the message had failed
// (MSG-015), and lost it. A rate limit is waited out and asked again.
func TestGroupFetchFailedNotAcked(t *testing.T) {
	for _, c := range []struct {
		name    string
		answer  *wire.ErrorBody // nil: no answer
		fetches int             // at least
	}{
		{"no answer", nil, 1},
		{"rate limited", &wire.ErrorBody{Code: uint64(errcode.PolicyRateLimited), RetryAfter: wire.Ptr(uint64(200))}, 2},
		{"shutting down", &wire.ErrorBody{Code: uint64(errcode.PolicyShuttingDown), RetryAfter: wire.Ptr(uint64(200))}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			gid := make([]byte, 16)
			rand.Read(gid)
			k, err := group.New(gid, 1, 1, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			text, id := "hi", make([]byte, 16)
			rand.Read(id)
			del := groupDelivery(t, k, wire.Address{Account: "bob", Device: 1}, &wire.Content{Type: wire.ContentText, Text: &text, MessageID: id, SentAt: 1000})
			srv, alice, _ := hostileAlice(t, func(tc *transport.Conn) { tc.Send(wire.FrameDeliver, 0, del) },
				func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
					if f.Type != wire.FrameGetGroup {
						return false
					}
					if c.answer != nil {
						tc.Send(wire.FrameError, id, c.answer)
					}
					return true
				})
			alice.tout.Handshake = time.Second // how long the fetch may take
			conn, err := alice.Connect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			select {
			case <-conn.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the connection goes on after the fetch failed; want it ended, the delivery unacknowledged")
			}
			if n := srv.count(wire.FrameGetGroup); n < c.fetches {
				t.Errorf("get-group requests: got %d, want at least %d", n, c.fetches)
			}
			if n := srv.count(wire.FrameAck); n != 0 {
				t.Errorf("acks: got %d, want none: the message is neither stored nor recorded as failed", n)
			}
		})
	}
}

// TestAnswerBeforeClose checks that an answer the server wrote before it
// closed the connection is the request's outcome, not the close: a server
// that cannot serve a request answers policy.shutting_down and closes
// (SRV-017), and the device must see that code (and the retry time) to
// retry, not a bare end of file. The answer and the end come together, so
// a wait that took whichever came first saw the end about half the time.
func TestAnswerBeforeClose(t *testing.T) {
	retry := uint64(1000)
	_, alice, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameSetPrivacy {
			return false
		}
		tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyShuttingDown), RetryAfter: &retry})
		tc.Close()
		return true
	})
	for i := range 40 {
		err := ends(t, alice, "set-privacy", func(ctx context.Context, c *Conn) error {
			return c.SetPrivacy(ctx, 0, 0)
		})
		var re *transport.RemoteError
		if !errors.As(err, &re) || errcode.Code(re.Body.Code) != errcode.PolicyShuttingDown || re.Body.RetryAfter == nil || *re.Body.RetryAfter != retry {
			t.Fatalf("request %d: got %v, want the server's policy.shutting_down with its retry time of %d ms", i+1, err, retry)
		}
	}
}

// TestConnectionErrorIsNoAnswer checks that an error frame which names no
// waiting request (request id 0: the connection's error, after which the
// server closes it) ends the connection for a request in flight, and does
// not come back as that request's answer: a device must not take a
// refusal of the connection (here decode.malformed) for a refusal of
// its request, as callNeeded would then record a delivery as failed
// instead of leaving it to come again.
func TestConnectionErrorIsNoAnswer(t *testing.T) {
	_, alice, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameSetPrivacy {
			return false
		}
		tc.Send(wire.FrameError, 0, &wire.ErrorBody{Code: uint64(errcode.DecodeMalformed)})
		tc.Close()
		return true
	})
	for i := range 20 {
		c, err := alice.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = c.SetPrivacy(context.Background(), 0, 0)
		var re *transport.RemoteError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("request %d: got %v, want the connection's end, not the server's error as the answer", i+1, err)
		}
		<-c.Done()
		if !errors.As(c.Err(), &re) || errcode.Code(re.Body.Code) != errcode.DecodeMalformed {
			t.Fatalf("request %d: connection ended with %v, want the server's decode.malformed", i+1, c.Err())
		}
		c.Close()
	}
}

// TestLateErrorAnswer checks that the server's error answer to a request
// the device stopped waiting for (its context ended) is dropped as a late
// result is: it carries the request's id, so it is no error of the
// connection, which stays open for the requests after it.
func TestLateErrorAnswer(t *testing.T) {
	retry := uint64(10)
	_, alice, _ := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		var answer func()
		switch f.Type {
		case wire.FrameSetPrivacy: // answered after its wait ended
			answer = func() {
				time.Sleep(200 * time.Millisecond)
				tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyRateLimited), RetryAfter: &retry})
			}
		case wire.FrameSetContacts: // answered after the late error
			answer = func() {
				time.Sleep(500 * time.Millisecond)
				tc.Send(wire.FrameResult, id, &wire.Empty{})
			}
		default:
			return false
		}
		go answer()
		return true
	})
	c, err := alice.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = c.SetPrivacy(ctx, 0, 0)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("set-privacy: got %v, want the context's end", err)
	}
	if err := c.SetContacts(context.Background(), "bob"); err != nil {
		t.Errorf("set-contacts after a late error answer: got %v (connection: %v), want its result", err, c.Err())
	}
}

// TestSyncGroupShortPages checks GRP-003 against a server that serves
// fewer than MAX_GROUP_STATES states a page to fit a frame (GRP-004), as
// the reference server does with large states: alice, at version 1,
// fetches versions 2 to 61 of MAX_GROUP_MEMBERS members in pages of about
// 28, and reaches 61. She stopped after the first short page, and caught
// up one page per delivery (from a review).
func TestSyncGroupShortPages(t *testing.T) {
	var states atomic.Pointer[[][]byte] // versions 1 to 61, once signed
	srv, alice, list := hostileAlice(t, nil, func(tc *transport.Conn, id uint64, f *wire.Frame) bool {
		if f.Type != wire.FrameGetGroup {
			return false
		}
		var fetch wire.GroupFetch
		if err := transport.DecodeBody(f, &fetch); err != nil {
			t.Error(err)
		}
		h, size := wire.GroupHistory{}, 9
		for _, s := range (*states.Load())[min(int(fetch.From)-1, 61):] {
			if size+len(s)+9 > wire.MaxFrameSize-64 || len(h.States) == wire.MaxGroupStates {
				break
			}
			h.States, size = append(h.States, s), size+len(s)+9
		}
		if len(h.States) == 0 {
			tc.Send(wire.FrameError, id, &wire.ErrorBody{Code: uint64(errcode.PolicyNotMember)})
			return true
		}
		tc.Send(wire.FrameResult, id, &h)
		return true
	})
	gid, first := groupOf(t, alice, list, 1)
	members := []wire.GroupMember{{Account: "alice", Role: wire.RoleAdmin}}
	for i := range wire.MaxGroupMembers - 1 {
		members = append(members, wire.GroupMember{Account: fmt.Sprintf("m%031d", i), Role: wire.RoleMember})
	}
	all := first
	for v := uint64(2); v <= 61; v++ {
		s, err := group.Sign(alice.identity, alice.Address(), list, gid, v, members, "", 1000+v, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s.Signed)
	}
	states.Store(&all)
	if err := ends(t, alice, "a fetch of 60 large states", func(ctx context.Context, c *Conn) error {
		return c.syncGroup(ctx, gid, 2)
	}); err != nil {
		t.Fatal(err)
	}
	alice.db.View(func(tx *bolt.Tx) error {
		if rec, err := getGroup(tx, gid); err != nil || rec == nil || rec.Version != 61 {
			t.Errorf("the group after the fetch: got %+v, %v, want version 61", rec, err)
		}
		return nil
	})
	if n := srv.count(wire.FrameGetGroup); n > 4 {
		t.Errorf("get-group requests: got %d, want at most 4 (pages of about 28)", n)
	}
}
