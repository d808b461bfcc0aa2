package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// The cases of the raw verb, which a connection of the runner's own plays
// against the server under test (chapters 11 and 12):
//
//	! NAME raw closed CASE...         the server must end each connection; the cases run at once
//	! NAME raw CODE CASE [ACCOUNT]    the server must answer with an error frame of CODE
//	NAME raw send ACCOUNT             a send that decodes, which the server must take (the control)
//	NAME raw prekeys                  one-time prekeys handed out once to concurrent fetches, and the notices (SRV-003, SRV-004)
//	NAME raw handout [restart]        111 fetches of a device holding 150 one-time prekeys of each kind: at most
//	                                  ONE_TIME_HANDOUT_BURST hand them out, and one more a ONE_TIME_HANDOUT_RATE
//	                                  interval, the oldest first; the others the last-resort KEM prekey, removing
//	                                  nothing (SRV-027, SRV-028); with restart, the server is then restarted, and
//	                                  five more fetches hand out no more than the bucket, kept in the store, allows
//	NAME raw fill-queue ACCOUNT       sends to ACCOUNT's device 1 until its queue holds QUEUE_BYTES_QUOTA bytes (SRV-007)
//	NAME raw prekeys-upload KEYS      a new account uploads prekeys, called KEYS in the scenario, and is answered
//	NAME raw prekeys-served KEYS      a fetch of that account gives those prekeys (SRV-002, across a server kill)
//	! NAME raw CODE device-list CASE  a set-device-list the server must refuse (DEV-002): skip-version, rollback,
//	                                  equivocation, other-primary, bad-signature, wrong-account
//
// NAME only says who runs the step; the connections are new, of new
// accounts registered for them.
var (
	// closedCases end with the server closing the connection, having sent
	// no byte (the preamble cases) or whatever it likes (the others).
	closedCases = []string{
		"magic",             // a preamble with another magic (TRN-002)
		"transport-version", // a preamble with another transport version (TRN-002)
		"pattern",           // a preamble with a pattern not defined (TRN-002)
		"silent",            // connects and sends nothing: closed within HANDSHAKE_TIMEOUT (TRN-019)
		"no-hello",          // completes the handshake and sends no hello: the same (TRN-019)
		"trickle",           // a handshake sent slowly over 6 s, then a hello frame one byte a second: closed 10 s after the dial (TRN-019)
		"blocked-write",     // asks for blob chunks and reads nothing: closed WRITE_TIMEOUT after a write blocks (TRN-016)
		"idle",              // registers a device, then sends nothing: closed within IDLE_TIMEOUT of its hello (TRN-015)
	}
	// refusedCases are answered with an error frame; all but deliver must
	// close the connection after it (TRN-008, TRN-009).
	refusedCases = []string{
		"oversize",       // a frame length above MAX_FRAME_SIZE, and nothing more (TRN-008)
		"first-oversize", // a first frame length above MAX_FIRST_FRAME, before any hello, and nothing more (TRN-020)
		"malformed",      // a frame that is not well-formed CBOR (TRN-009)
		"unknown-type",   // a frame of a type not defined, with a request id (TRN-009)
		"bad-body",       // a send whose body is an empty map (TRN-009, SRV-005 check 1)
		"deliver",        // a deliver frame, which only the server sends (MSG-004)
		"send-extra",     // ACCOUNT: a send of a good envelope in a frame with an unknown key (TRN-010)
		"body-extra",     // ACCOUNT: a send of an envelope with an unknown key (TRN-010)
		"pipeline",       // ACCOUNT: seven requests in one write, the fifth a send whose body does not decode (SRV-019, MSG-022)
		"subscriptions",  // following MAX_SUBSCRIPTIONS accounts, then one more (SRV-024)
		"prekeys-held",   // one-time prekeys uploaded up to MAX_ONE_TIME_PREKEYS of each kind held, then more (SRV-025)
		"blob-charge",    // blobs created up to BLOB_QUOTA, the last ones of 16 bytes each counted as MEDIA_CHUNK (MED-009)
		"group-fanout",   // group messages to 256 group devices, pipelined, until the fan-out bucket is spent, within FANOUT_BURST and FANOUT_RATE for the time taken (GRP-014)
		"group-states",   // groups created until the account's group-state bucket is spent, GROUP_STATE_BURST of them (GRP-015)
	}
)

// rawRequestID is the request id of the raw verb's frames that have one.
const rawRequestID = 7

// rawCloseWait is how long past a timeout of the spec a closed case waits
// for the server to close the connection.
const rawCloseWait = 5 * time.Second

// blobGets is how many blob chunks of wire.MaxBlobChunk the blocked-write
// case asks for: 18 MiB, more than the kernels' buffers of a loopback
// connection whose reader's buffer is small hold.
const blobGets = 36

// rawFrames runs "[!] NAME raw ...".
func (w *world) rawFrames(ts *testscript.TestScript, ctx context.Context, name string, rest []string, neg bool) {
	const usage = "usage: ! %s raw closed CASE... | ! %s raw CODE CASE [ACCOUNT|CASE] | %s raw send|fill-queue ACCOUNT | prekeys | handout | prekeys-upload|prekeys-served KEYS (the cases: conformance/scenario_frames.go)"
	addr := w.server.address()
	switch {
	case !neg && len(rest) == 2 && rest[0] == "send":
		must(ts, name+" raw send", rawFrame(ctx, addr, w.ns, "send", w.conv(ts, rest[1]).account, w.clock.now()))
	case !neg && len(rest) == 2 && rest[0] == "fill-queue":
		must(ts, name+" raw fill-queue", fillQueue(ctx, addr, w.ns, w.conv(ts, rest[1]).account, w.clock.now()))
	case !neg && len(rest) == 2 && rest[0] == "prekeys-upload":
		if _, ok := w.keys[rest[1]]; ok {
			ts.Fatalf("%s raw prekeys-upload: %s was uploaded already", name, rest[1])
		}
		k, err := uploadKeys(ctx, addr, w.ns, w.clock.now())
		must(ts, name+" raw prekeys-upload", err)
		w.keys[rest[1]] = k
	case !neg && len(rest) == 2 && rest[0] == "prekeys-served":
		k, ok := w.keys[rest[1]]
		if !ok {
			ts.Fatalf("%s raw prekeys-served: no prekeys-upload %s", name, rest[1])
		}
		if err := k.served(ctx, addr, w.ns); err != nil {
			fail(ts, WrongOutput, "%s raw prekeys-served %s: %v", name, rest[1], err)
		}
	case !neg && len(rest) == 1 && rest[0] == "prekeys":
		if err := prekeysOnce(ctx, addr, w.ns, w.clock.now()); err != nil {
			fail(ts, WrongOutput, "%s raw prekeys: %v", name, err)
		}
	case !neg && (len(rest) == 1 || len(rest) == 2 && rest[1] == "restart") && rest[0] == "handout":
		var restart func() (string, error)
		if len(rest) == 2 {
			restart = func() (string, error) {
				if err := w.server.stop(); err != nil {
					return "", err
				}
				if err := w.server.start(); err != nil {
					return "", err
				}
				return w.server.address(), nil
			}
		}
		switch err := rawHandout(ctx, addr, w.ns, w.clock.now(), restart); {
		case errors.Is(err, errUnsupported):
			must(ts, name+" raw handout restart", err)
		case err != nil:
			fail(ts, WrongOutput, "%s raw handout: %v", name, err)
		}
	case neg && len(rest) >= 2 && rest[0] == "closed":
		cases := rest[1:]
		for _, c := range cases {
			if !slices.Contains(closedCases, c) {
				ts.Fatalf(usage, name, name, name)
			}
		}
		// The cases wait for timeouts of the spec: they run at once, each
		// with a context long enough for the longest.
		cctx, cancel := context.WithTimeout(w.ctx, max(transport.WriteTimeout+transport.HandshakeTimeout, transport.IdleTimeout)+4*rawCloseWait)
		defer cancel()
		errs := make([]error, len(cases))
		var wg sync.WaitGroup
		for i, c := range cases {
			wg.Go(func() { errs[i] = rawClosed(cctx, addr, w.ns, c) })
		}
		wg.Wait()
		var failed []string
		for i, err := range errs {
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s raw %s: %v", name, cases[i], err))
			}
		}
		if failed != nil {
			fail(ts, UnexpectedSuccess, "%s", strings.Join(failed, "; "))
		}
	case neg && len(rest) >= 2:
		code, args := wantCode(rest)
		kind := args[0]
		withArg := strings.HasSuffix(kind, "-extra") || kind == "pipeline" || kind == "device-list"
		if code == 0 || !slices.Contains(refusedCases, kind) && kind != "device-list" || withArg != (len(args) == 2) || len(args) > 2 ||
			kind == "device-list" && !slices.Contains(deviceListCases, args[1]) {
			ts.Fatalf(usage, name, name, name)
		}
		switch kind {
		case "device-list":
			mustFail(ts, name+" raw device-list "+args[1], rawDeviceList(ctx, addr, w.ns, args[1], w.clock.now()), code)
		case "subscriptions":
			mustFail(ts, name+" raw subscriptions", rawSubscriptions(ctx, addr, w.ns), code)
		case "prekeys-held":
			mustFail(ts, name+" raw prekeys-held", rawPrekeysHeld(ctx, addr, w.ns, w.clock.now()), code)
		case "blob-charge":
			mustFail(ts, name+" raw blob-charge", rawBlobCharge(ctx, addr, w.ns), code)
		case "group-fanout":
			mustFail(ts, name+" raw group-fanout", rawGroupFanout(ctx, addr, w.ns, w.clock.now()), code)
		case "group-states":
			mustFail(ts, name+" raw group-states", rawGroupStates(ctx, addr, w.ns, w.clock.now()), code)
		case "pipeline":
			ids, err := rawPipeline(ctx, addr, w.ns, w.conv(ts, args[1]).account, w.clock.now())
			for i, id := range ids {
				w.record(fmt.Sprintf("pipelined %d", i+1), id, name)
			}
			mustFail(ts, name+" raw pipeline", err, code)
		default:
			to := ""
			if withArg {
				to = w.conv(ts, args[1]).account
			}
			mustFail(ts, name+" raw "+kind, rawFrame(ctx, addr, w.ns, kind, to, w.clock.now()), code)
		}
	default:
		ts.Fatalf(usage, name, name, name)
	}
}

