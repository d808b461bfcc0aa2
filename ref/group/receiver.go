package group

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// Receiver is what a member device holds of one group to receive group
// messages: the states it accepted and the sender keys it was given. It
// applies GRP-006 to distributions and GRP-007 to group messages, with no
// store behind it and no fetching: a state it lacks is state.unknown_group.
// ref/client keeps the same in its database; the vector tests and the
// reference adapter use Receiver.
type Receiver struct {
	GroupID []byte
	// States are the accepted states of the group, in increasing version
	// order, without gaps; empty when the device holds none.
	States []*State
	// Keys are the sender keys of each sender device, in increasing key
	// id order, at most MaxKeys of them.
	Keys map[wire.Address][]*SenderKey
}

// NewReceiver returns a receiver of a group, which holds no key yet.
func NewReceiver(groupID []byte, states []*State) *Receiver {
	return &Receiver{GroupID: bytes.Clone(groupID), States: states, Keys: map[wire.Address][]*SenderKey{}}
}

// state returns the accepted state of a version, or nil.
func (r *Receiver) state(version uint64) *State {
	for _, s := range r.States {
		if s.Serial == version {
			return s
		}
	}
	return nil
}

func (r *Receiver) latest() *State {
	if len(r.States) == 0 {
		return nil
	}
	return r.States[len(r.States)-1]
}

// Distribute applies a sender-key distribution from a device (GRP-006):
// from's account must be a member in the latest state (a distribution of
// an epoch above its version is state.unknown_group: a device would fetch
// the states it lacks first); the receiver then
// keeps the MaxKeys keys of the sender device with the highest key ids. A
// distribution of a key id held, or held no longer, changes nothing.
func (r *Receiver) Distribute(from wire.Address, d *wire.SenderKeyDistribution) error {
	if !bytes.Equal(d.GroupID, r.GroupID) {
		return fmt.Errorf("group: distribution for group %x: %w", d.GroupID, errcode.StateUnknownGroup)
	}
	latest := r.latest()
	if latest == nil {
		return fmt.Errorf("group: distribution for a group with no state: %w", errcode.StateUnknownGroup)
	}
	if !latest.IsMember(from.Account) {
		if d.Epoch > latest.Serial {
			// A device fetches the states it lacks first (GRP-006),
			// which a receiver of states given to it cannot.
			return fmt.Errorf("group: sender key from %s of epoch %d, holding version %d: %w", from.Account, d.Epoch, latest.Serial, errcode.StateUnknownGroup)
		}
		return fmt.Errorf("group: sender key from %s: %w", from.Account, errcode.PolicyNotMember)
	}
	k, err := FromDistribution(d)
	if err != nil {
		return err
	}
	ks := r.Keys[from]
	if slices.ContainsFunc(ks, func(h *SenderKey) bool { return h.KeyID == k.KeyID }) {
		return nil
	}
	next := append(slices.Clone(ks), k)
	slices.SortFunc(next, func(a, b *SenderKey) int { return cmp.Compare(a.KeyID, b.KeyID) })
	if len(next) > MaxKeys {
		next = next[len(next)-MaxKeys:]
	}
	if !slices.Contains(next, k) {
		return nil // older than every key kept
	}
	r.Keys[from] = next
	return nil
}

// Decrypt processes a group message from the device from, delivered with
// a message id and sent-at, with the checks of GRP-007 in order, and
// returns the content (its encoding). A failure changes no key (GRP-008).
func (r *Receiver) Decrypt(from wire.Address, messageID []byte, sentAt uint64, data []byte) ([]byte, error) {
	m, err := ParseMessage(data)
	if err != nil {
		return nil, err
	}
	// Step 2: a state of the group, and of the body's version.
	if !bytes.Equal(m.GroupID, r.GroupID) || len(r.States) == 0 {
		return nil, fmt.Errorf("group: message for group %x: %w", m.GroupID, errcode.StateUnknownGroup)
	}
	st := r.state(m.Serial)
	if st == nil {
		return nil, fmt.Errorf("group: version %d not accepted: %w", m.Serial, errcode.StateUnknownGroup)
	}
	// Step 3.
	if !st.IsMember(from.Account) {
		return nil, fmt.Errorf("group: message from %s: %w", from.Account, errcode.PolicyNotMember)
	}
	// Step 4.
	ks := r.Keys[from]
	i := slices.IndexFunc(ks, func(k *SenderKey) bool { return uint64(k.KeyID) == m.KeyID })
	if i < 0 {
		return nil, fmt.Errorf("group: sender key %d of %s/%d: %w", m.KeyID, from.Account, from.Device, errcode.StateUnknownSenderKey)
	}
	k := ks[i]
	// Step 5: no removal after the key's epoch, up to the body's version.
	for j := 1; j < len(r.States); j++ {
		prev, s := r.States[j-1], r.States[j]
		if k.Epoch < s.Serial && s.Serial <= m.Serial && len(Removed(prev, s)) > 0 {
			return nil, fmt.Errorf("group: sender key of epoch %d after the removal at %d: %w", k.Epoch, s.Serial, errcode.StateStaleSenderKey)
		}
	}
	// Steps 6 to 8.
	pt, next, err := Decrypt(k, m)
	if err != nil {
		return nil, err
	}
	// Step 9.
	var c wire.Content
	if err := wire.Unmarshal(pt, &c); err != nil {
		return nil, fmt.Errorf("group: content: %w", err)
	}
	if !bytes.Equal(c.MessageID, messageID) || c.SentAt != sentAt {
		return nil, fmt.Errorf("group: content of another message: %w", errcode.AuthContentMismatch)
	}
	ks = slices.Clone(ks)
	ks[i] = next
	r.Keys[from] = ks
	return pt, nil
}

// Advance moves the chain of the device's own key forward to iteration,
// deleting the message keys it passes, as if their messages were sent.
// The chain never moves back.
func (k *SenderKey) Advance(iteration uint32) error {
	if iteration < k.Iteration {
		return fmt.Errorf("group: iteration %d is behind the chain's %d", iteration, k.Iteration)
	}
	for k.Iteration < iteration {
		k.ChainKey, _ = step(k.ChainKey)
		k.Iteration++
	}
	return nil
}
