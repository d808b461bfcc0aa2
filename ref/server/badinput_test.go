package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// raw is a registered device driven frame by frame, to send what a
// well-behaved client never would.
type raw struct {
	t  testing.TB
	c  *transport.Conn
	ik *keys.PrivateKey
	id uint64
}

func (e *env) raw(account string) *raw {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.rawOn(account, nc)
}

// rawOn is raw over a connection the caller dialed.
func (e *env) rawOn(account string, nc net.Conn) *raw {
	e.t.Helper()
	c, ik, h := e.rawHello(account, nc)
	var w wire.Welcome
	if err := c.Call(wire.FrameHello, 1, h, &w); err != nil {
		e.t.Fatalf("raw hello: %v", err)
	}
	return &raw{t: e.t, c: c, ik: ik, id: 1}
}

// rawHello makes device 1 of a new account on nc: the handshake done, and
// the hello that registers it, not yet sent. The connection closes with
// the test.
func (e *env) rawHello(account string, nc net.Conn) (*transport.Conn, *keys.PrivateKey, *wire.Hello) {
	e.t.Helper()
	e.seed++
	r := rand.NewChaCha8([32]byte{e.seed, 0xEE})
	ik, _ := keys.GeneratePrivateKey(r)
	static, _ := transport.Suite.GenerateKeypair(r)
	c, err := transport.Client(nc, &transport.ClientConfig{Static: static})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	binding, _ := transport.Bind(ik, static.Public, 1, account, r)
	return c, ik, &wire.Hello{Versions: []uint64{1}, Account: account, Device: 1, IdentityKey: ik.Public().Encode(), Binding: binding, Register: wire.Ptr(true)}
}

// call sends a request and returns the error code of the answer, 0 for a
// result.
func (r *raw) call(typ uint64, body, result wire.Message) errcode.Code {
	r.t.Helper()
	r.id++
	if err := r.c.Send(typ, r.id, body); err != nil {
		r.t.Fatalf("call: %v", err)
	}
	for {
		f, err := r.c.Receive()
		if err != nil {
			r.t.Fatalf("call: %v", err)
		}
		if transport.RequestID(f) != r.id {
			continue // a push, such as a device list
		}
		if f.Type == wire.FrameError {
			var b wire.ErrorBody
			if err := transport.DecodeBody(f, &b); err != nil {
				r.t.Fatal(err)
			}
			return errcode.Code(b.Code)
		}
		if err := transport.DecodeBody(f, result); err != nil {
			r.t.Fatalf("result: %v", err)
		}
		return 0
	}
}

// expectError reads until an error frame and returns its code; the
// connection must then close.
func (r *raw) expectError() errcode.Code {
	r.t.Helper()
	for {
		f, err := r.c.Receive()
		if err != nil {
			r.t.Fatalf("no error frame: %v", err)
		}
		if f.Type == wire.FrameError {
			var b wire.ErrorBody
			if err := transport.DecodeBody(f, &b); err != nil {
				r.t.Fatal(err)
			}
			if _, err := r.c.ReadFrame(); err == nil {
				r.t.Error("connection still open after the error")
			}
			return errcode.Code(b.Code)
		}
	}
}

// stillWorks checks that two ordinary users are unaffected.
func stillWorks(t *testing.T, e *env, alice, bob *client.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := alice.Send(ctx, "bob", text); err != nil {
		t.Fatalf("alice cannot send: %v", err)
	}
	if ev := next(t, bob, client.EventMessage); ev.Message.Text != text {
		t.Fatalf("bob got %q, want %q", ev.Message.Text, text)
	}
}

func TestGarbageFrame(t *testing.T) {
	e := start(t)
	_, alice := e.device("alice")
	_, bob := e.device("bob")
	m := e.raw("mallory")
	if err := m.c.WriteFrame([]byte{0xFF, 0x00, 0x13, 0x37}); err != nil {
		t.Fatal(err)
	}
	if got := m.expectError(); got != errcode.DecodeMalformed {
		t.Errorf("garbage frame: got %v, want %v", got, errcode.DecodeMalformed)
	}
	stillWorks(t, e, alice, bob, "after garbage")
}