// onRawConns runs f on n new connections of registered new accounts, at
// most most at once, each with its index, and returns their errors.
func onRawConns(ctx context.Context, addr, ns string, n, most int, f func(i int, r *rawConn) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, most)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := dialRegistered(ctx, addr, ns)
			if err != nil {
				errs[i] = fmt.Errorf("registering account %d of %d: %v", i+1, n, err)
				return
			}
			defer r.close()
			errs[i] = f(i, r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dialRegistered is dialRaw, then register.
func dialRegistered(ctx context.Context, addr, ns string) (*rawConn, error) {
	r, err := dialRaw(ctx, addr, ns)
	if err != nil {
		return nil, err
	}
	if err := r.register(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// dialAs connects again as device 1 of an account a connection of the
// runner's own registered, with its identity key ik, and returns the
// connection and its welcome.
func dialAs(ctx context.Context, addr, account string, ik *keys.PrivateKey) (*rawConn, *wire.Welcome, error) {
	r, err := dialRaw(ctx, addr, "")
	if err != nil {
		return nil, nil, err
	}
	r.ik, r.fresh = ik, account
	welcome, err := r.hello(false)
	if err != nil {
		r.close()
		return nil, nil, err
	}
	return r, welcome, nil
}

// register says hello as device 1 of r's new account, registering it.
func (r *rawConn) register() error {
	_, err := r.hello(true)
	return err
}

// hello says hello as device 1 of r's account, registering it or not, and
// returns the welcome.
func (r *rawConn) hello(register bool) (*wire.Welcome, error) {
	binding, err := transport.Bind(r.ik, r.static.Public, 1, r.fresh, rand.Reader)
	if err != nil {
		return nil, err
	}
	h := &wire.Hello{Versions: []uint64{wire.ProtocolVersion}, Account: r.fresh, Device: 1, IdentityKey: r.ik.Public().Encode(), Binding: binding}
	if register {
		h.Register = wire.Ptr(true)
	}
	var welcome wire.Welcome
	if err := r.tc.Call(wire.FrameHello, 1, h, &welcome); err != nil {
		return nil, fmt.Errorf("hello: %v", err) // no code: not the refusal a step wants
	}
	return &welcome, nil
}

// frameOf encodes a frame of the given fields: the frame's own keys (1 to
// 4, chapter 11) and any other. It is how the raw verb writes frames that
// wire.MarshalFrame would refuse to.
func frameOf(fields map[uint64]any) ([]byte, error) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	return em.Marshal(fields)
}

// rawEnvelope is an envelope from r's device to device 1 of account to,
// whose ciphertext no device can read.
func (r *rawConn) rawEnvelope(to string, now time.Time) *wire.Envelope {
	id := make([]byte, wire.MessageIDSize)
	rand.Read(id)
	msgs := []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: []byte("not read by the server")}}
	return &wire.Envelope{Version: wire.ProtocolVersion, MessageID: id, Sender: wire.Address{Account: r.fresh, Device: 1}, Recipient: to,
		Messages: msgs, Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(now.UnixMilli())}
}

// rawFrame registers a new account on a connection of its own, sends the
// frame of a refused case (or "send", a good one), and returns the
// server's answer as an error: its error frame's code, nil for a result.
// For a refused case, the error frame must carry the frame's request id
// when the frame decoded (an error of no code otherwise), may carry it
// or none when the frame did not, and the connection must close after it
// (but for deliver, whose frame decodes: MSG-004 asks for the refusal
// alone).
func rawFrame(ctx context.Context, addr, ns, kind, to string, now time.Time) error {
	if kind == "first-oversize" {
		r, err := dialRaw(ctx, addr, ns)
		if err != nil {
			return err
		}
		defer r.close()
		if err := r.tc.WriteStream(binary.BigEndian.AppendUint32(nil, transport.MaxFirstFrame+1)); err != nil {
			return err
		}
		return firstAnswer(r.nc, r.tc)
	}
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	v := uint64(wire.ProtocolVersion)
	var frame []byte
	idWanted := false // the frame decodes, so its error must carry its request id
	switch kind {
	case "oversize":
		// The length alone: the server must not wait for the frame.
		err = r.tc.WriteStream(binary.BigEndian.AppendUint32(nil, wire.MaxFrameSize+1))
	case "malformed":
		frame = []byte{0xA2, 0x01, 0x01, 0xFF} // a map of two pairs cut short by a break
	case "unknown-type":
		frame, err = frameOf(map[uint64]any{1: v, 2: 99, 3: rawRequestID})
	case "bad-body":
		idWanted = true
		frame, err = frameOf(map[uint64]any{1: v, 2: wire.FrameSend, 3: rawRequestID, 4: []byte{0xA0}})
	case "deliver":
		d := &wire.Delivery{Version: v, QueueID: 1, MessageID: make([]byte, wire.MessageIDSize), Sender: wire.Address{Account: r.fresh, Device: 1},
			Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, Kind: wire.KindRatchet, Ciphertext: []byte("from a device"),
			SentAt: uint64(now.UnixMilli()), AcceptedAt: uint64(now.UnixMilli()), ExpiresAt: uint64(now.Add(time.Hour).UnixMilli()), Attempt: 1}
		frame, err = transport.EncodeFrame(wire.FrameDeliver, 0, d)
	case "send", "send-extra", "body-extra":
		// A sender with a device list and prekeys, as any device: a
		// recipient that looks it up finds it.
		if _, err := r.makeReachable(ctx, now, 1); err != nil {
			return err
		}
		var body []byte
		if body, err = wire.Marshal(r.rawEnvelope(to, now)); err != nil {
			return err
		}
		fields := map[uint64]any{1: v, 2: wire.FrameSend, 3: rawRequestID, 4: body}
		switch kind {
		case "send-extra":
			fields[5] = 0
		case "body-extra":
			idWanted = true
			if body[0] < 0xA0 || body[0] >= 0xB7 {
				return fmt.Errorf("an envelope's encoding starts with %#x, not a map of fewer than 24 keys", body[0])
			}
			// One more pair, of key 99 (above the envelope's keys, so the map stays sorted).
			fields[4] = append(append([]byte{body[0] + 1}, body[1:]...), 0x18, 99, 0x00)
		}
		frame, err = frameOf(fields)
	default:
		return fmt.Errorf("raw: no case %q", kind)
	}
	if err == nil && frame != nil {
		err = r.tc.WriteFrame(frame)
	}
	if err != nil {
		return err
	}
	f, err := r.answer(ctx)
	if err != nil {
		return err
	}
	if f.Type == wire.FrameResult {
		if kind != "send" {
			return nil // taken: the step fails for it
		}
		return transport.DecodeBody(f, new(wire.SendResult))
	}
	refused, err := refusal(f)
	if err != nil {
		return err
	}
	id := transport.RequestID(f)
	switch {
	case kind == "send":
		return refused
	case id == 0 && idWanted:
		return fmt.Errorf("%v without the request id of the frame (%d), which decoded", refused, rawRequestID)
	case id != 0 && id != rawRequestID:
		return fmt.Errorf("%v with request id %d, not the frame's (%d)", refused, id, rawRequestID)
	case kind != "deliver" && !closes(r.nc):
		return fmt.Errorf("%v, and the connection stayed open", refused)
	}
	return refused
}

