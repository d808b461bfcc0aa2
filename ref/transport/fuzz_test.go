package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// fuzzTimeouts bound every read and write of a fuzz input: no input may
// make the reader wait for them, since the writer always ends the stream.
var fuzzTimeouts = Timeouts{Handshake: 5 * time.Second, Idle: 5 * time.Second, Write: 5 * time.Second}

// fuzzPair holds the two sides of one real handshake (XX over net.Pipe,
// closed once done). Each fuzz input gets a fresh pair of connections over a pipe of its own
// with copies of these cipher states, so every input starts at nonce 0
// without a handshake of its own.
type fuzzPair struct {
	client, server *Conn
	device         device // the client's identity, whose static key is client's
}

// newFuzzPair runs a handshake between a device made from seed and a
// server; pairs of different seeds have different keys.
func newFuzzPair(tb testing.TB, seed byte) *fuzzPair {
	tb.Helper()
	d := newDevice(tb, seed)
	x, y := net.Pipe()
	defer x.Close()
	defer y.Close()
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Server(y, &ServerConfig{Static: keyPair(tb, 100), Rand: testRand(seed + 7), Timeouts: fuzzTimeouts})
		done <- result{c, err}
	}()
	c, err := Client(x, &ClientConfig{Static: d.static, Rand: testRand(seed + 8), Timeouts: fuzzTimeouts})
	if err != nil {
		tb.Fatalf("client handshake: %v", err)
	}
	r := <-done
	if r.err != nil {
		tb.Fatalf("server handshake: %v", r.err)
	}
	return &fuzzPair{client: c, server: r.c, device: d}
}

func cloneCipher(cs *noise.CipherState) *noise.CipherState {
	c := *cs
	return &c
}

// conn returns a connection over nc with a copy of proto's keys.
func (p *fuzzPair) conn(proto *Conn, nc net.Conn) *Conn {
	return &Conn{conn: nc, timeouts: fuzzTimeouts, remote: proto.remote, hash: proto.hash,
		recv: cloneCipher(proto.recv), send: cloneCipher(proto.send)}
}

// splitStream splits a decrypted stream into its whole frames and what
// follows them: the rest starts with an oversize length or a frame cut
// short, or is empty.
func splitStream(stream []byte) (frames [][]byte, rest []byte) {
	for len(stream) >= 4 {
		n := binary.BigEndian.Uint32(stream)
		if n > wire.MaxFrameSize || uint64(len(stream)-4) < uint64(n) {
			break
		}
		frames = append(frames, stream[4:4+n])
		stream = stream[4+n:]
	}
	return frames, stream
}

// Modes of FuzzReadFrame, the low two bits of the first byte.
const (
	modeReadFrame = iota // sealed stream, read with ReadFrame
	modeReceive          // sealed stream, read with Receive
	modeHello            // sealed stream, ReadHello then Receive
	modeRaw              // a sealed prefix of chunk bytes, then raw bytes, read with ReadFrame
)

// fuzzInput makes an input of FuzzReadFrame: mode, segments of at most
// chunk bytes (0: as large as they go), written together in one write or
// each in a write of its own, then the stream.
func fuzzInput(mode byte, together bool, chunk byte, stream []byte) []byte {
	b := chunk<<3 | mode
	if together {
		b |= 4
	}
	return append([]byte{b}, stream...)
}