func TestOversizeEnvelope(t *testing.T) {
	e := start(t)
	_, alice := e.device("alice")
	_, bob := e.device("bob")
	m := e.raw("mallory")
	// A frame whose body is a byte string over MAX_ENVELOPE_SIZE: the
	// frame itself is within MAX_FRAME_SIZE.
	body := bytes.Repeat([]byte{0x00}, wire.MaxEnvelopeSize+1)
	id := uint64(7)
	f, err := wire.Marshal(&wire.Frame{Version: 1, Type: wire.FrameSend, RequestID: &id, Body: &body})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.c.WriteFrame(f); err != nil {
		t.Fatal(err)
	}
	if got := m.expectError(); got != errcode.DecodeTooLong {
		t.Errorf("oversize envelope: got %v, want %v", got, errcode.DecodeTooLong)
	}
	stillWorks(t, e, alice, bob, "after an oversize envelope")
}

func TestUnexpectedFrame(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	if err := m.c.Send(wire.FrameDeliver, 0, &wire.Ack{QueueIDs: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	if got := m.expectError(); got != errcode.PolicyUnexpectedFrame {
		t.Errorf("device sends deliver: got %v, want %v", got, errcode.PolicyUnexpectedFrame)
	}
}

func TestBadUploadSignature(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	r := rand.NewChaCha8([32]byte{9})
	spk, _ := keys.GeneratePrivateKey(r)
	sig, _ := pqxdh.SignSignedPreKey(m.ik, spk.Public(), r)
	sig[5] ^= 1
	up := &wire.PrekeyUpload{SignedPreKey: &wire.SignedPreKey{ID: 1, Key: spk.Public().Encode(), Signature: sig}}
	if got := m.call(wire.FrameUploadPrekeys, up, new(wire.UploadResult)); got != errcode.AuthBadSignature {
		t.Errorf("bad signature: got %v, want %v", got, errcode.AuthBadSignature)
	}
	// Nothing was stored: the same id, correctly signed, is accepted.
	sig[5] ^= 1
	if got := m.call(wire.FrameUploadPrekeys, up, new(wire.UploadResult)); got != 0 {
		t.Errorf("good upload after a refused one: got %v", got)
	}
	if got := m.call(wire.FrameUploadPrekeys, up, new(wire.UploadResult)); got != errcode.StateDuplicatePrekey {
		t.Errorf("same id again: got %v, want %v", got, errcode.StateDuplicatePrekey)
	}
	// A one-time KEM prekey is signed too (MSG-008).
	kem, _ := keys.GenerateKEMPrivateKey(r)
	ksig, _ := pqxdh.SignKEMPreKey(m.ik, kem.Public(), r)
	ksig[5] ^= 1
	kup := &wire.PrekeyUpload{OneTimeKEM: &[]wire.KEMPreKey{{ID: 7, Key: kem.Public().Encode(), Signature: ksig}}}
	if got := m.call(wire.FrameUploadPrekeys, kup, new(wire.UploadResult)); got != errcode.AuthBadSignature {
		t.Errorf("bad signature of a KEM prekey: got %v, want %v", got, errcode.AuthBadSignature)
	}
	ksig[5] ^= 1
	if got := m.call(wire.FrameUploadPrekeys, kup, new(wire.UploadResult)); got != 0 {
		t.Errorf("good KEM prekey after a refused one: got %v", got)
	}
}

func TestFloodIsRateLimited(t *testing.T) {
	e := start(t)
	_, alice := e.device("alice")
	_, bob := e.device("bob")
	m := e.raw("mallory")
	limited := 0
	for range 100 {
		if got := m.call(wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: "bob"}, new(wire.FetchResult)); got == errcode.PolicyRateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Error("100 fetches in a row: none rate limited")
	}
	t.Logf("%d of 100 fetches rate limited", limited)
	stillWorks(t, e, alice, bob, "during a flood")
}

func TestSenderMismatch(t *testing.T) {
	e := start(t)
	e.device("bob")
	m := e.raw("mallory")
	env := &wire.Envelope{Version: 1, MessageID: make([]byte, 16), Sender: wire.Address{Account: "alice", Device: 1},
		Recipient: "bob", Messages: []wire.DeviceMessage{{Device: 1, Kind: 1, Ciphertext: []byte{1}}},
		Type: wire.EnvelopeChat, Priority: 1, TTL: 60, SentAt: 1}
	if got := m.call(wire.FrameSend, env, new(wire.SendResult)); got != errcode.AuthSenderMismatch {
		t.Errorf("envelope in another's name: got %v, want %v", got, errcode.AuthSenderMismatch)
	}
}

// TestForgedDeviceLists checks DEV-002: the server takes only the next
// version, signed by the registered primary, and devices only through links.
func TestForgedDeviceLists(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	r := rand.NewChaCha8([32]byte{77})
	me := wire.ListedDevice{Device: 1, IdentityKey: m.ik.Public().Encode()}
	sign := func(k *keys.PrivateKey, version uint64, ds ...wire.ListedDevice) []byte {
		l, err := devices.Sign(k, "mallory", version, ds, 1, r)
		if err != nil {
			t.Fatal(err)
		}
		return l.Signed
	}
	other, _ := keys.GeneratePrivateKey(r)
	stranger := wire.ListedDevice{Device: 2, IdentityKey: other.Public().Encode()}
	otherAsPrimary := wire.ListedDevice{Device: 1, IdentityKey: other.Public().Encode()}
	tests := []struct {
		name string
		list []byte
		want errcode.Code
	}{
		{"version 2 first", sign(m.ik, 2, me), errcode.StateDeviceListRollback},
		{"another primary key", sign(other, 1, otherAsPrimary), errcode.AuthIdentityChanged},
		{"a device added without a link", sign(m.ik, 1, me, stranger), errcode.AuthDeviceNotListed},
		{"the first list", sign(m.ik, 1, me), 0},
		{"the first list replayed", sign(m.ik, 1, me), errcode.StateDeviceListRollback},
	}
	for _, tt := range tests {
		if got := m.call(wire.FrameSetDeviceList, &wire.SetDeviceList{DeviceList: tt.list}, new(wire.Empty)); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestPingFlood checks that a device that sends pings and reads nothing
// makes the server hold one pong at a time (TRN-018), not a goroutine per
// ping blocked on the connection's write.
func TestPingFlood(t *testing.T) {
	e := start(t)
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetReadBuffer(4096) // the server's pongs soon fill it
	m := e.rawOn("mallory", nc)
	ping, err := wire.MarshalFrame(wire.FramePing, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := slices.Repeat([][]byte{ping}, 5000)
	before := runtime.NumGoroutine()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 { // 100,000 pings
			if m.c.WriteFrames(batch) != nil {
				return
			}
		}
	}()
	peak := before
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		peak = max(peak, runtime.NumGoroutine())
	}
	if peak-before > 100 {
		t.Errorf("goroutines during a flood of pings: got %d more than before, want at most 100", peak-before)
	}
	m.c.Close()
	<-done
}

// TestPingPong checks that the server answers pings with pongs, alone or
// in bursts (whose pings may share a pong, TRN-018), and that a ping after
// a burst is answered too.
func TestPingPong(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	ping, err := wire.MarshalFrame(wire.FramePing, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.c.SetIdleTimeout(5 * time.Second)
	for round, n := range []int{1, 200, 1, 1, 500, 1} {
		if err := m.c.WriteFrames(slices.Repeat([][]byte{ping}, n)); err != nil {
			t.Fatal(err)
		}
		if f, err := m.c.Receive(); err != nil || f.Type != wire.FramePong {
			t.Fatalf("round %d, %d pings: got %v (%v), want a pong", round, n, f, err)
		}
	}
}

// TestFrameErrorCarriesRequestID checks that the error frame answering a
// frame that fails to decode after its request id was decoded carries
// that id (TRN-009): here a send without its body.
func TestFrameErrorCarriesRequestID(t *testing.T) {
	e := start(t)
	m := e.raw("mallory")
	if err := m.c.WriteFrame([]byte{0xA3, 0x01, 0x01, 0x02, 0x06, 0x03, 0x07}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := m.c.Receive()
		if err != nil {
			t.Fatalf("no error frame: %v", err)
		}
		if f.Type != wire.FrameError {
			continue
		}
		var b wire.ErrorBody
		if err := transport.DecodeBody(f, &b); err != nil {
			t.Fatal(err)
		}
		if got := errcode.Code(b.Code); got != errcode.DecodeMissingField {
			t.Errorf("code: got %v, want %v", got, errcode.DecodeMissingField)
		}
		if got := transport.RequestID(f); got != 7 {
			t.Errorf("request id of the error frame: got %d, want 7", got)
		}
		return
	}
}

// countingHandler counts the log records of one message by level.
type countingHandler struct {
	msg string
	mu  sync.Mutex
	n   map[slog.Level]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.mu.Lock()
		h.n[r.Level]++
		h.mu.Unlock()
	}
	return nil
}

func (h *countingHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

// TestDeviceErrorsLoggedOnce checks that a device that sends error frames
// without end gets one Info record, the rest at Debug, so that it cannot
// fill the server's log.
func TestDeviceErrorsLoggedOnce(t *testing.T) {
	h := &countingHandler{msg: "device reported an error", n: map[slog.Level]int{}}
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) { c.Logger = slog.New(h) })
	m := e.raw("mallory")
	const n = 50
	for range n {
		if err := m.c.Send(wire.FrameError, 0, &wire.ErrorBody{Code: uint64(errcode.AuthDecryptFailed)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the error frames", func() bool { return h.count(slog.LevelInfo)+h.count(slog.LevelDebug) == n })
	if got := h.count(slog.LevelInfo); got != 1 {
		t.Errorf("error frames logged at Info: got %d, want 1", got)
	}
}

// TestEarlyFrame checks the conformance runner's knobs for TRN-013: with
// WelcomeDelay set, the server reports a device that sent a frame after
// its hello before the welcome (a ping in the hello's write, or in a write
// of its own just after), and not one that waited, and it answers them all
// as usual.
func TestEarlyFrame(t *testing.T) {
	var (
		mu    sync.Mutex
		early []string
	)
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) {
		c.WelcomeDelay = 50 * time.Millisecond
		c.EarlyFrame = func(a store.Address) {
			mu.Lock()
			early = append(early, a.Account)
			mu.Unlock()
		}
	})
	ping, err := wire.MarshalFrame(wire.FramePing, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		account string
		pings   int  // sent after the hello without waiting for welcome
		apart   bool // in a write of their own
	}{
		{"waits", 0, false},
		{"together", 1, false},
		{"apart", 1, true},
	} {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c, _, h := e.rawHello(tc.account, nc)
		hello, err := wire.MarshalFrame(wire.FrameHello, 1, h)
		if err != nil {
			t.Fatal(err)
		}
		frames := [][]byte{hello}
		if tc.pings > 0 && !tc.apart {
			frames = append(frames, ping)
		}
		if err := c.WriteFrames(frames); err != nil {
			t.Fatal(err)
		}
		if tc.pings > 0 && tc.apart {
			if err := c.WriteFrame(ping); err != nil {
				t.Fatal(err)
			}
		}
		want := []uint64{wire.FrameResult}
		if tc.pings > 0 {
			want = append(want, wire.FramePong)
		}
		for _, typ := range want {
			if f, err := c.Receive(); err != nil || f.Type != typ {
				t.Fatalf("%s: got %v (%v), want frame type %d", tc.account, f, err, typ)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"together", "apart"}; !slices.Equal(early, want) {
		t.Errorf("reported early: got %q, want %q", early, want)
	}
}

// TestReusedRequest checks the runner's hook for MSG-005: a request whose
// id a request of the same connection has while unanswered is reported,
// in the request path and in the send path that serves sends together;
// an id used again once answered, and distinct ids, are not.
func TestReusedRequest(t *testing.T) {
	var (
		mu     sync.Mutex
		reused []uint64
	)
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) {
		c.AnswerDelay = 200 * time.Millisecond
		c.ReusedRequest = func(a store.Address, id uint64) {
			mu.Lock()
			reused = append(reused, id)
			mu.Unlock()
		}
	})
	r := e.raw("alice")
	fetch := func(id uint64) []byte {
		b, err := wire.MarshalFrame(wire.FrameFetchDeviceList, id, &wire.DeviceListFetch{Account: "nobody"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(id uint64) []byte {
		env := &wire.Envelope{Version: 1, MessageID: make([]byte, 16), Sender: wire.Address{Account: "alice", Device: 1},
			Recipient: "nobody", Messages: []wire.DeviceMessage{{Device: 1, Kind: 1, Ciphertext: []byte{1}}},
			Type: wire.EnvelopeChat, Priority: 1, TTL: 60, SentAt: 1}
		b, err := wire.MarshalFrame(wire.FrameSend, id, env)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// exchange writes frames in one write and reads an answer for each.
	exchange := func(frames ...[]byte) {
		t.Helper()
		if err := r.c.WriteFrames(frames); err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(frames); {
			f, err := r.c.Receive()
			if err != nil {
				t.Fatalf("answer %d: %v", n, err)
			}
			if f.Type == wire.FrameResult || f.Type == wire.FrameError {
				n++
			}
		}
	}
	exchange(fetch(5), fetch(5)) // reused while unanswered
	exchange(fetch(6))
	exchange(fetch(6)) // reused once answered: allowed
	// The first send is served alone (it waits AnswerDelay), the two after
	// it together, the third reusing the first's id.
	exchange(send(7), send(8), send(7))
	exchange(fetch(8), fetch(7)) // all answered: allowed
	exchange(fetch(9), send(10), fetch(11))
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{5, 7}; !slices.Equal(reused, want) {
		t.Errorf("reported: got %v, want %v", reused, want)
	}
}

// TestHandOut checks the runner's hook for PQX-010: the bundle a fetch
// gets is the one the hook returns, for the device it was given.
func TestHandOut(t *testing.T) {
	var got []store.Address
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) {
		c.HandOut = func(a store.Address, bk *store.BundleKeys) *store.BundleKeys {
			got = append(got, a) // requests of one connection are served one at a time
			again := *bk
			again.SignedPrekey.ID = 77
			return &again
		}
	})
	alice, _ := e.member("alice"), e.member("bob")
	var res wire.FetchResult
	alice.do(wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: "bob"}, &res)
	if len(res.Bundles) != 1 {
		t.Fatalf("got %d bundles, want 1", len(res.Bundles))
	}
	var b wire.Bundle
	if err := wire.Unmarshal(res.Bundles[0].Bundle, &b); err != nil {
		t.Fatal(err)
	}
	if b.SignedPreKey.ID != 77 {
		t.Errorf("signed prekey id: got %d, want 77, the hook's", b.SignedPreKey.ID)
	}
	if want := []store.Address{{Account: "bob", Device: 1}}; !slices.Equal(got, want) {
		t.Errorf("hook given: got %v, want %v", got, want)
	}
}

// TestForgedList checks the runner's hook for DEV-014: the forged list is
// served for its account in fetch-device-list and fetch-prekeys, and a send
// to the account that leaves out one of its devices gets a fan-out
// mismatch naming it, with the list, and is not stored; other accounts are
// served as usual.
func TestForgedList(t *testing.T) {
	r := rand.NewChaCha8([32]byte{7})
	primary, _ := keys.GeneratePrivateKey(r)
	second, _ := keys.GeneratePrivateKey(r)
	l, err := devices.Sign(primary, "bob", 9, []wire.ListedDevice{{Device: 1, IdentityKey: primary.Public().Encode()},
		{Device: 2, IdentityKey: second.Public().Encode()}}, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) {
		c.ForgedList = func(account string) []byte {
			if account != "bob" {
				return nil
			}
			return l.Signed
		}
	})
	alice, _, _ := e.member("alice"), e.member("bob"), e.member("carol")
	env := func(to string) *wire.Envelope {
		return &wire.Envelope{Version: 1, MessageID: []byte("0123456789abcdef"), Sender: wire.Address{Account: "alice", Device: 1},
			Recipient: to, Messages: []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: []byte{1}}},
			Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 60, SentAt: 1}
	}
	code, b := alice.try(wire.FrameSend, env("bob"), new(wire.SendResult))
	if code != errcode.StateFanoutMismatch || b.Fanout == nil || !slices.Equal(b.Fanout.Missing, []uint64{2}) ||
		b.DeviceList == nil || !bytes.Equal(*b.DeviceList, l.Signed) {
		t.Errorf("send to bob: got %v %+v, want state.fanout_mismatch, missing [2], the forged list", code, b)
	}
	if s, err := e.st.Stats(context.Background(), store.Address{Account: "bob", Device: 1}); err != nil || s.Entries != 0 {
		t.Errorf("bob's queue: got %d entries (%v), want 0", s.Entries, err)
	}
	var dl wire.DeviceListResult
	alice.do(wire.FrameFetchDeviceList, &wire.DeviceListFetch{Account: "bob"}, &dl)
	var fr wire.FetchResult
	alice.do(wire.FrameFetchPrekeys, &wire.PrekeyFetch{Account: "bob"}, &fr)
	if !bytes.Equal(dl.DeviceList, l.Signed) || !bytes.Equal(fr.DeviceList, l.Signed) {
		t.Error("fetch-device-list or fetch-prekeys: got the account's own list, want the forged one")
	}
	if code, _ := alice.try(wire.FrameSend, env("carol"), new(wire.SendResult)); code != 0 {
		t.Errorf("send to carol: got %v, want a result", code)
	}
}

