package group

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// fuzzLists is what a device knows of one account's device lists: its
// recorded primary key and one accepted list.
type fuzzLists struct {
	list *devices.List
}

func (l *fuzzLists) Recorded(account string) *keys.PublicKey {
	if account != l.list.Account {
		return nil
	}
	p := l.list.Primary()
	return &p
}

func (l *fuzzLists) Accepted(account string, version uint64) *devices.List {
	if account != l.list.Account || version != l.list.Serial {
		return nil
	}
	return l.list
}

// fuzzStates returns the seeds of the group state targets: every state of
// vectors/v1/group_states.json, and states signed here, among them one by
// an account whose list is not the one lists accepted. lists knows alice,
// who signed the others, and the group id is gid.
func fuzzStates(f *testing.F) (seeds [][]byte, gid []byte, lists *fuzzLists) {
	f.Helper()
	vf := vectest.Load[stateCase](f, "group_states")
	for _, c := range vf.Cases {
		seeds = append(seeds, c.State)
		for _, a := range c.Accepted {
			seeds = append(seeds, a)
		}
	}
	r := newDRBG("fuzz parse")
	gid = bytes.Repeat([]byte{7}, 16)
	key, err := keys.GeneratePrivateKey(r)
	if err != nil {
		f.Fatal(err)
	}
	sign := func(issuedAt uint64) *devices.List {
		l, err := devices.Sign(key, "alice", 1, []wire.ListedDevice{{Device: 1, IdentityKey: key.Public().Encode()}}, issuedAt, r)
		if err != nil {
			f.Fatal(err)
		}
		return l
	}
	list, other := sign(1000), sign(1001) // two lists of version 1: the second equivocates
	lists = &fuzzLists{list}
	for _, tc := range []struct {
		l       *devices.List
		gid     []byte
		device  uint64
		version uint64
		ms      []wire.GroupMember
		name    string
	}{
		{list, gid, 1, 1, members("alice", 1), "friends"},
		{list, gid, 1, 2, members("alice", 1, "bob", 0, "carol", 0), ""},
		{list, bytes.Repeat([]byte{8}, 16), 1, 1, members("alice", 1), "others"},
		{list, gid, 2, 1, members("alice", 1), ""}, // device 2 is not listed
		{other, gid, 1, 1, members("alice", 1), ""},
	} {
		s, err := Sign(key, wire.Address{Account: "alice", Device: tc.device}, tc.l.Signed, tc.gid, tc.version, tc.ms, tc.name, 2000, r)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, s.Signed)
	}
	return seeds, gid, lists
}

// checkStateErr fails the test unless err carries a registered code of
// layer ("" for any layer).
func checkStateErr(t *testing.T, err error, layer string) {
	t.Helper()
	c := errcode.Of(err)
	if !c.Registered() || (layer != "" && c.Layer() != layer) {
		t.Fatalf("error %v is not a registered %s code", err, layer)
	}
}

// checkState checks a state that data decoded to: it keeps data, and its
// group-state encodes back to its field 1.
func checkState(t *testing.T, s *State, data []byte) {
	t.Helper()
	if !bytes.Equal(s.Signed, data) {
		t.Fatalf("signed encoding: got %x, want %x", s.Signed, data)
	}
	var signed wire.SignedGroupState
	if err := wire.Unmarshal(data, &signed); err != nil {
		t.Fatalf("accepted %x, which does not decode as a signed group state: %v", data, err)
	}
	if !bytes.Equal(s.Raw, signed.State) {
		t.Fatalf("group-state encoding: got %x, want %x", s.Raw, signed.State)
	}
	again, err := wire.Marshal(&s.GroupState)
	if err != nil {
		t.Fatalf("accepted group state does not encode: %v", err)
	}
	if !bytes.Equal(again, s.Raw) {
		t.Fatalf("parse then marshal changed the bytes:\n%x\n%x", s.Raw, again)
	}
}

// FuzzDecodeState checks Decode: no panic, registered decode codes only,
// and what decodes keeps its encodings, which encode back to themselves.
func FuzzDecodeState(f *testing.F) {
	seeds, _, _ := fuzzStates(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			checkStateErr(t, err, "decode")
			return
		}
		checkState(t, s, data)
	})
}

// FuzzParseState checks Parse, and Checker.Check as a device and as the
// server: no panic, registered codes only (ErrDuplicate aside), a decoding
// failure that is Decode's, and a state accepted that Decode gives too
// and that the group id then decides.
func FuzzParseState(f *testing.F) {
	seeds, gid, lists := fuzzStates(f)
	for _, s := range seeds {
		f.Add(s)
	}
	other := bytes.Repeat([]byte{9}, 16)
	f.Fuzz(func(t *testing.T, data []byte) {
		decoded, derr := Decode(data)
		s, err := Parse(data, nil, nil)
		if derr != nil {
			checkStateErr(t, derr, "decode")
			if errcode.Of(err) != errcode.Of(derr) {
				t.Fatalf("Parse: got %v, want Decode's %v", err, derr)
			}
			return
		}
		if err != nil {
			checkStateErr(t, err, "")
		} else {
			checkState(t, s, data)
			parsed := *s
			parsed.AuthorPrimary = keys.PublicKey{} // what only Parse, which checks the list, gives
			if !reflect.DeepEqual(&parsed, decoded) {
				t.Fatalf("Parse and Decode disagree:\n%+v\n%+v", s, decoded)
			}
			if _, err := Parse(data, s.GroupID, nil); err != nil {
				t.Fatalf("Parse with the state's own group id: %v", err)
			}
			if !bytes.Equal(s.GroupID, other) {
				if _, err := Parse(data, other, nil); !errors.Is(err, errcode.AuthGroupInvalid) {
					t.Fatalf("Parse with another group id: got %v, want %v", err, errcode.AuthGroupInvalid)
				}
			}
		}
		if s, err := Parse(data, gid, lists); err != nil {
			checkStateErr(t, err, "")
		} else {
			checkState(t, s, data)
		}
		for _, c := range []*Checker{
			{GroupID: gid, Lists: lists},
			{Server: &ServerChecks{Connection: decoded.Author}},
		} {
			s, err := c.Check(data)
			switch {
			case errors.Is(err, ErrDuplicate):
				t.Fatalf("Check with no state accepted: got %v", err)
			case err != nil:
				checkStateErr(t, err, "")
			default:
				checkState(t, s, data)
			}
		}
	})
}
