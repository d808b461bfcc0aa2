package group

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
	"github.com/missive-protocol/missive/ref/xeddsa"
)

func parseAddress(t *testing.T, s string) wire.Address {
	t.Helper()
	acct, dev, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(dev, 10, 32)
	if !ok || err != nil {
		t.Fatalf("bad address %q", s)
	}
	return wire.Address{Account: acct, Device: n}
}

// acceptedLists is what a checker knows of device lists after accepting
// the lists of a case in turn (DEV-001 for each list's own account).
type acceptedLists struct {
	recorded map[string]*keys.PublicKey
	last     map[string]*devices.List
	versions map[string]map[uint64]*devices.List
}

func (l *acceptedLists) Recorded(account string) *keys.PublicKey { return l.recorded[account] }

func (l *acceptedLists) Record(account string, primary keys.PublicKey) {
	l.recorded[account] = &primary
}

func (l *acceptedLists) Accepted(account string, version uint64) *devices.List {
	return l.versions[account][version]
}

func acceptLists(t *testing.T, signed []vectest.Hex) *acceptedLists {
	t.Helper()
	l := &acceptedLists{recorded: map[string]*keys.PublicKey{}, last: map[string]*devices.List{},
		versions: map[string]map[uint64]*devices.List{}}
	for i, s := range signed {
		var sl wire.SignedDeviceList
		var dl wire.DeviceList
		if err := wire.Unmarshal(s, &sl); err != nil {
			t.Fatalf("accepted list %d: %v", i, err)
		}
		if err := wire.Unmarshal(sl.List, &dl); err != nil {
			t.Fatalf("accepted list %d: %v", i, err)
		}
		acct := dl.Account
		list, err := devices.Accept(s, acct, l.recorded[acct], l.last[acct])
		if err != nil {
			t.Fatalf("accepted list %d (%s): %v", i, acct, err)
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
	return l
}

type stateCase struct {
	vectest.Common
	Checker       string        `json:"checker"`
	GroupID       vectest.Hex   `json:"group_id"`
	Connection    string        `json:"connection"`
	Accounts      []string      `json:"accounts"`
	AcceptedLists []vectest.Hex `json:"accepted_lists"`
	Accepted      []vectest.Hex `json:"accepted"`
	AuthorPrivate vectest.Hex   `json:"author_private"`
	Z             vectest.Hex   `json:"z"`
	State         vectest.Hex   `json:"state"`
}

// checker returns the checker of a case before its state: the lists and
// states it accepted.
func (c *stateCase) checker(t *testing.T) *Checker {
	t.Helper()
	ch := &Checker{Lists: acceptLists(t, c.AcceptedLists)}
	switch c.Checker {
	case "device":
		ch.GroupID = c.GroupID
	case "server":
		ch.Server = &ServerChecks{Exists: func(a string) (bool, error) { return slices.Contains(c.Accounts, a), nil }}
	default:
		t.Fatalf("unknown checker %q", c.Checker)
	}
	for i, a := range c.Accepted {
		if ch.Server != nil {
			// An accepted state came on its author's connection.
			s, err := Decode(a)
			if err != nil {
				t.Fatalf("accepted state %d: %v", i, err)
			}
			ch.Server.Connection = s.Author
		}
		s, err := ch.Check(a)
		if err != nil {
			t.Fatalf("accepted state %d: %v", i, err)
		}
		ch.Accepted = append(ch.Accepted, s)
	}
	if ch.Server != nil {
		ch.Server.Connection = parseAddress(t, c.Connection)
	}
	return ch
}

// TestStateVectors runs vectors/v1/group_states.json: GRP-001 for a
// device, GRP-002 for the server.
func TestStateVectors(t *testing.T) {
	f := vectest.Load[stateCase](t, "group_states")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			var want errcode.Code
			if c.Expect == "duplicate" {
				if c.Error != "" {
					t.Fatalf("duplicate case with error %q", c.Error)
				}
			} else {
				want = c.Want(t)
			}
			if (c.Checker == "server") != (c.Connection != "") || (c.Checker == "server") != (c.Accounts != nil) {
				t.Fatalf("checker %q with connection %q and accounts %v", c.Checker, c.Connection, c.Accounts)
			}
			ch := c.checker(t)
			s, err := ch.Check(c.State)
			switch {
			case c.Expect == "duplicate":
				if !errors.Is(err, ErrDuplicate) {
					t.Fatalf("Check: got %v, want a duplicate", err)
				}
				c.checkSigner(t)
				return
			case errors.Is(err, ErrDuplicate):
				t.Fatalf("Check: got a duplicate, want %v", want)
			}
			if got := errcode.Of(err); got != want {
				t.Fatalf("Check: got %v (%v), want %v", got, err, want)
			}
			c.checkSigner(t)
			if want != 0 {
				return
			}
			// The state is now the latest: sent again, it is a duplicate.
			ch.Accepted = append(ch.Accepted, s)
			if _, err := ch.Check(c.State); !errors.Is(err, ErrDuplicate) {
				t.Errorf("the accepted state again: got %v, want a duplicate", err)
			}
		})
	}
}

