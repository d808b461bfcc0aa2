// Package history holds the state a device keeps about messages, and the
// joins that merge events into it (spec/14-client.md section 14.3 and
// spec/15-devices.md section 15.7): statuses that only rise, read flags
// that only turn on, deletions that only accumulate, and receipts kept for
// messages not known yet. Every operation is a join of a semilattice, so a
// device that receives the same events in any order, any number of times,
// reaches the same state. The client applies these operations to what it
// stores; tests and vector consumers apply them to a State.
package history

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/missive-protocol/missive/internal/faults"
)

// Status of a sent message for one recipient device, in increasing order.
type Status uint8

// Statuses (spec section 14.3).
const (
	Pending Status = iota
	Sent
	Delivered
	Read
	Played
)

var statusNames = [...]string{"pending", "sent", "delivered", "read", "played"}

// String returns the status name of the specification.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// ParseStatus returns the status with a name.
func ParseStatus(name string) (Status, bool) {
	i := slices.Index(statusNames[:], name)
	return Status(i), i >= 0
}

// Transitions is the transition table of the status (the diagram of spec
// section 14.3, which a test checks against it).
var Transitions = map[[2]Status]bool{
	{Pending, Sent}:      true,
	{Sent, Delivered}:    true,
	{Sent, Read}:         true,
	{Delivered, Read}:    true,
	{Read, Played}:       true,
	{Delivered, Played}:  true,
	{Sent, Played}:       true,
	{Pending, Delivered}: true,
	{Pending, Read}:      true,
	{Pending, Played}:    true,
}

// Raise returns the status after an event that calls for to: to when the
// table allows the move, cur otherwise. It never lowers a status
// (CLI-004).
func Raise(cur, to Status) Status {
	if faults.Has(faults.StatusBackwards) {
		return to
	}
	if Transitions[[2]Status{cur, to}] {
		return to
	}
	return cur
}

// Overall is the status of a message as a whole: the highest of its
// recipient devices'.
func Overall(statuses map[uint32]Status) Status {
	s := Pending
	for _, v := range statuses {
		s = max(s, v)
	}
	return s
}

// GroupOverall is the status of a group message as a whole (spec section
// 16.6): the lowest, over the members, of each member's highest device
// status.
func GroupOverall(members map[string]map[uint32]Status) Status {
	if len(members) == 0 {
		return Pending
	}
	low := Played
	for _, devs := range members {
		low = min(low, Overall(devs))
	}
	return low
}

// ReceiptStatus maps a receipt kind (wire.ReceiptDelivered...) to the
// status it calls for.
func ReceiptStatus(kind uint64) Status {
	switch kind {
	case 1:
		return Delivered
	case 2:
		return Read
	case 3:
		return Played
	}
	return Pending
}

// Address names a device.
type Address struct {
	Account string
	Device  uint32
}

func (a Address) String() string { return fmt.Sprintf("%s/%d", a.Account, a.Device) }

// ID is a message id.
type ID [16]byte

// Key names a received message: its sender account and id.
type Key struct {
	Account string
	ID      ID
}

// SentMessage is a message the device's account sent.
type SentMessage struct {
	To       string
	Statuses map[uint32]Status
	// Members is set for a group message instead of To and Statuses: the
	// status of each device of each member account of the message's group
	// version but the device's own account (spec section 16.6).
	Members map[string]map[uint32]Status
}

// Receipt is a receipt as a device receives it.
type Receipt struct {
	From Address
	Kind Status
	IDs  []ID
}

// State is what a device knows about messages (spec section 15.7).
type State struct {
	Sent     map[ID]*SentMessage
	Received map[Key]bool // received messages
	ReadKeys map[Key]bool // messages read on some device of the account, received here or not yet
	Deleted  map[Key]bool // deletions, by conversation account and id
	Pending  []Receipt    // receipts for messages not known yet (DEV-015)
	// MaxPending bounds Pending; 0 means MaxPendingReceipts.
	MaxPending int
}

// MaxPendingReceipts is MAX_PENDING_RECEIPTS.
const MaxPendingReceipts = 4096

// New returns an empty state.
func New() *State {
	return &State{Sent: map[ID]*SentMessage{}, Received: map[Key]bool{}, ReadKeys: map[Key]bool{}, Deleted: map[Key]bool{}}
}

// LearnSent records that the device's account sent id to the account to,
// whose device list has devices (a `sent` event), and applies the receipts
// kept for it.
func (s *State) LearnSent(id ID, to string, devices []uint32) {
	if s.Deleted[Key{to, id}] {
		return
	}
	m := s.Sent[id]
	if m == nil {
		m = &SentMessage{To: to, Statuses: map[uint32]Status{}}
		s.Sent[id] = m
	}
	for _, d := range devices {
		m.Statuses[d] = Raise(m.Statuses[d], Sent)
	}
	s.applyKept(id, m)
}

