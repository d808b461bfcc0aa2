package history

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/wire"
)

// Windows of spec section 18.1, in milliseconds of sent-at.
const (
	EditWindowMillis   = wire.EditWindow * 1000
	DeleteWindowMillis = wire.DeleteWindow * 1000
)

// Target is what the lifecycle rules need of a message that an edit or a
// delete names.
type Target struct {
	Author   string // the sender account
	SentAt   uint64
	Type     uint64 // its content type: wire.ContentText, wire.ContentMedia, ...
	ViewOnce bool
}

// Change is an edit or a delete (spec section 18.2).
type Change struct {
	Delete bool
	From   string // the sender account
	ID     ID     // the change's own message id
	SentAt uint64
	Text   string // an edit's new text
}

// CheckChange runs the checks of LIF-001 of a change against its target,
// in order.
func CheckChange(t Target, c Change) error {
	if t.Author != c.From {
		return fmt.Errorf("history: %s changes a message of %s: %w", c.From, t.Author, errcode.PolicyNotAuthor)
	}
	if (t.Type != wire.ContentText && t.Type != wire.ContentMedia) || (!c.Delete && t.ViewOnce) {
		return fmt.Errorf("history: content type %d: %w", t.Type, errcode.PolicyNotEditable)
	}
	window := uint64(EditWindowMillis)
	if c.Delete {
		window = DeleteWindowMillis
	}
	if (c.SentAt < t.SentAt || c.SentAt-t.SentAt > window) && !faults.Has(faults.AcceptLateEdit) {
		return fmt.Errorf("history: %d ms after the message: %w", int64(c.SentAt-t.SentAt), errcode.PolicyWindowPassed)
	}
	return nil
}

// Register is a last-writer-wins register ordered by (sent-at, message
// id): the text of edits (LIF-003) and a conversation's timer (LIF-006).
type Register struct {
	SentAt uint64 `cbor:"1,keyasint"`
	ID     []byte `cbor:"2,keyasint"`
	Text   string `cbor:"3,keyasint,omitempty"`
	Value  uint64 `cbor:"4,keyasint,omitempty"`
}

// Set replaces r by o when o is later, and reports whether it did.
func (r *Register) Set(o Register) bool {
	if r.ID != nil && (o.SentAt < r.SentAt || (o.SentAt == r.SentAt && bytes.Compare(o.ID, r.ID) <= 0)) {
		return false
	}
	*r = o
	return true
}

// Expired reports whether a message with expire-after seconds, sent at
// sentAt, has expired at now (LIF-008); expire 0 never expires. The sum
// sentAt + 1000 * expire is compared without wrapping round: a sent-at
// near the end of time, on a sender's clock, is not expired at once.
func Expired(sentAt, expire, now uint64) bool {
	return expire > 0 && now >= sentAt && (now-sentAt)/1000 >= expire
}

// LifeMessage is one message of a conversation as the lifecycle rules see
// it.
type LifeMessage struct {
	Target
	ID      ID
	Text    string
	Expire  uint64 // expire-after, seconds; 0: none
	Edit    Register
	Deleted bool
	Opened  bool
}

// Shown returns the text a device shows, and whether it shows the message
// at all at time now.
func (m *LifeMessage) Shown(now uint64) (string, bool) {
	if m.Deleted || Expired(m.SentAt, m.Expire, now) {
		return "", false
	}
	if m.Edit.ID != nil {
		return m.Edit.Text, true
	}
	return m.Text, true
}

// MsgKey names a message by its sender account and id.
type MsgKey struct {
	From string
	ID   ID
}

// Conversation applies the lifecycle of chapter 18 to the messages of one
// conversation: the model that the client follows and the vectors test.
// Add, Apply and SetTimer apply one kind of event each; Receive, Send and
// Clock apply the events of a device as vectors/v1/lifecycle.json gives
// them (spec section 9.2), with duplicates, content that is not a message,
// opened content and the device's clock.
type Conversation struct {
	Messages map[MsgKey]*LifeMessage
	Pending  []KeptChange // changes whose target is not known yet (LIF-005)
	Timer    Register
	// MaxPending bounds Pending; 0 means MaxPendingReceipts.
	MaxPending int

	// Held is the content that is not text or media (receipts, edits,
	// deletes, timers, ...), by message id: LIF-001 finds it as a target,
	// and refuses it.
	Held map[ID]Target
	// Processed holds the (sender address, message id) of every content
	// received or sent (CLI-001).
	Processed map[Delivery]bool
	// Opened holds the messages that opened content named, known yet or
	// not (MED-007).
	Opened map[MsgKey]bool
	// Now is the device's clock, in milliseconds (LIF-008); 0 leaves
	// expiry out.
	Now uint64
}

