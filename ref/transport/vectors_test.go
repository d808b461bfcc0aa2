package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
)

type handshakeMessage struct {
	From    string      `json:"from"`
	Message vectest.Hex `json:"message"`
}

type segment struct {
	From      string      `json:"from"`
	Plaintext vectest.Hex `json:"plaintext"`
	Segment   vectest.Hex `json:"segment"`
	Expect    string      `json:"expect"`
	Error     string      `json:"error"`
}

type transportCase struct {
	vectest.Common
	Pattern                   string             `json:"pattern"`
	Preamble                  vectest.Hex        `json:"preamble"`
	InitiatorStaticPrivate    vectest.Hex        `json:"initiator_static_private"`
	ResponderStaticPrivate    vectest.Hex        `json:"responder_static_private"`
	InitiatorEphemeralPrivate vectest.Hex        `json:"initiator_ephemeral_private"`
	ResponderEphemeralPrivate vectest.Hex        `json:"responder_ephemeral_private"`
	Handshake                 []handshakeMessage `json:"handshake"`
	HandshakeHash             vectest.Hex        `json:"handshake_hash"`
	Segments                  []segment          `json:"segments"`
}

func dhKey(t *testing.T, priv []byte) noise.DHKey {
	t.Helper()
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	return noise.DHKey{Private: priv, Public: pub}
}

// recorder keeps what is written to a connection.
type recorder struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(b)
	r.mu.Unlock()
	return r.Conn.Write(b)
}

func (r *recorder) take() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := bytes.Clone(r.buf.Bytes())
	r.buf.Reset()
	return b
}

func prefixed(m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...)
}

// frames splits a frame stream into frame encodings.
func frames(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(stream) > 0 {
		if len(stream) < 4 {
			t.Fatalf("stream ends inside a frame length")
		}
		n := binary.BigEndian.Uint32(stream)
		if uint32(len(stream)-4) < n {
			t.Fatalf("stream ends inside a frame")
		}
		out = append(out, stream[4:4+n])
		stream = stream[4+n:]
	}
	return out
}

// TestVectors runs vectors/v1/transport.json through this package's Client
// and Server over an in-memory connection, and compares every byte they
// put on the wire with the vector.
func TestVectors(t *testing.T) {
	f := vectest.Load[transportCase](t, "transport")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			c.Want(t)
			for i, s := range c.Segments {
				if s.Expect == "" && s.Error == "" {
					continue
				}
				sc := vectest.Common{ID: fmt.Sprintf("%s segment %d", c.ID, i), Expect: s.Expect, Error: s.Error}
				if sc.Want(t) == 0 {
					t.Fatalf("segment %d: expect %q; only a segment that fails has expect and error", i, s.Expect)
				}
			}
			ini, res := dhKey(t, c.InitiatorStaticPrivate), dhKey(t, c.ResponderStaticPrivate)
			cfg := &ClientConfig{Static: ini, Rand: bytes.NewReader(c.InitiatorEphemeralPrivate)}
			switch c.Pattern {
			case "IK":
				cfg.ServerKey = res.Public
			case "XX":
			default:
				t.Fatalf("unknown pattern %q", c.Pattern)
			}
			a, b := net.Pipe()
			ca, cb := &recorder{Conn: a}, &recorder{Conn: b}
			type result struct {
				c   *Conn
				err error
			}
			done := make(chan result, 1)
			go func() {
				conn, err := Client(ca, cfg)
				done <- result{conn, err}
			}()
			server, err := Server(cb, &ServerConfig{Static: res, Rand: bytes.NewReader(c.ResponderEphemeralPrivate)})
			if err != nil {
				t.Fatalf("server handshake: %v", err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("client handshake: %v", r.err)
			}
			client := r.c
			defer client.Close()
			defer server.Close()

			var wantI, wantR []byte
			wantI = append(wantI, c.Preamble...)
			for _, m := range c.Handshake {
				if m.From == "initiator" {
					wantI = append(wantI, prefixed(m.Message)...)
				} else {
					wantR = append(wantR, prefixed(m.Message)...)
				}
			}
			if got := ca.take(); !bytes.Equal(got, wantI) {
				t.Errorf("initiator's handshake bytes:\ngot  %x\nwant %x", got, wantI)
			}
			if got := cb.take(); !bytes.Equal(got, wantR) {
				t.Errorf("responder's handshake bytes:\ngot  %x\nwant %x", got, wantR)
			}
			if !bytes.Equal(client.HandshakeHash(), c.HandshakeHash) || !bytes.Equal(server.HandshakeHash(), c.HandshakeHash) {
				t.Errorf("handshake hash: got %x and %x, want %x", client.HandshakeHash(), server.HandshakeHash(), []byte(c.HandshakeHash))
			}
			runSegments(t, c.Flags, c.Segments, client, server, ca, cb)
		})
	}
}

