package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// LinkTTL is LINK_TTL (spec section 15.1).
const LinkTTL = 600 * time.Second

// link is an open link (spec section 15.3).
type link struct {
	id       string
	account  string
	primary  *conn
	expires  time.Time // real time
	reserved uint32    // the device id reserved for the companion, once requested
	key      []byte    // the companion's identity key, once requested
	answer   chan linkAnswer
}

type linkAnswer struct {
	result *wire.LinkResult
	err    error
}

// links holds the open links of the server, in memory: a restart ends them.
type links struct {
	mu sync.Mutex
	m  map[string]*link
}

func (l *links) get(id []byte) *link {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.m[string(id)]
	if k != nil && time.Now().After(k.expires) {
		delete(l.m, string(id))
		return nil
	}
	return k
}

func (l *links) forget(k *link) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[k.id] == k {
		delete(l.m, k.id)
	}
}

// dropConn forgets the links a primary connection opened.
func (l *links) dropConn(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range c.links {
		if l.m[k.id] == k {
			l.end(k)
		}
	}
	c.links = nil
}

// end forgets link k, and answers a companion that waits for it. The
// caller holds l.mu.
func (l *links) end(k *link) {
	delete(l.m, k.id)
	if k.answer != nil {
		select {
		case k.answer <- linkAnswer{err: errcode.StateUnknownLink}:
		default:
		}
	}
}

// currentList returns an account's current device list, or nil and 0.
func (s *Server) currentList(ctx context.Context, account string) ([]byte, uint64, error) {
	return s.cfg.Store.DeviceList(ctx, account)
}

// registeredPrimary returns the identity key registered for device 1.
func (s *Server) registeredPrimary(acct *store.Account) (keys.PublicKey, error) {
	d := findDevice(acct, 1)
	if d == nil {
		return keys.PublicKey{}, errcode.AuthUnknownDevice
	}
	return keys.DecodePublicKey(d.IdentityKey)
}

// checkList runs DEV-002 on a list given to the server: it parses and
// verifies, is signed by the registered primary key, and is the next
// version.
func (s *Server) checkList(ctx context.Context, acct *store.Account, signed []byte) (*devices.List, error) {
	l, err := devices.Parse(signed, acct.Name)
	if err != nil {
		return nil, err
	}
	pk, err := s.registeredPrimary(acct)
	if err != nil {
		return nil, err
	}
	if !pk.Equal(l.Primary()) {
		return nil, errcode.AuthIdentityChanged
	}
	_, version, err := s.currentList(ctx, acct.Name)
	if err != nil {
		return nil, err
	}
	if l.Serial != version+1 {
		return nil, fmt.Errorf("server: list version %d after %d: %w", l.Serial, version, errcode.StateDeviceListRollback)
	}
	return l, nil
}

// liveDevices returns the ids of an account's devices that are not removed.
func liveDevices(acct *store.Account) map[uint32][]byte {
	out := map[uint32][]byte{}
	for _, d := range acct.Devices {
		if !d.Removed {
			out[d.ID] = d.IdentityKey
		}
	}
	return out
}

// setDeviceList is set-device-list: the primary removes devices (DEV-009),
// or uploads its first list.
func (c *conn) setDeviceList(ctx context.Context, b *wire.SetDeviceList) (wire.Message, error) {
	if c.addr.Device != 1 {
		return nil, errcode.PolicyUnexpectedFrame
	}
	acct, err := c.s.cfg.Store.Account(ctx, c.addr.Account)
	if err != nil {
		return nil, err
	}
	l, err := c.s.checkList(ctx, acct, b.DeviceList)
	if err != nil {
		return nil, err
	}
	live := liveDevices(acct)
	listed := map[uint32]bool{}
	for _, d := range l.Devices {
		id := uint32(d.Device)
		key, ok := live[id]
		if !ok || !bytes.Equal(key, d.IdentityKey) {
			// Devices join only through a link, whose key the server saw.
			return nil, errcode.AuthDeviceNotListed
		}
		listed[id] = true
	}
	var remove []uint32
	for id := range live {
		if !listed[id] {
			remove = append(remove, id)
		}
	}
	slices.Sort(remove)
	err = c.s.cfg.Store.PutDeviceList(ctx, acct.Name, b.DeviceList, l.Serial, nil, remove)
	c.s.recipients.drop(acct.Name)
	if err != nil {
		return nil, listErr(err)
	}
	c.s.log.Info("device list", "account", acct.Name, "version", l.Serial, "removed", remove)
	c.s.listChanged(acct.Name, b.DeviceList, remove)
	return &wire.Empty{}, nil
}

