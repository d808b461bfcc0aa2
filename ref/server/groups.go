package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// groupError is an error of spec chapter 16 that carries data in the
// error body: state.group_stale with the group's current signed state
// (field 7), or state.fanout_mismatch with the group devices (field 6).
type groupError struct {
	code    errcode.Code
	state   []byte             // with state.group_stale
	devices *wire.GroupDevices // with state.fanout_mismatch
}

func (e *groupError) Error() string { return "server: " + e.code.Error() }

// Unwrap returns the registered code.
func (e *groupError) Unwrap() error { return e.code }

// errorBody is transport.ErrorBody with the fields of a *groupError.
func errorBody(err error) *wire.ErrorBody {
	b := transport.ErrorBody(err)
	var ge *groupError
	if errors.As(err, &ge) {
		if ge.state != nil {
			b.GroupState = &ge.state
		}
		b.Group = ge.devices
	}
	return b
}

// decodeState decodes a signed group state the server stored, and so
// checked, before.
func decodeState(signed []byte) (*group.State, error) {
	var s wire.SignedGroupState
	if err := wire.Unmarshal(signed, &s); err != nil {
		return nil, fmt.Errorf("server: stored group state: %w", err)
	}
	var st wire.GroupState
	if err := wire.Unmarshal(s.State, &st); err != nil {
		return nil, fmt.Errorf("server: stored group state: %w", err)
	}
	return &group.State{GroupState: st, Raw: s.State, Signed: signed}, nil
}

// knownLists is what the server knows of accounts' device lists, for
// group.Parse: the primary key each account registered, and the lists it
// stored. A store failure is kept in err; the caller checks it.
type knownLists struct {
	ctx context.Context
	s   *Server
	err error
}

func (l *knownLists) fail(err error) {
	if l.err == nil && !errors.Is(err, store.ErrNotFound) {
		l.err = err
	}
}

// Recorded implements group.Lists.
func (l *knownLists) Recorded(account string) *keys.PublicKey {
	acct, err := l.s.cfg.Store.Account(l.ctx, account)
	if err != nil {
		l.fail(err)
		return nil
	}
	pk, err := l.s.registeredPrimary(acct)
	if err != nil {
		return nil
	}
	return &pk
}

// Accepted implements group.Lists.
func (l *knownLists) Accepted(account string, version uint64) *devices.List {
	signed, err := l.s.cfg.Store.DeviceListAt(l.ctx, account, version)
	if err != nil {
		l.fail(err)
		return nil
	}
	if signed == nil {
		return nil
	}
	list, err := devices.Parse(signed, account)
	if err != nil {
		l.fail(fmt.Errorf("server: stored device list of %s: %w", account, err))
		return nil
	}
	return list
}

// setGroup is set-group (GRP-002): the checks of GRP-001 with the server's
// current state as P, the author check after step 1 and the member check
// after step 6; then the state is stored. signed is the body's encoding.
func (c *conn) setGroup(ctx context.Context, b *wire.SignedGroupState, signed []byte) (wire.Message, error) {
	// Step 1: the field 1 and 3 encodings (the body's is decoded).
	var gs wire.GroupState
	if err := wire.Unmarshal(b.State, &gs); err != nil {
		return nil, err
	}
	var sdl wire.SignedDeviceList
	if err := wire.Unmarshal(b.DeviceList, &sdl); err != nil {
		return nil, err
	}
	if gs.Author.Account != c.addr.Account || gs.Author.Device != uint64(c.addr.Device) {
		return nil, errcode.AuthSenderMismatch
	}
	// Steps 2 and 3.
	lists := &knownLists{ctx: ctx, s: c.s}
	st, err := group.Parse(signed, nil, lists)
	if lists.err != nil {
		return nil, lists.err
	}
	if err != nil {
		return nil, err
	}
	// Step 4.
	signedPrev, current, err := c.s.cfg.Store.GroupState(ctx, st.GroupID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		current = 0
	case err != nil:
		return nil, err
	}
	var prev *group.State
	switch {
	case current == 0 && st.Serial != 1:
		return nil, fmt.Errorf("server: group %x version %d: %w", st.GroupID, st.Serial, errcode.StateUnknownGroup)
	case current > 0 && st.Serial <= current:
		// A version the server holds: a resend of it is ignored.
		held, _, err := c.s.cfg.Store.GroupStates(ctx, st.GroupID, st.Serial, 1)
		if err != nil {
			return nil, err
		}
		if len(held) == 1 {
			old, err := decodeState(held[0])
			if err != nil {
				return nil, err
			}
			if bytes.Equal(old.Raw, st.Raw) {
				return &wire.Empty{}, nil
			}
		}
		return nil, fmt.Errorf("server: group %x version %d, holding %d: %w", st.GroupID, st.Serial, current, errcode.StateGroupRollback)
	case current > 0:
		if prev, err = decodeState(signedPrev); err != nil {
			return nil, err
		}
	}
	// Steps 4 to 6.
	if err := group.Check(prev, st); err != nil {
		return nil, err
	}
	for _, m := range st.Members {
		if _, err := c.s.cfg.Store.Account(ctx, m.Account); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("server: group member %s: %w", m.Account, errcode.StateUnknownAccount)
		} else if err != nil {
			return nil, err
		}
	}
	// GRP-015, in the transaction that stores the state.
	budget := store.Budget{Account: c.addr.Account, Now: c.s.now(), Every: GroupStateEvery, Burst: GroupStateBurst}
	switch b := c.s.cfg.GroupStateBurst; {
	case faults.Has(faults.NoGroupStateBudget) || b < 0:
		budget.Burst = 0
	case b > 0:
		budget.Burst = b
	}
	err = c.s.cfg.Store.PutGroupState(ctx, st.GroupID, st.Serial, signed, st.Accounts(), budget)
	var spent *store.SpentError
	switch {
	case errors.As(err, &spent):
		return nil, &transport.RetryError{Code: errcode.PolicyRateLimited, After: max(spent.After, time.Millisecond)}
	case errors.Is(err, store.ErrConflict):
		// Another state of this version was stored since the check.
		return nil, fmt.Errorf("server: group %x version %d: %w", st.GroupID, st.Serial, errcode.StateGroupRollback)
	case errors.Is(err, store.ErrNotFound):
		return nil, errcode.StateUnknownGroup
	case err != nil:
		return nil, err
	}
	c.s.metrics.groupStates.Add(1)
	c.s.log.Info("group state", "group", fmt.Sprintf("%x", st.GroupID), "version", st.Serial,
		"members", len(st.Members), "author", c.addr.Account, "device", c.addr.Device)
	return &wire.Empty{}, nil
}

