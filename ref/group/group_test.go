package group

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// drbg is a deterministic byte source for tests.
type drbg struct{ state [32]byte }

func newDRBG(seed string) *drbg { return &drbg{sha256.Sum256([]byte(seed))} }

func (d *drbg) Read(p []byte) (int, error) {
	for i := range p {
		if i%32 == 0 {
			d.state = sha256.Sum256(d.state[:])
		}
		p[i] = d.state[i%32]
	}
	return len(p), nil
}

type account struct {
	name string
	key  *keys.PrivateKey
	list *devices.List
}

func newAccount(t *testing.T, name string, r io.Reader) *account {
	t.Helper()
	k, err := keys.GeneratePrivateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	l, err := devices.Sign(k, name, 1, []wire.ListedDevice{{Device: 1, IdentityKey: k.Public().Encode()}}, 1000, r)
	if err != nil {
		t.Fatal(err)
	}
	return &account{name, k, l}
}

func members(ms ...any) []wire.GroupMember {
	var out []wire.GroupMember
	for i := 0; i < len(ms); i += 2 {
		out = append(out, wire.GroupMember{Account: ms[i].(string), Role: uint64(ms[i+1].(int))})
	}
	return out
}

func TestStateChain(t *testing.T) {
	r := newDRBG("chain")
	alice, bob := newAccount(t, "alice", r), newAccount(t, "bob", r)
	gid := bytes.Repeat([]byte{7}, 16)
	sign := func(a *account, version uint64, ms []wire.GroupMember) *State {
		t.Helper()
		s, err := Sign(a.key, wire.Address{Account: a.name, Device: 1}, a.list.Signed, gid, version, ms, "friends", 2000, r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v1 := sign(alice, 1, members("alice", 1))
	v2 := sign(alice, 2, members("alice", 1, "bob", 0, "carol", 0))
	v3leave := sign(bob, 3, members("alice", 1, "carol", 0))
	v3bob := sign(bob, 3, members("alice", 1, "bob", 1, "carol", 0))
	v3remove := sign(alice, 3, members("alice", 1, "bob", 0))
	v3noadmin := sign(alice, 3, members("bob", 0, "carol", 0))
	v4 := sign(alice, 4, members("alice", 1))
	forged := bytes.Clone(v2.Signed)
	forged[len(forged)/2] ^= 1
	other, _ := Sign(alice.key, wire.Address{Account: "alice", Device: 1}, alice.list.Signed, bytes.Repeat([]byte{8}, 16), 1, members("alice", 1), "", 1, r)
	for _, tc := range []struct {
		name string
		prev *State
		next []byte
		want error
	}{
		{"create", nil, v1.Signed, nil},
		{"add", v1, v2.Signed, nil},
		{"a member leaves", v2, v3leave.Signed, nil},
		{"a member promotes itself", v2, v3bob.Signed, errcode.PolicyNotAdmin},
		{"an admin removes", v2, v3remove.Signed, nil},
		{"no admin left", v2, v3noadmin.Signed, errcode.PolicyNotAdmin},
		{"gap", v2, v4.Signed, errcode.StateGroupRollback},
		{"rollback", v2, v1.Signed, errcode.StateGroupRollback},
		{"duplicate", v2, v2.Signed, ErrDuplicate},
		{"first state of an added member", nil, v2.Signed, nil},
		{"another group", v1, other.Signed, errcode.AuthGroupInvalid},
		{"forged", v1, forged, nil}, // want is set below: any decode or auth failure
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.next, gid, nil)
			if err == nil {
				err = Check(tc.prev, s)
			}
			if tc.name == "forged" {
				if err == nil {
					t.Fatal("got nil, want an error")
				}
				return
			}
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := Removed(v2, v3remove); len(got) != 1 || got[0] != "carol" {
		t.Errorf("Removed: got %v, want [carol]", got)
	}
	if got := Added(v1, v2); len(got) != 2 {
		t.Errorf("Added: got %v, want [bob carol]", got)
	}
}

// senderKeys returns a device's own new sender key for group gid and
// epoch, and the key a member makes from its distribution.
func senderKeys(t testing.TB, gid []byte, epoch uint64, r io.Reader) (own, recv *SenderKey) {
	t.Helper()
	own, err := New(gid, epoch, 1, r)
	if err != nil {
		t.Fatal(err)
	}
	d := own.Distribution()
	if recv, err = FromDistribution(&d); err != nil {
		t.Fatal(err)
	}
	return own, recv
}

func TestSenderKey(t *testing.T) {
	r := newDRBG("sender key")
	gid := bytes.Repeat([]byte{9}, 16)
	own, recv := senderKeys(t, gid, 2, r)
	var msgs [][]byte
	for i := 0; i < 4; i++ {
		m, err := own.Encrypt(2, []byte{byte(i)}, r)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	decrypt := func(k *SenderKey, m []byte) ([]byte, *SenderKey, error) {
		pm, err := ParseMessage(m)
		if err != nil {
			return nil, nil, err
		}
		return Decrypt(k, pm)
	}
	// Out of order: 2, then 0, then 2 again (a replay), then 1 and 3.
	pt, k, err := decrypt(recv, msgs[2])
	if err != nil || !bytes.Equal(pt, []byte{2}) || len(k.Skipped) != 2 || k.Iteration != 3 {
		t.Fatalf("message 2: got %x, %v, %d skipped, iteration %d", pt, err, len(k.Skipped), k.Iteration)
	}
	if recv.Iteration != 0 {
		t.Fatalf("the key given to Decrypt changed: iteration %d", recv.Iteration)
	}
	recv = k
	if pt, k, err = decrypt(recv, msgs[0]); err != nil || pt[0] != 0 {
		t.Fatalf("message 0: %x, %v", pt, err)
	}
	recv = k
	if _, _, err = decrypt(recv, msgs[2]); !errors.Is(err, errcode.StateDuplicateMessage) {
		t.Fatalf("replay: got %v, want state.duplicate_message", err)
	}
	for _, i := range []int{1, 3} {
		if pt, k, err = decrypt(recv, msgs[i]); err != nil || int(pt[0]) != i {
			t.Fatalf("message %d: %x, %v", i, pt, err)
		}
		recv = k
	}
	if len(recv.Skipped) != 0 {
		t.Errorf("skipped keys left: %d", len(recv.Skipped))
	}

	// Too far ahead: exactly MaxSkip is allowed, one more is not.
	ahead := own.Clone()
	ahead.ChainKey, ahead.Iteration = bytes.Clone(recv.ChainKey), recv.Iteration
	for j := 0; j < MaxSkip+1; j++ {
		ahead.ChainKey, _ = step(ahead.ChainKey)
		ahead.Iteration++
	}
	far, _ := ahead.Encrypt(2, []byte("far"), r)
	if _, _, err := decrypt(recv, far); !errors.Is(err, errcode.StateTooManySkipped) {
		t.Errorf("MaxSkip+1 ahead: got %v, want state.too_many_skipped", err)
	}
	edge := own.Clone()
	edge.ChainKey, edge.Iteration = bytes.Clone(recv.ChainKey), recv.Iteration
	for j := 0; j < MaxSkip; j++ {
		edge.ChainKey, _ = step(edge.ChainKey)
		edge.Iteration++
	}
	atEdge, _ := edge.Encrypt(2, []byte("edge"), r)
	if _, _, err := decrypt(recv, atEdge); err != nil {
		t.Errorf("MaxSkip ahead: %v", err)
	}

	// A bad signature and a tampered ciphertext leave the key as it was.
	next, _ := own.Encrypt(2, []byte("next"), r)
	bad := bytes.Clone(next)
	bad[len(bad)-1] ^= 1
	if _, _, err := decrypt(recv, bad); !errors.Is(err, errcode.AuthBadSignature) {
		t.Errorf("bad signature: got %v", err)
	}
	impostor, _ := New(gid, 2, 1, r)
	impostor.ChainKey, impostor.Iteration = bytes.Clone(own.ChainKey), own.Iteration
	forged, _ := impostor.Encrypt(2, []byte("forged"), r)
	if _, _, err := decrypt(recv, forged); !errors.Is(err, errcode.AuthBadSignature) {
		t.Errorf("another signing key: got %v", err)
	}
}

// FuzzDecrypt checks that no group message makes Decrypt panic, that every
// failure carries a registered code, and that the key given is never
// changed (GRP-008).
func FuzzDecrypt(f *testing.F) {
	r := newDRBG("fuzz")
	gid := bytes.Repeat([]byte{3}, 16)
	own, recv := senderKeys(f, gid, 1, r)
	for i := 0; i < 3; i++ {
		m, _ := own.Encrypt(1, []byte("hello"), r)
		f.Add(m)
	}
	before := recv.Clone()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data)
		if err == nil {
			_, _, err = Decrypt(recv, m)
		}
		if err != nil && !errcode.Of(err).Registered() {
			t.Fatalf("error %v has no registered code", err)
		}
		if recv.Iteration != before.Iteration || !bytes.Equal(recv.ChainKey, before.ChainKey) || len(recv.Skipped) != 0 {
			t.Fatal("Decrypt changed the key it was given")
		}
	})
}
