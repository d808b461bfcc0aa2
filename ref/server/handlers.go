package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// uploadPrekeys checks and stores an upload (section 11.4, SRV-002), up
// to MAX_ONE_TIME_PREKEYS held of each kind (SRV-025).
func (c *conn) uploadPrekeys(ctx context.Context, u *wire.PrekeyUpload) (wire.Message, error) {
	ik, err := c.identityKey(ctx)
	if err != nil {
		return nil, err
	}
	var up store.PrekeyUpdate
	if k := u.SignedPreKey; k != nil {
		spk, err := keys.DecodePublicKey(k.Key)
		if err != nil {
			return nil, err
		}
		if err := ik.Verify(append([]byte(pqxdh.LabelSignedPreKey), spk.Encode()...), k.Signature); err != nil {
			return nil, err
		}
		up.SignedPrekey = &store.Prekey{ID: uint32(k.ID), Key: k.Key, Signature: k.Signature}
	}
	checkKEM := func(k *wire.KEMPreKey) (store.Prekey, error) {
		pk, err := keys.DecodeKEMPublicKey(k.Key)
		if err != nil {
			return store.Prekey{}, err
		}
		if err := ik.Verify(append([]byte(pqxdh.LabelKEMPreKey), pk.Encode()...), k.Signature); err != nil {
			return store.Prekey{}, err
		}
		return store.Prekey{ID: uint32(k.ID), Key: k.Key, Signature: k.Signature}, nil
	}
	if u.LastResort != nil {
		k, err := checkKEM(u.LastResort)
		if err != nil {
			return nil, err
		}
		up.LastResort = &k
	}
	if u.OneTime != nil {
		for _, k := range *u.OneTime {
			if _, err := keys.DecodePublicKey(k.Key); err != nil {
				return nil, err
			}
			up.OneTimeEC = append(up.OneTimeEC, store.Prekey{ID: uint32(k.ID), Key: k.Key})
		}
	}
	if u.OneTimeKEM != nil {
		for i := range *u.OneTimeKEM {
			k, err := checkKEM(&(*u.OneTimeKEM)[i])
			if err != nil {
				return nil, err
			}
			up.OneTimeKEM = append(up.OneTimeKEM, k)
		}
	}
	if c.s.cfg.Uploaded != nil {
		c.s.cfg.Uploaded(c.addr, up)
	}
	if !faults.Has(faults.UnboundedPrekeys) {
		up.Most = MaxOneTimePrekeys // SRV-025
	}
	counts, err := c.s.cfg.Store.PutPrekeys(ctx, c.addr, up)
	c.s.recipients.drop(c.addr.Account) // the device may have become reachable
	switch {
	case errors.Is(err, store.ErrDuplicatePrekey):
		return nil, errcode.StateDuplicatePrekey
	case errors.Is(err, store.ErrQuota):
		c.s.log.Info("prekeys refused", "account", c.addr.Account, "device", c.addr.Device, "reason", "quota")
		return nil, errcode.PolicyQuotaExceeded
	}
	if err != nil {
		return nil, err
	}
	c.s.log.Info("prekeys stored", "account", c.addr.Account, "device", c.addr.Device, "ec", counts.EC, "kem", counts.KEM)
	return &wire.UploadResult{OneTimeEC: uint64(counts.EC), OneTimeKEM: uint64(counts.KEM)}, nil
}

// fetchPrekeys hands out one bundle per wanted reachable device (section
// 13.3).
func (c *conn) fetchPrekeys(ctx context.Context, f *wire.PrekeyFetch) (wire.Message, error) {
	acct, err := c.s.cfg.Store.Account(ctx, f.Account)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownAccount
	}
	if err != nil {
		return nil, err
	}
	list, version, err := c.s.cfg.Store.DeviceList(ctx, f.Account)
	if err != nil {
		return nil, err
	}
	if version == 0 {
		return nil, errcode.AuthUnknownDevice // no device is reachable before the first list
	}
	var wanted []uint32
	for _, d := range acct.Devices {
		if !d.Removed && (f.Devices == nil || slices.Contains(*f.Devices, uint64(d.ID))) {
			wanted = append(wanted, d.ID)
		}
	}
	res := &wire.FetchResult{DeviceList: c.s.forgedList(f.Account, list)}
	// SRV-027, in the step that removes the one-time keys.
	handout := store.Budget{Now: c.s.now(), Every: HandoutEvery, Burst: HandoutBurst}
	switch b := c.s.cfg.HandoutBurst; {
	case faults.Has(faults.UnboundedHandout) || b < 0:
		handout.Burst = 0
	case b > 0:
		handout.Burst = b
	}
	for _, id := range wanted {
		addr := store.Address{Account: f.Account, Device: id}
		bk, counts, err := c.s.cfg.Store.TakeBundle(ctx, addr, handout)
		if errors.Is(err, store.ErrNotFound) {
			continue // not reachable
		}
		if err != nil {
			return nil, err
		}
		if h := c.s.cfg.HandOut; h != nil {
			bk = h(addr, bk)
		}
		enc, err := EncodeBundle(bk)
		if err != nil {
			return nil, err
		}
		res.Bundles = append(res.Bundles, wire.DeviceBundle{Device: uint64(id), Bundle: enc})
		if counts.EC < PrekeyLow || counts.KEM < PrekeyLow {
			c.s.prekeysLow(addr, counts)
		}
		if len(res.Bundles) == wire.MaxBundles {
			break
		}
	}
	if len(res.Bundles) == 0 {
		return nil, errcode.AuthUnknownDevice
	}
	c.s.metrics.bundles.Add(uint64(len(res.Bundles)))
	return res, nil
}

