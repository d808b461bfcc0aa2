package refadapter

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/flynn/noise"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/media"
	"github.com/missive-protocol/missive/ref/ratchet"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
	"github.com/missive-protocol/missive/ref/xeddsa"
)

// Mutants are the mutant names, with what each breaks.
var Mutants = faults.All

func init() {
	for name, m := range map[string]method{
		"hello":           hello,
		"xeddsa.sign":     xeddsaSign,
		"xeddsa.verify":   xeddsaVerify,
		"pqxdh.initiate":  pqxdhInitiate,
		"pqxdh.respond":   pqxdhRespond,
		"ratchet.init":    ratchetInit,
		"ratchet.encrypt": ratchetEncrypt,
		"ratchet.decrypt": ratchetDecrypt,
		"wire.decode":     wireDecode,
		"devices.check":   devicesCheck,
		"receipts.fold":   receiptsFold,
		"transport.run":   transportRun,
	} {
		methods[name] = m
	}
}

func xeddsaSign(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetXeddsaSign()
	sig, err := xeddsa.Sign(p.GetPrivateKey(), p.GetMessage(), p.GetZ())
	if err != nil {
		return nil, err
	}
	k, err := keys.NewPrivateKey(p.GetPrivateKey())
	if err != nil {
		return nil, err
	}
	return &pb.XEdDSASignResult{Signature: sig, PublicKey: k.Public().Bytes()}, nil
}

func xeddsaVerify(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetXeddsaVerify()
	return nil, xeddsa.Verify(p.GetPublicKey(), p.GetMessage(), p.GetSignature())
}

func pqxdhInitiate(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetPqxdhInitiate()
	ik, err := keys.NewPrivateKey(p.GetIdentityPrivate())
	if err != nil {
		return nil, err
	}
	s, err := session.Initiate(bytes.NewReader(p.GetRandom()), ik, p.GetBundle())
	if err != nil {
		return nil, err
	}
	_, msg, err := s.Encrypt(p.GetPlaintext())
	if err != nil {
		return nil, err
	}
	return &pb.PQXDHInitiateResult{PrekeyMessage: msg, Session: a.handle(s)}, nil
}

// prekeys holds exactly the keys a respond request gives.
type prekeys struct {
	spk    *keys.PrivateKey
	spkID  uint32
	kem    *keys.KEMPrivateKey
	kemID  uint32
	opk    *keys.PrivateKey
	opkID  uint32
	hasOPK bool
}

func (k *prekeys) SignedPreKey(id uint32) (*keys.PrivateKey, bool) { return k.spk, id == k.spkID }
func (k *prekeys) KEMPreKey(id uint32) (*keys.KEMPrivateKey, bool) { return k.kem, id == k.kemID }
func (k *prekeys) OneTimePreKey(id uint32) (*keys.PrivateKey, bool) {
	return k.opk, k.hasOPK && id == k.opkID
}

func pqxdhRespond(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetPqxdhRespond()
	ik, err := keys.NewPrivateKey(p.GetIdentityPrivate())
	if err != nil {
		return nil, err
	}
	pk := &prekeys{spkID: p.GetSignedPrekeyId(), kemID: p.GetKemPrekeyId(), opkID: p.GetOneTimePrekeyId()}
	if pk.spk, err = keys.NewPrivateKey(p.GetSignedPrekeyPrivate()); err != nil {
		return nil, err
	}
	if pk.kem, err = keys.NewKEMPrivateKey(p.GetKemPrekeySeed()); err != nil {
		return nil, err
	}
	if len(p.GetOneTimePrekeyPrivate()) > 0 {
		if pk.opk, err = keys.NewPrivateKey(p.GetOneTimePrekeyPrivate()); err != nil {
			return nil, err
		}
		pk.hasOPK = true
	}
	s, pt, _, err := session.Respond(bytes.NewReader(p.GetRandom()), ik, pk, p.GetPrekeyMessage())
	if err != nil {
		return nil, err
	}
	return &pb.PQXDHRespondResult{Plaintext: pt, Session: a.handle(s)}, nil
}