func streamOf(frames ...[]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// helloFrame returns a hello request whose binding is of the fuzz pair's
// client transport key, so that the server side accepts it.
func (p *fuzzPair) helloFrame(tb testing.TB) []byte {
	tb.Helper()
	enc, err := EncodeFrame(wire.FrameHello, 1, p.device.hello(tb, p.device.static.Public, p.device.ik))
	if err != nil {
		tb.Fatal(err)
	}
	return enc
}

// vectorStreams returns the decrypted streams of the valid segments of
// vectors/v1/transport.json, one per case and sender.
func vectorStreams(tb testing.TB) [][]byte {
	tb.Helper()
	f := vectest.Load[transportCase](tb, "transport")
	var out [][]byte
	for _, c := range f.Cases {
		by := map[string][]byte{}
		for _, s := range c.Segments {
			if s.Expect != "invalid" {
				by[s.From] = append(by[s.From], s.Plaintext...)
			}
		}
		for _, from := range []string{"initiator", "responder"} {
			if len(by[from]) > 0 {
				out = append(out, by[from])
			}
		}
	}
	return out
}

// checkStreamErr checks the error that ends the reading of a sealed
// stream: the end of the connection, or an oversize frame's registered
// code when the rest starts with an oversize length.
func checkStreamErr(t *testing.T, err error, rest []byte) {
	t.Helper()
	if len(rest) >= 4 && binary.BigEndian.Uint32(rest) > wire.MaxFrameSize {
		var tl *FrameTooLargeError
		if !errors.As(err, &tl) || errcode.Of(err) != errcode.PolicyFrameTooLarge {
			t.Fatalf("oversize frame %x: got %v, want %v", rest[:4], err, errcode.PolicyFrameTooLarge)
		}
		return
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end of the stream (%d bytes of an unfinished frame): got %v, want %v", len(rest), err, io.EOF)
	}
}

// FuzzReadFrame writes the input from the device's side of a real
// encrypted connection and reads it on the server's side. The first byte
// selects the mode (low two bits), whether the segments go in one write
// (bit 2), and the largest segment (the other five, 0 for as large as they
// go); the rest is the decrypted stream, which the device seals into
// segments, or in raw mode a first segment of that many bytes sealed, then
// bytes put on the connection as they are.
// Reading never panics nor waits for a deadline; a sealed stream gives
// exactly its whole frames, in order, then the end of the connection or
// an oversize frame's code; Receive fails only on the frames that do not
// decode, with their code, and ReadHello only with registered codes; raw
// bytes give no frame, only channel errors or the end of the connection.
func FuzzReadFrame(f *testing.F) {
	p := newFuzzPair(f, 1)
	hello := p.helloFrame(f)
	ping, err := EncodeFrame(wire.FramePing, 0, nil)
	if err != nil {
		f.Fatal(err)
	}
	ack, err := EncodeFrame(wire.FrameAck, 0, &wire.Ack{QueueIDs: []uint64{1, 2}})
	if err != nil {
		f.Fatal(err)
	}
	streams := append(vectorStreams(f), streamOf(hello), streamOf(hello, ping, ack), streamOf(ping, ping),
		streamOf(make([]byte, MaxSegment+100)), binary.BigEndian.AppendUint32(nil, wire.MaxFrameSize+1),
		append(streamOf(ack), 0, 0, 0))
	for _, s := range streams {
		for _, mode := range []byte{modeReadFrame, modeReceive, modeHello} {
			f.Add(fuzzInput(mode, false, 0, s))
		}
		if len(s) < 4096 { // small segments: a frame across several, a segment across frames
			f.Add(fuzzInput(modeReadFrame, false, 5, s))
			f.Add(fuzzInput(modeReadFrame, true, 7, s))
			f.Add(fuzzInput(modeReceive, true, 31, s))
		}
	}
	// Raw: a segment sealed by another connection (other keys), a
	// truncated segment, a segment shorter than a tag.
	q := newFuzzPair(f, 40)
	if _, err := q.client.SealSegment(streamOf(ping)); err != nil {
		f.Fatal(err)
	}
	seg, err := q.client.SealSegment(streamOf(ping)) // nonce 1, as the next segment of a sealed prefix
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzInput(modeRaw, false, 0, prefixed(seg)))
	f.Add(fuzzInput(modeRaw, false, 0, []byte{0x00, 0x40, 1, 2, 3}))
	f.Add(fuzzInput(modeRaw, false, 0, []byte{0x00, 0x05, 1, 2, 3, 4, 5}))
	// A sealed prefix (whole frames, then part of one), then raw bytes.
	sealed := append(streamOf(ping, ack), 0, 0, 0, 9, 0xA1)
	for _, raw := range [][]byte{nil, prefixed(seg), {0x00, 0x40, 1, 2, 3}} {
		f.Add(fuzzInput(modeRaw, true, byte(len(sealed)), append(bytes.Clone(sealed), raw...)))
		f.Add(fuzzInput(modeRaw, false, byte(len(sealed)), append(bytes.Clone(sealed), raw...)))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, together, chunk, stream := data[0]&3, data[0]&4 != 0, int(data[0]>>3), data[1:]
		x, y := net.Pipe()
		client, server := p.conn(p.client, x), p.conn(p.server, y)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the device writes the input, then ends the connection
			defer wg.Done()
			defer x.Close()
			if mode == modeRaw {
				prefix, raw := stream[:min(chunk, len(stream))], stream[min(chunk, len(stream)):]
				var out []byte
				if len(prefix) > 0 {
					var err error
					if out, err = client.seal(nil, prefix, nil); err != nil {
						t.Errorf("sealing %d bytes: %v", len(prefix), err)
						return
					}
					if !together && client.writeRaw(out) != nil {
						return
					}
					if !together {
						out = nil
					}
				}
				if out = append(out, raw...); len(out) > 0 {
					client.writeRaw(out)
				}
				return
			}
			var out []byte
			for s := stream; len(s) > 0; {
				n := len(s)
				if chunk > 0 {
					n = min(n, chunk)
				}
				seg, err := client.seal(nil, s[:n], nil)
				if err != nil {
					t.Errorf("sealing %d bytes: %v", n, err)
					return
				}
				if !together {
					if client.writeRaw(seg) != nil {
						return
					}
				}
				out = append(out, seg...)
				s = s[n:]
			}
			if together && len(out) > 0 {
				client.writeRaw(out)
			}
		}()
		go func() { // and reads the error frames the server answers with
			defer wg.Done()
			io.Copy(io.Discard, x)
		}()
		defer wg.Wait()
		defer y.Close()

		if mode == modeRaw {
			prefix, raw := stream[:min(chunk, len(stream))], stream[min(chunk, len(stream)):]
			want, rest := splitStream(prefix)
			for i := 0; ; i++ {
				got, err := server.ReadFrame()
				if err == nil {
					if i >= len(want) || !bytes.Equal(got, want[i]) {
						t.Fatalf("frame %d: got %x, want %d frames %x of the sealed %x", i, got, len(want), want, prefix)
					}
					continue
				}
				switch {
				case i < len(want):
					t.Fatalf("frame %d of %d: got %v, want %x", i, len(want), err, want[i])
				case len(raw) == 0 || len(rest) >= 4 && binary.BigEndian.Uint32(rest) > wire.MaxFrameSize:
					checkStreamErr(t, err, rest)
				case !errors.Is(err, ErrChannel) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
					t.Fatalf("raw bytes %x: got %v, want %v or the end of the connection", raw, err, ErrChannel)
				}
				return
			}
		}
		want, rest := splitStream(stream)
		for i := 0; ; i++ {
			if mode == modeReadFrame {
				got, err := server.ReadFrame()
				if err != nil {
					if i < len(want) {
						t.Fatalf("frame %d of %d: got %v, want %x", i, len(want), err, want[i])
					}
					checkStreamErr(t, err, rest)
					return
				}
				if i >= len(want) || !bytes.Equal(got, want[i]) {
					t.Fatalf("frame %d: got %x, want %d frames %x", i, got, len(want), want)
				}
				continue
			}
			var (
				enc []byte
				err error
			)
			if mode == modeHello && i == 0 {
				var h *wire.Hello
				_, h, _, err = ReadHello(server, []uint64{1})
				if err == nil {
					var fw wire.Frame
					if len(want) == 0 || wire.Unmarshal(want[0], &fw) != nil || fw.Body == nil {
						t.Fatalf("hello accepted from stream %x, whose first frame does not decode", stream)
					}
					again, _ := wire.Marshal(h)
					if !bytes.Equal(again, *fw.Body) {
						t.Fatalf("hello body: got %x, want %x", again, *fw.Body)
					}
					continue
				}
			} else {
				var fr *wire.Frame
				fr, err = server.Receive()
				if err == nil {
					if enc, err = wire.Marshal(fr); err != nil {
						t.Fatalf("received frame does not encode: %v", err)
					}
				}
			}
			if err != nil {
				if i < len(want) {
					if c := errcode.Of(err); !c.Registered() {
						t.Fatalf("frame %d %x: error %v has no registered code", i, want[i], err)
					}
					// Receive fails on exactly the frames that do not
					// decode, with their code; ReadHello also on hellos
					// that do not pass its checks.
					var fw wire.Frame
					werr := wire.Unmarshal(want[i], &fw)
					if (werr != nil || mode != modeHello || i != 0) && errcode.Of(werr) != errcode.Of(err) {
						t.Fatalf("frame %d %x: got %v, want %v", i, want[i], err, werr)
					}
					return
				}
				checkStreamErr(t, err, rest)
				return
			}
			if i >= len(want) || !bytes.Equal(enc, want[i]) {
				t.Fatalf("frame %d: got %x, want %d frames %x", i, enc, len(want), want)
			}
		}
	})
}

