// Package group implements the group mechanics of spec/16-groups.md:
// signed group states (making, signing, checking a chain of them), the
// device digest of a group, and sender keys (making, distributing,
// encrypting and decrypting group messages).
package group

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 16.1.
const (
	MaxMembers        = wire.MaxGroupMembers
	MaxSkip           = wire.MaxSenderKeySkip
	MaxSkipped        = wire.MaxSenderKeySkipped
	MaxKeys           = wire.MaxSenderKeys
	LabelGroupState   = "Missive v1 group state"
	LabelGroupMessage = "Missive v1 group message"
	LabelSenderKey    = "Missive v1 sender key message keys"
	LabelGroupDevices = "Missive v1 group devices"
)

// ErrDuplicate reports a state of a version already accepted, with the
// same bytes: nothing to do.
var ErrDuplicate = errors.New("group: state already accepted")

// State is a checked signed group state with its encodings.
type State struct {
	wire.GroupState
	Raw    []byte // the group-state encoding: what was signed
	Signed []byte // the signed-group-state encoding
	// AuthorPrimary is the device-1 key of the author's embedded list,
	// which a device that has recorded no key for the author's account
	// records (GRP-001 step 2); zero for a state only decoded.
	AuthorPrimary keys.PublicKey
}

// IsAdmin reports whether account is an admin of the state.
func (s *State) IsAdmin(account string) bool {
	r, ok := s.Role(account)
	return ok && r == wire.RoleAdmin
}

// IsMember reports whether account is a member of the state.
func (s *State) IsMember(account string) bool {
	_, ok := s.Role(account)
	return ok
}

// Accounts returns the member accounts, sorted.
func (s *State) Accounts() []string {
	out := make([]string, len(s.Members))
	for i, m := range s.Members {
		out[i] = m.Account
	}
	return out
}

// Sign makes and signs a group state as the device author, whose account's
// current signed device list is authorList, drawing 64 bytes from rand.
// members must be sorted by account.
func Sign(author *keys.PrivateKey, authorAddr wire.Address, authorList []byte, groupID []byte, version uint64,
	members []wire.GroupMember, name string, issuedAt uint64, rand io.Reader) (*State, error) {
	st := wire.GroupState{Version: wire.ProtocolVersion, GroupID: groupID, Serial: version, Members: members,
		Author: authorAddr, IssuedAt: issuedAt}
	if name != "" {
		st.Name = &name
	}
	raw, err := wire.Marshal(&st)
	if err != nil {
		return nil, err
	}
	sig, err := author.Sign(append([]byte(LabelGroupState), raw...), rand)
	if err != nil {
		return nil, err
	}
	signed, err := wire.Marshal(&wire.SignedGroupState{State: raw, Signature: sig, DeviceList: authorList})
	if err != nil {
		return nil, err
	}
	return &State{GroupState: st, Raw: raw, Signed: signed}, nil
}

// Lists gives what a device knows of accounts' device lists: the primary
// key recorded for an account (nil when none), and the accepted list of
// the same version as v, if any (for the equivocation check of step 2).
type Lists interface {
	Recorded(account string) *keys.PublicKey
	Accepted(account string, version uint64) *devices.List
}

// Recorder is Lists that records keys: a device's Checker records the
// device-1 key of an accepted state's author when it had none (GRP-001
// step 2, trust on first use).
type Recorder interface {
	Record(account string, primary keys.PublicKey)
}

// Parse decodes a signed group state and runs steps 1 to 3 of GRP-001:
// the encodings, the group id (nil: any), the author's device list and
// the signature.
func Parse(signed, groupID []byte, lists Lists) (*State, error) {
	s, st, err := decode(signed)
	if err != nil {
		return nil, err
	}
	if groupID != nil && !bytes.Equal(st.GroupID, groupID) {
		return nil, fmt.Errorf("group: state of another group: %w", errcode.AuthGroupInvalid)
	}
	return verify(signed, s, st, lists)
}