func ratchetInit(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetRatchetInit()
	var (
		st  *ratchet.State
		err error
	)
	if p.GetInitiator() {
		remote, err := keys.DecodePublicKey(append([]byte{keys.TypeX25519Public}, p.GetRemoteRatchetPublic()...))
		if err != nil {
			return nil, err
		}
		st, err = ratchet.NewInitiator(p.GetSk(), p.GetAd(), remote, bytes.NewReader(p.GetRatchetPrivate()))
		if err != nil {
			return nil, err
		}
	} else {
		own, err := keys.NewPrivateKey(p.GetRatchetPrivate())
		if err != nil {
			return nil, err
		}
		if st, err = ratchet.NewResponder(p.GetSk(), p.GetAd(), own); err != nil {
			return nil, err
		}
	}
	return &pb.RatchetInitResult{Session: a.handle(st)}, err
}

// encrypter and decrypter are what ratchet.encrypt and ratchet.decrypt
// need of a handle: a ratchet state, or a session from PQXDH.
func ratchetEncrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetRatchetEncrypt()
	switch s := a.lookup(p.GetSession()).(type) {
	case *ratchet.State:
		m, err := s.Encrypt(p.GetPlaintext())
		return &pb.RatchetEncryptResult{Message: m}, err
	case *session.Session:
		_, m, err := s.Encrypt(p.GetPlaintext())
		return &pb.RatchetEncryptResult{Message: m}, err
	}
	return nil, fmt.Errorf("refadapter: no session %q", p.GetSession())
}

func ratchetDecrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetRatchetDecrypt()
	r := bytes.NewReader(p.GetRandom())
	switch s := a.lookup(p.GetSession()).(type) {
	case *ratchet.State:
		pt, err := s.Decrypt(r, p.GetMessage())
		return &pb.RatchetDecryptResult{Plaintext: pt}, err
	case *session.Session:
		pt, err := s.Decrypt(r, p.GetMessage())
		return &pb.RatchetDecryptResult{Plaintext: pt}, err
	}
	return nil, fmt.Errorf("refadapter: no session %q", p.GetSession())
}

func wireDecode(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetWireDecode()
	ctor, ok := wire.Rules[p.GetRule()]
	if !ok {
		return nil, errUnimplemented
	}
	m := ctor()
	if err := wire.Unmarshal(p.GetEncoding(), m); err != nil {
		return nil, err
	}
	enc, err := wire.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &pb.WireDecodeResult{Encoding: enc}, nil
}

func devicesCheck(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetDevicesCheck()
	var rec *keys.PublicKey
	if len(p.GetRecordedPrimary()) > 0 {
		k, err := keys.DecodePublicKey(p.GetRecordedPrimary())
		if err != nil {
			return nil, err
		}
		rec = &k
	}
	var last *devices.List
	for i, l := range p.GetAccepted() {
		got, err := devices.Accept(l, p.GetAccount(), rec, last)
		if err != nil {
			return nil, fmt.Errorf("refadapter: accepted list %d: %w", i, err)
		}
		if rec == nil {
			k := got.Primary()
			rec = &k
		}
		last = got
	}
	_, err := devices.Accept(p.GetList(), p.GetAccount(), rec, last)
	return nil, err
}

func parseAddress(s string) (history.Address, error) {
	acct, dev, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(dev, 10, 32)
	if !ok || err != nil {
		return history.Address{}, fmt.Errorf("refadapter: bad address %q", s)
	}
	return history.Address{Account: acct, Device: uint32(n)}, nil
}