// sink is a connection whose writes go nowhere: the error frames that
// CheckHello answers with.
type sink struct{ net.Conn }

func (sink) Write(b []byte) (int, error)      { return len(b), nil }
func (sink) SetWriteDeadline(time.Time) error { return nil }

// FuzzCheckHello gives the input as the body of a hello frame to
// CheckHello on the server side of a connection whose device is the fuzz
// pair's. It fails only with registered codes, answering the frame's
// request id; what it accepts encodes back to the input, bound to the
// connection's transport key, at the highest version both sides have.
func FuzzCheckHello(f *testing.F) {
	p := newFuzzPair(f, 1)
	d := p.device
	good := d.hello(f, d.static.Public, d.ik)
	for _, h := range []*wire.Hello{
		good,
		{Versions: []uint64{3, 2, 1}, Account: good.Account, Device: good.Device, IdentityKey: good.IdentityKey, Binding: good.Binding},
		{Versions: []uint64{2}, Account: good.Account, Device: good.Device, IdentityKey: good.IdentityKey, Binding: good.Binding},
		d.hello(f, newDevice(f, 20).static.Public, d.ik),
	} {
		enc, err := wire.Marshal(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	supported := []uint64{1, 3}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := p.conn(p.server, sink{})
		body := bytes.Clone(data)
		id := uint64(7)
		fr := &wire.Frame{Version: wire.ProtocolVersion, Type: wire.FrameHello, RequestID: &id, Body: &body}
		rid, h, v, err := CheckHello(c, fr, supported)
		if rid != id {
			t.Fatalf("request id: got %d, want %d", rid, id)
		}
		if err != nil {
			if h != nil || v != 0 {
				t.Fatalf("failed (%v) with a hello and version %d", err, v)
			}
			if cd := errcode.Of(err); !cd.Registered() {
				t.Fatalf("error %v has no registered code", err)
			}
			return
		}
		again, err := wire.Marshal(h)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted hello encodes as %x (%v), want %x", again, err, data)
		}
		want := uint64(0)
		for _, x := range h.Versions {
			if slices.Contains(supported, x) {
				want = max(want, x)
			}
		}
		if v != want || v == 0 {
			t.Fatalf("version: got %d, want %d", v, want)
		}
		ik, err := keys.DecodePublicKey(h.IdentityKey)
		if err != nil {
			t.Fatalf("accepted hello's identity key: %v", err)
		}
		if err := VerifyBinding(ik, d.static.Public, h.Binding, uint32(h.Device), h.Account); err != nil {
			t.Fatalf("accepted hello's binding: %v", err)
		}
	})
}