// LearnGroupSent records that the device's account sent id to a group
// (a `sent` event): members gives the devices of each member account of
// the message's group version but the device's own account. It applies
// the receipts kept for it. A receipt for it then counts only from a
// device of one of those accounts (GRP-013).
func (s *State) LearnGroupSent(id ID, members map[string][]uint32) {
	m := s.Sent[id]
	if m == nil {
		m = &SentMessage{Members: map[string]map[uint32]Status{}}
		s.Sent[id] = m
	}
	for acct, devs := range members {
		if m.Members[acct] == nil {
			m.Members[acct] = map[uint32]Status{}
		}
		for _, d := range devs {
			m.Members[acct][d] = Raise(m.Members[acct][d], Sent)
		}
	}
	s.applyKept(id, m)
}

func (s *State) applyKept(id ID, m *SentMessage) {
	var kept []Receipt
	for _, r := range s.Pending {
		if slices.Contains(r.IDs, id) {
			s.raise(m, r.From, r.Kind)
			r.IDs = slices.DeleteFunc(slices.Clone(r.IDs), func(x ID) bool { return x == id })
		}
		if len(r.IDs) > 0 {
			kept = append(kept, r)
		}
	}
	s.Pending = kept
}

func (s *State) raise(m *SentMessage, from Address, st Status) {
	if m.Members != nil {
		// A group message: from a member when it was sent (GRP-013).
		if devs := m.Members[from.Account]; devs != nil {
			devs[from.Device] = Raise(devs[from.Device], st)
		}
		return
	}
	if m.To != from.Account {
		return // not sent to that account: ignored (CLI-003)
	}
	m.Statuses[from.Device] = Raise(m.Statuses[from.Device], st)
}

// Receive records a message received from account (a `message` event).
func (s *State) Receive(from string, id ID) {
	k := Key{from, id}
	if s.Deleted[k] {
		return
	}
	s.Received[k] = true
}

// IsRead reports whether a received message is read.
func (s *State) IsRead(k Key) bool { return s.ReadKeys[k] }

// ApplyReceipt applies a receipt whose sender device listed reports is in
// its account's device list (DEV-013); receipts for unknown messages are
// kept (DEV-015).
func (s *State) ApplyReceipt(r Receipt, listed bool) {
	if !listed {
		return
	}
	var unknown []ID
	for _, id := range r.IDs {
		if m := s.Sent[id]; m != nil {
			s.raise(m, r.From, r.Kind)
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		s.Pending = append(s.Pending, Receipt{From: r.From, Kind: r.Kind, IDs: unknown})
		limit := s.MaxPending
		if limit == 0 {
			limit = MaxPendingReceipts
		}
		if len(s.Pending) > limit {
			s.Pending = s.Pending[len(s.Pending)-limit:]
		}
	}
}

// ApplyRead marks messages read (a `read` event from another device of
// the account, or the user reading here). A read mark for a message not
// received yet is kept, and holds when it arrives (DEV-015): the marks are
// a grow-only set.
func (s *State) ApplyRead(keys []Key) {
	for _, k := range keys {
		s.ReadKeys[k] = true
	}
}

// ApplyDeleted deletes messages of conversations (a `deleted` event, or the
// user deleting here). A deletion is a tombstone: the message never comes
// back.
func (s *State) ApplyDeleted(keys []Key) {
	for _, k := range keys {
		s.Deleted[k] = true
		delete(s.Received, k)
		if m := s.Sent[k.ID]; m != nil && m.To == k.Account {
			delete(s.Sent, k.ID)
		}
	}
}

// Equal reports whether two states hold the same messages, statuses, read
// flags and deletions (pending receipts are not compared: they are a
// device's own bookkeeping).
func (s *State) Equal(o *State) bool { return s.String() == o.String() }

// String returns a canonical text of the state, for comparisons and
// failure messages.
func (s *State) String() string {
	var b strings.Builder
	ids := slices.SortedFunc(maps.Keys(s.Sent), func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		m := s.Sent[id]
		fmt.Fprintf(&b, "sent %x to %s:", id[:4], m.To)
		for _, d := range slices.Sorted(maps.Keys(m.Statuses)) {
			fmt.Fprintf(&b, " %d=%v", d, m.Statuses[d])
		}
		for _, a := range slices.Sorted(maps.Keys(m.Members)) {
			for _, d := range slices.Sorted(maps.Keys(m.Members[a])) {
				fmt.Fprintf(&b, " %s/%d=%v", a, d, m.Members[a][d])
			}
		}
		b.WriteString("\n")
	}
	keyCmp := func(a, b Key) int {
		if c := strings.Compare(a.Account, b.Account); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.Received), keyCmp) {
		fmt.Fprintf(&b, "received %x from %s read=%v\n", k.ID[:4], k.Account, s.ReadKeys[k])
	}
	for _, k := range slices.SortedFunc(maps.Keys(s.Deleted), keyCmp) {
		fmt.Fprintf(&b, "deleted %x of %s\n", k.ID[:4], k.Account)
	}
	return b.String()
}