// KeptChange is a change kept until its target is known.
type KeptChange struct {
	Target ID
	Change
}

// Delivery names a content by its sender device and message id.
type Delivery struct {
	From Address
	ID   ID
}

// NewConversation returns an empty conversation.
func NewConversation() *Conversation {
	return &Conversation{Messages: map[MsgKey]*LifeMessage{}, Held: map[ID]Target{}, Processed: map[Delivery]bool{},
		Opened: map[MsgKey]bool{}}
}

// Result says what a change did.
type Result uint8

// Results of Apply, Receive and Send (the results of vectors/v1/lifecycle.json).
const (
	Applied        Result = iota + 1 // the event joined the state
	Kept                             // the target is not known yet (LIF-005)
	Ignored                          // a duplicate change kept, or a change of a deleted or expired message
	ArrivedExpired                   // a message that arrived expired, stored as such (LIF-008)
	Duplicate                        // content processed before (CLI-001)
)

var resultNames = [...]string{Applied: "applied", Kept: "pending", Ignored: "ignored", ArrivedExpired: "expired", Duplicate: "duplicate"}

// String returns the result's name in the vectors.
func (r Result) String() string {
	if int(r) < len(resultNames) && resultNames[r] != "" {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}

// Add adds a message and applies the changes kept for it. It returns the
// errors of the kept changes that were dropped.
func (c *Conversation) Add(m LifeMessage) []error {
	k := MsgKey{m.Author, m.ID}
	if _, ok := c.Messages[k]; ok {
		return nil // a duplicate (CLI-001)
	}
	if m.Opened || c.Opened[k] {
		m.Opened = true
	}
	mm := m
	c.Messages[k] = &mm
	return c.resolve(m.ID, func(ch Change) error {
		_, err := c.apply(&mm, ch)
		return err
	})
}

// resolve checks the changes kept for a target that is now known.
func (c *Conversation) resolve(target ID, apply func(Change) error) []error {
	var errs []error
	var kept []KeptChange
	for _, p := range c.Pending {
		if p.Target != target {
			kept = append(kept, p)
			continue
		}
		if err := apply(p.Change); err != nil {
			errs = append(errs, err)
		}
	}
	c.Pending = kept
	return errs
}

// find returns the target of a change: a message of the change's author,
// else any content held with that id.
func (c *Conversation) find(target ID, from string) (*LifeMessage, *Target) {
	if m, ok := c.Messages[MsgKey{from, target}]; ok {
		return m, &m.Target
	}
	for k, m := range c.Messages {
		if k.ID == target {
			return m, &m.Target
		}
	}
	if t, ok := c.Held[target]; ok {
		return nil, &t
	}
	return nil, nil
}

// Apply applies an edit or a delete of target (LIF-001 to LIF-005).
func (c *Conversation) Apply(target ID, ch Change) (Result, error) {
	m, t := c.find(target, ch.From)
	switch {
	case t == nil:
		if slices.ContainsFunc(c.Pending, func(p KeptChange) bool { return p.From == ch.From && p.ID == ch.ID }) {
			return Ignored, nil
		}
		c.Pending = append(c.Pending, KeptChange{target, ch})
		max := c.MaxPending
		if max == 0 {
			max = MaxPendingReceipts
		}
		if len(c.Pending) > max {
			c.Pending = c.Pending[1:]
		}
		return Kept, nil
	case m == nil || m.Author != ch.From:
		// Content that is no message, or another author's message: a
		// change LIF-001 refuses.
		if err := CheckChange(*t, ch); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("history: a change of content of type %d: %w", t.Type, errcode.PolicyNotEditable)
	}
	return c.apply(m, ch)
}

func (c *Conversation) apply(m *LifeMessage, ch Change) (Result, error) {
	if err := CheckChange(m.Target, ch); err != nil {
		return 0, err
	}
	if m.Deleted || Expired(m.SentAt, m.Expire, c.Now) {
		return Ignored, nil
	}
	if ch.Delete {
		m.Deleted, m.Text, m.Edit = true, "", Register{}
		return Applied, nil
	}
	// An edit joins the register, whether or not it wins it.
	m.Edit.Set(Register{SentAt: ch.SentAt, ID: bytes.Clone(ch.ID[:]), Text: ch.Text})
	return Applied, nil
}

// SetTimer applies timer content (LIF-006).
func (c *Conversation) SetTimer(id ID, sentAt, seconds uint64) bool {
	return c.Timer.Set(Register{SentAt: sentAt, ID: bytes.Clone(id[:]), Value: seconds})
}

// Content is one content of the conversation as the lifecycle sees it,
// received from a device or sent by the device itself.
type Content struct {
	From     Address // the sending device
	Type     uint64  // wire.ContentText, wire.ContentMedia, wire.ContentEdit, ...
	ID       ID
	SentAt   uint64
	Text     string   // text and edit: the text; media: the caption
	ViewOnce bool     // media
	Expire   uint64   // text and media: expire-after, seconds (0: none)
	Target   ID       // edit and delete
	Timer    uint64   // timer: seconds
	Opened   []MsgKey // opened: the messages it names
}

// Receive applies a content that the device received (from another
// device, or as the sent transcript of one of its account's): it returns
// what the content did, or the error of LIF-001 with which it was
// dropped.
func (c *Conversation) Receive(x Content) (Result, error) {
	if c.Processed == nil {
		c.Processed = map[Delivery]bool{}
	}
	d := Delivery{x.From, x.ID}
	if c.Processed[d] {
		return Duplicate, nil
	}
	c.Processed[d] = true
	from := x.From.Account
	switch x.Type {
	case wire.ContentText, wire.ContentMedia:
		m := LifeMessage{Target: Target{Author: from, SentAt: x.SentAt, Type: x.Type, ViewOnce: x.ViewOnce},
			ID: x.ID, Text: x.Text, Expire: x.Expire}
		if _, ok := c.Messages[MsgKey{from, x.ID}]; ok {
			return Duplicate, nil
		}
		c.Add(m)
		if Expired(x.SentAt, x.Expire, c.Now) {
			return ArrivedExpired, nil
		}
		return Applied, nil
	case wire.ContentEdit, wire.ContentDelete:
		c.hold(x)
		return c.Apply(x.Target, Change{Delete: x.Type == wire.ContentDelete, From: from, ID: x.ID, SentAt: x.SentAt, Text: x.Text})
	case wire.ContentTimer:
		c.SetTimer(x.ID, x.SentAt, x.Timer)
	case wire.ContentOpened:
		if c.Opened == nil {
			c.Opened = map[MsgKey]bool{}
		}
		for _, k := range x.Opened {
			c.Opened[k] = true
			if m := c.Messages[k]; m != nil {
				m.Opened = true
			}
		}
	}
	c.hold(x)
	return Applied, nil
}

// hold keeps content that is not a message as a target, and drops the
// changes kept for it: it cannot be changed.
func (c *Conversation) hold(x Content) {
	if c.Held == nil {
		c.Held = map[ID]Target{}
	}
	t := Target{Author: x.From.Account, SentAt: x.SentAt, Type: x.Type}
	if _, ok := c.Held[x.ID]; !ok {
		c.Held[x.ID] = t
	}
	c.resolve(x.ID, func(ch Change) error { return CheckChange(t, ch) })
}

// Send applies a content that the device's own user sends, from device
// x.From. It refuses an edit or a delete that LIF-001 would drop, with its
// error (LIF-002), and puts the conversation's timer in text and media
// (LIF-007). It returns the content as sent.
func (c *Conversation) Send(x Content) (Content, Result, error) {
	switch x.Type {
	case wire.ContentText, wire.ContentMedia:
		x.Expire = c.Timer.Value
	case wire.ContentEdit, wire.ContentDelete:
		_, t := c.find(x.Target, x.From.Account)
		if t == nil {
			return x, 0, fmt.Errorf("history: no message %x to change", x.Target[:])
		}
		if err := CheckChange(*t, Change{Delete: x.Type == wire.ContentDelete, From: x.From.Account, SentAt: x.SentAt}); err != nil {
			return x, 0, err
		}
	}
	r, err := c.Receive(x)
	return x, r, err
}

// Clock moves the device's clock forward to now (LIF-008): the messages
// whose time has come expire.
func (c *Conversation) Clock(now uint64) {
	c.Now = max(c.Now, now)
}