// EncodeBundle encodes the keys of a bundle as the server hands them out
// (section 13.3).
func EncodeBundle(bk *store.BundleKeys) ([]byte, error) {
	b := &wire.Bundle{
		Version:      wire.ProtocolVersion,
		IdentityKey:  bk.IdentityKey,
		SignedPreKey: wire.SignedPreKey{ID: uint64(bk.SignedPrekey.ID), Key: bk.SignedPrekey.Key, Signature: bk.SignedPrekey.Signature},
		KEMPreKey: wire.KEMPreKey{ID: uint64(bk.KEMPrekey.ID), Key: bk.KEMPrekey.Key,
			Signature: bk.KEMPrekey.Signature, LastResort: bk.LastResort},
	}
	if o := bk.OneTimeEC; o != nil {
		b.OneTimePreKey = &wire.OneTimePreKey{ID: uint64(o.ID), Key: o.Key}
	}
	return wire.Marshal(b)
}

// prekeysLow tells a connected device that it runs low (SRV-004). The
// fetch that took the bundle is another account's request, so the notice
// goes through the device's push queue (SRV-020): a device that reads
// nothing does not hold up the fetch.
func (s *Server) prekeysLow(a store.Address, counts store.Counts) {
	if d := s.device(a); d != nil {
		n := uint64(min(counts.EC, counts.KEM))
		d.push(wire.FrameNotice, &wire.Notice{Type: wire.NoticePrekeysLow, Count: &n})
	}
}

// send runs the checks of spec section 13.4 and queues the envelope.
func (c *conn) send(ctx context.Context, e *wire.Envelope) (wire.Message, error) {
	p, err := c.prepareSend(ctx, e)
	if err != nil {
		return nil, err
	}
	accepted, dup, err := c.s.cfg.Store.Enqueue(ctx, p.entries, c.s.cfg.Quota, p.forget)
	return p.finish(accepted, dup, err)
}

// checkSentAt is check 7 of section 13.4 and check 8 of GRP-009: a sent-at
// no later than the server's clock plus MAX_SENT_AHEAD (SRV-023), unless
// the server remembers the envelope from this device (SRV-008): a resend
// gets the first acceptance, also when the server's clock went back since.
func (c *conn) checkSentAt(ctx context.Context, messageID []byte, sentAt uint64, now time.Time) error {
	if faults.Has(faults.SentAtUnchecked) {
		return nil
	}
	if limit := now.Add(MaxSentAhead).UnixMilli(); limit >= 0 && sentAt <= uint64(limit) {
		return nil
	}
	_, ok, err := c.s.cfg.Store.Accepted(ctx, c.addr, messageID, sentAt, now)
	if err != nil {
		return err
	}
	if !ok {
		return errcode.PolicySentAtAhead
	}
	return nil
}

// pendingSend is an envelope or a group envelope that passed its checks
// (section 13.4, GRP-009), with the entries it queues and what turns the
// store's answer into the request's.
type pendingSend struct {
	entries []store.Entry
	forget  time.Time
	finish  func(accepted time.Time, dup bool, err error) (wire.Message, error)
}