func receiptsFold(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetReceiptsFold()
	type msg struct {
		from history.Address
		to   string
	}
	msgs := map[history.ID]msg{}
	for _, m := range p.GetMessages() {
		from, err := parseAddress(m.GetFrom())
		if err != nil || len(m.GetId()) != 16 {
			return nil, errors.New("refadapter: bad message")
		}
		msgs[history.ID(m.GetId())] = msg{from, m.GetTo()}
	}
	lists := map[string][]uint32{}
	states := map[history.Address]*history.State{}
	for acct, ids := range p.GetDevices() {
		lists[acct] = ids.GetIds()
		for _, id := range ids.GetIds() {
			states[history.Address{Account: acct, Device: id}] = history.New()
		}
	}
	for _, e := range p.GetEvents() {
		to, err := parseAddress(e.GetTo())
		if err != nil {
			return nil, err
		}
		s := states[to]
		if s == nil {
			return nil, fmt.Errorf("refadapter: event for unknown device %s", e.GetTo())
		}
		switch e.GetKind() {
		case "sent":
			id := history.ID(e.GetMessage())
			s.LearnSent(id, msgs[id].to, lists[msgs[id].to])
		case "message":
			id := history.ID(e.GetMessage())
			s.Receive(msgs[id].from.Account, id)
		case "receipt":
			from, err := parseAddress(e.GetFrom())
			if err != nil {
				return nil, err
			}
			kind, _ := history.ParseStatus(e.GetReceipt())
			r := history.Receipt{From: from, Kind: kind}
			for _, id := range e.GetMessages() {
				r.IDs = append(r.IDs, history.ID(id))
			}
			s.ApplyReceipt(r, slices.Contains(lists[from.Account], from.Device))
		case "read":
			var ks []history.Key
			for _, id := range e.GetMessages() {
				ks = append(ks, history.Key{Account: msgs[history.ID(id)].from.Account, ID: history.ID(id)})
			}
			s.ApplyRead(ks)
		default:
			return nil, errUnimplemented
		}
	}
	res := &pb.ReceiptsFoldResult{Final: map[string]*pb.DeviceState{}}
	for addr, s := range states {
		ds := &pb.DeviceState{}
		for id, m := range s.Sent {
			st := &pb.SentState{Id: bytes.Clone(id[:]), Statuses: map[uint32]string{}, Overall: history.Overall(m.Statuses).String()}
			for d, v := range m.Statuses {
				st.Statuses[d] = v.String()
			}
			ds.Sent = append(ds.Sent, st)
		}
		slices.SortFunc(ds.Sent, func(x, y *pb.SentState) int { return bytes.Compare(x.Id, y.Id) })
		for k := range s.Received {
			if s.IsRead(k) {
				ds.Read = append(ds.Read, bytes.Clone(k.ID[:]))
			}
		}
		slices.SortFunc(ds.Read, bytes.Compare)
		res.Final[addr.String()] = ds
	}
	return res, nil
}

// transportRun runs both sides of a Noise session over an in-memory pair
// of connections, recording what each writes.
func transportRun(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetTransportRun()
	ini, err := dhKey(p.GetInitiatorStaticPrivate())
	if err != nil {
		return nil, err
	}
	res, err := dhKey(p.GetResponderStaticPrivate())
	if err != nil {
		return nil, err
	}
	cfg := &transport.ClientConfig{Static: ini, Rand: bytes.NewReader(p.GetInitiatorEphemeralPrivate())}
	switch p.GetPattern() {
	case "IK":
		cfg.ServerKey = res.Public
	case "XX":
	default:
		return nil, errUnimplemented
	}
	if !bytes.Equal(p.GetPreamble(), transport.Preamble(map[string]byte{"XX": transport.PatternXX, "IK": transport.PatternIK}[p.GetPattern()])) {
		return nil, errUnimplemented
	}
	return runPair(cfg, &transport.ServerConfig{Static: res, Rand: bytes.NewReader(p.GetResponderEphemeralPrivate())}, p.GetSegments())
}

func dhKey(priv []byte) (noise.DHKey, error) {
	k, err := keys.NewPrivateKey(priv)
	if err != nil {
		return noise.DHKey{}, err
	}
	return noise.DHKey{Private: priv, Public: k.Public().Bytes()}, nil
}

// The vector methods of groups, media and the message lifecycle (spec
// chapters 16 to 18).
func init() {
	for name, m := range map[string]method{
		"group.check_state":     groupCheckState,
		"sender_key.create":     senderKeyCreate,
		"sender_key.encrypt":    senderKeyEncrypt,
		"sender_key.distribute": senderKeyDistribute,
		"sender_key.decrypt":    senderKeyDecrypt,
		"media.encrypt":         mediaEncrypt,
		"media.decrypt":         mediaDecrypt,
		"lifecycle.run":         lifecycleRun,
		"group_receipts.fold":   groupReceiptsFold,
	} {
		methods[name] = m
	}
}

