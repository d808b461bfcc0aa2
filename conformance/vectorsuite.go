package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
	"github.com/missive-protocol/missive/spec"
	"github.com/missive-protocol/missive/vectors"
)

// hexb is a byte string carried as hexadecimal in the vector files.
type hexb []byte

func (h *hexb) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

// common is the part of every vector case.
type common struct {
	ID           string   `json:"id"`
	Comment      string   `json:"comment"`
	Flags        []string `json:"flags"`
	Requirements []string `json:"requirements"`
	Expect       string   `json:"expect"`
	Error        string   `json:"error"`
}

// want returns the expected error code, 0 for valid.
func (c *common) want() (errcode.Code, error) {
	switch c.Expect {
	case "valid":
		return 0, nil
	case "invalid":
		code, ok := errcode.Parse(c.Error)
		if !ok {
			return 0, fmt.Errorf("unknown error %q", c.Error)
		}
		return code, nil
	}
	return 0, fmt.Errorf("unknown expect %q", c.Expect)
}

// family runs one vector file.
type family struct {
	name string
	run  func(ctx context.Context, v *vectorRun, data []byte) error
}

var families = []family{
	{"xeddsa", runXEdDSA},
	{"pqxdh", runPQXDH},
	{"ratchet", runRatchet},
	{"ratchet_accumulated", runAccumulated},
	{"wire", runWire},
	{"device_lists", runDeviceLists},
	{"receipts", runReceipts},
	{"transport", runTransport},
	{"group_states", runGroupStates},
	{"sender_keys", runSenderKeys},
	{"media", runMedia},
	{"lifecycle", runLifecycle},
	{"group_receipts", runGroupReceipts},
}

// vectorRun collects the results of the vector suite.
type vectorRun struct {
	a       *Adapter
	family  string
	results []Result
	emit    func(Result)
}

// record ends one case: it classifies the outcome of a call against what
// the case wants.
func (v *vectorRun) record(c common, start time.Time, fn func(r *Result) error) {
	r := Result{Suite: "vectors", Group: v.family, ID: c.ID, Requirements: c.Requirements}
	if err := fn(&r); err != nil {
		var un unimplemented
		switch {
		case errors.As(err, &un):
			r.Outcome, r.Detail = Unimplemented, un.method
		case errors.Is(err, ErrAdapter):
			r.failf(AdapterBroken, "%v", err)
		default:
			r.failf(WrongOutput, "%v", err)
		}
	} else if r.Outcome == "" {
		r.Outcome = Pass
	}
	r.Duration = time.Since(start)
	v.results = append(v.results, r)
	v.emit(r)
}

// unimplemented is returned when the adapter answers UNIMPLEMENTED.
type unimplemented struct{ method string }

func (u unimplemented) Error() string { return u.method + " is unimplemented" }