// frameBodies lists, per frame type, the rules its body may have
// (spec sections 11.3 and 11.4); none for ping and pong.
var frameBodies = map[uint64][]string{
	wire.FrameHello: {"hello"},
	wire.FrameResult: {"welcome", "upload-result", "fetch-result", "send-result", "presence-result", "empty",
		"link-result", "group-history", "blob-created", "blob-progress", "blob-chunk", "device-list-result"},
	wire.FrameError:             {"error-body"},
	wire.FrameUploadPrekeys:     {"prekey-upload"},
	wire.FrameFetchPrekeys:      {"prekey-fetch"},
	wire.FrameSend:              {"envelope"},
	wire.FrameDeliver:           {"delivery"},
	wire.FrameAck:               {"ack"},
	wire.FramePing:              nil,
	wire.FramePong:              nil,
	wire.FrameSubscribePresence: {"presence-subscribe"},
	wire.FramePresence:          {"presence-update"},
	wire.FrameSetPrivacy:        {"privacy"},
	wire.FrameSetContacts:       {"contacts"},
	wire.FrameTyping:            {"typing", "typing-notice"},
	wire.FrameNotice:            {"notice"},
	wire.FrameOpenLink:          {"open-link"},
	wire.FrameLinkRequest:       {"link-request"},
	wire.FrameLink:              {"link-notice"},
	wire.FrameAnswerLink:        {"answer-link"},
	wire.FrameSetDeviceList:     {"set-device-list"},
	wire.FrameDeviceList:        {"signed-device-list"},
	wire.FrameSendGroup:         {"group-envelope"},
	wire.FrameSetGroup:          {"signed-group-state"},
	wire.FrameGetGroup:          {"group-fetch"},
	wire.FrameCreateBlob:        {"blob-create"},
	wire.FramePutBlob:           {"blob-put"},
	wire.FrameGetBlob:           {"blob-get"},
	wire.FrameFetchDeviceList:   {"device-list-fetch"},
}