// prepareSend runs the checks of section 13.4 and makes the entries.
func (c *conn) prepareSend(ctx context.Context, e *wire.Envelope) (*pendingSend, error) {
	if e.Sender.Account != c.addr.Account || e.Sender.Device != uint64(c.addr.Device) {
		return nil, errcode.AuthSenderMismatch
	}
	own := e.Recipient == c.addr.Account
	// sync goes to the own account only; control also goes there, since the
	// sender's other devices are group devices that get its sender keys and
	// group changes (spec sections 16.4 and 16.5).
	if (e.Type == wire.EnvelopeSync && !own) || (own && e.Type != wire.EnvelopeSync && e.Type != wire.EnvelopeControl) {
		return nil, errcode.PolicyBadRecipient
	}
	if own { // never to the sending device itself (MSG-013)
		for _, m := range e.Messages {
			if m.Device == uint64(c.addr.Device) {
				return nil, errcode.PolicyBadRecipient
			}
		}
	}
	rec, err := c.s.recipient(ctx, e.Recipient)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownAccount
	}
	if err != nil {
		return nil, err
	}
	if err := c.s.forgedFanout(e, own); err != nil {
		return nil, err
	}
	if err := c.checkFanout(rec, e, own); err != nil {
		return nil, err
	}
	now := c.s.now()
	if err := c.checkSentAt(ctx, e.MessageID, e.SentAt, now); err != nil {
		return nil, err
	}
	expires := now.Add(time.Duration(e.TTL) * time.Second)
	entries := make([]store.Entry, len(e.Messages))
	for i, m := range e.Messages {
		entries[i] = store.Entry{
			Recipient: store.Address{Account: e.Recipient, Device: uint32(m.Device)},
			MessageID: e.MessageID,
			Sender:    c.addr,
			Type:      uint8(e.Type), Priority: uint8(e.Priority), Kind: uint8(m.Kind),
			Ciphertext: m.Ciphertext,
			SentAt:     e.SentAt,
			AcceptedAt: now,
			ExpiresAt:  expires,
		}
	}
	forget := now.Add(AcceptMemory)
	if c.s.cfg.ForgetAccepted {
		forget = now // remembered for no time at all
	}
	p := &pendingSend{entries: entries, forget: forget}
	p.finish = func(accepted time.Time, dup bool, err error) (wire.Message, error) {
		return c.finishSend(ctx, e, own, entries, accepted, dup, err)
	}
	return p, nil
}

// finishSend turns the store's answer to a prepared envelope into the
// result of send, and hands the entries it accepted to their recipients.
func (c *conn) finishSend(ctx context.Context, e *wire.Envelope, own bool, entries []store.Entry, accepted time.Time, dup bool, err error) (wire.Message, error) {
	if errors.Is(err, store.ErrQuota) {
		return nil, errcode.PolicyQuotaExceeded
	}
	if errors.Is(err, store.ErrNotFound) {
		// A recipient device was removed since the fan-out check: check
		// again, which now names it stale.
		c.s.recipients.drop(e.Recipient)
		if rec, rerr := c.s.recipient(ctx, e.Recipient); rerr != nil {
			return nil, rerr
		} else if ferr := c.checkFanout(rec, e, own); ferr != nil {
			return nil, ferr
		}
	}
	if err != nil {
		return nil, err
	}
	if dup {
		c.s.metrics.duplicates.Add(1)
	} else {
		c.s.metrics.accepted.Add(1)
		c.s.handOver(entries)
	}
	return &wire.SendResult{AcceptedAt: uint64(accepted.UnixMilli())}, nil
}

// sendMany serves send and send-group requests that waited together, in order, as send
// would one after the other, with one store write for all of them when
// the store can (store.ManyEnqueuer), and writes their answers together.
// It stops at a request whose body does not decode: that one is answered
// as request answers it, closing the connection, and those after it are
// dropped with the connection.
func (c *conn) sendMany(frames []*wire.Frame) {
	ctx := context.Background()
	lost := c.answersLost(frames...)
	type item struct {
		id     uint64
		p      *pendingSend
		result wire.Message
		err    error
	}
	items := make([]item, 0, len(frames))
	var bad *wire.Frame
	for _, f := range frames {
		var prepare func() (*pendingSend, error)
		if f.Type == wire.FrameSendGroup {
			e := new(wire.GroupEnvelope)
			if err := transport.DecodeBody(f, e); err != nil {
				bad = f
				break
			}
			prepare = func() (*pendingSend, error) { return c.prepareSendGroup(ctx, e) }
		} else {
			e := new(wire.Envelope)
			if err := transport.DecodeBody(f, e); err != nil {
				bad = f
				break
			}
			prepare = func() (*pendingSend, error) { return c.prepareSend(ctx, e) }
		}
		it := item{id: transport.RequestID(f)}
		if it.err = c.limited(f.Type); it.err == nil {
			it.p, it.err = prepare()
		}
		items = append(items, it)
	}
	calls := make([]store.EnqueueCall, 0, len(items))
	which := make([]int, 0, len(items))
	for i := range items {
		if p := items[i].p; p != nil {
			calls = append(calls, store.EnqueueCall{Entries: p.entries, Quota: c.s.cfg.Quota, Forget: p.forget})
			which = append(which, i)
		}
	}
	var results []store.EnqueueResult
	if me, ok := c.s.cfg.Store.(store.ManyEnqueuer); ok {
		results = me.EnqueueMany(ctx, calls)
	} else {
		for _, call := range calls {
			var r store.EnqueueResult
			r.Accepted, r.Dup, r.Err = c.s.cfg.Store.Enqueue(ctx, call.Entries, call.Quota, call.Forget)
			results = append(results, r)
		}
	}
	for k, i := range which {
		r := results[k]
		items[i].result, items[i].err = items[i].p.finish(r.Accepted, r.Dup, r.Err)
	}
	out := make([][]byte, 0, len(items))
	closing := false
	for _, it := range items {
		enc, stop := c.answer(it.id, it.result, it.err)
		if enc != nil {
			out = append(out, enc)
		}
		closing = closing || stop
	}
	if c.s.cfg.ReusedRequest != nil {
		ids := make([]uint64, len(items))
		for i := range items {
			ids[i] = items[i].id
		}
		c.answering(ids...)
	}
	if lost {
		out, closing = nil, true
	}
	if len(out) > 0 {
		c.tc.WriteFrames(out)
	}
	if closing {
		c.close()
		return
	}
	if bad != nil {
		c.request(bad)
	}
}