// checkSigner checks what author_private and z signed (section 9.2), in
// every case. The state's signature is xeddsa_sign(author_private,
// LABEL_GROUP_STATE || field 1, z), by the key that the state's list gives
// the author device, unless the case has flag signature: then it is that
// signature with the low bit of s flipped, a signature of field 1 alone or
// of LABEL_DEVICE_LIST || field 1, or one by a key that is not the author
// device's. Where field 1 does not decode, or the list is another
// account's or does not hold the author device, only the signature is
// checked. A state that does not decode at all is a valid state cut short
// (decode.truncated): the byte that completes it is found, and the state
// it gives is checked as a valid one.
func (c *stateCase) checkSigner(t *testing.T) {
	t.Helper()
	signed, flagged := []byte(c.State), slices.Contains(c.Flags, "signature")
	var s wire.SignedGroupState
	if err := wire.Unmarshal(signed, &s); err != nil {
		if c.Error != errcode.DecodeTruncated.String() {
			t.Fatalf("state does not decode (%v), in a case with error %q", err, c.Error)
		}
		ch := c.checker(t)
		signed = vectest.Completed(t, c.State, func(b []byte) bool { _, err := ch.Check(b); return err == nil })
		if err := wire.Unmarshal(signed, &s); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(msg []byte) []byte {
		t.Helper()
		sig, err := xeddsa.Sign(c.AuthorPrivate, msg, c.Z)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	proper := sign(append([]byte(LabelGroupState), s.State...))
	if !bytes.Equal(s.Signature, proper) {
		if !flagged {
			t.Fatalf("signature: got %x, want %x from author_private and z", s.Signature, proper)
		}
		for _, other := range [][]byte{vectest.FlipLowS(proper), sign(s.State), sign(append([]byte(devices.LabelDeviceList), s.State...))} {
			if bytes.Equal(s.Signature, other) {
				return
			}
		}
		t.Fatalf("signature %x: not one that author_private and z make in a case with flag signature", s.Signature)
	}
	var gs wire.GroupState
	var sl wire.SignedDeviceList
	var dl wire.DeviceList
	if wire.Unmarshal(s.State, &gs) != nil || wire.Unmarshal(s.DeviceList, &sl) != nil || wire.Unmarshal(sl.List, &dl) != nil ||
		dl.Account != gs.Author.Account {
		return
	}
	priv, err := keys.NewPrivateKey(c.AuthorPrivate)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dl.Devices {
		if d.Device != gs.Author.Device {
			continue
		}
		if byAuthor := bytes.Equal(d.IdentityKey, priv.Public().Encode()); byAuthor == flagged {
			t.Errorf("author_private is the key of %s/%d in the state's list: got %v, want %v (flag signature: %v)",
				gs.Author.Account, gs.Author.Device, byAuthor, !flagged, flagged)
		}
		return
	}
	if c.Expect != "invalid" {
		t.Errorf("the state's list does not hold its author %s/%d", gs.Author.Account, gs.Author.Device)
	}
}

type vecSkipped struct {
	Iteration  uint32      `json:"iteration"`
	MessageKey vectest.Hex `json:"message_key"`
}

type vecKey struct {
	Sender     string       `json:"sender"`
	KeyID      uint32       `json:"key_id"`
	Epoch      uint64       `json:"epoch"`
	Iteration  uint32       `json:"iteration"`
	ChainKey   vectest.Hex  `json:"chain_key"`
	SigningKey vectest.Hex  `json:"signing_key"`
	Skipped    []vecSkipped `json:"skipped"`
}

type keyStep struct {
	Op           string      `json:"op"`
	From         string      `json:"from"`
	Iteration    *uint32     `json:"iteration"`
	GroupVersion uint64      `json:"group_version"`
	MessageID    vectest.Hex `json:"message_id"`
	SentAt       uint64      `json:"sent_at"`
	Distribution vectest.Hex `json:"distribution"`
	Content      vectest.Hex `json:"content"`
	Z            vectest.Hex `json:"z"`
	Message      vectest.Hex `json:"message"`
	Keys         *[]vecKey   `json:"keys"`
	Expect       string      `json:"expect"`
	Error        string      `json:"error"`
}

type keyCase struct {
	vectest.Common
	GroupID        vectest.Hex   `json:"group_id"`
	States         []vectest.Hex `json:"states"`
	Sender         string        `json:"sender"`
	Epoch          uint64        `json:"epoch"`
	KeyID          uint32        `json:"key_id"`
	Iteration      uint32        `json:"iteration"`
	ChainKey       vectest.Hex   `json:"chain_key"`
	SigningPrivate vectest.Hex   `json:"signing_private"`
	Distribution   vectest.Hex   `json:"distribution"`
	Keys           []vecKey      `json:"keys"`
	Steps          []keyStep     `json:"steps"`
}

// renderKeys writes a receiver's keys as the vectors list them: sorted by
// sender, then key id.
func renderKeys(ks map[wire.Address][]*SenderKey) string {
	var out []string
	for a, l := range ks {
		for _, k := range l {
			var b strings.Builder
			fmt.Fprintf(&b, "%s/%d key %d epoch %d iteration %d chain %x signing %x skipped", a.Account, a.Device,
				k.KeyID, k.Epoch, k.Iteration, k.ChainKey, k.SigningKey)
			for _, s := range k.Skipped {
				fmt.Fprintf(&b, " %d:%x", s.Iteration, s.Key)
			}
			out = append(out, b.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func (c *keyCase) receiverKeys(t *testing.T, vks []vecKey) map[wire.Address][]*SenderKey {
	t.Helper()
	out := map[wire.Address][]*SenderKey{}
	for i, v := range vks {
		if i > 0 {
			p := vks[i-1]
			if cmp.Or(strings.Compare(p.Sender, v.Sender), cmp.Compare(p.KeyID, v.KeyID)) >= 0 {
				t.Fatalf("keys not sorted by sender, then key id: %s %d after %s %d", v.Sender, v.KeyID, p.Sender, p.KeyID)
			}
		}
		a := parseAddress(t, v.Sender)
		k := &SenderKey{GroupID: bytes.Clone(c.GroupID), Epoch: v.Epoch, KeyID: v.KeyID, Iteration: v.Iteration,
			ChainKey: v.ChainKey, SigningKey: v.SigningKey}
		for _, s := range v.Skipped {
			k.Skipped = append(k.Skipped, SkippedKey{s.Iteration, s.MessageKey})
		}
		out[a] = append(out[a], k)
	}
	return out
}

// TestSenderKeyVectors runs vectors/v1/sender_keys.json: the sender's
// key, its distribution and encryption (GRP-005), and the receiver's
// distributions (GRP-006) and decryptions (GRP-007, GRP-008), with its
// keys compared after every step, failed or not.
func TestSenderKeyVectors(t *testing.T) {
	f := vectest.Load[keyCase](t, "sender_keys")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			want := c.Want(t)
			// The sender's key: made from the 64 bytes drawn, or standing
			// for a key at a later iteration.
			var own *SenderKey
			if c.Iteration == 0 {
				r := vectest.NewReader(t, c.ID, c.ChainKey, c.SigningPrivate)
				k, err := New(c.GroupID, c.Epoch, c.KeyID, r)
				if err != nil {
					t.Fatal(err)
				}
				r.Done()
				own = k
			} else {
				priv, err := keys.NewPrivateKey(c.SigningPrivate)
				if err != nil {
					t.Fatal(err)
				}
				own = &SenderKey{GroupID: bytes.Clone(c.GroupID), Epoch: c.Epoch, KeyID: c.KeyID, Iteration: c.Iteration,
					ChainKey: bytes.Clone(c.ChainKey), SigningKey: priv.Public().Encode(), Private: priv.Encode()}
			}
			if !bytes.Equal(own.ChainKey, c.ChainKey) {
				t.Fatalf("chain key: got %x, want %x", own.ChainKey, c.ChainKey)
			}
			d := own.Distribution()
			dist, err := wire.Marshal(&d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dist, c.Distribution) {
				t.Fatalf("distribution: got %x, want %x", dist, c.Distribution)
			}
			parseAddress(t, c.Sender)

			// The receiver.
			var states []*State
			for i, s := range c.States {
				st, err := Decode(s)
				if err != nil {
					t.Fatalf("state %d: %v", i, err)
				}
				if st.Serial != uint64(i+1) {
					t.Fatalf("state %d has version %d", i, st.Serial)
				}
				states = append(states, st)
			}
			recv := NewReceiver(c.GroupID, states)
			recv.Keys = c.receiverKeys(t, c.Keys)

			var first errcode.Code
			for i, s := range c.Steps {
				sc := vectest.Common{ID: fmt.Sprintf("%s step %d", c.ID, i), Expect: s.Expect, Error: s.Error}
				swant := sc.Want(t)
				if first == 0 {
					first = swant
				}
				var err error
				switch s.Op {
				case "encrypt":
					if swant != 0 || s.Iteration == nil {
						t.Fatalf("step %d: an encrypt step is valid, with an iteration", i)
					}
					if err := own.Advance(*s.Iteration); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					r := vectest.NewReader(t, sc.ID, s.Z)
					msg, err := own.Encrypt(s.GroupVersion, s.Content, r)
					if err != nil {
						t.Fatalf("step %d: encrypt: %v", i, err)
					}
					r.Done()
					if !bytes.Equal(msg, s.Message) {
						t.Fatalf("step %d: encrypt: got %x, want %x", i, msg, s.Message)
					}
					if own.Iteration != *s.Iteration+1 {
						t.Fatalf("step %d: the chain is at %d after the message, want %d", i, own.Iteration, *s.Iteration+1)
					}
					continue
				}
				// The messages and distributions a receiver takes come
				// from the key's owner, the case's sender (section 9.2);
				// only a step that must fail comes from another device.
				if s.From != c.Sender && swant == 0 {
					t.Fatalf("step %d: a valid %s from %s, and the case's sender is %s", i, s.Op, s.From, c.Sender)
				}
				switch s.Op {
				case "distribute":
					var dd wire.SenderKeyDistribution
					if err := wire.Unmarshal(s.Distribution, &dd); err != nil {
						t.Fatalf("step %d: distribution: %v", i, err)
					}
					err = recv.Distribute(parseAddress(t, s.From), &dd)
				case "decrypt":
					var content []byte
					content, err = recv.Decrypt(parseAddress(t, s.From), s.MessageID, s.SentAt, s.Message)
					if err == nil && !bytes.Equal(content, s.Content) {
						t.Fatalf("step %d: decrypt: content %x, want %x", i, content, s.Content)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, s.Op)
				}
				if got := errcode.Of(err); got != swant {
					t.Fatalf("step %d (%s): got %v (%v), want %v", i, s.Op, got, err, swant)
				}
				if swant != 0 && s.Content != nil {
					t.Fatalf("step %d: a failed step with content", i)
				}
				if s.Keys == nil {
					t.Fatalf("step %d: no keys after the step", i)
				}
				if got, w := renderKeys(recv.Keys), renderKeys(c.receiverKeys(t, *s.Keys)); got != w {
					t.Fatalf("step %d (%s): keys after the step: got\n%s\nwant\n%s", i, s.Op, got, w)
				}
			}
			if first != want {
				t.Errorf("the case's error is %v, its first failing step's %v", want, first)
			}
		})
	}
}
