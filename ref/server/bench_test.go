package server_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
// allocations (allocs/op, B/op) and the CPU time (cpu-µs/op, user and
// system, from getrusage).
func BenchmarkSendOffline(b *testing.B) {
	for _, kind := range []string{"mem", "bolt"} {
		b.Run(kind, func(b *testing.B) {
			var st store.Store = mem.New()
			if kind == "bolt" {
				s, err := bolt.Open(b.TempDir() + "/store.db")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				st = s
			}
			benchSendOffline(b, st)
		})
	}
}

func benchSendOffline(b *testing.B, st store.Store) {
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
	cpu0 := cpuTime(b)
	for i, d := range devs {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / perSecond)
			defer tick.Stop()
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				mid := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(i)), uint64(n))
				env := &wire.Envelope{Version: wire.ProtocolVersion, MessageID: mid, Sender: d.addr(), Recipient: "bob",
					Messages: []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: ct}},
					Type:     wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(time.Now().UnixMilli())}
				var res wire.SendResult
				d.do(wire.FrameSend, env, &res)
				<-tick.C
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	b.ReportMetric(0, "ns/op")
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