// Decode decodes a signed group state without checking it further: a
// state the device or the server accepted before, read back from where it
// was kept.
func Decode(signed []byte) (*State, error) {
	s, st, err := decode(signed)
	if err != nil {
		return nil, err
	}
	return &State{GroupState: *st, Raw: bytes.Clone(s.State), Signed: bytes.Clone(signed)}, nil
}

// decode runs the decoding of step 1 of GRP-001: the signed state, its
// field 1 as a group-state and its field 3 as a signed-device-list.
func decode(signed []byte) (*wire.SignedGroupState, *wire.GroupState, error) {
	var s wire.SignedGroupState
	if err := wire.Unmarshal(signed, &s); err != nil {
		return nil, nil, fmt.Errorf("group: signed state: %w", err)
	}
	var st wire.GroupState
	if err := wire.Unmarshal(s.State, &st); err != nil {
		return nil, nil, fmt.Errorf("group: state: %w", err)
	}
	var l wire.SignedDeviceList
	if err := wire.Unmarshal(s.DeviceList, &l); err != nil {
		return nil, nil, fmt.Errorf("group: author's device list: %w", err)
	}
	return &s, &st, nil
}

// verify runs steps 2 and 3 of GRP-001 on a decoded state.
func verify(signed []byte, s *wire.SignedGroupState, st *wire.GroupState, lists Lists) (*State, error) {
	author := st.Author
	var recorded *keys.PublicKey
	if lists != nil {
		recorded = lists.Recorded(author.Account)
	}
	list, err := devices.Accept(s.DeviceList, author.Account, recorded, nil)
	if err != nil {
		return nil, fmt.Errorf("group: author's device list: %w", err)
	}
	if lists != nil {
		if same := lists.Accepted(author.Account, list.Serial); same != nil && !bytes.Equal(same.Raw, list.Raw) {
			return nil, fmt.Errorf("group: author's device list version %d: %w", list.Serial, errcode.AuthDeviceListInvalid)
		}
	}
	key, ok := list.Device(uint32(author.Device))
	if !ok || author.Device > 1<<32-1 {
		return nil, fmt.Errorf("group: author %s/%d: %w", author.Account, author.Device, errcode.AuthDeviceNotListed)
	}
	if err := key.Verify(append([]byte(LabelGroupState), s.State...), s.Signature); err != nil {
		return nil, fmt.Errorf("group: state signature: %w", err)
	}
	return &State{GroupState: *st, Raw: bytes.Clone(s.State), Signed: bytes.Clone(signed), AuthorPrimary: list.Primary()}, nil
}

// Check runs steps 4 to 6 of GRP-001: s follows prev (nil when the device
// holds no state of the group), and its author may make it. It returns
// ErrDuplicate for a copy of prev; CheckChain also finds the copies of
// earlier states.
func Check(prev, s *State) error {
	if prev == nil {
		return CheckChain(nil, s)
	}
	return CheckChain([]*State{prev}, s)
}

// CheckChain runs steps 4 to 6 of GRP-001 on s, given the states of the
// group accepted before, in order (none when the device holds no state of
// the group): the last of them is P. A state of a version accepted whose
// field 1 is that state's, byte for byte, is a duplicate (ErrDuplicate);
// any other version than P's plus one is state.group_rollback.
func CheckChain(accepted []*State, s *State) error {
	var prev *State
	if n := len(accepted); n > 0 {
		prev = accepted[n-1]
	}
	if prev != nil && s.Serial != prev.Serial+1 {
		for _, a := range accepted {
			if a.Serial == s.Serial && bytes.Equal(a.Raw, s.Raw) {
				return ErrDuplicate
			}
		}
		return fmt.Errorf("group: version %d after %d: %w", s.Serial, prev.Serial, errcode.StateGroupRollback)
	}
	author := s.Author.Account
	switch {
	case prev == nil && !s.IsAdmin(author):
		return fmt.Errorf("group: %s is not an admin: %w", author, errcode.PolicyNotAdmin)
	case prev != nil && !prev.IsAdmin(author) && !leaves(prev, s, author):
		return fmt.Errorf("group: %s is not an admin: %w", author, errcode.PolicyNotAdmin)
	}
	if !slices.ContainsFunc(s.Members, func(m wire.GroupMember) bool { return m.Role == wire.RoleAdmin }) {
		return fmt.Errorf("group: no admin left: %w", errcode.PolicyNotAdmin)
	}
	return nil
}