// call makes a request and returns its response; UNIMPLEMENTED becomes an
// unimplemented error.
func (v *vectorRun) call(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	resp, err := v.a.Call(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Status == pb.Status_UNIMPLEMENTED {
		return nil, unimplemented{req.Method}
	}
	return resp, nil
}

// check compares a response with the expected outcome: OK when want is 0,
// else ERROR with that code. It returns whether the call succeeded and the
// comparison can go on to outputs.
func check(r *Result, resp *pb.Response, want errcode.Code) bool {
	got := errcode.Code(resp.ErrorCode)
	switch {
	case want == 0 && resp.Status == pb.Status_OK:
		return true
	case want == 0:
		r.failf(UnexpectedFailure, "refused with %v: %s", got, resp.Detail)
	case resp.Status == pb.Status_OK:
		r.failf(UnexpectedSuccess, "accepted; want %v", want)
	case resp.Status != pb.Status_ERROR:
		r.failf(WrongError, "answered with status %v and code %v; a refusal is status ERROR with %v", resp.Status, got, want)
	case got != want:
		r.failf(WrongError, "got %v, want %v (%s)", got, want, resp.Detail)
	}
	return false
}

// RunVectors runs every vector family whose name match matches (every one
// when match is nil) through the adapter, calling emit for each result as
// it comes. It fails with ErrNoMatch when match selects no family.
func RunVectors(ctx context.Context, a *Adapter, match *regexp.Regexp, emit func(Result)) ([]Result, error) {
	var out []Result
	selected := 0
	names, err := fs.Glob(vectors.FS, "v1/*.json")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("conformance: no vector files")
	}
	known := map[string]bool{}
	for _, f := range families {
		known["v1/"+f.name+".json"] = true
		if match != nil && !match.MatchString(f.name) || ctx.Err() != nil {
			continue
		}
		selected++
		data, err := vectors.FS.ReadFile("v1/" + f.name + ".json")
		if err != nil {
			return nil, err
		}
		v := &vectorRun{a: a, family: f.name, emit: emit}
		if err := f.run(ctx, v, data); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", f.name, err)
		}
		if len(v.results) == 0 {
			return nil, fmt.Errorf("conformance: %s: no cases", f.name)
		}
		out = append(out, v.results...)
	}
	for _, n := range names {
		if !known[n] {
			return nil, fmt.Errorf("conformance: %s has no runner", n)
		}
	}
	if selected == 0 && ctx.Err() == nil {
		return nil, fmt.Errorf("%w in the vectors suite", ErrNoMatch)
	}
	return out, nil
}

// vectorSchema is the schema of the vector files this runner reads.
const vectorSchema = "missive-vectors/1"