// maxHistoryBody is the most bytes of a group-history result: a frame
// (MAX_FRAME_SIZE) holds it with room for the frame's own fields.
const maxHistoryBody = wire.MaxFrameSize - 64

// getGroup is get-group (GRP-004): the states from the version asked for
// that the device's account may read: those whose member list, or whose
// previous state's member list, names it, and those between two states
// that name it (made while it was away from the group, to which it was
// then added again), so that its devices check every state in between
// (GRP-001, GRP-003). A state before the first that names the account is
// never served. Those are the versions from the first that names the
// account to the one after the last (its removal), which the store keeps
// (GroupSpan): no state is read that is not served, but for one that does
// not fit the answer's frame.
func (c *conn) getGroup(ctx context.Context, f *wire.GroupFetch) (wire.Message, error) {
	st := c.s.cfg.Store
	account := c.addr.Account
	first, last, current, err := st.GroupSpan(ctx, f.GroupID, account)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownGroup
	}
	if err != nil {
		return nil, err
	}
	end := min(last+1, current) // the state that removed it, or the current one
	res := &wire.GroupHistory{}
	size := 9             // the map, its key, and the array's head
	var prev *group.State // the mutant's: the state before the next one
	if start := max(f.From, first); faults.Has(faults.NoReaddGap) && first > 0 && start > first && start <= end {
		held, _, err := st.GroupStates(ctx, f.GroupID, start-1, 1)
		if err != nil || len(held) != 1 {
			return nil, fmt.Errorf("server: group %x: state %d: %v", f.GroupID, start-1, err)
		}
		if prev, err = decodeState(held[0]); err != nil {
			return nil, err
		}
	}
	for v := max(f.From, first); first > 0 && v <= end && len(res.States) < wire.MaxGroupStates; {
		// As many states as surely fit what is left of the frame, or one:
		// at most one state is read that the answer does not hold.
		n := min(end-v+1, uint64(wire.MaxGroupStates-len(res.States)),
			uint64(max(1, (maxHistoryBody-size)/(wire.SignedGroupStateBound+9))))
		held, _, err := st.GroupStates(ctx, f.GroupID, v, int(n))
		if err != nil {
			return nil, err
		}
		if len(held) == 0 {
			return nil, fmt.Errorf("server: group %x: no state of version %d of %d", f.GroupID, v, current)
		}
		for _, signed := range held {
			if faults.Has(faults.NoReaddGap) {
				// The mutant of GRP-004: not the states between two
				// that name the account.
				s, err := decodeState(signed)
				if err != nil {
					return nil, err
				}
				skip := !s.IsMember(account) && (prev == nil || !prev.IsMember(account)) && v > first
				if prev, v = s, v+1; skip {
					continue
				}
			} else {
				v++
			}
			if size+len(signed)+9 > maxHistoryBody || len(res.States) == wire.MaxGroupStates {
				v = end + 1 // full: the device asks again from the next version
				break
			}
			res.States = append(res.States, signed)
			size += len(signed) + 9
		}
	}
	if len(res.States) == 0 {
		return nil, fmt.Errorf("server: group %x from %d for %s: %w", f.GroupID, f.From, account, errcode.PolicyNotMember)
	}
	return res, nil
}