// Checker holds what a device, or the server, knows when it checks a
// signed group state: Check runs GRP-001 for a device, and GRP-002 for
// the server, in their order, with no store behind it.
type Checker struct {
	// GroupID is the group a device expects. The server leaves it nil: it
	// looks the group up by the state's own group id.
	GroupID []byte
	// Lists gives the device lists the checker accepted (nil: none).
	Lists Lists
	// Accepted are the states of the group accepted before, in order (the
	// last is P); empty when the checker holds no state of the group.
	Accepted []*State
	// Server, when set, makes the checks those of the server (GRP-002).
	Server *ServerChecks
}

// ServerChecks are what the server adds to GRP-001 on set-group (GRP-002).
type ServerChecks struct {
	// Connection is the device whose connection sent the state.
	Connection wire.Address
	// Exists reports whether an account exists (nil: every account does).
	Exists func(account string) (bool, error)
}

// Check checks a signed state: it returns the state, ErrDuplicate for a
// copy of a state accepted before, or the error of the first check that
// fails.
func (c *Checker) Check(signed []byte) (*State, error) {
	s, st, err := decode(signed)
	if err != nil {
		return nil, err
	}
	if c.Server == nil && !bytes.Equal(st.GroupID, c.GroupID) {
		return nil, fmt.Errorf("group: state of another group: %w", errcode.AuthGroupInvalid)
	}
	if c.Server != nil && st.Author != c.Server.Connection {
		return nil, fmt.Errorf("group: state by %s/%d on the connection of %s/%d: %w", st.Author.Account, st.Author.Device,
			c.Server.Connection.Account, c.Server.Connection.Device, errcode.AuthSenderMismatch)
	}
	state, err := verify(signed, s, st, c.Lists)
	if err != nil {
		return nil, err
	}
	if c.Server != nil && len(c.Accepted) == 0 && state.Serial != 1 {
		return nil, fmt.Errorf("group: version %d of a group the server does not hold: %w", state.Serial, errcode.StateUnknownGroup)
	}
	if err := CheckChain(c.Accepted, state); err != nil {
		return nil, err
	}
	if r, ok := c.Lists.(Recorder); ok && c.Server == nil && c.Lists.Recorded(state.Author.Account) == nil {
		r.Record(state.Author.Account, state.AuthorPrimary)
	}
	if c.Server != nil && c.Server.Exists != nil {
		for _, m := range state.Members {
			ok, err := c.Server.Exists(m.Account)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("group: member %s: %w", m.Account, errcode.StateUnknownAccount)
			}
		}
	}
	return state, nil
}

// leaves reports whether s is prev without account, a member of prev,
// and otherwise the same but for the version, author and time.
func leaves(prev, s *State, account string) bool {
	if !prev.IsMember(account) {
		return false
	}
	want := slices.DeleteFunc(slices.Clone(prev.Members), func(m wire.GroupMember) bool { return m.Account == account })
	if !slices.Equal(want, s.Members) {
		return false
	}
	return (prev.Name == nil) == (s.Name == nil) && (prev.Name == nil || *prev.Name == *s.Name)
}

// Removed returns the accounts of prev that next leaves out.
func Removed(prev, next *State) []string {
	var out []string
	for _, m := range prev.Members {
		if !next.IsMember(m.Account) {
			out = append(out, m.Account)
		}
	}
	return out
}

// Added returns the accounts of next that prev (nil: none) does not have.
func Added(prev, next *State) []string {
	var out []string
	for _, m := range next.Members {
		if prev == nil || !prev.IsMember(m.Account) {
			out = append(out, m.Account)
		}
	}
	return out
}

// Digest returns the device digest of a group (section 16.4).
func Digest(groupID []byte, devs wire.GroupDevices) ([]byte, error) {
	enc, err := wire.EncodeGroupDevices(devs)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(LabelGroupDevices))
	h.Write(groupID)
	h.Write(enc)
	return h.Sum(nil), nil
}