// TestMuteAndReadEnded checks the runner's hooks for TRN-015: a muted
// device's ping gets no pong, one not muted gets its pong, and every write
// to it is reported; the end of a connection is reported with what ended
// it: the device's close, the server's read deadline, the server's own
// close after a refusal.
func TestMuteAndReadEnded(t *testing.T) {
	type end struct {
		account           string
		timeout, byServer bool
	}
	var (
		mu     sync.Mutex
		ended  []end
		writes = map[string]int{}
	)
	e := startWith(t, mem.New(), newClock(), func(c *server.Config) {
		c.Timeouts = transport.Timeouts{Idle: time.Second}
		c.Mute = func(a store.Address) bool { return a.Account == "muted" }
		c.Wrote = func(a store.Address) {
			mu.Lock()
			writes[a.Account]++
			mu.Unlock()
		}
		c.ReadEnded = func(a store.Address, err error, byServer bool) {
			var ne net.Error
			mu.Lock()
			ended = append(ended, end{a.Account, errors.As(err, &ne) && ne.Timeout(), byServer})
			mu.Unlock()
		}
	})
	ponged := func(r *raw) bool {
		t.Helper()
		if err := r.c.Send(wire.FramePing, 0, nil); err != nil {
			t.Fatal(err)
		}
		got := make(chan bool, 1)
		go func() {
			for {
				f, err := r.c.Receive()
				if err != nil {
					got <- false
					return
				}
				if f.Type == wire.FramePong {
					got <- true
					return
				}
			}
		}()
		select {
		case ok := <-got:
			return ok
		case <-time.After(500 * time.Millisecond):
			return false
		}
	}
	muted, heard, refused := e.raw("muted"), e.raw("heard"), e.raw("refused")
	if ponged(muted) {
		t.Error("a muted device's ping got a pong")
	}
	if !ponged(heard) {
		t.Error("a device's ping got no pong")
	}
	heard.c.Close() // the device ends it
	// A send whose body does not decode: refused, and closed by the server.
	if err := refused.c.Send(wire.FrameSend, 9, &wire.Empty{}); err != nil {
		t.Fatal(err)
	}
	if code := refused.expectError(); code.Layer() != "decode" {
		t.Errorf("refused: got %v, want a decode error", code)
	}
	time.Sleep(1500 * time.Millisecond) // muted's server deadline (1 s after its ping) passes
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(ended, func(a, b end) int { return strings.Compare(a.account, b.account) })
	if want := []end{{"heard", false, false}, {"muted", true, false}, {"refused", false, true}}; !slices.Equal(ended, want) {
		t.Errorf("ended: got %v, want %v", ended, want)
	}
	// The welcome, then the pong; the welcome alone; the welcome and the error.
	if want := map[string]int{"heard": 2, "muted": 1, "refused": 2}; !maps.Equal(writes, want) {
		t.Errorf("writes: got %v, want %v", writes, want)
	}
}