// call sends a request and decodes its result, passing over what the
// server pushes meanwhile (a device list, a notice), within ctx.
func (r *rawConn) call(ctx context.Context, typ, id uint64, body, result wire.Message) error {
	if err := r.tc.Send(typ, id, body); err != nil {
		return err
	}
	f, err := r.answer(ctx)
	switch {
	case err != nil:
		return err
	case transport.RequestID(f) != id:
		return fmt.Errorf("an answer to request %d while waiting for %d", transport.RequestID(f), id)
	case f.Type == wire.FrameError:
		refused, err := refusal(f)
		if err != nil {
			return err
		}
		return refused
	}
	return transport.DecodeBody(f, result)
}

// refusal returns the refusal an error frame carries, or, as an error of no
// code, why its body does not decode.
func refusal(f *wire.Frame) (*transport.RemoteError, error) {
	var b wire.ErrorBody
	if err := transport.DecodeBody(f, &b); err != nil {
		return nil, fmt.Errorf("an error frame that does not decode: %v", err)
	}
	return &transport.RemoteError{Body: &b}, nil
}

// answer returns the next frame that answers a request (result or error),
// passing over what the server may push unasked, within ctx.
func (r *rawConn) answer(ctx context.Context) (*wire.Frame, error) {
	stop := context.AfterFunc(ctx, func() { r.nc.Close() })
	defer stop()
	for {
		f, err := r.tc.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no answer within the step's time: %v", ctx.Err())
			}
			return nil, fmt.Errorf("no answer: the connection ended (%v)", err)
		}
		switch f.Type {
		case wire.FrameResult, wire.FrameError:
			return f, nil
		case wire.FramePing:
			r.tc.Send(wire.FramePong, 0, nil)
		}
	}
}

// rawClosed plays a closed case and returns nil when the server ended the
// connection in time, or what it did instead.
func rawClosed(ctx context.Context, addr, ns, kind string) error {
	start := time.Now()
	switch kind {
	case "magic", "transport-version", "pattern":
		pre := transport.Preamble(transport.PatternXX)
		switch kind {
		case "magic":
			pre[2] = 'X'
		case "transport-version":
			pre[3] = transport.Version + 1
		case "pattern":
			pre[4] = 3
		}
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer nc.Close()
		// The preamble, then what could be the first message of XX (an
		// ephemeral key): a server that ignored the preamble would answer.
		msg1 := append([]byte{0, 32}, make([]byte, 32)...)
		rand.Read(msg1[2:])
		if _, err := nc.Write(append(pre, msg1...)); err != nil {
			return nil // closed already
		}
		// TRN-002 gives no time: a server may stop reading and let
		// HANDSHAKE_TIMEOUT end the connection.
		nc.SetReadDeadline(start.Add(transport.HandshakeTimeout + rawCloseWait))
		n, err := nc.Read(make([]byte, 512))
		switch {
		case n > 0:
			return fmt.Errorf("the server answered the preamble %q with %d bytes, want the connection closed without an answer", pre, n)
		case isTimeout(err):
			return fmt.Errorf("the connection stayed open %v after the preamble %q", transport.HandshakeTimeout+rawCloseWait, pre)
		}
		return nil
	case "silent":
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer nc.Close()
		return endsBy(nc, start, transport.HandshakeTimeout+rawCloseWait, "a connection that sent nothing", "HANDSHAKE_TIMEOUT")
	case "no-hello":
		r, err := dialRaw(ctx, addr, ns)
		if err != nil {
			return err
		}
		defer r.close()
		return endsBy(r.nc, start, transport.HandshakeTimeout+rawCloseWait, "a connection that completed the handshake and sent no hello", "HANDSHAKE_TIMEOUT")
	case "idle":
		r, err := dialRaw(ctx, addr, ns)
		if err != nil {
			return err
		}
		defer r.close()
		// The hello is the last frame the server receives: it must close
		// the connection no later than IDLE_TIMEOUT and some grace after
		// its welcome. It may write what it likes meanwhile, and may close
		// sooner: the device sends no ping (TRN-014), and no rule forbids
		// a server to close such a peer early.
		if err := r.register(); err != nil {
			return err
		}
		return endsBy(r.nc, time.Now(), transport.IdleTimeout+rawCloseWait, "the connection of a device that sent nothing after its hello", "IDLE_TIMEOUT")
	case "blocked-write":
		return blockedWrite(ctx, addr, ns)
	case "trickle":
		return trickle(ctx, addr, start)
	}
	return fmt.Errorf("raw: no case %q", kind)
}

// trickle sends the handshake in pieces, 500 ms apart, so that it takes
// about 6 s, then the start of a hello frame one byte a second: the server
// must end the connection HANDSHAKE_TIMEOUT after it began, whatever the
// peer sent of the handshake and hello since (TRN-019). A server whose
// deadline starts again for the hello, or at every read, keeps it open
// past the bound.
func trickle(ctx context.Context, addr string, start time.Time) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		return err
	}
	sc := &slowConn{Conn: nc}
	sc.slow.Store(true)
	tc, err := transport.Client(sc, &transport.ClientConfig{Static: static})
	if err != nil {
		if late := time.Since(start); late > transport.HandshakeTimeout+3*time.Second {
			return fmt.Errorf("the slow handshake ended %v after it began (%v), past HANDSHAKE_TIMEOUT", late, err)
		}
		return nil // ended during the handshake, in time
	}
	sc.slow.Store(false)
	if time.Since(start) > transport.HandshakeTimeout {
		return fmt.Errorf("the slow handshake took %v, more than HANDSHAKE_TIMEOUT: the case cannot tell", time.Since(start))
	}
	go func() {
		// A frame's length (a small hello), then its bytes, one a second.
		for _, b := range append([]byte{0, 0, 1, 0}, make([]byte, 20)...) {
			if tc.WriteStream([]byte{b}) != nil {
				return
			}
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
	}()
	return endsBy(nc, start, transport.HandshakeTimeout+3*time.Second, "a connection whose handshake and hello came slowly", "HANDSHAKE_TIMEOUT")
}

// slowConn writes what it is given in four pieces, 500 ms apart, while
// slow is set: the three writes of a handshake (the preamble, the first and
// the third message) take 6 s.
type slowConn struct {
	net.Conn
	slow atomic.Bool
}

func (c *slowConn) Write(b []byte) (int, error) {
	if !c.slow.Load() {
		return c.Conn.Write(b)
	}
	n, step := 0, (len(b)+3)/4
	for n < len(b) {
		time.Sleep(500 * time.Millisecond)
		m, err := c.Conn.Write(b[n:min(n+step, len(b))])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// endsBy reads nc until the server ends the connection, and fails when
// that has not happened within limit (the spec's timeout, named, and
// some grace) after start.
func endsBy(nc net.Conn, start time.Time, limit time.Duration, what, timeout string) error {
	nc.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			if isTimeout(err) {
				return fmt.Errorf("the server kept %s open %v after it began, past %s", what, limit, timeout)
			}
			return nil
		}
	}
}