func listErr(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return errcode.StateDeviceListRollback
	}
	return err
}

// listChanged closes removed devices' connections and pushes the new
// list to the account's connected devices (DEV-009, DEV-010), through
// their push queues (SRV-020).
func (s *Server) listChanged(account string, signed []byte, removed []uint32) {
	if len(removed) > 0 {
		s.removals.Add(1) // before the lookups: see hello
	}
	for _, id := range removed {
		if d := s.device(store.Address{Account: account, Device: id}); d != nil {
			d.revoke()
		}
	}
	var sdl wire.SignedDeviceList
	if err := wire.Unmarshal(signed, &sdl); err != nil {
		return
	}
	for _, d := range s.connectedDevices(account) {
		d.push(wire.FrameDeviceList, &sdl)
	}
}

// openLink is open-link.
func (c *conn) openLink(ctx context.Context, b *wire.OpenLink) (wire.Message, error) {
	if c.addr.Device != 1 {
		return nil, errcode.PolicyUnexpectedFrame
	}
	c.s.links.mu.Lock()
	defer c.s.links.mu.Unlock()
	if c.s.links.m == nil {
		c.s.links.m = map[string]*link{}
	}
	if k, ok := c.s.links.m[string(b.LinkID)]; ok && time.Now().Before(k.expires) {
		return nil, errcode.StateUnknownLink // a link id is used once
	}
	// At most MAX_COMPANIONS links of a primary at once (DEV-019): the
	// oldest of them ends.
	open := c.links[:0]
	for _, k := range c.links {
		switch {
		case c.s.links.m[k.id] != k: // ended
		case !time.Now().Before(k.expires):
			c.s.links.end(k)
		default:
			open = append(open, k)
		}
	}
	clear(c.links[len(open):])
	if len(open) >= wire.MaxCompanions {
		c.s.links.end(open[0])
		open = append(open[:0], open[1:]...)
	}
	k := &link{id: string(b.LinkID), account: c.addr.Account, primary: c, expires: time.Now().Add(LinkTTL)}
	c.s.links.m[k.id] = k
	c.links = append(open, k)
	return &wire.Empty{}, nil
}

// linkRequest serves a companion's link-request, the first frame of its
// connection (section 15.3). It answers and returns; the caller closes.
func (c *conn) linkRequest(f *wire.Frame) {
	id := transport.RequestID(f)
	var r wire.LinkRequest
	if err := transport.DecodeBody(f, &r); err != nil {
		c.tc.SendError(id, err)
		return
	}
	if _, err := keys.DecodePublicKey(r.IdentityKey); err != nil {
		c.tc.SendError(id, err)
		return
	}
	res, err := c.s.requestLink(&r)
	if err != nil {
		c.tc.SendError(id, err)
		return
	}
	c.tc.Send(wire.FrameResult, id, res)
}