// failingCounts is a store whose PrekeyCounts fails while fail is set:
// the hello fails after its checks passed, as it reads the welcome's
// figures.
type failingCounts struct {
	store.Store
	fail atomic.Bool
}

func (s *failingCounts) PrekeyCounts(ctx context.Context, a store.Address) (store.Counts, bool, error) {
	if s.fail.Load() {
		return store.Counts{}, false, errors.New("the store fails")
	}
	return s.Store.PrekeyCounts(ctx, a)
}

// TestReadEndedHelloFails: a connection whose hello passed its checks and
// then failed is reported to ReadEnded once, as ended by the server.
func TestReadEndedHelloFails(t *testing.T) {
	type end struct {
		account  string
		byServer bool
	}
	var (
		mu    sync.Mutex
		ended []end
	)
	st := &failingCounts{Store: mem.New()}
	e := startWith(t, st, newClock(), func(c *server.Config) {
		c.ReadEnded = func(a store.Address, err error, byServer bool) {
			mu.Lock()
			ended = append(ended, end{a.Account, byServer})
			mu.Unlock()
		}
	})
	e.member("alice").close()
	st.fail.Store(true)
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c, _, h := e.rawHello("bob", nc)
	if err := c.Call(wire.FrameHello, 1, h, new(wire.Welcome)); err == nil {
		t.Fatal("the hello passed, want it refused")
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(ended, func(a, b end) int { return strings.Compare(a.account, b.account) })
	if want := []end{{"alice", false}, {"bob", true}}; !slices.Equal(ended, want) {
		t.Errorf("ended: got %v, want %v", ended, want)
	}
}
