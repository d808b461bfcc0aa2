package server

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// presence tracks which accounts are online and who follows them (spec
// section 13.7).
type presence struct {
	s         *Server
	pushMu    sync.Mutex // serializes changed
	mu        sync.Mutex
	online    map[string]int            // connected devices per account
	followers map[string]map[*conn]view // subscribed connections per account, with what each was last given
	seen      map[string]time.Time      // last-seen times not stored yet (SRV-022)
}

func newPresence(s *Server) *presence {
	return &presence{s: s, online: map[string]int{}, followers: map[string]map[*conn]view{}, seen: map[string]time.Time{}}
}

// seenWriters bounds the last-seen writes a flush runs at once; they share
// the store's group commits.
const seenWriters = 32

// flushSeen stores the last-seen times held in memory (SRV-022): the
// server's sweep calls it every second, and Shutdown once the connections
// have ended. A time stays held, and shown from memory, until it is
// stored; one that fails to store is tried again by the next flush.
func (p *presence) flushSeen(ctx context.Context) {
	p.mu.Lock()
	held := maps.Clone(p.seen)
	p.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, seenWriters)
	for account, t := range held {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := p.s.cfg.Store.SetLastSeen(ctx, account, t); err != nil {
				p.s.log.Error("last seen", "account", account, "err", err)
				return
			}
			p.mu.Lock()
			if p.seen[account].Equal(t) { // not a later one, come meanwhile
				delete(p.seen, account)
			}
			p.mu.Unlock()
		}()
	}
	wg.Wait()
}

func (p *presence) connected(c *conn) {
	p.mu.Lock()
	p.online[c.addr.Account]++
	first := p.online[c.addr.Account] == 1
	p.mu.Unlock()
	if first {
		p.changed(c.addr.Account)
	}
}

// disconnected forgets what a connection follows and, when it was its
// device's connection (current; not one a newer connection of the device
// replaced), counts the device off.
func (p *presence) disconnected(c *conn, current bool) {
	p.mu.Lock()
	last := false
	if current {
		p.online[c.addr.Account]--
		last = p.online[c.addr.Account] <= 0
		if last {
			delete(p.online, c.addr.Account)
		}
	}
	for acct := range c.subs {
		delete(p.followers[acct], c)
		if len(p.followers[acct]) == 0 {
			delete(p.followers, acct)
		}
	}
	if last {
		// Held in memory, stored by the next flush (SRV-022): a store
		// write with its sync for every disconnect would cost a reconnect
		// storm a sixth of its rate.
		p.seen[c.addr.Account] = p.s.now()
	}
	p.mu.Unlock()
	if last {
		p.changed(c.addr.Account)
	}
}

// visible reports whether subscriber may see what vis protects of account.
func (p *presence) visible(ctx context.Context, account, subscriber string, vis uint8) bool {
	switch vis {
	case wire.VisibilityEveryone:
		return true
	case wire.VisibilityContacts:
		contacts, err := p.s.cfg.Store.Contacts(ctx, account)
		return err == nil && slices.Contains(contacts, subscriber)
	}
	return false
}

// update returns the presence of account as subscriber may see it.
func (p *presence) update(ctx context.Context, account, subscriber string) (*wire.PresenceUpdate, error) {
	priv, err := p.s.cfg.Store.Privacy(ctx, account)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	online := p.online[account] > 0
	p.mu.Unlock()
	u := &wire.PresenceUpdate{Account: account, State: wire.PresenceOffline}
	if online {
		u.State = wire.PresenceOnline
	}
	if account != subscriber && !p.visible(ctx, account, subscriber, priv.Online) {
		u.State = wire.PresenceHidden
	}
	if !online && (account == subscriber || p.visible(ctx, account, subscriber, priv.LastSeen) || faults.Has(faults.LastSeenToAll)) {
		p.mu.Lock()
		t, held := p.seen[account]
		p.mu.Unlock()
		if !held {
			if t, err = p.s.cfg.Store.LastSeen(ctx, account); err != nil {
				return nil, err
			}
		}
		if !t.IsZero() {
			ms := uint64(t.UnixMilli())
			u.LastSeen = &ms
		}
	}
	return u, nil
}

