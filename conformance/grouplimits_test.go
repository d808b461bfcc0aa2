package conformance

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/mem"
	"github.com/missive-protocol/missive/ref/transport"
)

// slowCommits is a store whose every write of queue entries takes commit
// more, as a disk whose sync is slow would: one wait per call, however
// many entries (or Enqueue calls, in EnqueueMany) it holds.
type slowCommits struct {
	*mem.Store
	commit time.Duration
}

func (s slowCommits) Enqueue(ctx context.Context, entries []store.Entry, q store.Quota, forget time.Time) (time.Time, bool, error) {
	time.Sleep(s.commit)
	return s.Store.Enqueue(ctx, entries, q, forget)
}

func (s slowCommits) EnqueueMany(ctx context.Context, calls []store.EnqueueCall) []store.EnqueueResult {
	time.Sleep(s.commit)
	return s.Store.EnqueueMany(ctx, calls)
}

// TestRawGroupFanoutSlowServer: the reference server, whose commits of
// queue entries take 40 ms each (a disk of slow syncs, a loaded machine),
// passes the group-fanout case: the refill of its bucket on its real clock
// during the case is no failure of GRP-014.
func TestRawGroupFanoutSlowServer(t *testing.T) {
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: slowCommits{mem.New(), 40 * time.Millisecond}, Static: static, RegisterBurst: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := transport.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = rawGroupFanout(ctx, ln.Addr().String(), "-slow", time.Now())
	if errcode.Of(err) != errcode.PolicyRateLimited {
		t.Errorf("group-fanout against the reference server with slow commits: got %v, want %v", err, errcode.PolicyRateLimited)
	}
}