// failure is an error answered ERROR with a result all the same: the
// receiver's keys after a failed sender-key step.
type failure struct {
	result any
	err    error
}

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

func parseWireAddress(s string) (wire.Address, error) {
	a, err := parseAddress(s)
	return wire.Address{Account: a.Account, Device: uint64(a.Device)}, err
}

// knownLists is what a checker knows of device lists after accepting a
// sequence of them, each for its own account (DEV-001).
type knownLists struct {
	recorded map[string]*keys.PublicKey
	last     map[string]*devices.List
	versions map[string]map[uint64]*devices.List
}

func (l *knownLists) Recorded(account string) *keys.PublicKey { return l.recorded[account] }

// Record records an account's device-1 key from an accepted group state's
// list, when none was (GRP-001 step 2).
func (l *knownLists) Record(account string, primary keys.PublicKey) { l.recorded[account] = &primary }

func (l *knownLists) Accepted(account string, version uint64) *devices.List {
	return l.versions[account][version]
}

func acceptLists(signed [][]byte) (*knownLists, error) {
	l := &knownLists{recorded: map[string]*keys.PublicKey{}, last: map[string]*devices.List{},
		versions: map[string]map[uint64]*devices.List{}}
	for i, s := range signed {
		var sl wire.SignedDeviceList
		var dl wire.DeviceList
		if err := wire.Unmarshal(s, &sl); err != nil {
			return nil, fmt.Errorf("refadapter: accepted list %d: %v", i, err)
		}
		if err := wire.Unmarshal(sl.List, &dl); err != nil {
			return nil, fmt.Errorf("refadapter: accepted list %d: %v", i, err)
		}
		acct := dl.Account
		list, err := devices.Accept(s, acct, l.recorded[acct], l.last[acct])
		if err != nil {
			return nil, fmt.Errorf("refadapter: accepted list %d: %v", i, err)
		}
		if l.recorded[acct] == nil {
			p := list.Primary()
			l.recorded[acct] = &p
		}
		l.last[acct] = list
		if l.versions[acct] == nil {
			l.versions[acct] = map[uint64]*devices.List{}
		}
		l.versions[acct][list.Serial] = list
	}
	return l, nil
}