func (s *Server) requestLink(r *wire.LinkRequest) (*wire.LinkResult, error) {
	ctx := context.Background()
	k := s.links.get(r.LinkID)
	if k == nil {
		return nil, errcode.StateUnknownLink
	}
	acct, err := s.cfg.Store.Account(ctx, k.account)
	if err != nil {
		return nil, internal(err)
	}
	s.links.mu.Lock()
	if k.reserved != 0 || s.links.m[k.id] != k {
		s.links.mu.Unlock()
		return nil, errcode.StateUnknownLink // requested already: a link is used once
	}
	live := liveDevices(acct)
	last := acct.Devices[len(acct.Devices)-1].ID
	pending := 0
	for _, o := range s.links.m {
		if o.account == k.account && o.reserved != 0 {
			pending++
			last = max(last, o.reserved)
		}
	}
	if len(live)+pending >= 1+wire.MaxCompanions {
		s.links.mu.Unlock()
		return nil, errcode.PolicyTooManyDevices
	}
	k.reserved, k.key, k.answer = last+1, r.IdentityKey, make(chan linkAnswer, 1)
	s.links.mu.Unlock()
	err = k.primary.tc.Send(wire.FrameLink, 0, &wire.LinkNotice{LinkID: r.LinkID, IdentityKey: r.IdentityKey, MAC: r.MAC, Device: uint64(k.reserved)})
	if err != nil {
		s.links.forget(k)
		return nil, errcode.StateUnknownLink
	}
	select {
	case a := <-k.answer:
		return a.result, a.err
	case <-time.After(time.Until(k.expires)):
		s.links.forget(k)
		return nil, errcode.StateUnknownLink
	case <-s.stop:
		return nil, &transport.RetryError{Code: errcode.PolicyShuttingDown, After: time.Second}
	}
}

// answerLink is answer-link (DEV-006, DEV-007).
func (c *conn) answerLink(ctx context.Context, b *wire.AnswerLink) (wire.Message, error) {
	k := c.s.links.get(b.LinkID)
	if k == nil || k.primary != c || k.reserved == 0 {
		return nil, errcode.StateUnknownLink
	}
	// A refused answer changes nothing: the link stays, for the primary to
	// answer again (section 15.3); it ends on an answer without a list or
	// with a list stored.
	if b.DeviceList == nil {
		c.s.links.forget(k)
		k.answer <- linkAnswer{err: errcode.AuthLinkRefused}
		return &wire.Empty{}, nil
	}
	acct, err := c.s.cfg.Store.Account(ctx, c.addr.Account)
	if err != nil {
		return nil, err
	}
	l, err := c.s.checkList(ctx, acct, *b.DeviceList)
	if err != nil {
		return nil, err
	}
	want := liveDevices(acct)
	want[k.reserved] = k.key
	if len(l.Devices) != len(want) {
		return nil, errcode.AuthDeviceListInvalid
	}
	for _, d := range l.Devices {
		if key, ok := want[uint32(d.Device)]; !ok || !bytes.Equal(key, d.IdentityKey) {
			return nil, errcode.AuthDeviceListInvalid
		}
	}
	add := []store.Device{{ID: k.reserved, IdentityKey: k.key, Created: c.s.now()}}
	err = c.s.cfg.Store.PutDeviceList(ctx, acct.Name, *b.DeviceList, l.Serial, add, nil)
	c.s.recipients.drop(acct.Name)
	if err != nil {
		return nil, listErr(err)
	}
	c.s.log.Info("device linked", "account", acct.Name, "device", k.reserved, "version", l.Serial)
	c.s.links.forget(k)
	k.answer <- linkAnswer{result: &wire.LinkResult{Device: uint64(k.reserved), DeviceList: *b.DeviceList}}
	c.s.listChanged(acct.Name, *b.DeviceList, nil)
	return &wire.Empty{}, nil
}

// fetchDeviceList is fetch-device-list (section 13.4): the account's current
// signed device list. An account that has not uploaded its first list yet
// has none to give, and is answered as one that does not exist.
func (c *conn) fetchDeviceList(ctx context.Context, f *wire.DeviceListFetch) (wire.Message, error) {
	list, version, err := c.s.currentList(ctx, f.Account)
	if errors.Is(err, store.ErrNotFound) || (err == nil && version == 0) {
		return nil, errcode.StateUnknownAccount
	}
	if err != nil {
		return nil, err
	}
	return &wire.DeviceListResult{DeviceList: c.s.forgedList(f.Account, list)}, nil
}
