package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// pipeline writes requests in one write, so that the server finds them
// waiting together, and returns their answers in order.
func (d *tdev) pipeline(reqs []*wire.Frame) []*wire.Frame {
	d.t.Helper()
	chans := make([]chan *wire.Frame, len(reqs))
	var encs [][]byte
	d.mu.Lock()
	for i, f := range reqs {
		d.next++
		id := d.next
		f.RequestID = &id
		chans[i] = make(chan *wire.Frame, 1)
		d.waiting[id] = chans[i]
		enc, err := wire.Marshal(f)
		if err != nil {
			d.mu.Unlock()
			d.t.Fatal(err)
		}
		encs = append(encs, enc)
	}
	d.mu.Unlock()
	if err := d.c.WriteFrames(encs); err != nil {
		d.t.Fatal(err)
	}
	var out []*wire.Frame
	for i, ch := range chans {
		select {
		case f := <-ch:
			out = append(out, f)
		case <-d.done:
			// Closed: the answers that came before are in their channels
			// (the reader routes them before it ends); the rest never come.
			for _, ch := range chans[i:] {
				select {
				case f := <-ch:
					out = append(out, f)
				default:
					return out
				}
			}
			return out
		case <-time.After(10 * time.Second):
			d.t.Fatalf("no answer to request %d of the pipeline", i)
		}
	}
	return out
}

// sendFrame is a send request from d to account's device 1.
func (d *tdev) sendFrame(t *testing.T, to, id string, devices ...uint64) *wire.Frame {
	t.Helper()
	if len(devices) == 0 {
		devices = []uint64{1}
	}
	env := &wire.Envelope{Version: 1, MessageID: bytes.Repeat([]byte(id), 16)[:16],
		Sender: wire.Address{Account: d.a.name, Device: uint64(d.id)}, Recipient: to,
		Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: 1}
	for _, dev := range devices {
		env.Messages = append(env.Messages, wire.DeviceMessage{Device: dev, Kind: wire.KindRatchet, Ciphertext: []byte(id)})
	}
	body := mustMarshal(t, env)
	return &wire.Frame{Version: 1, Type: wire.FrameSend, Body: &body}
}

// TestPipelinedSends sends requests (send and send-group) that wait
// together at the server,
// which serves them in one store write, and checks that each gets the
// answer it would get alone, in order, and that the recipient's queue
// holds the accepted ones in the order sent. A request whose body does
// not decode closes the connection after the answers before it, and what
// follows it is not served.
func TestPipelinedSends(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   func(t *testing.T) store.Store
	}{
		{"mem", func(*testing.T) store.Store { return mem.New() }},
		{"bolt", func(t *testing.T) store.Store {
			st, err := bolt.Open(t.TempDir() + "/store.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startWith(t, tc.st(t), newClock(), nil)
			alice, bob := e.member("alice"), e.member("bob")
			g := groupOf(t, 7, alice, "bob")
			bob.close()
			garbage := []byte{0xff}
			groupFrame := func(dg []byte, n byte, text string) *wire.Frame {
				env := alice.envelope(g, 1, dg, n)
				env.Message = []byte(text)
				body := mustMarshal(t, env)
				return &wire.Frame{Version: 1, Type: wire.FrameSendGroup, Body: &body}
			}
			dg := digest(t, g, wire.GroupDevices{{Account: "bob", Devices: []uint64{1}}})
			answers := alice.pipeline([]*wire.Frame{
				alice.sendFrame(t, "bob", "a"),
				groupFrame(dg, 'G', "G"),
				alice.sendFrame(t, "bob", "b"),
				alice.sendFrame(t, "bob", "a"), // a resend: the same answer, nothing stored
				alice.sendFrame(t, "bob", "c", 1, 2),
				groupFrame(make([]byte, 32), 'H', "H"), // a wrong digest
				alice.sendFrame(t, "nobody", "d"),
				alice.sendFrame(t, "bob", "e"),
			})
			want := []errcode.Code{0, 0, 0, 0, errcode.StateFanoutMismatch, errcode.StateFanoutMismatch, errcode.StateUnknownAccount, 0}
			if len(answers) != len(want) {
				t.Fatalf("got %d answers, want %d", len(answers), len(want))
			}
			var firstAt uint64
			for i, f := range answers {
				if got := answerCode(t, f); got != want[i] {
					t.Errorf("answer %d: got %v, want %v", i, got, want[i])
				}
				if i == 0 || i == 3 {
					var r wire.SendResult
					if err := transport.DecodeBody(f, &r); err != nil {
						t.Fatal(err)
					}
					if i == 0 {
						firstAt = r.AcceptedAt
					} else if r.AcceptedAt != firstAt {
						t.Errorf("resend: accepted at %d, want the first acceptance %d", r.AcceptedAt, firstAt)
					}
				}
			}
			// A malformed body in the middle: the answers before it, its
			// error, then the connection closes; "g" is never served.
			bad := &wire.Frame{Version: 1, Type: wire.FrameSend, Body: &garbage}
			answers = alice.pipeline([]*wire.Frame{alice.sendFrame(t, "bob", "f"), bad, alice.sendFrame(t, "bob", "g")})
			if len(answers) != 2 || answerCode(t, answers[0]) != 0 || answerCode(t, answers[1]).Layer() != "decode" {
				t.Fatalf("got %d answers, want a result and a decode error", len(answers))
			}
			<-alice.done
			es, err := e.st.Pending(context.Background(), store.Address{Account: "bob", Device: 1}, e.clock.Now(), nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for i, en := range es {
				got += string(en.Ciphertext)
				if i > 0 && en.QueueID <= es[i-1].QueueID {
					t.Errorf("queue ids not increasing: %d after %d", en.QueueID, es[i-1].QueueID)
				}
			}
			if got != "aGbef" {
				t.Errorf("bob's queue: got %q, want %q", got, "aGbef")
			}
		})
	}
}

func answerCode(t *testing.T, f *wire.Frame) errcode.Code {
	t.Helper()
	if f.Type == wire.FrameResult {
		return 0
	}
	var b wire.ErrorBody
	if err := transport.DecodeBody(f, &b); err != nil {
		t.Fatal(err)
	}
	return errcode.Code(b.Code)
}
