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
	for _, tc := range []struct {
		name  string
		every time.Duration // how often the device sends a frame, 0: once
		typ   uint64
		fail  string // what the error says, "" for a pass
	}{
		{"pings", interval, wire.FramePing, ""},
		{"talks without pinging", interval / 3, wire.FrameAck, ""},
		{"silent", 0, 0, "no ping"},
		{"pings late", interval + 2*grace, wire.FramePing, "sent nothing for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &embedded{watch: true}
			a := store.Address{Account: "bob", Device: 1}
			e.frameRead(a, wire.FrameHello)
			ctx, cancel := context.WithTimeout(context.Background(), 10*interval)
			defer cancel()
			if tc.every > 0 {
				go func() {
					for {
						select {
						case <-ctx.Done():
							return
						case <-time.After(tc.every):
							e.frameRead(a, tc.typ)
						}
					}
				}()
			}
			err := e.awaitKeepalive(ctx, a, time.Now(), interval, grace)
			switch {
			case tc.fail == "" && err != nil:
				t.Errorf("got %v, want a pass", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Errorf("got %v, want an error that says %q", err, tc.fail)
			}
		})
	}
}