// noRequestID lists the frame types whose request id is absent.
var noRequestID = []uint64{wire.FrameDeliver, wire.FrameAck, wire.FramePing, wire.FramePong, wire.FramePresence,
	wire.FrameTyping, wire.FrameNotice, wire.FrameLink, wire.FrameDeviceList}

// FuzzDecodeBody decodes the input as a frame, then its body with
// DecodeBody as each structure the frame's type may carry. Every failure
// carries a registered decode code; a body that decodes encodes back to
// exactly the frame's body; a frame of a type without a body has none.
// The seeds are frames of every type around the valid bodies of
// vectors/v1/wire.json.
func FuzzDecodeBody(f *testing.F) {
	if len(frameBodies) != 29 {
		f.Fatalf("frameBodies has %d frame types, want 29", len(frameBodies))
	}
	vf := vectest.Load[vectest.Wire](f, "wire")
	for typ, rules := range frameBodies {
		var id *uint64
		if !slices.Contains(noRequestID, typ) {
			id = wire.Ptr(uint64(1))
		}
		if rules == nil {
			enc, err := wire.Marshal(&wire.Frame{Version: wire.ProtocolVersion, Type: typ, RequestID: id})
			if err != nil {
				f.Fatalf("frame type %d: %v", typ, err)
			}
			f.Add(enc)
		}
		for _, c := range vf.Cases {
			if c.Expect != "valid" || !slices.Contains(rules, c.Rule) {
				continue
			}
			body := []byte(c.Encoding)
			enc, err := wire.Marshal(&wire.Frame{Version: wire.ProtocolVersion, Type: typ, RequestID: id, Body: &body})
			if err != nil {
				f.Fatalf("frame type %d with %s: %v", typ, c.ID, err)
			}
			f.Add(enc)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr wire.Frame
		if err := wire.Unmarshal(data, &fr); err != nil {
			if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
				t.Fatalf("frame: error %v is not a registered decode code", err)
			}
			return
		}
		rules, ok := frameBodies[fr.Type]
		if !ok {
			t.Fatalf("frame of type %d decoded", fr.Type)
		}
		if rules == nil {
			if fr.Body != nil {
				t.Fatalf("frame of type %d with a body decoded", fr.Type)
			}
			if err := DecodeBody(&fr, new(wire.Empty)); errcode.Of(err) != errcode.DecodeMissingField {
				t.Fatalf("body of a frame of type %d: got %v, want %v", fr.Type, err, errcode.DecodeMissingField)
			}
			return
		}
		for _, rule := range rules {
			m := wire.Rules[rule]()
			err := DecodeBody(&fr, m)
			if err != nil {
				if c := errcode.Of(err); !c.Registered() || c.Layer() != "decode" {
					t.Fatalf("%s: error %v is not a registered decode code", rule, err)
				}
				continue
			}
			again, err := wire.Marshal(m)
			if err != nil {
				t.Fatalf("%s: accepted body does not encode: %v", rule, err)
			}
			if !bytes.Equal(again, *fr.Body) {
				t.Fatalf("%s: parse then marshal changed the bytes:\n%x\n%x", rule, *fr.Body, again)
			}
		}
	})
}
