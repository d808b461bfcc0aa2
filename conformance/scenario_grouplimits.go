package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// fanoutMembers is the number of member accounts of rawGroupFanout's
// group, each with one device: FANOUT_BURST spends at 40 group messages,
// and a server that refills the bucket as time passes adds 20 a second,
// while the send rate lets 100 and 50 a second more: the fan-out's
// refusal comes first.
const fanoutMembers = 256

// rawGroupFanout's group messages unanswered at once, and how long it
// sends them: a server that takes more than FANOUT_BURST and FANOUT_RATE
// allow is seen as soon as it does; one that answers fewer than about 24
// group messages a second is too slow to tell from a bound.
const (
	fanoutWindow = 16
	fanoutFor    = 10 * time.Second
)

// rawGroupFanout registers fanoutMembers reachable accounts and one more,
// whose device creates a group of them all and sends it group messages,
// pipelined, until one is refused, which must come after FANOUT_BURST /
// fanoutMembers of them and before the server has taken more than
// FANOUT_BURST and FANOUT_RATE allow for the time since the first went
// (GRP-014), with a retry time of at most fanoutMembers / FANOUT_RATE. It
// returns that refusal, or an error of no code.
func rawGroupFanout(ctx context.Context, addr, ns string, now time.Time) error {
	names := make([]string, fanoutMembers)
	err := onRawConns(ctx, addr, ns, fanoutMembers, 16, func(i int, r *rawConn) error {
		names[i] = r.fresh
		_, err := r.makeReachable(ctx, now, 1)
		return err
	})
	if err != nil {
		return fmt.Errorf("the group's members: %v", err)
	}
	r, _, err := reachableAccount(ctx, addr, ns, now, 1)
	if err != nil {
		return err
	}
	defer r.close()
	slices.Sort(names)
	ms := []wire.GroupMember{{Account: r.fresh, Role: wire.RoleAdmin}}
	devs := wire.GroupDevices{}
	for _, n := range names {
		ms = append(ms, wire.GroupMember{Account: n, Role: wire.RoleMember})
		devs = append(devs, wire.AccountDevices{Account: n, Devices: []uint64{1}})
	}
	slices.SortFunc(ms, func(a, b wire.GroupMember) int { return strings.Compare(a.Account, b.Account) })
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	id := uint64(3) // the request ids reachableAccount used
	if err := r.setGroup(ctx, &id, gid, 1, ms, now); err != nil {
		return fmt.Errorf("set-group of %d members: %v", len(ms), err)
	}
	digest, err := group.Digest(gid, devs)
	if err != nil {
		return err
	}
	// The group messages go pipelined, fanoutWindow of them unanswered at
	// once, so that what the case sees is the server's time per message,
	// not a round trip's. The server's clock runs while they go: however
	// slow it is, it may have taken no more than FANOUT_BURST and
	// FANOUT_RATE for the time since the first was written (with a
	// message and 1% of slack), and must refuse none of the first
	// FANOUT_BURST / fanoutMembers.
	at := server.FanoutBurst / fanoutMembers
	var (
		start                    = time.Now()
		written, answered, taken int
		next                     = id + 1 // the request id of the next answer
	)
	for {
		for time.Since(start) < fanoutFor && written-answered < fanoutWindow {
			env := &wire.GroupEnvelope{Version: wire.ProtocolVersion, MessageID: make([]byte, 16), Sender: wire.Address{Account: r.fresh, Device: 1},
				GroupID: gid, Serial: 1, Digest: digest, Message: []byte("a group message"), Priority: wire.PriorityNormal,
				TTL: 3600, SentAt: uint64(now.UnixMilli())}
			rand.Read(env.MessageID)
			id++
			if err := r.tc.Send(wire.FrameSendGroup, id, env); err != nil {
				return fmt.Errorf("group message %d: %v", written+1, err)
			}
			written++
		}
		if answered == written {
			return fmt.Errorf("%d group messages to %d devices each taken in %v, none refused: too slow to tell a fan-out bucket (FANOUT_BURST %d, FANOUT_RATE %d) from none",
				taken, fanoutMembers, time.Since(start).Round(time.Millisecond), server.FanoutBurst, server.FanoutRate)
		}
		f, err := r.answer(ctx)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		if got := transport.RequestID(f); got != next {
			return fmt.Errorf("an answer to request %d while waiting for %d", got, next)
		}
		next++
		answered++
		if f.Type == wire.FrameResult {
			taken++
			if bound := server.FanoutBurst + fanoutMembers + int(float64(server.FanoutRate)*elapsed.Seconds()*1.01); taken*fanoutMembers > bound {
				return fmt.Errorf("%d group messages to %d devices each taken in %v: %d group devices, want at most FANOUT_BURST (%d) and FANOUT_RATE (%d a second) for the time",
					taken, fanoutMembers, elapsed.Round(time.Millisecond), taken*fanoutMembers, server.FanoutBurst, server.FanoutRate)
			}
			continue
		}
		re, err := refusal(f)
		switch {
		case err != nil:
			return err
		case errcode.Of(re) != errcode.PolicyRateLimited:
			return fmt.Errorf("group message %d to %d devices: %w", answered, fanoutMembers, re)
		case taken < at:
			return fmt.Errorf("group message %d to %d devices refused (%v), want FANOUT_BURST / %d = %d taken", answered, fanoutMembers, re, fanoutMembers, at)
		case re.Body.RetryAfter == nil || time.Duration(*re.Body.RetryAfter)*time.Millisecond > time.Second*fanoutMembers/server.FanoutRate+time.Millisecond:
			return fmt.Errorf("group message %d to %d devices refused with a retry time of %v ms, want one of at most %d / FANOUT_RATE", answered, fanoutMembers, re.Body.RetryAfter, fanoutMembers)
		}
		return re
	}
}