// decodeFile parses the vector file of family strictly (VEC-001): it
// refuses a field it does not know, and a header that is not this
// runner's: schema, family, the specification's version and its protocol
// version.
func decodeFile[C any](family string, data []byte) ([]C, error) {
	var f struct {
		Schema          string            `json:"schema"`
		Family          string            `json:"family"`
		SpecVersion     string            `json:"spec_version"`
		ProtocolVersion int               `json:"protocol_version"`
		Description     string            `json:"description"`
		Notes           map[string]string `json:"notes"`
		Cases           []C               `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	switch {
	case f.Schema != vectorSchema:
		return nil, fmt.Errorf("unknown schema %q, want %q", f.Schema, vectorSchema)
	case f.Family != family:
		return nil, fmt.Errorf("family %q, want %q", f.Family, family)
	case f.SpecVersion != spec.Version:
		return nil, fmt.Errorf("spec_version %q, want %q", f.SpecVersion, spec.Version)
	case f.ProtocolVersion != spec.ProtocolVersion:
		return nil, fmt.Errorf("protocol_version %d, want %d", f.ProtocolVersion, spec.ProtocolVersion)
	}
	return f.Cases, nil
}

type xeddsaCase struct {
	common
	Private   hexb `json:"private"`
	Public    hexb `json:"public"`
	Message   hexb `json:"message"`
	Z         hexb `json:"z"`
	Signature hexb `json:"signature"`
}

func runXEdDSA(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[xeddsaCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return err
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			if want == 0 && c.Private != nil {
				resp, err := v.call(ctx, &pb.Request{Method: "xeddsa.sign", Params: &pb.Request_XeddsaSign{XeddsaSign: &pb.XEdDSASignParams{
					PrivateKey: c.Private, Message: c.Message, Z: c.Z}}})
				if err != nil {
					return err
				}
				if !check(r, resp, 0) {
					return nil
				}
				if s := resp.GetXeddsaSign(); !bytes.Equal(s.GetSignature(), c.Signature) || !bytes.Equal(s.GetPublicKey(), c.Public) {
					r.failf(WrongOutput, "xeddsa.sign: signature %x, public key %x", s.GetSignature(), s.GetPublicKey())
					return nil
				}
			}
			resp, err := v.call(ctx, &pb.Request{Method: "xeddsa.verify", Params: &pb.Request_XeddsaVerify{XeddsaVerify: &pb.XEdDSAVerifyParams{
				PublicKey: c.Public, Message: c.Message, Signature: c.Signature}}})
			if err != nil {
				return err
			}
			check(r, resp, want)
			return nil
		})
	}
	return nil
}

type pqxdhCase struct {
	common
	Operation               string `json:"operation"`
	AliceIdentityPrivate    hexb   `json:"alice_identity_private"`
	BobIdentityPrivate      hexb   `json:"bob_identity_private"`
	BobSignedPrekeyPrivate  hexb   `json:"bob_signed_prekey_private"`
	BobSignedPrekeyID       uint32 `json:"bob_signed_prekey_id"`
	BobKEMPrekeySeed        hexb   `json:"bob_kem_prekey_seed"`
	BobKEMPrekeyID          uint32 `json:"bob_kem_prekey_id"`
	BobKEMPrekeyLastResort  bool   `json:"bob_kem_prekey_last_resort"`
	BobOneTimePrekeyPrivate hexb   `json:"bob_one_time_prekey_private"`
	BobOneTimePrekeyID      uint32 `json:"bob_one_time_prekey_id"`
	SignedPrekeyZ           hexb   `json:"signed_prekey_z"`
	KEMPrekeyZ              hexb   `json:"kem_prekey_z"`
	Bundle                  hexb   `json:"bundle"`
	AliceEphemeralPrivate   hexb   `json:"alice_ephemeral_private"`
	KEMEncapsRandom         hexb   `json:"kem_encaps_random"`
	AliceRatchetPrivate     hexb   `json:"alice_ratchet_private"`
	BobRatchetPrivate       hexb   `json:"bob_ratchet_private"`
	Plaintext               hexb   `json:"plaintext"`
	SK                      hexb   `json:"sk"`
	AD                      hexb   `json:"ad"`
	PrekeyMessage           hexb   `json:"prekey_message"`
}

func runPQXDH(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[pqxdhCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return err
		}
		switch {
		case c.Operation == "both" && want == 0:
		case (c.Operation == "initiate" || c.Operation == "respond") && want != 0:
		default:
			return fmt.Errorf("%s: operation %q with expect %q", c.ID, c.Operation, c.Expect)
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			if c.Operation == "both" || c.Operation == "initiate" {
				random := slices.Concat(c.AliceEphemeralPrivate, c.KEMEncapsRandom, c.AliceRatchetPrivate)
				resp, err := v.call(ctx, &pb.Request{Method: "pqxdh.initiate", Params: &pb.Request_PqxdhInitiate{PqxdhInitiate: &pb.PQXDHInitiateParams{
					IdentityPrivate: c.AliceIdentityPrivate, Bundle: c.Bundle, Random: random, Plaintext: c.Plaintext}}})
				if err != nil {
					return err
				}
				w := want
				if c.Operation == "both" {
					w = 0
				}
				if !check(r, resp, w) {
					return nil
				}
				if c.Operation == "both" {
					res := resp.GetPqxdhInitiate()
					if !bytes.Equal(res.GetPrekeyMessage(), c.PrekeyMessage) {
						r.failf(WrongOutput, "pqxdh.initiate: the prekey message differs")
						return nil
					}
					if len(res.GetSk()) > 0 && !bytes.Equal(res.GetSk(), c.SK) {
						r.failf(WrongOutput, "pqxdh.initiate: SK %x, want %x", res.GetSk(), []byte(c.SK))
						return nil
					}
				}
			}
			if c.Operation == "both" || c.Operation == "respond" {
				p := &pb.PQXDHRespondParams{IdentityPrivate: c.BobIdentityPrivate, SignedPrekeyPrivate: c.BobSignedPrekeyPrivate,
					SignedPrekeyId: c.BobSignedPrekeyID, KemPrekeySeed: c.BobKEMPrekeySeed, KemPrekeyId: c.BobKEMPrekeyID,
					KemPrekeyLastResort: c.BobKEMPrekeyLastResort, OneTimePrekeyPrivate: c.BobOneTimePrekeyPrivate,
					OneTimePrekeyId: c.BobOneTimePrekeyID, PrekeyMessage: c.PrekeyMessage, Random: c.BobRatchetPrivate}
				resp, err := v.call(ctx, &pb.Request{Method: "pqxdh.respond", Params: &pb.Request_PqxdhRespond{PqxdhRespond: p}})
				if err != nil {
					return err
				}
				if !check(r, resp, want) {
					return nil
				}
				res := resp.GetPqxdhRespond()
				if got := res.GetPlaintext(); !bytes.Equal(got, c.Plaintext) {
					r.failf(WrongOutput, "pqxdh.respond: plaintext %x, want %x", got, []byte(c.Plaintext))
					return nil
				}
				// Bob's first decryption drew his new ratchet key (spec 5.8):
				// his reply carries its public key.
				resp, err = v.call(ctx, &pb.Request{Method: "ratchet.encrypt", Params: &pb.Request_RatchetEncrypt{RatchetEncrypt: &pb.RatchetEncryptParams{
					Session: res.GetSession(), Plaintext: c.Plaintext}}})
				if err != nil {
					return err
				}
				if !check(r, resp, 0) {
					r.Detail = "ratchet.encrypt after pqxdh.respond: " + r.Detail
					return nil
				}
				key, err := ratchetKey(resp.GetRatchetEncrypt().GetMessage())
				if err != nil {
					return err
				}
				pub, err := x25519Public(c.BobRatchetPrivate)
				if err != nil {
					return err
				}
				if wantKey := append([]byte{keys.TypeX25519Public}, pub...); !bytes.Equal(key, wantKey) {
					r.failf(WrongOutput, "pqxdh.respond: Bob's reply has ratchet key %x, want %x (from bob_ratchet_private)", key, wantKey)
				}
			}
			return nil
		})
	}
	return nil
}

type ratchetStep struct {
	Op             string `json:"op"`
	Party          string `json:"party"`
	Plaintext      hexb   `json:"plaintext"`
	Message        hexb   `json:"message"`
	RatchetPrivate hexb   `json:"ratchet_private"`
	Expect         string `json:"expect"`
	Error          string `json:"error"`
}

type ratchetCase struct {
	common
	SK                  hexb          `json:"sk"`
	AD                  hexb          `json:"ad"`
	AliceRatchetPrivate hexb          `json:"alice_ratchet_private"`
	BobRatchetPrivate   hexb          `json:"bob_ratchet_private"`
	Steps               []ratchetStep `json:"steps"`
}

// pair starts the two sides of a ratchet session in the adapter.
func (v *vectorRun) pair(ctx context.Context, sk, ad, aliceRatchet, bobRatchet []byte) (alice, bob string, err error) {
	bobPub, err := x25519Public(bobRatchet)
	if err != nil {
		return "", "", err
	}
	resp, err := v.call(ctx, &pb.Request{Method: "ratchet.init", Params: &pb.Request_RatchetInit{RatchetInit: &pb.RatchetInitParams{
		Initiator: true, Sk: sk, Ad: ad, RatchetPrivate: aliceRatchet, RemoteRatchetPublic: bobPub}}})
	if err != nil {
		return "", "", err
	}
	if resp.Status != pb.Status_OK {
		return "", "", fmt.Errorf("ratchet.init (initiator) refused: %s", resp.Detail)
	}
	alice = resp.GetRatchetInit().GetSession()
	resp, err = v.call(ctx, &pb.Request{Method: "ratchet.init", Params: &pb.Request_RatchetInit{RatchetInit: &pb.RatchetInitParams{
		Sk: sk, Ad: ad, RatchetPrivate: bobRatchet}}})
	if err != nil {
		return "", "", err
	}
	if resp.Status != pb.Status_OK {
		return "", "", fmt.Errorf("ratchet.init (responder) refused: %s", resp.Detail)
	}
	return alice, resp.GetRatchetInit().GetSession(), nil
}

func runRatchet(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[ratchetCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if _, err := c.want(); err != nil {
			return fmt.Errorf("%s: %w", c.ID, err)
		}
		for i, s := range c.Steps {
			if _, err := (&common{Expect: s.Expect, Error: s.Error}).want(); err != nil {
				return fmt.Errorf("%s step %d: %w", c.ID, i, err)
			}
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			alice, bob, err := v.pair(ctx, c.SK, c.AD, c.AliceRatchetPrivate, c.BobRatchetPrivate)
			if err != nil {
				return err
			}
			for i, s := range c.Steps {
				want, _ := (&common{Expect: s.Expect, Error: s.Error}).want()
				session := map[string]string{"alice": alice, "bob": bob}[s.Party]
				var resp *pb.Response
				if s.Op == "encrypt" {
					resp, err = v.call(ctx, &pb.Request{Method: "ratchet.encrypt", Params: &pb.Request_RatchetEncrypt{RatchetEncrypt: &pb.RatchetEncryptParams{
						Session: session, Plaintext: s.Plaintext}}})
				} else {
					resp, err = v.call(ctx, &pb.Request{Method: "ratchet.decrypt", Params: &pb.Request_RatchetDecrypt{RatchetDecrypt: &pb.RatchetDecryptParams{
						Session: session, Message: s.Message, Random: s.RatchetPrivate}}})
				}
				if err != nil {
					return err
				}
				if !check(r, resp, want) {
					if r.Outcome == Fail {
						r.Detail = fmt.Sprintf("step %d (%s %s): %s", i, s.Party, s.Op, r.Detail)
						return nil
					}
					continue
				}
				if want != 0 {
					continue
				}
				if s.Op == "encrypt" && !bytes.Equal(resp.GetRatchetEncrypt().GetMessage(), s.Message) {
					r.failf(WrongOutput, "step %d (%s encrypt): the message differs", i, s.Party)
					return nil
				}
				if s.Op == "decrypt" && !bytes.Equal(resp.GetRatchetDecrypt().GetPlaintext(), s.Plaintext) {
					r.failf(WrongOutput, "step %d (%s decrypt): plaintext %x", i, s.Party, resp.GetRatchetDecrypt().GetPlaintext())
					return nil
				}
			}
			return nil
		})
	}
	return nil
}

type accumulatedCase struct {
	common
	Sessions int    `json:"sessions"`
	Rounds   int    `json:"rounds"`
	Seed     string `json:"seed"`
	Digest   hexb   `json:"digest"`
}

func runAccumulated(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[accumulatedCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if want, err := c.want(); err != nil || want != 0 {
			return fmt.Errorf("%s: an accumulated case is valid (%v)", c.ID, err)
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			R := sha3.NewSHAKE128()
			R.Write([]byte(c.Seed))
			read := func(n int) []byte {
				b := make([]byte, n)
				R.Read(b)
				return b
			}
			u8 := func() int { return int(read(1)[0]) }
			T := sha256.New()
			seen := map[string]map[string]bool{} // ratchet keys each session has received
			for s := range c.Sessions {
				sk, ad := read(32), read(66)
				alice, bob, err := v.pair(ctx, sk, ad, read(32), read(32))
				if err != nil {
					return err
				}
				for round := range c.Rounds {
					sender, receiver := alice, bob
					if round%2 == 1 {
						sender, receiver = bob, alice
					}
					type sent struct{ msg, pt []byte }
					var msgs []sent
					for range 1 + u8()%4 {
						n := u8()
						n += 256 * (u8() % 4)
						pt := read(n)
						resp, err := v.call(ctx, &pb.Request{Method: "ratchet.encrypt", Params: &pb.Request_RatchetEncrypt{RatchetEncrypt: &pb.RatchetEncryptParams{Session: sender, Plaintext: pt}}})
						if err != nil {
							return err
						}
						if resp.Status != pb.Status_OK {
							r.failf(UnexpectedFailure, "session %d round %d: encrypt refused: %s", s, round, resp.Detail)
							return nil
						}
						m := resp.GetRatchetEncrypt().GetMessage()
						T.Write(m)
						msgs = append(msgs, sent{m, pt})
					}
					if u8()%2 == 1 {
						slices.Reverse(msgs)
					}
					for _, m := range msgs {
						// A message with a ratchet key the receiver has not
						// seen starts a chain: its DH step draws 32 bytes.
						key, err := ratchetKey(m.msg)
						if err != nil {
							return err
						}
						var random []byte
						if seen[receiver] == nil {
							seen[receiver] = map[string]bool{}
						}
						if !seen[receiver][string(key)] {
							seen[receiver][string(key)] = true
							random = read(32)
						}
						resp, err := v.call(ctx, &pb.Request{Method: "ratchet.decrypt", Params: &pb.Request_RatchetDecrypt{RatchetDecrypt: &pb.RatchetDecryptParams{Session: receiver, Message: m.msg, Random: random}}})
						if err != nil {
							return err
						}
						if resp.Status != pb.Status_OK || !bytes.Equal(resp.GetRatchetDecrypt().GetPlaintext(), m.pt) {
							r.failf(UnexpectedFailure, "session %d round %d: decrypt: %s", s, round, resp.Detail)
							return nil
						}
						T.Write(m.pt)
					}
				}
			}
			if got := T.Sum(nil); !bytes.Equal(got, c.Digest) {
				r.failf(WrongOutput, "digest %x, want %x", got, []byte(c.Digest))
			}
			return nil
		})
	}
	return nil
}

type wireCase struct {
	common
	Rule       string `json:"rule"`
	Encoding   hexb   `json:"encoding"`
	Diagnostic string `json:"diagnostic"`
}

func runWire(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[wireCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return err
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			resp, err := v.call(ctx, &pb.Request{Method: "wire.decode", Params: &pb.Request_WireDecode{WireDecode: &pb.WireDecodeParams{Rule: c.Rule, Encoding: c.Encoding}}})
			if err != nil {
				return err
			}
			if check(r, resp, want) && want == 0 && !bytes.Equal(resp.GetWireDecode().GetEncoding(), c.Encoding) {
				r.failf(WrongOutput, "re-encoding differs: %x", resp.GetWireDecode().GetEncoding())
			}
			return nil
		})
	}
	return nil
}

type deviceListCase struct {
	common
	Account         string `json:"account"`
	PrimaryPrivate  hexb   `json:"primary_private"`
	Z               hexb   `json:"z"`
	RecordedPrimary hexb   `json:"recorded_primary"`
	Accepted        []hexb `json:"accepted"`
	List            hexb   `json:"list"`
}

func runDeviceLists(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[deviceListCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return err
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			accepted := make([][]byte, len(c.Accepted))
			for i, a := range c.Accepted {
				accepted[i] = a
			}
			resp, err := v.call(ctx, &pb.Request{Method: "devices.check", Params: &pb.Request_DevicesCheck{DevicesCheck: &pb.DevicesCheckParams{
				Account: c.Account, RecordedPrimary: c.RecordedPrimary, Accepted: accepted, List: c.List}}})
			if err != nil {
				return err
			}
			check(r, resp, want)
			return nil
		})
	}
	return nil
}

type receiptsCase struct {
	common
	Devices  map[string][]uint32 `json:"devices"`
	Messages []struct {
		ID   hexb   `json:"id"`
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"messages"`
	Events []struct {
		To       string `json:"to"`
		Kind     string `json:"kind"`
		Message  hexb   `json:"message"`
		From     string `json:"from"`
		Receipt  string `json:"receipt"`
		Messages []hexb `json:"messages"`
	} `json:"events"`
	Final map[string]struct {
		Sent map[string]struct {
			Statuses map[string]string `json:"statuses"`
			Overall  string            `json:"overall"`
		} `json:"sent"`
		Read []hexb `json:"read"`
	} `json:"final"`
}

func runReceipts(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[receiptsCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if want, err := c.want(); err != nil || want != 0 {
			return fmt.Errorf("%s: a receipts case is valid (%v)", c.ID, err)
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			p := &pb.ReceiptsFoldParams{Devices: map[string]*pb.DeviceIDs{}}
			for acct, ids := range c.Devices {
				p.Devices[acct] = &pb.DeviceIDs{Ids: ids}
			}
			for _, m := range c.Messages {
				p.Messages = append(p.Messages, &pb.FoldMessage{Id: m.ID, From: m.From, To: m.To})
			}
			for _, e := range c.Events {
				fe := &pb.FoldEvent{To: e.To, Kind: e.Kind, Message: e.Message, From: e.From, Receipt: e.Receipt}
				for _, m := range e.Messages {
					fe.Messages = append(fe.Messages, m)
				}
				p.Events = append(p.Events, fe)
			}
			resp, err := v.call(ctx, &pb.Request{Method: "receipts.fold", Params: &pb.Request_ReceiptsFold{ReceiptsFold: p}})
			if err != nil {
				return err
			}
			if !check(r, resp, 0) {
				return nil
			}
			got := resp.GetReceiptsFold().GetFinal()
			for addr, want := range c.Final {
				var w, g strings.Builder
				for _, id := range slices.Sorted(maps.Keys(want.Sent)) {
					st := want.Sent[id]
					fmt.Fprintf(&w, "%s %s:", id, st.Overall)
					for _, d := range slices.Sorted(maps.Keys(st.Statuses)) {
						fmt.Fprintf(&w, " %s=%s", d, st.Statuses[d])
					}
					w.WriteString(";")
				}
				for _, id := range want.Read {
					fmt.Fprintf(&w, "read %x;", []byte(id))
				}
				ds := got[addr]
				for _, s := range ds.GetSent() {
					fmt.Fprintf(&g, "%x %s:", s.GetId(), s.GetOverall())
					for _, d := range slices.Sorted(maps.Keys(s.GetStatuses())) {
						fmt.Fprintf(&g, " %s=%s", strconv.Itoa(int(d)), s.GetStatuses()[d])
					}
					g.WriteString(";")
				}
				for _, id := range ds.GetRead() {
					fmt.Fprintf(&g, "read %x;", id)
				}
				if g.String() != w.String() {
					r.failf(WrongOutput, "%s: got %s want %s", addr, g.String(), w.String())
					return nil
				}
			}
			return nil
		})
	}
	return nil
}