// groupCheckState is group.check_state: GRP-001 or GRP-002 with
// group.Checker.
func groupCheckState(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetGroupCheckState()
	lists, err := acceptLists(p.GetAcceptedLists())
	if err != nil {
		return nil, err
	}
	ch := &group.Checker{Lists: lists}
	switch p.GetChecker() {
	case "device":
		ch.GroupID = p.GetGroupId()
	case "server":
		accounts := p.GetAccounts()
		ch.Server = &group.ServerChecks{Exists: func(a string) (bool, error) { return slices.Contains(accounts, a), nil }}
	default:
		return nil, errUnimplemented
	}
	for i, signed := range p.GetAccepted() {
		if ch.Server != nil {
			// An accepted state came on its author's connection.
			s, err := group.Decode(signed)
			if err != nil {
				return nil, fmt.Errorf("refadapter: accepted state %d: %v", i, err)
			}
			ch.Server.Connection = s.Author
		}
		s, err := ch.Check(signed)
		if err != nil {
			return nil, fmt.Errorf("refadapter: accepted state %d: %v", i, err)
		}
		ch.Accepted = append(ch.Accepted, s)
	}
	if ch.Server != nil {
		if ch.Server.Connection, err = parseWireAddress(p.GetConnection()); err != nil {
			return nil, err
		}
	}
	_, err = ch.Check(p.GetState())
	if errors.Is(err, group.ErrDuplicate) {
		return &pb.GroupCheckStateResult{Duplicate: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &pb.GroupCheckStateResult{}, nil
}

func senderKeyCreate(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetSenderKeyCreate()
	if len(p.GetRandom()) != 64 {
		return nil, fmt.Errorf("refadapter: %d random bytes, want 64", len(p.GetRandom()))
	}
	k, err := group.New(p.GetGroupId(), uint64(p.GetEpoch()), p.GetKeyId(), bytes.NewReader(p.GetRandom()))
	if err != nil {
		return nil, err
	}
	k.Iteration = p.GetIteration() // the chain key stands for one at this iteration
	d := k.Distribution()
	enc, err := wire.Marshal(&d)
	if err != nil {
		return nil, err
	}
	return &pb.SenderKeyCreateResult{Distribution: enc}, nil
}

func senderKeyEncrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetSenderKeyEncrypt()
	o := p.GetKey()
	priv, err := keys.NewPrivateKey(o.GetSigningPrivate())
	if err != nil {
		return nil, err
	}
	k := &group.SenderKey{GroupID: o.GetGroupId(), Epoch: uint64(o.GetEpoch()), KeyID: o.GetKeyId(), Iteration: o.GetIteration(),
		ChainKey: o.GetChainKey(), SigningKey: priv.Public().Encode(), Private: priv.Encode()}
	if err := k.Advance(p.GetIteration()); err != nil {
		return nil, err
	}
	msg, err := k.Encrypt(uint64(p.GetGroupVersion()), p.GetContent(), bytes.NewReader(p.GetZ()))
	if err != nil {
		return nil, err
	}
	return &pb.SenderKeyEncryptResult{Message: msg}, nil
}

// receiver builds a group.Receiver from what a request gives.
func receiver(p *pb.SenderKeyReceiver) (*group.Receiver, error) {
	var states []*group.State
	for i, s := range p.GetStates() {
		st, err := group.Decode(s)
		if err != nil {
			return nil, fmt.Errorf("refadapter: state %d: %v", i, err)
		}
		states = append(states, st)
	}
	r := group.NewReceiver(p.GetGroupId(), states)
	for _, k := range p.GetKeys() {
		from, err := parseWireAddress(k.GetSender())
		if err != nil {
			return nil, err
		}
		sk := &group.SenderKey{GroupID: bytes.Clone(p.GetGroupId()), Epoch: uint64(k.GetEpoch()), KeyID: k.GetKeyId(),
			Iteration: k.GetIteration(), ChainKey: k.GetChainKey(), SigningKey: k.GetSigningKey()}
		for _, s := range k.GetSkipped() {
			sk.Skipped = append(sk.Skipped, group.SkippedKey{Iteration: s.GetIteration(), Key: s.GetMessageKey()})
		}
		r.Keys[from] = append(r.Keys[from], sk)
	}
	for from, ks := range r.Keys {
		slices.SortFunc(ks, func(x, y *group.SenderKey) int { return cmp.Compare(x.KeyID, y.KeyID) })
		r.Keys[from] = ks
	}
	return r, nil
}

// receivedKeys lists a receiver's keys, sorted by sender, then key id.
func receivedKeys(r *group.Receiver) []*pb.ReceivedSenderKey {
	var out []*pb.ReceivedSenderKey
	senders := slices.SortedFunc(maps.Keys(r.Keys), func(x, y wire.Address) int {
		return cmp.Or(strings.Compare(x.Account, y.Account), cmp.Compare(x.Device, y.Device))
	})
	for _, from := range senders {
		for _, k := range r.Keys[from] {
			rk := &pb.ReceivedSenderKey{Sender: fmt.Sprintf("%s/%d", from.Account, from.Device), KeyId: k.KeyID,
				Epoch: uint32(k.Epoch), Iteration: k.Iteration, ChainKey: k.ChainKey, SigningKey: k.SigningKey}
			for _, s := range k.Skipped {
				rk.Skipped = append(rk.Skipped, &pb.SkippedMessageKey{Iteration: s.Iteration, MessageKey: s.Key})
			}
			out = append(out, rk)
		}
	}
	return out
}

func senderKeyDistribute(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetSenderKeyDistribute()
	r, err := receiver(p.GetReceiver())
	if err != nil {
		return nil, err
	}
	from, err := parseWireAddress(p.GetFrom())
	if err != nil {
		return nil, err
	}
	var d wire.SenderKeyDistribution
	if err = wire.Unmarshal(p.GetDistribution(), &d); err == nil {
		err = r.Distribute(from, &d)
	}
	res := &pb.SenderKeyDistributeResult{Keys: receivedKeys(r)}
	if err != nil {
		return nil, failure{res, err}
	}
	return res, nil
}

func senderKeyDecrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetSenderKeyDecrypt()
	r, err := receiver(p.GetReceiver())
	if err != nil {
		return nil, err
	}
	from, err := parseWireAddress(p.GetFrom())
	if err != nil {
		return nil, err
	}
	content, err := r.Decrypt(from, p.GetMessageId(), p.GetSentAt(), p.GetMessage())
	res := &pb.SenderKeyDecryptResult{Content: content, Keys: receivedKeys(r)}
	if err != nil {
		return nil, failure{res, err}
	}
	return res, nil
}

func mediaEncrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMediaEncrypt()
	s, err := media.EncryptWithKey(p.GetMediaKey(), p.GetPlaintext())
	if err != nil {
		return nil, err
	}
	return &pb.MediaEncryptResult{Blob: s.Blob, Digest: s.Digest, Size: uint64(len(s.Blob))}, nil
}

func mediaDecrypt(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMediaDecrypt()
	pt, err := media.Decrypt(p.GetMediaKey(), p.GetDigest(), p.GetSize(), p.GetBlob())
	if err != nil {
		return nil, err
	}
	return &pb.MediaDecryptResult{Plaintext: pt}, nil
}

var lifecycleTypes = map[string]uint64{"text": wire.ContentText, "media": wire.ContentMedia, "receipt": wire.ContentReceipt,
	"edit": wire.ContentEdit, "delete": wire.ContentDelete, "timer": wire.ContentTimer, "opened": wire.ContentOpened}

func lifecycleID(b []byte) (history.ID, error) {
	if len(b) != 16 {
		return history.ID{}, fmt.Errorf("refadapter: message id of %d bytes", len(b))
	}
	return history.ID(b), nil
}

// lifecycleContent returns the content of a receive or send event.
func lifecycleContent(device history.Address, e *pb.LifecycleEvent) (history.Content, error) {
	typ, ok := lifecycleTypes[e.GetType()]
	if !ok {
		return history.Content{}, errUnimplemented
	}
	id, err := lifecycleID(e.GetId())
	if err != nil {
		return history.Content{}, err
	}
	x := history.Content{From: device, Type: typ, ID: id, SentAt: e.GetSentAt(), Text: e.GetText(), ViewOnce: e.GetViewOnce(),
		Expire: e.GetExpireAfter(), Timer: e.GetTimer()}
	if e.GetOp() == "receive" {
		if x.From, err = parseAddress(e.GetFrom()); err != nil {
			return x, err
		}
	}
	if typ == wire.ContentEdit || typ == wire.ContentDelete {
		if x.Target, err = lifecycleID(e.GetTarget()); err != nil {
			return x, err
		}
	}
	for _, m := range e.GetMessages() {
		id, err := lifecycleID(m.GetId())
		if err != nil {
			return x, err
		}
		x.Opened = append(x.Opened, history.MsgKey{From: m.GetAccount(), ID: id})
	}
	return x, nil
}

