package wire

import (
	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/ref/errcode"
)

// Limits of spec/15-devices.md section 15.1.
const (
	MaxCompanions      = 4
	LinkIDSize         = 16
	LinkMACSize        = 32
	HistoryLimit       = 500
	MaxHistoryPerEntry = 64
	maxStatus          = 4
)

// DeviceList is device-list (section 15.2).
type DeviceList struct {
	Version  uint64         `cbor:"1,keyasint"`
	Account  string         `cbor:"2,keyasint"`
	Serial   uint64         `cbor:"3,keyasint"` // the list version
	Devices  []ListedDevice `cbor:"4,keyasint"`
	IssuedAt uint64         `cbor:"5,keyasint"`
}

func (*DeviceList) isVersioned() {}

func (l *DeviceList) check() error {
	err := firstErr(checkAccount(l.Account), checkWithin(l.Serial, 1, maxUint32),
		checkCount(len(l.Devices), 1, 1+MaxCompanions))
	for i := 0; err == nil && i < len(l.Devices); i++ {
		err = l.Devices[i].check()
	}
	if err == nil {
		err = sortedUnique(l.Devices, func(a, b ListedDevice) int { return cmpUint(a.Device, b.Device) })
	}
	return err
}

// ListedDevice is listed-device.
type ListedDevice struct {
	Device      uint64 `cbor:"1,keyasint"`
	IdentityKey []byte `cbor:"2,keyasint"`
}

func (d *ListedDevice) check() error {
	return firstErr(checkDevice(d.Device), checkSize(d.IdentityKey, X25519PublicSize))
}

// SignedDeviceList is signed-device-list.
type SignedDeviceList struct {
	List      []byte `cbor:"1,keyasint"` // a DeviceList
	Signature []byte `cbor:"2,keyasint"`
}

func (s *SignedDeviceList) check() error {
	return firstErr(checkRange(s.List, 1, MaxFrameSize), checkSize(s.Signature, SignatureSize))
}

// OpenLink is open-link (section 15.3).
type OpenLink struct {
	LinkID []byte `cbor:"1,keyasint"`
}

func (o *OpenLink) check() error { return checkSize(o.LinkID, LinkIDSize) }

// LinkRequest is link-request.
type LinkRequest struct {
	LinkID      []byte `cbor:"1,keyasint"`
	IdentityKey []byte `cbor:"2,keyasint"`
	MAC         []byte `cbor:"3,keyasint"`
}

func (r *LinkRequest) check() error {
	return firstErr(checkSize(r.LinkID, LinkIDSize), checkSize(r.IdentityKey, X25519PublicSize), checkSize(r.MAC, LinkMACSize))
}

// LinkNotice is link-notice.
type LinkNotice struct {
	LinkID      []byte `cbor:"1,keyasint"`
	IdentityKey []byte `cbor:"2,keyasint"`
	MAC         []byte `cbor:"3,keyasint"`
	Device      uint64 `cbor:"4,keyasint"`
}

func (n *LinkNotice) check() error {
	return firstErr(checkSize(n.LinkID, LinkIDSize), checkSize(n.IdentityKey, X25519PublicSize),
		checkSize(n.MAC, LinkMACSize), checkDevice(n.Device))
}

// AnswerLink is answer-link.
type AnswerLink struct {
	LinkID     []byte  `cbor:"1,keyasint"`
	DeviceList *[]byte `cbor:"2,keyasint,omitempty"` // a SignedDeviceList; absent: refused
}

func (a *AnswerLink) check() error {
	err := checkSize(a.LinkID, LinkIDSize)
	if err == nil && a.DeviceList != nil {
		err = checkRange(*a.DeviceList, 1, MaxFrameSize)
	}
	return err
}

// LinkResult is link-result.
type LinkResult struct {
	Device     uint64 `cbor:"1,keyasint"`
	DeviceList []byte `cbor:"2,keyasint"` // a SignedDeviceList
}

func (r *LinkResult) check() error {
	return firstErr(checkDevice(r.Device), checkRange(r.DeviceList, 1, MaxFrameSize))
}

// SetDeviceList is set-device-list.
type SetDeviceList struct {
	DeviceList []byte `cbor:"1,keyasint"` // a SignedDeviceList
}

func (s *SetDeviceList) check() error { return checkRange(s.DeviceList, 1, MaxFrameSize) }

// ConversationMessage is conversation-message: a message of the
// conversation with an account.
type ConversationMessage struct {
	_         struct{} `cbor:",toarray"`
	Account   string
	MessageID []byte
}

// UnmarshalCBOR decodes a conversation message, reporting a wrong number
// of elements as such.
func (m *ConversationMessage) UnmarshalCBOR(b []byte) error {
	var raw []cbor.RawMessage
	if err := decMode.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := decMode.Unmarshal(raw[0], &m.Account); err != nil {
			return err
		}
	}
	if len(raw) > 1 {
		if err := decMode.Unmarshal(raw[1], &m.MessageID); err != nil {
			return err
		}
	}
	switch {
	case len(raw) < 2:
		return countError{errcode.DecodeTooShort}
	case len(raw) > 2:
		return countError{errcode.DecodeTooMany}
	}
	return nil
}

func (m *ConversationMessage) check() error {
	return firstErr(checkAccount(m.Account), checkSize(m.MessageID, MessageIDSize))
}

func checkConversation(l []ConversationMessage) error {
	err := checkCount(len(l), 1, MaxReceiptIDs)
	for i := 0; err == nil && i < len(l); i++ {
		err = l[i].check()
	}
	return err
}

// ReadSync is read-sync.
type ReadSync []ConversationMessage

func (r *ReadSync) check() error { return checkConversation(*r) }

// DeletedSync is deleted-sync.
type DeletedSync []ConversationMessage

func (d *DeletedSync) check() error { return checkConversation(*d) }

// History is history.
type History []HistoryEntry

func (h *History) check() error {
	err := checkCount(len(*h), 1, MaxHistoryPerEntry)
	for i := 0; err == nil && i < len(*h); i++ {
		err = (*h)[i].check()
	}
	return err
}

// HistoryEntry is history-entry.
type HistoryEntry struct {
	MessageID []byte `cbor:"1,keyasint"`
	Account   string `cbor:"2,keyasint"`
	Outgoing  bool   `cbor:"3,keyasint"`
	Text      string `cbor:"4,keyasint"`
	SentAt    uint64 `cbor:"5,keyasint"`
	Status    uint64 `cbor:"6,keyasint"`
}

func (e *HistoryEntry) check() error {
	return firstErr(checkSize(e.MessageID, MessageIDSize), checkAccount(e.Account),
		checkText(e.Text, 0, MaxText), checkEnum(e.Status, maxStatus))
}
