package server_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/wire"
)

// BenchmarkSendOffline sends envelopes of one 256-byte message to a device
// that is offline, as the load tool's enqueue scenario does: 64 senders,
// each below the send rate limit (SEND_RATE), each send answered after the
// store has the envelope. The time per message is that of the senders'
// pace, not the server's speed; what it measures is the cost of a message
// in the whole process (the server and the senders' transport): the
// allocations (allocs/op, B/op), the CPU time (cpu-µs/op, user and
// system, from getrusage) and the goroutines started (goroutines/op: a
// device's request goroutine runs while its requests wait, so a send that
// arrives alone starts one).
//
// In the sub-benchmarks named "x4", each sender writes its sends four at a
// time (in one write, at a tenth of the rate), so that the server serves
// them together, as it does under load (sendMany).
func BenchmarkSendOffline(b *testing.B) {
	for _, kind := range []string{"mem", "bolt"} {
		for _, batch := range []int{1, 4} {
			name := kind
			if batch > 1 {
				name += fmt.Sprintf("x%d", batch)
			}
			b.Run(name, func(b *testing.B) {
				var st store.Store = mem.New()
				if kind == "bolt" {
					s, err := bolt.Open(b.TempDir() + "/store.db")
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { s.Close() })
					st = s
				}
				benchSendOffline(b, st, batch)
			})
		}
	}
}

func benchSendOffline(b *testing.B, st store.Store, batch int) {
	const senders, perSecond = 64, 40
	e := startWith(b, st, newClock(), func(c *server.Config) { c.Clock = time.Now })
	e.member("bob").close()
	devs := make([]*tdev, senders)
	for i := range devs {
		devs[i] = e.member(fmt.Sprintf("sender%02d", i))
	}
	ct := make([]byte, 256)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, g0 := cpuTime(b), goroutinesCreated()
	for i, d := range devs {
		wg.Go(func() {
			tick := time.NewTicker(time.Second * time.Duration(batch) / perSecond)
			defer tick.Stop()
			envelope := func(n int64) *wire.Envelope {
				mid := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(i)), uint64(n))
				return &wire.Envelope{Version: wire.ProtocolVersion, MessageID: mid, Sender: d.addr(), Recipient: "bob",
					Messages: []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: ct}},
					Type:     wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(time.Now().UnixMilli())}
			}
			for n := next.Add(int64(batch)); n-int64(batch) < int64(b.N); n = next.Add(int64(batch)) {
				if batch == 1 {
					var res wire.SendResult
					d.do(wire.FrameSend, envelope(n), &res)
				} else {
					frames := make([]*wire.Frame, batch)
					for k := range frames {
						body, err := wire.Marshal(envelope(n - int64(k)))
						if err != nil {
							b.Error(err)
							return
						}
						frames[k] = &wire.Frame{Version: wire.ProtocolVersion, Type: wire.FrameSend, Body: &body}
					}
					for _, f := range d.pipeline(frames) {
						if f.Type != wire.FrameResult {
							b.Errorf("pipelined send: got frame type %d, want a result", f.Type)
							return
						}
					}
				}
				<-tick.C
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	sent := (next.Load() - int64(senders)*int64(batch)) // each sender's last Add went past b.N
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Microsecond)/float64(sent), "cpu-µs/op")
	b.ReportMetric(float64(goroutinesCreated()-g0)/float64(sent), "goroutines/op")
	b.ReportMetric(0, "ns/op")
}

// goroutinesCreated returns how many goroutines the process has created.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// accounts makes n accounts, prefix0000 and on, in the store (their key
// is d's), for the members of large groups, and returns them as members.
func (e *env) accounts(d *tdev, prefix string, n int) []role {
	e.t.Helper()
	var out []role
	for i := range n {
		name := fmt.Sprintf("%s%04d", prefix, i)
		if err := e.st.CreateAccount(context.Background(), name, store.Device{ID: 1, IdentityKey: d.ik.Public().Encode(), Created: e.clock.Now()}); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, role{name, false})
	}
	return out
}

// BenchmarkGetGroupFormerMember measures what a get-group costs the server
// when the account asking was removed from a group of MAX_GROUP_MEMBERS
// members that has made 100 states since: the server serves it none
// (GRP-004), and the request is refused policy.not_member. Its CPU time per
// request (cpu-µs/op, user and system, from getrusage) is what an account
// removed from a large group can make the server spend at its request
// rate. Run it with -benchtime 20x or so: the device's request bucket
// (REQUEST_BURST) holds 40.
func BenchmarkGetGroupFormerMember(b *testing.B) {
	const since = 100
	e := startWith(b, mem.New(), newClock(), func(c *server.Config) { c.GroupStateBurst = -1 })
	a1, b1 := e.member("alice"), e.member("bob")
	all := append([]role{{"alice", true}, {"bob", false}}, e.accounts(a1, "member", wire.MaxGroupMembers-2)...)
	g := gid(9)
	for v := uint64(1); v <= 2+since; v++ {
		ms := all
		if v > 1 {
			ms = append(all[:1:1], all[2:]...) // bob removed at 2
		}
		if got := a1.setGroup(a1.state(g, v, members(ms...)).Signed); got != 0 {
			b.Fatalf("version %d: %v", v, got)
		}
	}
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		if code, _ := b1.try(wire.FrameGetGroup, &wire.GroupFetch{GroupID: g, From: 3}, new(wire.GroupHistory)); code != errcode.PolicyNotMember {
			b.Fatalf("bob's get-group from 3: got %v, want %v", code, errcode.PolicyNotMember)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