// lifecycleRun is lifecycle.run, with history.Conversation.
func lifecycleRun(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetLifecycleRun()
	device, err := parseAddress(p.GetDevice())
	if err != nil {
		return nil, err
	}
	c := history.NewConversation()
	c.Now = p.GetClock()
	res := &pb.LifecycleRunResult{}
	for _, e := range p.GetEvents() {
		er := &pb.LifecycleEventResult{}
		switch e.GetOp() {
		case "clock":
			c.Clock(e.GetNow())
			er.Result = "applied"
		case "receive", "send":
			x, err := lifecycleContent(device, e)
			if err != nil {
				return nil, err
			}
			var r history.Result
			if e.GetOp() == "receive" {
				r, err = c.Receive(x)
			} else {
				x.Expire = 0
				x, r, err = c.Send(x)
				er.ExpireAfter = x.Expire
			}
			switch {
			case err != nil && errcode.Of(err) == 0:
				return nil, err
			case err != nil && e.GetOp() == "receive":
				er.Result, er.ErrorCode = "dropped", uint32(errcode.Of(err))
			case err != nil:
				er.Result, er.ErrorCode = "refused", uint32(errcode.Of(err))
			default:
				er.Result = r.String()
			}
		default:
			return nil, errUnimplemented
		}
		res.Results = append(res.Results, er)
	}
	final := &pb.LifecycleState{Timer: c.Timer.Value, TimerId: c.Timer.ID}
	ks := slices.SortedFunc(maps.Keys(c.Messages), func(x, y history.MsgKey) int { return bytes.Compare(x.ID[:], y.ID[:]) })
	for _, k := range ks {
		m := c.Messages[k]
		lm := &pb.LifecycleMessage{From: k.From, Id: bytes.Clone(k.ID[:]), Deleted: m.Deleted,
			Expired: history.Expired(m.SentAt, m.Expire, c.Now)}
		if text, ok := m.Shown(c.Now); ok && (m.Text != "" || m.Edit.ID != nil) {
			lm.Text = &text
			lm.EditedBy = m.Edit.ID
		}
		if m.Type == wire.ContentMedia && m.ViewOnce {
			lm.Opened = &m.Opened
		}
		final.Messages = append(final.Messages, lm)
	}
	for _, kc := range c.Pending {
		final.Pending = append(final.Pending, bytes.Clone(kc.ID[:]))
	}
	slices.SortFunc(final.Pending, bytes.Compare)
	res.Final = final
	return res, nil
}

// groupReceiptsFold is group_receipts.fold, with history.State.
func groupReceiptsFold(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetGroupReceiptsFold()
	own, err := parseAddress(p.GetDevice())
	if err != nil {
		return nil, err
	}
	versions := map[history.ID]uint32{}
	for _, m := range p.GetMessages() {
		id, err := lifecycleID(m.GetId())
		if err != nil {
			return nil, err
		}
		versions[id] = m.GetGroupVersion()
	}
	lists := map[string][]uint32{}
	for acct, ids := range p.GetDevices() {
		lists[acct] = ids.GetIds()
	}
	s := history.New()
	for _, e := range p.GetEvents() {
		switch e.GetKind() {
		case "sent":
			id, err := lifecycleID(e.GetMessage())
			if err != nil {
				return nil, err
			}
			v, ok := versions[id]
			if !ok {
				return nil, fmt.Errorf("refadapter: unknown message %x", id)
			}
			members := map[string][]uint32{}
			for _, acct := range p.GetVersions()[v].GetAccounts() {
				if acct != own.Account {
					members[acct] = lists[acct]
				}
			}
			s.LearnGroupSent(id, members)
		case "receipt":
			from, err := parseAddress(e.GetFrom())
			if err != nil {
				return nil, err
			}
			kind, ok := history.ParseStatus(e.GetReceipt())
			if !ok {
				return nil, errUnimplemented
			}
			r := history.Receipt{From: from, Kind: kind}
			for _, m := range e.GetMessages() {
				id, err := lifecycleID(m)
				if err != nil {
					return nil, err
				}
				r.IDs = append(r.IDs, id)
			}
			s.ApplyReceipt(r, slices.Contains(lists[from.Account], from.Device))
		default:
			return nil, errUnimplemented
		}
	}
	res := &pb.GroupReceiptsFoldResult{}
	for _, id := range slices.SortedFunc(maps.Keys(s.Sent), func(x, y history.ID) int { return bytes.Compare(x[:], y[:]) }) {
		m := s.Sent[id]
		st := &pb.GroupMessageStatus{Id: bytes.Clone(id[:]), Statuses: map[string]string{}, Members: map[string]string{},
			Overall: history.GroupOverall(m.Members).String()}
		for acct, devs := range m.Members {
			st.Members[acct] = history.Overall(devs).String()
			for d, v := range devs {
				st.Statuses[history.Address{Account: acct, Device: d}.String()] = v.String()
			}
		}
		res.Messages = append(res.Messages, st)
	}
	return res, nil
}