type transportCase struct {
	common
	Pattern                   string `json:"pattern"`
	Preamble                  hexb   `json:"preamble"`
	InitiatorStaticPrivate    hexb   `json:"initiator_static_private"`
	ResponderStaticPrivate    hexb   `json:"responder_static_private"`
	InitiatorEphemeralPrivate hexb   `json:"initiator_ephemeral_private"`
	ResponderEphemeralPrivate hexb   `json:"responder_ephemeral_private"`
	Handshake                 []struct {
		From    string `json:"from"`
		Message hexb   `json:"message"`
	} `json:"handshake"`
	HandshakeHash hexb `json:"handshake_hash"`
	Segments      []struct {
		From      string `json:"from"`
		Plaintext hexb   `json:"plaintext"`
		Segment   hexb   `json:"segment"`
		Expect    string `json:"expect"`
		Error     string `json:"error"`
	} `json:"segments"`
}

func runTransport(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[transportCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return fmt.Errorf("%s: %w", c.ID, err)
		}
		// A segment that must fail has expect and error; the case fails
		// with the error of its first such segment.
		segWant := make([]errcode.Code, len(c.Segments))
		var first errcode.Code
		for i, s := range c.Segments {
			if s.Expect == "" && s.Error == "" {
				continue
			}
			if segWant[i], err = (&common{Expect: s.Expect, Error: s.Error}).want(); err != nil {
				return fmt.Errorf("%s segment %d: %w", c.ID, i, err)
			}
			if segWant[i] == 0 {
				return fmt.Errorf("%s segment %d: expect %q; only a segment that fails has expect and error", c.ID, i, s.Expect)
			}
			if first == 0 {
				first = segWant[i]
			}
		}
		switch {
		case first == want:
		case want == 0:
			return fmt.Errorf("%s: a valid case with a segment that fails", c.ID)
		case first == 0:
			return fmt.Errorf("%s: an invalid case with no segment that fails", c.ID)
		default:
			return fmt.Errorf("%s: error %v, but its first failing segment's is %v", c.ID, want, first)
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			p := &pb.TransportRunParams{Pattern: c.Pattern, Preamble: c.Preamble,
				InitiatorStaticPrivate: c.InitiatorStaticPrivate, ResponderStaticPrivate: c.ResponderStaticPrivate,
				InitiatorEphemeralPrivate: c.InitiatorEphemeralPrivate, ResponderEphemeralPrivate: c.ResponderEphemeralPrivate}
			for i, s := range c.Segments {
				ts := &pb.TransportSegment{From: s.From, Plaintext: s.Plaintext}
				if segWant[i] != 0 {
					ts.Segment, ts.Plaintext = s.Segment, nil
				}
				p.Segments = append(p.Segments, ts)
			}
			resp, err := v.call(ctx, &pb.Request{Method: "transport.run", Params: &pb.Request_TransportRun{TransportRun: p}})
			if err != nil {
				return err
			}
			if !check(r, resp, 0) {
				return nil
			}
			res := resp.GetTransportRun()
			if len(res.GetHandshake()) != len(c.Handshake) {
				r.failf(WrongOutput, "%d handshake messages, want %d", len(res.GetHandshake()), len(c.Handshake))
				return nil
			}
			for i, m := range c.Handshake {
				if !bytes.Equal(res.GetHandshake()[i], m.Message) {
					r.failf(WrongOutput, "handshake message %d differs", i)
					return nil
				}
			}
			if !bytes.Equal(res.GetHandshakeHash(), c.HandshakeHash) {
				r.failf(WrongOutput, "handshake hash differs")
				return nil
			}
			for i, s := range c.Segments {
				if i >= len(res.GetSegments()) {
					r.failf(WrongOutput, "no result for segment %d", i)
					return nil
				}
				got := res.GetSegments()[i]
				if want := segWant[i]; want != 0 {
					if code := errcode.Code(got.GetErrorCode()); code != want {
						kind := UnexpectedSuccess // not refused
						if code != 0 {
							kind = WrongError
						}
						r.failf(kind, "segment %d was not refused with %v (got code %d)", i, want, code)
					}
					return nil
				}
				if !bytes.Equal(got.GetSegment(), s.Segment) || !bytes.Equal(got.GetPlaintext(), s.Plaintext) {
					r.failf(WrongOutput, "segment %d differs", i)
					return nil
				}
			}
			return nil
		})
	}
	return nil
}

// ratchetKey returns the ratchet public key in a ratchet message's header.
func ratchetKey(msg []byte) ([]byte, error) {
	var m wire.RatchetMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return nil, fmt.Errorf("the adapter produced an undecodable ratchet message: %w", err)
	}
	var h wire.RatchetHeader
	if err := wire.Unmarshal(m.Header, &h); err != nil {
		return nil, fmt.Errorf("the adapter produced an undecodable header: %w", err)
	}
	return h.RatchetKey, nil
}

// x25519Public returns the public key of a private key.
func x25519Public(priv []byte) ([]byte, error) {
	k, err := keys.NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return k.Public().Bytes(), nil
}
