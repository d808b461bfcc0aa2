package refadapter

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flynn/noise"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/keys"
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