// groupDevices returns the group devices of a state for a sending device
// (section 16.4): the reachable devices of its member accounts but the
// sender, as a group-devices list and as addresses.
func (s *Server) groupDevices(ctx context.Context, st *group.State, sender store.Address) (wire.GroupDevices, []store.Address, error) {
	devs := wire.GroupDevices{}
	var addrs []store.Address
	for _, m := range st.Members {
		rec, err := s.recipient(ctx, m.Account)
		if errors.Is(err, store.ErrNotFound) {
			continue // accounts are never deleted; a member without one has no device
		}
		if err != nil {
			return nil, nil, err
		}
		ad := wire.AccountDevices{Account: m.Account}
		for _, id := range rec.reachable {
			a := store.Address{Account: m.Account, Device: id}
			if a == sender {
				continue
			}
			ad.Devices = append(ad.Devices, uint64(id))
			addrs = append(addrs, a)
		}
		if len(ad.Devices) > 0 {
			devs = append(devs, ad)
		}
	}
	return devs, addrs, nil
}

// checkGroupDevices is check 7 of GRP-009: it returns the group devices
// when the envelope's digest is theirs.
func (c *conn) checkGroupDevices(ctx context.Context, st *group.State, e *wire.GroupEnvelope) ([]store.Address, error) {
	devs, addrs, err := c.s.groupDevices(ctx, st, c.addr)
	if err != nil {
		return nil, err
	}
	digest, err := group.Digest(st.GroupID, devs)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(digest, e.Digest) {
		return nil, &groupError{code: errcode.StateFanoutMismatch, devices: &devs}
	}
	return addrs, nil
}

// sendGroup runs checks 3 to 10 of GRP-009 (1 and 2 are the request's) and
// queues the group message for every group device, as send does for an
// envelope (SRV-006 to SRV-008).
func (c *conn) sendGroup(ctx context.Context, e *wire.GroupEnvelope) (wire.Message, error) {
	p, err := c.prepareSendGroup(ctx, e)
	if err != nil {
		return nil, err
	}
	accepted, dup, err := c.s.cfg.Store.Enqueue(ctx, p.entries, c.s.cfg.Quota, p.forget)
	return p.finish(accepted, dup, err)
}

// prepareSendGroup runs checks 3 to 10 of GRP-009 and makes the entries.
func (c *conn) prepareSendGroup(ctx context.Context, e *wire.GroupEnvelope) (*pendingSend, error) {
	if e.Sender.Account != c.addr.Account || e.Sender.Device != uint64(c.addr.Device) {
		return nil, errcode.AuthSenderMismatch
	}
	signed, current, err := c.s.cfg.Store.GroupState(ctx, e.GroupID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownGroup
	}
	if err != nil {
		return nil, err
	}
	st, err := decodeState(signed)
	if err != nil {
		return nil, err
	}
	if !st.IsMember(c.addr.Account) && !faults.Has(faults.NonMemberGroupSend) {
		return nil, errcode.PolicyNotMember
	}
	if e.Serial != current {
		return nil, &groupError{code: errcode.StateGroupStale, state: signed}
	}
	to, err := c.checkGroupDevices(ctx, st, e)
	if err != nil {
		return nil, err
	}
	now := c.s.now()
	if err := c.checkSentAt(ctx, e.MessageID, e.SentAt, now); err != nil {
		return nil, err
	}
	// Check 9 (GRP-014), on the server's clock, so that tests can move it.
	if len(to) > 0 && !faults.Has(faults.NoFanoutLimit) {
		if err := take(c.fanoutLimit, len(to), now); err != nil {
			return nil, err
		}
	}
	expires := now.Add(time.Duration(e.TTL) * time.Second)
	entries := make([]store.Entry, len(to))
	for i, a := range to {
		entries[i] = store.Entry{
			Recipient: a,
			MessageID: e.MessageID,
			Sender:    c.addr,
			Type:      wire.EnvelopeChat, Priority: uint8(e.Priority), Kind: wire.KindGroup,
			Ciphertext: e.Message,
			SentAt:     e.SentAt,
			AcceptedAt: now,
			ExpiresAt:  expires,
		}
	}
	forget := now.Add(AcceptMemory)
	if c.s.cfg.ForgetAccepted {
		forget = now
	}
	finish := func(accepted time.Time, dup bool, err error) (wire.Message, error) {
		if errors.Is(err, store.ErrQuota) {
			return nil, errcode.PolicyQuotaExceeded
		}
		if errors.Is(err, store.ErrNotFound) {
			// A group device was removed since check 7: check again, which
			// now refuses the digest.
			for _, a := range to {
				c.s.recipients.drop(a.Account)
			}
			if _, ferr := c.checkGroupDevices(ctx, st, e); ferr != nil {
				return nil, ferr
			}
		}
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			accepted = now // no group device: nothing to store
		}
		if dup {
			c.s.metrics.duplicates.Add(1)
		} else {
			c.s.metrics.groupAccepted.Add(1)
			c.s.metrics.fanout.observeValue(float64(len(entries)))
			c.s.handOver(entries)
		}
		return &wire.SendResult{AcceptedAt: uint64(accepted.UnixMilli())}, nil
	}
	return &pendingSend{entries: entries, forget: forget, finish: finish}, nil
}