// runSegments replays the segments in order: the frames of each sender's
// stream are written with WriteFrame and must produce exactly the vector's
// segments; the receiver reads them back. An invalid segment is injected
// as raw bytes and must fail to decrypt, and its plaintext must be the one
// the case's attack made it from (checkAttack).
func runSegments(t *testing.T, flags []string, segs []segment, client, server *Conn, ca, cb *recorder) {
	side := func(from string) (w, r *Conn, rec *recorder) {
		if from == "initiator" {
			return client, server, ca
		}
		return server, client, cb
	}
	for i := 0; i < len(segs); {
		s := segs[i]
		w, r, rec := side(s.From)
		if s.Expect == "invalid" {
			if err := checkAttack(flags, segs, i, w.send); err != nil {
				t.Errorf("segment %d: %v", i, err)
			}
			go w.writeRaw(prefixed(s.Segment))
			if _, err := r.ReadFrame(); !errors.Is(err, ErrChannel) {
				t.Errorf("segment %d: got %v, want a decryption failure", i, err)
			}
			// A channel failure carries no detail (TRN-007): its code is
			// auth.decrypt_failed, whatever failed.
			if s.Error != errcode.AuthDecryptFailed.String() {
				t.Errorf("segment %d: the vector wants %s; a channel failure is %v", i, s.Error, errcode.AuthDecryptFailed)
			}
			return // the receiver closes the connection (TRN-007)
		}
		// Gather the consecutive valid segments of one sender that end on a
		// frame boundary.
		var stream, want []byte
		j := i
		for ; j < len(segs) && segs[j].From == s.From && segs[j].Expect != "invalid"; j++ {
			stream = append(stream, segs[j].Plaintext...)
			want = append(want, prefixed(segs[j].Segment)...)
		}
		fs := frames(t, stream)
		errc := make(chan error, 1)
		go func() {
			for _, f := range fs {
				if err := w.WriteFrame(f); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for k, f := range fs {
			got, err := r.ReadFrame()
			if err != nil || !bytes.Equal(got, f) {
				t.Fatalf("segments %d..%d: frame %d: got %x (%v)", i, j-1, k, got, err)
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); !bytes.Equal(got, want) {
			t.Errorf("segments %d..%d from %s:\ngot  %x\nwant %x", i, j-1, s.From, got, want)
		}
		i = j
	}
}

// attacks are the flags of transport.json that name how its invalid
// segment was made (spec/09-vectors.md).
var attacks = []string{"replayed", "reordered", "reflected", "altered", "truncated"}

// checkAttack checks the plaintext of segs[i], a segment that must fail,
// against the attack its case's flag names: it is the plaintext of the
// segment the attack was made from (spec 9.2). A replayed segment repeats
// an earlier segment of the same sender, a reflected one an earlier
// segment of the other side, and the plaintext is that segment's. A
// reordered segment is the encryption of the plaintext under the sender's
// nonce after next; an altered one differs from its encryption under the
// sender's next nonce in one bit, and a truncated one is a proper prefix
// of that encryption, shorter than a tag. send is the sender's cipher
// state after its valid segments.
func checkAttack(flags []string, segs []segment, i int, send *noise.CipherState) error {
	var attack string
	for _, f := range flags {
		if slices.Contains(attacks, f) {
			if attack != "" {
				return fmt.Errorf("flags %q and %q: want one attack", attack, f)
			}
			attack = f
		}
	}
	s := segs[i]
	seal := func(n uint64) []byte { return send.Cipher().Encrypt(nil, n, nil, s.Plaintext) }
	switch attack {
	case "replayed", "reflected":
		for k, e := range segs[:i] {
			if e.Expect != "" || !bytes.Equal(e.Segment, s.Segment) {
				continue
			}
			switch {
			case attack == "replayed" && e.From != s.From:
				return fmt.Errorf("replayed: repeats segment %d, from %s, not one of its sender %s", k, e.From, s.From)
			case attack == "reflected" && e.From == s.From:
				return fmt.Errorf("reflected: repeats segment %d of its own sender %s, not one of the other side", k, s.From)
			}
			if !bytes.Equal(e.Plaintext, s.Plaintext) {
				return fmt.Errorf("%s: plaintext %x; segment %d, which it repeats, has %x", attack, []byte(s.Plaintext), k, []byte(e.Plaintext))
			}
			return nil
		}
		return fmt.Errorf("%s: repeats no earlier valid segment", attack)
	case "reordered":
		if got := seal(send.Nonce() + 1); !bytes.Equal(got, s.Segment) {
			return fmt.Errorf("reordered: the plaintext under the nonce after next encrypts to %x, want the segment %x", got, []byte(s.Segment))
		}
	case "altered":
		got := seal(send.Nonce())
		if len(got) != len(s.Segment) {
			return fmt.Errorf("altered: the plaintext encrypts to %d bytes, want %d, the segment's", len(got), len(s.Segment))
		}
		diff := 0
		for k := range got {
			diff += bits.OnesCount8(got[k] ^ s.Segment[k])
		}
		if diff != 1 {
			return fmt.Errorf("altered: the plaintext encrypts to %x, %d bits from the segment %x; want 1", got, diff, []byte(s.Segment))
		}
	case "truncated":
		got := seal(send.Nonce())
		if len(s.Segment) >= tagSize || !bytes.HasPrefix(got, s.Segment) {
			return fmt.Errorf("truncated: the plaintext encrypts to %x; want the segment %x (shorter than a tag) a prefix of it", got, []byte(s.Segment))
		}
	case "":
		return fmt.Errorf("no flag names the attack (one of %q)", attacks)
	}
	return nil
}
