package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/wire"
)

// TestAwaitKeepalive checks the keepalive verb's judgement (TRN-014) on
// devices whose frames a watching server reads, with an interval of
// 300 ms and 100 ms of grace instead of 30 s and 2 s.
func TestAwaitKeepalive(t *testing.T) {
	const interval, grace = 300 * time.Millisecond, 100 * time.Millisecond
	a := store.Address{Account: "bob", Device: 1}
	for _, tc := range []struct {
		name  string
		every time.Duration // how often the device sends a frame, 0: never
		typ   uint64
		then  func(e *embedded) // done once the wait has begun
		fail  string            // what the error says, "" for a pass
	}{
		{name: "pings", every: interval / 2, typ: wire.FramePing},
		{name: "talks without pinging", every: interval / 3, typ: wire.FrameAck},
		{name: "silent", fail: "sent no ping"},
		{name: "pings late", every: interval + 2*grace, typ: wire.FramePing, fail: "sent nothing for"},
		{name: "a frame after a long silence", then: func(e *embedded) {
			e.emu.Lock()
			e.frames[a].last = time.Now().Add(-2 * interval)
			e.emu.Unlock()
			e.frameRead(a, wire.FramePing)
		}, fail: "before its next frame"},
		{name: "connects again", every: interval / 2, typ: wire.FramePing, then: func(e *embedded) {
			e.frameRead(a, wire.FrameHello)
		}, fail: "connected again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &embedded{watch: true}
			e.frameRead(a, wire.FrameHello)
			ctx, cancel := context.WithTimeout(context.Background(), 10*interval)
			defer cancel()
			go func() {
				if tc.then != nil {
					time.Sleep(interval / 4)
					tc.then(e)
				}
				for tc.every > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(tc.every):
						e.frameRead(a, tc.typ)
					}
				}
			}()
			err := e.awaitKeepalive(ctx, a, time.Now(), interval, grace)
			switch {
			case tc.fail == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Errorf("got %v, want an error that says %q", err, tc.fail)
			}
		})
	}
	if err := new(embedded).awaitKeepalive(context.Background(), a, time.Now(), interval, grace); err == nil || !strings.Contains(err.Error(), "not seen it connect") {
		t.Errorf("a device never seen: got %v, want an error that says it was not seen", err)
	}
}