// rawGroupStates registers a reachable account, whose device creates
// GROUP_STATE_BURST groups, each of it alone, then one more, which the
// server must refuse policy.rate_limited with a retry time of at most
// GROUP_STATE_RATE (GRP-015); the state of its first group sent again is a
// duplicate, which takes no token, answered empty. Refusals of the request
// rate (a retry time under requestRetryMost) are waited out. It returns the
// refusal, or an error of no code.
func rawGroupStates(ctx context.Context, addr, ns string, now time.Time) error {
	r, _, err := reachableAccount(ctx, addr, ns, now, 1)
	if err != nil {
		return err
	}
	defer r.close()
	id := uint64(3) // the request ids reachableAccount used
	ms := []wire.GroupMember{{Account: r.fresh, Role: wire.RoleAdmin}}
	var first []byte
	create := func() error {
		gid := make([]byte, wire.GroupIDSize)
		rand.Read(gid)
		if first == nil {
			first = gid
		}
		return r.setGroup(ctx, &id, gid, 1, ms, now)
	}
	for n := 1; n <= server.GroupStateBurst; n++ {
		if err := create(); err != nil {
			return fmt.Errorf("group %d of GROUP_STATE_BURST (%d): %v", n, server.GroupStateBurst, err)
		}
	}
	refused := create()
	var re *transport.RemoteError
	switch {
	case refused == nil:
		return fmt.Errorf("group %d after GROUP_STATE_BURST: taken", server.GroupStateBurst+1)
	case !errors.As(refused, &re) || re.Body.RetryAfter == nil || *re.Body.RetryAfter == 0 ||
		time.Duration(*re.Body.RetryAfter)*time.Millisecond > server.GroupStateEvery:
		return fmt.Errorf("group %d after GROUP_STATE_BURST: got %v, want %v with a retry time of at most GROUP_STATE_RATE (%v)",
			server.GroupStateBurst+1, refused, errcode.PolicyRateLimited, server.GroupStateEvery)
	}
	if err := r.setGroup(ctx, &id, first, 1, ms, now); err != nil {
		return fmt.Errorf("the first group's state again (a duplicate) with the bucket spent: %v", err)
	}
	return refused
}

// requestRetryMost bounds the retry times that setGroup waits out: the
// request rate's, under a second, or a few seconds from a server that
// rounds them up; GROUP_STATE_RATE's, a token 300 s away less the seconds
// the case has run, is above it.
const requestRetryMost = 10_000 // ms

// setGroup signs version v of group gid with the members ms, as device 1
// of r's account (makeReachable's list), and sends it in a set-group of
// request id *id + 1, waiting out refusals of the request rate.
func (r *rawConn) setGroup(ctx context.Context, id *uint64, gid []byte, v uint64, ms []wire.GroupMember, now time.Time) error {
	st, err := group.Sign(r.ik, wire.Address{Account: r.fresh, Device: 1}, r.list, gid, v, ms, "", uint64(now.UnixMilli()), rand.Reader)
	if err != nil {
		return err
	}
	var body wire.SignedGroupState
	if err := wire.Unmarshal(st.Signed, &body); err != nil {
		return err
	}
	for {
		*id++
		err := r.call(ctx, wire.FrameSetGroup, *id, &body, new(wire.Empty))
		var re *transport.RemoteError
		if !errors.As(err, &re) || errcode.Of(err) != errcode.PolicyRateLimited || re.Body.RetryAfter == nil || *re.Body.RetryAfter >= requestRetryMost {
			return err
		}
		select {
		case <-time.After(time.Duration(*re.Body.RetryAfter) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