// subscribe adds followers and returns the current presence of accounts
// that exist. A connection follows at most MAX_SUBSCRIPTIONS accounts
// (SRV-024): one that would follow more is refused, and follows what it
// did.
func (p *presence) subscribe(ctx context.Context, c *conn, s *wire.PresenceSubscribe) (wire.Message, error) {
	c.smu.Lock()
	n := len(c.subs)
	for _, acct := range s.Accounts {
		if !c.subs[acct] {
			n++
		}
	}
	c.smu.Unlock()
	if n > wire.MaxSubscriptions {
		return nil, errcode.PolicyTooLarge
	}
	res := &wire.PresenceResult{Updates: []wire.PresenceUpdate{}}
	for _, acct := range s.Accounts {
		if _, err := p.s.cfg.Store.Account(ctx, acct); err != nil {
			continue
		}
		u, err := p.update(ctx, acct, c.addr.Account)
		if err != nil {
			return nil, err
		}
		res.Updates = append(res.Updates, *u)
		p.mu.Lock()
		if p.followers[acct] == nil {
			p.followers[acct] = map[*conn]view{}
		}
		p.followers[acct][c] = viewOf(u)
		c.smu.Lock()
		if c.subs == nil {
			c.subs = map[string]bool{}
		}
		c.subs[acct] = true
		c.smu.Unlock()
		p.mu.Unlock()
	}
	return res, nil
}

// view is a presence as a follower was given it: its state and last seen
// (0 for none).
type view struct{ state, lastSeen uint64 }

func viewOf(u *wire.PresenceUpdate) view {
	v := view{state: u.State}
	if u.LastSeen != nil {
		v.lastSeen = *u.LastSeen
	}
	return v
}

// changed pushes account's presence to each follower for whom it changed
// as the follower sees it (SRV-014): a follower is not told that the
// account came, went or changed its privacy when what it sees stays the
// same, since the moment of a push would tell it (only a connected device
// changes its privacy).
func (p *presence) changed(account string) {
	p.mu.Lock()
	followed := len(p.followers[account]) > 0
	p.mu.Unlock()
	if !followed {
		return // most accounts, and every device of a reconnect storm: no lock shared by all
	}
	// One change at a time, so that views computed in one order are not
	// pushed in another (a stale view pushed last). A follower that comes
	// after the look above is given the current view by its subscription.
	p.pushMu.Lock()
	defer p.pushMu.Unlock()
	p.mu.Lock()
	var followers []*conn
	for c := range p.followers[account] {
		followers = append(followers, c)
	}
	p.mu.Unlock()
	ctx := context.Background()
	for _, c := range followers {
		u, err := p.update(ctx, account, c.addr.Account)
		if err != nil {
			continue
		}
		v := viewOf(u)
		p.mu.Lock()
		last, ok := p.followers[account][c]
		if ok {
			p.followers[account][c] = v
		}
		p.mu.Unlock()
		if ok && last != v {
			c.push(wire.FramePresence, u)
		}
	}
}

// typing relays a typing frame to the named account's connected devices
// when the typist's online visibility allows it (SRV-015). It stores
// nothing.
func (p *presence) typing(from *conn, t *wire.Typing) {
	ctx := context.Background()
	priv, err := p.s.cfg.Store.Privacy(ctx, from.addr.Account)
	if err != nil || !p.visible(ctx, from.addr.Account, t.Account, priv.Online) {
		return
	}
	n := &wire.TypingNotice{From: wire.Address{Account: from.addr.Account, Device: uint64(from.addr.Device)}, Typing: t.Typing}
	for _, c := range p.s.connectedDevices(t.Account) {
		c.push(wire.FrameTyping, n)
	}
}