// blockedWrite registers a new account, uploads a blob of one chunk, and
// asks for it blobGets times without reading: the server's writes block
// once the connection's buffers are full, and it must close the connection
// WRITE_TIMEOUT later (TRN-016). The device then reads what was sent: the
// end of the connection must come before the last answer.
func blockedWrite(ctx context.Context, addr, ns string) error {
	r, err := dialRaw(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	if tcp, ok := r.nc.(*net.TCPConn); ok {
		tcp.SetReadBuffer(64 << 10) // a small window, and no growing it
	}
	if err := r.register(); err != nil {
		return err
	}
	data := make([]byte, wire.MaxBlobChunk)
	rand.Read(data)
	digest := sha256.Sum256(data)
	var created wire.BlobCreated
	if err := r.call(ctx, wire.FrameCreateBlob, 2, &wire.BlobCreate{Size: uint64(len(data)), Digest: digest[:]}, &created); err != nil {
		return fmt.Errorf("create-blob: %v", err)
	}
	if err := r.call(ctx, wire.FramePutBlob, 3, &wire.BlobPut{BlobID: created.BlobID, Data: data}, new(wire.BlobProgress)); err != nil {
		return fmt.Errorf("put-blob: %v", err)
	}
	for i := range blobGets {
		get := &wire.BlobGet{BlobID: created.BlobID, Length: uint64(len(data))}
		if err := r.tc.Send(wire.FrameGetBlob, uint64(10+i), get); err != nil {
			return nil // the server closed it already
		}
	}
	// Nothing read for WRITE_TIMEOUT, and some more: by then the server's
	// write has blocked that long.
	select {
	case <-time.After(transport.WriteTimeout + rawCloseWait):
	case <-ctx.Done():
		return ctx.Err()
	}
	rctx, cancel := context.WithTimeout(ctx, 2*rawCloseWait)
	defer cancel()
	answers := 0
	for answers < blobGets {
		if _, err := r.answer(rctx); err != nil {
			if rctx.Err() != nil {
				return fmt.Errorf("the connection was still open %v after the server's writes to a device that read nothing had blocked (%d answers read)", transport.WriteTimeout+rawCloseWait, answers)
			}
			return nil
		}
		answers++
	}
	return fmt.Errorf("the server wrote all %d answers (%d MiB) to a device that read nothing for %v: its writes did not time out%s", blobGets, blobGets*len(data)>>20, transport.WriteTimeout+rawCloseWait, sendBufferNote())
}

// sendBufferNote says, where the kernel tells, how much a loopback
// connection's send buffer may grow to: when that is near the answers'
// 18 MiB, the blocked-write case cannot make a server's write block.
func sendBufferNote() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	f := strings.Fields(string(b))
	if err != nil || len(f) != 3 {
		return ""
	}
	return fmt.Sprintf(" (this host's tcp_wmem maximum is %s bytes: if it is near 18 MiB, the kernel held the answers and the case cannot tell)", f[2])
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rawPipeline registers a new account and sends, in one write, seven
// requests with the ids 7 to 13: sends of envelopes to account to (7, 8,
// 10, 12, 13), a fetch-device-list of it (9) and, fifth (11), a send whose
// body does not decode. The server must answer them one each, in order,
// with their ids: results to the first four, an error to the fifth, then
// close the connection, serving none after it (SRV-019, MSG-022). It
// returns the message ids of the five good sends, the last two of which the
// server must not have taken, and the error frame's refusal, or what the
// server did instead as an error of no code.
func rawPipeline(ctx context.Context, addr, ns, to string, now time.Time) ([][]byte, error) {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var (
		frames [][]byte
		ids    [][]byte
	)
	for i := range uint64(7) {
		id := rawRequestID + i
		var f []byte
		switch i {
		case 2:
			f, err = transport.EncodeFrame(wire.FrameFetchDeviceList, id, &wire.DeviceListFetch{Account: to})
		case 4:
			f, err = frameOf(map[uint64]any{1: uint64(wire.ProtocolVersion), 2: wire.FrameSend, 3: id, 4: []byte{0xA0}})
		default:
			env := r.rawEnvelope(to, now)
			ids = append(ids, env.MessageID)
			f, err = transport.EncodeFrame(wire.FrameSend, id, env)
		}
		if err != nil {
			return nil, err
		}
		frames = append(frames, f)
	}
	if err := r.tc.WriteFrames(frames); err != nil {
		return ids, err
	}
	var got []string // the answers so far, for the error
	for want := uint64(rawRequestID); ; want++ {
		f, err := r.answer(ctx)
		if err != nil {
			return ids, fmt.Errorf("answers %v, then %v; want results to requests 7 to 10 and an error to 11, in that order", got, err)
		}
		id := transport.RequestID(f)
		kind := map[uint64]string{wire.FrameResult: "result", wire.FrameError: "error"}[f.Type]
		got = append(got, fmt.Sprintf("%s %d", kind, id))
		switch {
		case id != want:
			return ids, fmt.Errorf("answers %v; want results to requests 7 to 10 and an error to 11, in that order, one each", got)
		case want < rawRequestID+4 && f.Type != wire.FrameResult:
			refused, err := refusal(f)
			if err != nil {
				return ids, err
			}
			return ids, fmt.Errorf("request %d refused with %v; want results to requests 7 to 10", id, errcode.Of(refused))
		case want == rawRequestID+4:
			if f.Type != wire.FrameError {
				return ids, fmt.Errorf("answers %v; the send of request 11, whose body does not decode, was taken", got)
			}
			refused, err := refusal(f)
			if err != nil {
				return ids, err
			}
			if !closes(r.nc) {
				return ids, fmt.Errorf("%v, and the connection stayed open (or answered the requests after it)", refused)
			}
			return ids, refused
		}
	}
}

// Sizes of the prekeys case: the one-time prekeys of each kind uploaded,
// and the fetchers that take them at once, each fetching as many times.
const (
	prekeysUploaded  = 12
	prekeyFetchers   = 4
	fetchesPerWorker = 4 // 16 fetches in all: four find no one-time prekey left
)

// prekeysOnce makes a new account reachable (its device list of version 1,
// a signed prekey, a last-resort KEM prekey, and 12 one-time prekeys of
// each kind, ids 1 to 12), then has four other new accounts fetch its
// bundle four times each, all at once. Each one-time prekey must be handed
// out once and once only, the last-resort KEM prekey when none is left,
// no one-time EC prekey then (SRV-003). The account's device, connected
// meanwhile, must get notice(prekeys-low) with the lower count, down to 0,
// and its next welcome must report 0 of each kind (SRV-004).
func prekeysOnce(ctx context.Context, addr, ns string, now time.Time) error {
	owner, _, err := reachableAccount(ctx, addr, ns, now, prekeysUploaded)
	if err != nil {
		return err
	}
	defer owner.close()
	// The owner's device reads its notices while the others fetch.
	notices := make(chan uint64, 64)
	go func() {
		defer close(notices)
		for {
			f, err := owner.tc.Receive()
			if err != nil {
				return
			}
			var n wire.Notice
			if f.Type == wire.FrameNotice && transport.DecodeBody(f, &n) == nil && n.Type == wire.NoticePrekeysLow && n.Count != nil {
				select {
				case notices <- *n.Count:
				default: // more than the case looks at: never blocks the reader
				}
			}
		}
	}()
	type taken struct{ ec, kem []uint64 } // one-time ids (0: none), KEM ids with 1000+ for the last resort
	results := make([]taken, prekeyFetchers)
	err = onRawConns(ctx, addr, ns, prekeyFetchers, prekeyFetchers, func(i int, r *rawConn) error {
		for j := range fetchesPerWorker {
			b, err := r.fetchBundle(ctx, uint64(2+j), owner.fresh)
			if err != nil {
				return err
			}
			ec := uint64(0)
			if b.OneTimePreKey != nil {
				ec = b.OneTimePreKey.ID
			}
			results[i].ec = append(results[i].ec, ec)
			results[i].kem = append(results[i].kem, b.KEMPreKey.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ec, kem := map[uint64]int{}, map[uint64]int{}
	for _, r := range results {
		for _, id := range r.ec {
			ec[id]++
		}
		for _, id := range r.kem {
			kem[id]++
		}
	}
	const fetches = prekeyFetchers * fetchesPerWorker
	for id := uint64(1); id <= prekeysUploaded; id++ {
		if ec[id] != 1 || kem[id] != 1 {
			return fmt.Errorf("one-time prekeys of id %d handed out %d (EC) and %d (KEM) times in %d fetches at once, want once each (EC ids %v, KEM ids %v)", id, ec[id], kem[id], fetches, ec, kem)
		}
	}
	if ec[0] != fetches-prekeysUploaded || kem[lastResortID] != fetches-prekeysUploaded || len(ec) != prekeysUploaded+1 || len(kem) != prekeysUploaded+1 {
		return fmt.Errorf("in %d fetches of %d one-time prekeys of each kind, got EC ids %v (0: none) and KEM ids %v (%d: the last resort), want each one-time id once, then no EC prekey and the last-resort KEM prekey", fetches, prekeysUploaded, ec, kem, lastResortID)
	}
	// The notices: one after each fetch that left fewer than PREKEY_LOW,
	// so the last fetches' say 0.
	lowest, got := uint64(1<<63), 0
	wait := time.After(2 * time.Second)
	for lowest != 0 {
		select {
		case n, ok := <-notices:
			if !ok {
				return fmt.Errorf("the device's connection ended while others fetched its prekeys")
			}
			lowest, got = min(lowest, n), got+1
			continue
		case <-wait:
		}
		if got == 0 {
			return fmt.Errorf("the device got no notice(prekeys-low) while its one-time prekeys went from %d to 0 (PREKEY_LOW is %d)", prekeysUploaded, server.PrekeyLow)
		}
		return fmt.Errorf("the device got %d notices(prekeys-low), the lowest count %d, after fetches that left 0", got, lowest)
	}
	// The next welcome reports the counts.
	again, welcome, err := dialAs(ctx, addr, owner.fresh, owner.ik)
	if err != nil {
		return err
	}
	defer again.close()
	if welcome.OneTimeEC != 0 || welcome.OneTimeKEM != 0 {
		return fmt.Errorf("the device's next welcome reports %d one-time EC and %d one-time KEM prekeys, want 0 and 0", welcome.OneTimeEC, welcome.OneTimeKEM)
	}
	return nil
}

// fillQueue sends device 1 of account to (its only device) envelopes of
// ciphertexts of MAX_DEVICE_MESSAGE bytes, the last one smaller, until the
// ciphertext bytes queued for it reach QUEUE_BYTES_QUOTA: about 900 sends,
// by fillSenders new accounts at once, each within SEND_BURST. The server
// must take them all. The device must take none meanwhile (deaf on): its
// queue is then full for any next message.
func fillQueue(ctx context.Context, addr, ns, to string, now time.Time) error {
	var sizes []int
	for room := server.QueueBytesQuota; room > 0; room -= sizes[len(sizes)-1] {
		sizes = append(sizes, min(room, wire.MaxDeviceMessage))
	}
	return onRawConns(ctx, addr, ns, fillSenders, fillSenders, func(i int, r *rawConn) error {
		for j := i; j < len(sizes); j += fillSenders {
			env := r.rawEnvelope(to, now)
			env.Messages[0].Ciphertext = make([]byte, sizes[j])
			err := r.call(ctx, wire.FrameSend, uint64(2+j), env, new(wire.SendResult))
			if err != nil {
				return fmt.Errorf("send %d of %d to fill the queue, whose ciphertexts make QUEUE_BYTES_QUOTA in all, refused (SRV-005 check 8 counts ciphertext bytes): %v", j+1, len(sizes), err)
			}
		}
		return nil
	})
}

// fillSenders is how many accounts fillQueue sends from.
const fillSenders = 12

// keysUploaded is an account's upload of raw prekeys-upload.
type keysUploaded struct {
	account string
	up      *wire.PrekeyUpload
}

// uploadKeys makes a new account reachable, with one one-time prekey of
// each kind (reachableAccount), and returns what it uploaded once the
// server has answered.
func uploadKeys(ctx context.Context, addr, ns string, now time.Time) (keysUploaded, error) {
	r, up, err := reachableAccount(ctx, addr, ns, now, 1)
	if err != nil {
		return keysUploaded{}, err
	}
	r.close()
	return keysUploaded{r.fresh, up}, nil
}

// served checks that a fetch of k's account, by a new account, gives the
// prekeys uploaded: the server stored them before it answered the upload
// (SRV-002), whatever happened to it since.
func (k keysUploaded) served(ctx context.Context, addr, ns string) error {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	var res wire.FetchResult
	if err := r.call(ctx, wire.FrameFetchPrekeys, 2, &wire.PrekeyFetch{Account: k.account}, &res); err != nil {
		return fmt.Errorf("fetch-prekeys of an account whose upload the server answered: %v", err)
	}
	var b wire.Bundle
	if len(res.Bundles) != 1 || wire.Unmarshal(res.Bundles[0].Bundle, &b) != nil {
		return fmt.Errorf("fetch-prekeys gave %d bundles, want one that decodes", len(res.Bundles))
	}
	ot, kem := (*k.up.OneTime)[0], (*k.up.OneTimeKEM)[0]
	switch {
	case b.SignedPreKey.ID != k.up.SignedPreKey.ID || !bytes.Equal(b.SignedPreKey.Key, k.up.SignedPreKey.Key):
		return fmt.Errorf("the bundle's signed prekey is id %d, not the one uploaded (id %d) or not its key", b.SignedPreKey.ID, k.up.SignedPreKey.ID)
	case b.KEMPreKey.ID != kem.ID || !bytes.Equal(b.KEMPreKey.Key, kem.Key):
		return fmt.Errorf("the bundle's KEM prekey is id %d, not the one-time KEM prekey uploaded (id %d) or not its key", b.KEMPreKey.ID, kem.ID)
	case b.OneTimePreKey == nil || b.OneTimePreKey.ID != ot.ID || !bytes.Equal(b.OneTimePreKey.Key, ot.Key):
		return fmt.Errorf("the bundle's one-time prekey is %v, not the one uploaded (id %d)", b.OneTimePreKey, ot.ID)
	}
	return nil
}

// reachableAccount registers a new account and makes its device
// reachable (chapter 13.2): its device list of version 1, then an upload
// of fullUpload with n one-time prekeys of each kind. It returns the
// connection, and the upload once the server has answered it.
func reachableAccount(ctx context.Context, addr, ns string, now time.Time, n int) (*rawConn, *wire.PrekeyUpload, error) {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return nil, nil, err
	}
	up, err := r.makeReachable(ctx, now, n)
	if err != nil {
		r.close()
		return nil, nil, err
	}
	return r, up, nil
}

// makeReachable uploads the device list of version 1 of r's account and
// fullUpload's prekeys, with n one-time prekeys of each kind, and returns
// the upload once the server has answered it.
func (r *rawConn) makeReachable(ctx context.Context, now time.Time, n int) (*wire.PrekeyUpload, error) {
	l, err := devices.Sign(r.ik, r.fresh, 1, []wire.ListedDevice{{Device: 1, IdentityKey: r.ik.Public().Encode()}}, uint64(now.UnixMilli()), rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := r.call(ctx, wire.FrameSetDeviceList, 2, &wire.SetDeviceList{DeviceList: l.Signed}, new(wire.Empty)); err != nil {
		return nil, fmt.Errorf("set-device-list: %v", err)
	}
	r.list = l.Signed
	up, err := fullUpload(r.ik, n)
	if err != nil {
		return nil, err
	}
	if err := r.call(ctx, wire.FrameUploadPrekeys, 3, up, new(wire.UploadResult)); err != nil {
		return nil, fmt.Errorf("upload-prekeys: %v", err)
	}
	return up, nil
}

// fetchBundle fetches the bundle of device 1 of account, the only device
// the result may give, with request id id.
func (r *rawConn) fetchBundle(ctx context.Context, id uint64, account string) (*wire.Bundle, error) {
	var res wire.FetchResult
	if err := r.call(ctx, wire.FrameFetchPrekeys, id, &wire.PrekeyFetch{Account: account}, &res); err != nil {
		return nil, fmt.Errorf("fetch-prekeys: %v", err)
	}
	if len(res.Bundles) != 1 || res.Bundles[0].Device != 1 {
		return nil, fmt.Errorf("fetch-prekeys gave %d bundles, want one, of device 1", len(res.Bundles))
	}
	var b wire.Bundle
	if err := wire.Unmarshal(res.Bundles[0].Bundle, &b); err != nil {
		return nil, fmt.Errorf("a bundle that does not decode: %v", err)
	}
	return &b, nil
}

// Sizes of the hand-out case: the one-time prekeys of each kind the device
// holds, and the fetchers that take bundles of it at once, each fetching
// as many times (within REQUEST_BURST).
const (
	handoutHeld       = 150
	handoutFetchers   = 3
	handoutPerFetcher = 37 // 111 fetches in all, ONE_TIME_HANDOUT_BURST and 11
)

// rawHandout makes a new account reachable with handoutHeld one-time
// prekeys of each kind, in two uploads, then has handoutFetchers other new
// accounts fetch its bundle handoutPerFetcher times each, all at once. At
// most ONE_TIME_HANDOUT_BURST bundles may hand out one-time prekeys, and
// one more for each ONE_TIME_HANDOUT_RATE interval the fetches took; the
// others must have the last-resort KEM prekey and no one-time EC prekey,
// and remove nothing: the device's next welcome counts what the bundles
// with one-time prekeys left (SRV-027). Those handed out must be the
// oldest, ids 1 to n of each kind (SRV-028). With restart, the server is
// then restarted, and handoutAfter more fetches at once may hand out one
// more only for each ONE_TIME_HANDOUT_RATE interval since the first: the
// bucket is kept in the store, which a restart does not fill.
func rawHandout(ctx context.Context, addr, ns string, now time.Time, restart func() (string, error)) error {
	const first = wire.MaxPrekeysPerUpload
	owner, _, err := reachableAccount(ctx, addr, ns, now, first)
	if err != nil {
		return err
	}
	more := &wire.PrekeyUpload{}
	var ec []wire.OneTimePreKey
	var kem []wire.KEMPreKey
	for id := uint64(first + 1); id <= handoutHeld; id++ {
		k, err := signedKEM(owner.ik, id)
		if err != nil {
			owner.close()
			return err
		}
		e, err := keys.GeneratePrivateKey(rand.Reader)
		if err != nil {
			owner.close()
			return err
		}
		kem, ec = append(kem, k), append(ec, wire.OneTimePreKey{ID: id, Key: e.Public().Encode()})
	}
	more.OneTime, more.OneTimeKEM = &ec, &kem
	err = owner.call(ctx, wire.FrameUploadPrekeys, 4, more, new(wire.UploadResult))
	owner.close()
	if err != nil {
		return fmt.Errorf("upload-prekeys of one-time prekeys %d to %d: %v", first+1, handoutHeld, err)
	}
	start := time.Now()
	withOneTime := make([]int, handoutFetchers)
	ids := make([][2][]uint64, handoutFetchers) // the one-time EC and KEM ids each fetcher got
	err = onRawConns(ctx, addr, ns, handoutFetchers, handoutFetchers, func(i int, r *rawConn) error {
		for j := range handoutPerFetcher {
			b, err := r.fetchBundle(ctx, uint64(2+j), owner.fresh)
			if err != nil {
				return err
			}
			switch {
			case b.OneTimePreKey != nil && !b.KEMPreKey.LastResort:
				withOneTime[i]++
				ids[i][0], ids[i][1] = append(ids[i][0], b.OneTimePreKey.ID), append(ids[i][1], b.KEMPreKey.ID)
			case b.OneTimePreKey == nil && b.KEMPreKey.LastResort && b.KEMPreKey.ID == lastResortID:
			default:
				return fmt.Errorf("a bundle with one-time EC prekey %v and KEM prekey %d (last resort: %v), want both one-time keys or the last-resort KEM prekey alone (the device holds %d of each kind)",
					b.OneTimePreKey != nil, b.KEMPreKey.ID, b.KEMPreKey.LastResort, handoutHeld)
			}
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		return err
	}
	n := 0
	for _, k := range withOneTime {
		n += k
	}
	const fetches = handoutFetchers * handoutPerFetcher
	most := server.HandoutBurst + 1 + int(took/server.HandoutEvery)
	if n > most {
		return fmt.Errorf("%d of %d fetches at once, in %v, handed out one-time prekeys, want at most %d: ONE_TIME_HANDOUT_BURST (%d) and one a ONE_TIME_HANDOUT_RATE interval (%v)",
			n, fetches, took.Round(time.Millisecond), most, server.HandoutBurst, server.HandoutEvery)
	}
	// SRV-028: the oldest first, so the n handed out are ids 1 to n.
	for kind, what := range []string{"EC", "KEM"} {
		var got []uint64
		for i := range ids {
			got = append(got, ids[i][kind]...)
		}
		slices.Sort(got)
		for j, id := range got {
			if id != uint64(j+1) {
				return fmt.Errorf("the %d bundles with one-time prekeys handed out %s ids %v, want 1 to %d: the oldest first (SRV-028)", n, what, got, n)
			}
		}
	}
	if err := handoutLeft(ctx, addr, owner, n); err != nil || restart == nil {
		return err
	}
	if addr, err = restart(); err != nil {
		return err
	}
	after := 0
	err = onRawConns(ctx, addr, ns, 1, 1, func(_ int, r *rawConn) error {
		for j := range handoutAfter {
			b, err := r.fetchBundle(ctx, uint64(2+j), owner.fresh)
			if err != nil {
				return err
			}
			if b.OneTimePreKey != nil {
				after++
			}
		}
		return nil
	})
	took = time.Since(start)
	if err != nil {
		return err
	}
	if most := server.HandoutBurst + 1 + int(took/server.HandoutEvery); n+after > most {
		return fmt.Errorf("%d bundles with one-time prekeys before a restart of the server and %d of %d fetches after it, in %v in all, want at most %d in all: the ONE_TIME_HANDOUT_RATE bucket (SRV-027) is kept in the store, a restart does not fill it",
			n, after, handoutAfter, took.Round(time.Millisecond), most)
	}
	return handoutLeft(ctx, addr, owner, n+after)
}

// handoutAfter is the fetches of the hand-out case after a restart of the
// server.
const handoutAfter = 5

// handoutLeft checks that the welcome of the hand-out case's device counts
// handoutHeld - n one-time prekeys of each kind: n bundles handed them out.
func handoutLeft(ctx context.Context, addr string, owner *rawConn, n int) error {
	again, welcome, err := dialAs(ctx, addr, owner.fresh, owner.ik)
	if err != nil {
		return err
	}
	defer again.close()
	if welcome.OneTimeEC != uint64(handoutHeld-n) || welcome.OneTimeKEM != uint64(handoutHeld-n) {
		return fmt.Errorf("after %d bundles with one-time prekeys of %d held, the device's welcome reports %d one-time EC and %d one-time KEM prekeys, want %d of each: a bundle with the last-resort key alone removes none",
			n, handoutHeld, welcome.OneTimeEC, welcome.OneTimeKEM, handoutHeld-n)
	}
	return nil
}

// lastResortID is the id of the last-resort KEM prekey of fullUpload.
const lastResortID = 1000

// fullUpload is an upload of a signed prekey (id 1), a last-resort KEM
// prekey (id lastResortID) and n one-time prekeys of each kind (ids 1 to
// n), signed by ik.
func fullUpload(ik *keys.PrivateKey, n int) (*wire.PrekeyUpload, error) {
	up, err := signedUpload(ik, false, 1)
	if err != nil {
		return nil, err
	}
	var ec []wire.OneTimePreKey
	var kem []wire.KEMPreKey
	last, err := signedKEM(ik, lastResortID)
	if err != nil {
		return nil, err
	}
	last.LastResort = true
	up.LastResort = &last
	for id := uint64(1); id <= uint64(n); id++ {
		k, err := signedKEM(ik, id)
		if err != nil {
			return nil, err
		}
		kem = append(kem, k)
		e, err := keys.GeneratePrivateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		ec = append(ec, wire.OneTimePreKey{ID: id, Key: e.Public().Encode()})
	}
	up.OneTime, up.OneTimeKEM = &ec, &kem
	return up, nil
}

// deviceListCases are the device lists of the device-list case.
var deviceListCases = []string{"skip-version", "rollback", "equivocation", "other-primary", "bad-signature", "wrong-account"}

// rawDeviceList registers a new account and gives the server a device
// list it must refuse (DEV-002), after the lists a case needs first: the
// next version after version 1 is 3 (skip-version); version 1 after 2
// (rollback); version 1 again with other contents, a later issued-at
// (equivocation); version 1 signed by another key listed as device 1
// (other-primary); version 1 whose signature is another key's
// (bad-signature); version 1 of another account (wrong-account). It
// returns the refusal, or an error of no code when a list before it was
// refused or the last one taken.
func rawDeviceList(ctx context.Context, addr, ns, kind string, now time.Time) error {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	other, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return err
	}
	me := wire.ListedDevice{Device: 1, IdentityKey: r.ik.Public().Encode()}
	at := uint64(now.UnixMilli())
	sign := func(k *keys.PrivateKey, account string, version, issuedAt uint64, d wire.ListedDevice) (*devices.List, error) {
		return devices.Sign(k, account, version, []wire.ListedDevice{d}, issuedAt, rand.Reader)
	}
	id := uint64(1)
	set := func(l *devices.List, err error) error {
		if err != nil {
			return err
		}
		id++
		return r.call(ctx, wire.FrameSetDeviceList, id, &wire.SetDeviceList{DeviceList: l.Signed}, new(wire.Empty))
	}
	var before []uint64 // the versions set first, which the server must take
	switch kind {
	case "skip-version", "equivocation":
		before = []uint64{1}
	case "rollback":
		before = []uint64{1, 2}
	}
	for _, v := range before {
		if err := set(sign(r.ik, r.fresh, v, at, me)); err != nil {
			return fmt.Errorf("version %d of the account's own list, the next one, was refused (%v)", v, err)
		}
	}
	var last error
	switch kind {
	case "skip-version":
		last = set(sign(r.ik, r.fresh, 3, at, me))
	case "rollback":
		last = set(sign(r.ik, r.fresh, 1, at, me))
	case "equivocation":
		last = set(sign(r.ik, r.fresh, 1, at+1, me))
	case "other-primary":
		last = set(sign(other, r.fresh, 1, at, wire.ListedDevice{Device: 1, IdentityKey: other.Public().Encode()}))
	case "wrong-account":
		last = set(sign(r.ik, "x"+r.fresh, 1, at, me))
	case "bad-signature":
		l, err := sign(r.ik, r.fresh, 1, at, me)
		if err != nil {
			return err
		}
		sig, err := other.Sign(append([]byte(devices.LabelDeviceList), l.Raw...), rand.Reader)
		if err != nil {
			return err
		}
		if l.Signed, err = wire.Marshal(&wire.SignedDeviceList{List: l.Raw, Signature: sig}); err != nil {
			return err
		}
		last = set(l, nil)
	default:
		return fmt.Errorf("raw device-list: no case %q", kind)
	}
	return last
}

// rawSubscriptions registers MAX_SUBSCRIPTIONS + 1 new accounts, then has
// a device of another follow 200 of them, then 106 of which 50 it follows
// already (256 in all: those are not counted twice), both of which the
// server must take with an update for each; then the last one, which the
// server must refuse (SRV-024). It returns that refusal, or an error of no
// code.
func rawSubscriptions(ctx context.Context, addr, ns string) error {
	type account struct {
		name string
		ik   *keys.PrivateKey
	}
	accounts := make([]account, wire.MaxSubscriptions+1)
	err := onRawConns(ctx, addr, ns, len(accounts), 8, func(i int, r *rawConn) error {
		accounts[i] = account{r.fresh, r.ik}
		// Seen by all, so that a follower gets its presence.
		return r.call(ctx, wire.FrameSetPrivacy, 2, &wire.Privacy{LastSeen: wire.VisibilityEveryone, Online: wire.VisibilityEveryone}, new(wire.Empty))
	})
	if err != nil {
		return err
	}
	// subscribe-presence lists its accounts sorted (chapter 11).
	slices.SortFunc(accounts, func(a, b account) int { return strings.Compare(a.name, b.name) })
	names := func(as []account) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.name)
		}
		return out
	}
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	for i, follow := range [][]account{accounts[:200], accounts[150:wire.MaxSubscriptions]} {
		var res wire.PresenceResult
		if err := r.call(ctx, wire.FrameSubscribePresence, uint64(2+i), &wire.PresenceSubscribe{Accounts: names(follow)}, &res); err != nil {
			return fmt.Errorf("subscribe-presence to %d accounts, %d followed in all (within MAX_SUBSCRIPTIONS when those followed already count once), refused: %v", len(follow), 200+56*i, err)
		}
		if len(res.Updates) != len(follow) {
			return fmt.Errorf("subscribe-presence to %d accounts, each seen by all, gave %d updates", len(follow), len(res.Updates))
		}
	}
	last, first := accounts[wire.MaxSubscriptions], accounts[0]
	refused := r.call(ctx, wire.FrameSubscribePresence, 4, &wire.PresenceSubscribe{Accounts: []string{last.name}}, new(wire.PresenceResult))
	if errcode.Of(refused) != errcode.PolicyTooLarge {
		return refused
	}
	// Following nothing more: the refused account comes online and no
	// presence of it comes; then a followed one does, whose presence
	// does come (the control).
	for _, a := range []account{last, first} {
		c, _, err := dialAs(ctx, addr, a.name, a.ik)
		if err != nil {
			return err
		}
		defer c.close()
		time.Sleep(500 * time.Millisecond)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stop := context.AfterFunc(pctx, func() { r.nc.Close() })
	defer stop()
	for {
		f, err := r.tc.Receive()
		if err != nil {
			return fmt.Errorf("no presence of a followed account that came online (%s) within 5 s (%v)", first.name, err)
		}
		var u wire.PresenceUpdate
		if f.Type != wire.FramePresence || transport.DecodeBody(f, &u) != nil {
			continue
		}
		switch u.Account {
		case last.name:
			return fmt.Errorf("%v, and the account of the refused subscribe-presence is followed: its presence came when it came online", refused)
		case first.name:
			return refused
		}
	}
}

// rawPrekeysHeld registers a new account and makes it reachable with
// MAX_PREKEYS_PER_UPLOAD one-time prekeys of each kind, then uploads
// one-time EC prekeys until MAX_ONE_TIME_PREKEYS are held, each upload
// taken; then one EC prekey more, with a new signed prekey and a one-time
// KEM prekey that alone would fit, which the server must refuse whole
// (SRV-025). It returns that refusal, or an error of no code when the
// server did not keep to SRV-025 otherwise: a fetch must still get the
// first signed prekey; after it, the keys of the refused upload must be
// taken (the fetch made room for one EC prekey, and the refused ids were
// not stored), and one-time KEM prekeys up to MAX_ONE_TIME_PREKEYS, but
// not one more.
func rawPrekeysHeld(ctx context.Context, addr, ns string, now time.Time) error {
	const batch, most = wire.MaxPrekeysPerUpload, server.MaxOneTimePrekeys
	r, _, err := reachableAccount(ctx, addr, ns, now, batch)
	if err != nil {
		return err
	}
	defer r.close()
	id := uint64(3) // the request ids reachableAccount used
	upload := func(u *wire.PrekeyUpload) (wire.UploadResult, error) {
		id++
		var res wire.UploadResult
		err := r.call(ctx, wire.FrameUploadPrekeys, id, u, &res)
		return res, err
	}
	ec := func(from, to uint64) (*[]wire.OneTimePreKey, error) {
		var out []wire.OneTimePreKey
		for i := from; i <= to; i++ {
			k, err := keys.GeneratePrivateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			out = append(out, wire.OneTimePreKey{ID: i, Key: k.Public().Encode()})
		}
		return &out, nil
	}
	kem := func(from, to uint64) (*[]wire.KEMPreKey, error) {
		var out []wire.KEMPreKey
		for i := from; i <= to; i++ {
			k, err := signedKEM(r.ik, i)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		return &out, nil
	}
	for held := uint64(batch); held < most; held += batch {
		ks, err := ec(held+1, held+batch)
		if err != nil {
			return err
		}
		res, err := upload(&wire.PrekeyUpload{OneTime: ks})
		if err != nil || res.OneTimeEC != held+batch {
			return fmt.Errorf("upload-prekeys of one-time EC prekeys %d to %d, %d held in all (MAX_ONE_TIME_PREKEYS is %d): got %+v, %v, want %d held",
				held+1, held+batch, held+batch, most, res, err, held+batch)
		}
	}
	// KEM ids from 2000: lastResortID is 1000.
	over, err := signedUpload(r.ik, false, 2)
	if err != nil {
		return err
	}
	if over.OneTime, err = ec(most+1, most+1); err != nil {
		return err
	}
	if over.OneTimeKEM, err = kem(2000, 2000); err != nil {
		return err
	}
	_, refused := upload(over)
	if errcode.Of(refused) == 0 {
		return refused
	}
	f, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer f.close()
	var fr wire.FetchResult
	if err := f.call(ctx, wire.FrameFetchPrekeys, 2, &wire.PrekeyFetch{Account: r.fresh}, &fr); err != nil {
		return fmt.Errorf("fetch-prekeys of the account: %v", err)
	}
	var b wire.Bundle
	if len(fr.Bundles) != 1 || wire.Unmarshal(fr.Bundles[0].Bundle, &b) != nil {
		return fmt.Errorf("fetch-prekeys of the account gave %d bundles, want one that decodes", len(fr.Bundles))
	}
	if b.SignedPreKey.ID != 1 {
		return fmt.Errorf("%v, and yet a fetch gets the signed prekey of that upload (id %d), not the first (id 1)", refused, b.SignedPreKey.ID)
	}
	res, err := upload(&wire.PrekeyUpload{OneTime: over.OneTime, OneTimeKEM: over.OneTimeKEM})
	if err != nil || res.OneTimeEC != most || res.OneTimeKEM != batch {
		return fmt.Errorf("%v; then, after a fetch took one prekey of each kind, an upload of its one-time prekeys again: got %+v, %v, want %d EC and %d KEM held", refused, res, err, most, batch)
	}
	for held := uint64(batch); held < most; held += batch {
		ks, err := kem(2000+held-batch+1, 2000+held)
		if err != nil {
			return err
		}
		res, err := upload(&wire.PrekeyUpload{OneTimeKEM: ks})
		if err != nil || res.OneTimeKEM != held+batch {
			return fmt.Errorf("%v; then upload-prekeys of one-time KEM prekeys, %d held in all: got %+v, %v, want %d held", refused, held+batch, res, err, held+batch)
		}
	}
	more, err := kem(2000+most, 2000+most)
	if err != nil {
		return err
	}
	if _, err := upload(&wire.PrekeyUpload{OneTimeKEM: more}); errcode.Of(err) != errcode.Of(refused) {
		return fmt.Errorf("%v; then an upload of one one-time KEM prekey, %d held: got %v, want the same refusal", refused, most, err)
	}
	return refused
}

// rawBlobCharge registers a new account, which creates blobs it never
// uploads (an incomplete blob counts as a complete one): of MAX_BLOB_SIZE
// up to the quota's last 24 MiB, one that leaves two media chunks, then
// two of 16 bytes, each taken, and a third of 16 bytes, which the server
// must refuse: each counts as MEDIA_CHUNK (MED-009), and by their sizes the
// three would fit.
// It returns that refusal, or an error of no code when a blob before it was
// refused.
func rawBlobCharge(ctx context.Context, addr, ns string) error {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	const rest = wire.BlobQuota % wire.MaxBlobSize // 24 MiB
	sizes := []uint64{}
	for range wire.BlobQuota / wire.MaxBlobSize {
		sizes = append(sizes, wire.MaxBlobSize)
	}
	sizes = append(sizes, rest-2*wire.MediaChunk, wire.MinBlobSize, wire.MinBlobSize, wire.MinBlobSize)
	left := uint64(wire.BlobQuota)
	for i, size := range sizes {
		digest := make([]byte, 32)
		if _, err := rand.Read(digest); err != nil {
			return err
		}
		err := r.call(ctx, wire.FrameCreateBlob, uint64(2+i), &wire.BlobCreate{Size: size, Digest: digest}, new(wire.BlobCreated))
		if i == len(sizes)-1 {
			return err
		}
		if err != nil {
			return fmt.Errorf("create-blob %d of %d, of %d bytes, with %d bytes of BLOB_QUOTA left (the blobs before it counted as at least MEDIA_CHUNK each): %v",
				i+1, len(sizes), size, left, err)
		}
		left -= max(size, wire.MediaChunk)
	}
	return nil
}

// linkForged runs "! NAME link-forged CODE": NAME, a primary, opens a
// link and waits for it as for any link, and a companion of the runner's
// own asks for it with the link id of the code but a mac made with another
// key. The primary must not add it (DEV-006): the companion is refused
// with CODE, and NAME's account still lists its devices of before.
func (w *world) linkForged(ts *testscript.TestScript, ctx context.Context, name string, a actor, rest []string, neg bool) {
	if !neg || len(rest) != 1 {
		ts.Fatalf("usage: ! %s link-forged CODE", name)
	}
	code, ok := errcode.Parse(rest[0])
	if !ok {
		ts.Fatalf("usage: ! %s link-forged CODE (%q is no registered code)", name, rest[0])
	}
	addr := w.server.address()
	account := w.acct(accountOf(name))
	before, err := deviceIDs(ctx, addr, w.ns, account)
	must(ts, name+" link-forged", err)
	link, err := a.linkOpen(ctx)
	must(ts, name+" link-forged", err)
	completed, cancel := completeLink(ctx, a)
	defer cancel()
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	defer lcancel()
	refused := forgedLinkRequest(lctx, addr, link)
	cancel()
	<-completed // the primary's answer is judged by the list below, not by what link.complete says
	mustFail(ts, name+" link-forged", refused, code)
	after, err := deviceIDs(ctx, addr, w.ns, account)
	must(ts, name+" link-forged", err)
	if !slices.Equal(before, after) {
		fail(ts, WrongOutput, "%s's device list lists devices %v after a link request whose mac did not verify, want %v as before", name, after, before)
	}
}

// forgedLinkRequest asks for the link of code, on a connection of its own,
// with a new identity key and a mac made with a key that is not the code's,
// and returns the answer as an error (nil: linked).
func forgedLinkRequest(ctx context.Context, addr, code string) error {
	_, secret, _, err := devices.ParseLinkCode(code)
	if err != nil {
		return fmt.Errorf("the link code %q does not parse: %v", code, err)
	}
	linkID, _, err := devices.LinkKeys(secret)
	if err != nil {
		return err
	}
	wrongKey := make([]byte, 32)
	rand.Read(wrongKey)
	r, err := dialRaw(ctx, addr, "")
	if err != nil {
		return err
	}
	defer r.close()
	req := &wire.LinkRequest{LinkID: linkID, IdentityKey: r.ik.Public().Encode(), MAC: devices.LinkMAC(wrongKey, linkID, r.ik.Public())}
	return r.call(ctx, wire.FrameLinkRequest, 1, req, new(wire.LinkResult))
}

// deviceIDs returns the devices that account's current device list lists,
// as a new account of the runner's own fetches it.
func deviceIDs(ctx context.Context, addr, ns, account string) ([]uint64, error) {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var res wire.DeviceListResult
	if err := r.call(ctx, wire.FrameFetchDeviceList, 2, &wire.DeviceListFetch{Account: account}, &res); err != nil {
		return nil, fmt.Errorf("fetch-device-list of %s: %v", account, err)
	}
	l, err := devices.Parse(res.DeviceList, account)
	if err != nil {
		return nil, fmt.Errorf("%s's device list: %v", account, err)
	}
	var ids []uint64
	for _, d := range l.Devices {
		ids = append(ids, d.Device)
	}
	return ids, nil
}

// typingEvery is how often typeAt's connection sends its typing notice.
const typingEvery = 4 * time.Second

// typeAt registers an account of the runner's own, seen by everyone, whose
// connection sends a typing notice to account every typingEvery, turning
// it on and off, until ctx ends or stop is called: traffic to the
// account's devices that asks them for no answer.
func typeAt(ctx context.Context, addr, ns, account string) (stop func(), err error) {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return nil, err
	}
	everyone := &wire.Privacy{LastSeen: wire.VisibilityEveryone, Online: wire.VisibilityEveryone}
	if err := r.call(ctx, wire.FrameSetPrivacy, 2, everyone, new(wire.Empty)); err != nil {
		r.close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.close()
		for on := true; ; on = !on {
			if r.tc.Send(wire.FrameTyping, 0, &wire.Typing{Account: account, Typing: on}) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(typingEvery):
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}