// handOver gives entries just accepted (and so numbered) to their
// recipients' connections, which deliver them without reading them back
// from the store.
func (s *Server) handOver(entries []store.Entry) {
	for i := range entries {
		if d := s.device(entries[i].Recipient); d != nil {
			d.offer(entries[i])
		}
	}
}

// forgedList is the list to serve for account: list, or the one
// Config.ForgedList gives.
func (s *Server) forgedList(account string, list []byte) []byte {
	if forge := s.cfg.ForgedList; forge != nil {
		if l := forge(account); l != nil {
			return l
		}
	}
	return list
}

// forgedFanout refuses an envelope that leaves out a device of the list
// Config.ForgedList gives for its recipient, naming those it leaves out
// (but the sending device itself, when it sends to its own account).
func (s *Server) forgedFanout(e *wire.Envelope, own bool) error {
	if s.cfg.ForgedList == nil {
		return nil
	}
	signed := s.cfg.ForgedList(e.Recipient)
	if signed == nil {
		return nil
	}
	var sdl wire.SignedDeviceList
	var l wire.DeviceList
	if wire.Unmarshal(signed, &sdl) != nil || wire.Unmarshal(sdl.List, &l) != nil {
		return nil
	}
	fe := &transport.FanoutError{DeviceList: signed}
	for _, d := range l.Devices {
		if own && d.Device == e.Sender.Device {
			continue
		}
		if !slices.ContainsFunc(e.Messages, func(m wire.DeviceMessage) bool { return m.Device == d.Device }) {
			fe.Missing = append(fe.Missing, d.Device)
		}
	}
	if len(fe.Missing) == 0 {
		return nil
	}
	return fe
}

// checkFanout is check 6 of section 13.4.
func (c *conn) checkFanout(rec *recipient, e *wire.Envelope, own bool) error {
	acct, reach := rec.acct, rec.reachable
	// An envelope names at most MAX_FANOUT devices and an account has few:
	// searches of the two short lists, rather than maps made for every send.
	named := func(id uint64) bool {
		return slices.ContainsFunc(e.Messages, func(m wire.DeviceMessage) bool { return m.Device == id })
	}
	fe := transport.FanoutError{DeviceList: rec.list}
	for _, d := range acct.Devices {
		id := uint64(d.ID)
		if own && d.ID == c.addr.Device {
			if named(id) {
				fe.Extra = append(fe.Extra, id) // a device does not send to itself
			}
			continue
		}
		reachable := slices.Contains(reach, d.ID)
		switch {
		case reachable && !named(id):
			fe.Missing = append(fe.Missing, id)
		case !reachable && named(id):
			fe.Stale = append(fe.Stale, id)
		}
	}
	for _, m := range e.Messages {
		if !slices.ContainsFunc(acct.Devices, func(d store.Device) bool { return uint64(d.ID) == m.Device }) {
			fe.Extra = append(fe.Extra, m.Device)
		}
	}
	if len(fe.Missing)+len(fe.Extra)+len(fe.Stale) == 0 {
		return nil
	}
	slices.Sort(fe.Missing)
	slices.Sort(fe.Extra)
	slices.Sort(fe.Stale)
	return &fe
}

// reachable returns the ids of an account's reachable devices (section
// 13.2), in increasing order: not removed, listed (the account has a device
// list of version listVersion > 0, and lists every device not removed), and
// holding a signed prekey and a last-resort prekey.
func (s *Server) reachable(ctx context.Context, acct *store.Account, listVersion uint64) ([]uint32, error) {
	if listVersion == 0 {
		return nil, nil
	}
	var out []uint32
	for _, d := range acct.Devices {
		if d.Removed {
			continue
		}
		_, ok, err := s.cfg.Store.PrekeyCounts(ctx, store.Address{Account: acct.Name, Device: d.ID})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, d.ID)
		}
	}
	return out, nil
}
