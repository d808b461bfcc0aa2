package wire

import (
	"bytes"

	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/ref/errcode"
)

// SignedGroupStateBound is above the size of any signed group state: about
// 37 KB for MAX_GROUP_MEMBERS members of the longest names, the longest
// group name and a device list of 1 + MAX_COMPANIONS devices. A reader of
// group-history pages sizes them with it (GRP-004).
const SignedGroupStateBound = 64 << 10

// Limits of spec/16-groups.md section 16.1, spec/17-media.md section 17.1
// and spec/18-lifecycle.md section 18.1.
const (
	MaxGroupMembers     = 1024
	MaxGroupName        = 100
	MaxGroupStates      = 64
	MaxGroupDevices     = MaxGroupMembers * (1 + MaxCompanions)
	MaxSenderKeySkip    = 1000
	MaxSenderKeySkipped = 2000
	MaxSenderKeys       = 2
	GroupIDSize         = 16
	GroupUpdateInterval = 10 // seconds (GRP-017)

	MaxBlobSize   = 104857600
	MaxBlobChunk  = 524288
	BlobQuota     = 1073741824
	BlobTTL       = 2592000 // seconds
	BlobUploadTTL = 86400   // seconds
	MediaChunk    = 65536
	MinBlobSize   = 16

	EditWindow   = 900    // seconds
	DeleteWindow = 172800 // seconds
	MaxTimer     = 7776000

	RoleMember = 0
	RoleAdmin  = 1
	maxRole    = 1
)

// pair decodes a two-element array into x and y, reporting a wrong number
// of elements as such rather than as a wrong type: the types of the
// elements that are there first (pass 3a), then the count (pass 3c).
func pair(b []byte, x, y any) error {
	var raw []cbor.RawMessage
	if err := decMode.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) > 0 {
		if err := decMode.Unmarshal(raw[0], x); err != nil {
			return err
		}
	}
	if len(raw) > 1 {
		if err := decMode.Unmarshal(raw[1], y); err != nil {
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

// GroupState is group-state (section 16.2).
type GroupState struct {
	Version  uint64        `cbor:"1,keyasint"`
	GroupID  []byte        `cbor:"2,keyasint"`
	Serial   uint64        `cbor:"3,keyasint"` // the group version
	Members  []GroupMember `cbor:"4,keyasint"`
	Author   Address       `cbor:"5,keyasint"`
	IssuedAt uint64        `cbor:"6,keyasint"`
	Name     *string       `cbor:"7,keyasint,omitempty"`
}

func (*GroupState) isVersioned() {}

func (g *GroupState) check() error {
	err := firstErr(checkSize(g.GroupID, GroupIDSize), checkWithin(g.Serial, 1, maxUint32),
		checkCount(len(g.Members), 1, MaxGroupMembers))
	for i := 0; err == nil && i < len(g.Members); i++ {
		err = g.Members[i].check()
	}
	if err == nil {
		err = sortedUnique(g.Members, func(a, b GroupMember) int { return cmpEncodedText(a.Account, b.Account) })
	}
	err = firstErr(err, g.Author.check())
	if err == nil && g.Name != nil {
		err = checkText(*g.Name, 1, MaxGroupName)
	}
	return err
}

// Role returns the role of account in the state, and whether it is a
// member at all.
func (g *GroupState) Role(account string) (uint64, bool) {
	for _, m := range g.Members {
		if m.Account == account {
			return m.Role, true
		}
	}
	return 0, false
}

// GroupMember is group-member.
type GroupMember struct {
	_       struct{} `cbor:",toarray"`
	Account string
	Role    uint64
}

// UnmarshalCBOR decodes a member, reporting a wrong number of elements as
// such.
func (m *GroupMember) UnmarshalCBOR(b []byte) error { return pair(b, &m.Account, &m.Role) }

func (m *GroupMember) check() error {
	return firstErr(checkAccount(m.Account), checkEnum(m.Role, maxRole))
}

// SignedGroupState is signed-group-state.
type SignedGroupState struct {
	State      []byte `cbor:"1,keyasint"` // a GroupState
	Signature  []byte `cbor:"2,keyasint"`
	DeviceList []byte `cbor:"3,keyasint"` // a SignedDeviceList
}

func (s *SignedGroupState) check() error {
	return firstErr(checkRange(s.State, 1, MaxFrameSize), checkSize(s.Signature, SignatureSize),
		checkRange(s.DeviceList, 1, MaxFrameSize))
}

// GroupFetch is group-fetch.
type GroupFetch struct {
	GroupID []byte `cbor:"1,keyasint"`
	From    uint64 `cbor:"2,keyasint"`
}

func (f *GroupFetch) check() error {
	return firstErr(checkSize(f.GroupID, GroupIDSize), checkWithin(f.From, 1, maxUint32))
}

// GroupHistory is group-history.
type GroupHistory struct {
	States [][]byte `cbor:"1,keyasint"` // SignedGroupStates
}

func (h *GroupHistory) check() error {
	err := checkCount(len(h.States), 1, MaxGroupStates)
	for _, s := range h.States {
		err = firstErr(err, checkRange(s, 1, MaxFrameSize))
	}
	return err
}

// SenderKeyDistribution is sender-key-distribution (section 16.3).
type SenderKeyDistribution struct {
	GroupID    []byte `cbor:"1,keyasint"`
	Epoch      uint64 `cbor:"2,keyasint"`
	KeyID      uint64 `cbor:"3,keyasint"`
	Iteration  uint64 `cbor:"4,keyasint"`
	ChainKey   []byte `cbor:"5,keyasint"`
	SigningKey []byte `cbor:"6,keyasint"`
}

func (d *SenderKeyDistribution) check() error {
	return firstErr(checkSize(d.GroupID, GroupIDSize), checkWithin(d.Epoch, 1, maxUint32),
		checkUint32(d.KeyID), checkUint32(d.Iteration), checkSize(d.ChainKey, 32),
		checkSize(d.SigningKey, X25519PublicSize))
}

// GroupMessage is group-message.
type GroupMessage struct {
	Body      []byte `cbor:"1,keyasint"` // a GroupMessageBody
	Signature []byte `cbor:"2,keyasint"`
}

func (m *GroupMessage) check() error {
	return firstErr(checkRange(m.Body, 1, MaxDeviceMessage), checkSize(m.Signature, SignatureSize))
}

// GroupMessageBody is group-message-body.
type GroupMessageBody struct {
	Version    uint64 `cbor:"1,keyasint"`
	GroupID    []byte `cbor:"2,keyasint"`
	Serial     uint64 `cbor:"3,keyasint"` // the group version
	KeyID      uint64 `cbor:"4,keyasint"`
	Iteration  uint64 `cbor:"5,keyasint"`
	Ciphertext []byte `cbor:"6,keyasint"`
}

func (*GroupMessageBody) isVersioned() {}

func (b *GroupMessageBody) check() error {
	return firstErr(checkSize(b.GroupID, GroupIDSize), checkWithin(b.Serial, 1, maxUint32),
		checkUint32(b.KeyID), checkUint32(b.Iteration), checkRange(b.Ciphertext, 16, MaxCiphertext))
}

// GroupEnvelope is group-envelope (section 16.4).
type GroupEnvelope struct {
	Version   uint64  `cbor:"1,keyasint"`
	MessageID []byte  `cbor:"2,keyasint"`
	Sender    Address `cbor:"3,keyasint"`
	GroupID   []byte  `cbor:"4,keyasint"`
	Serial    uint64  `cbor:"5,keyasint"` // the group version
	Digest    []byte  `cbor:"6,keyasint"`
	Message   []byte  `cbor:"7,keyasint"` // a GroupMessage
	Priority  uint64  `cbor:"8,keyasint"`
	TTL       uint64  `cbor:"9,keyasint"`
	SentAt    uint64  `cbor:"10,keyasint"`
}

func (*GroupEnvelope) isVersioned() {}

func (e *GroupEnvelope) check() error {
	return firstErr(checkSize(e.MessageID, MessageIDSize), e.Sender.check(), checkSize(e.GroupID, GroupIDSize),
		checkWithin(e.Serial, 1, maxUint32), checkSize(e.Digest, sha256Size),
		checkRange(e.Message, 1, MaxDeviceMessage), checkEnum(e.Priority, maxPriority), checkWithin(e.TTL, 1, MaxTTL))
}

// GroupDevices is group-devices: the group devices of a group, per account.
type GroupDevices []AccountDevices

func (g *GroupDevices) check() error {
	l := *g
	err := checkCount(len(l), 0, MaxGroupMembers)
	for i := 0; err == nil && i < len(l); i++ {
		err = l[i].check()
	}
	if err == nil {
		err = sortedUnique(l, func(a, b AccountDevices) int { return cmpEncodedText(a.Account, b.Account) })
	}
	return err
}

// AccountDevices is account-devices.
type AccountDevices struct {
	_       struct{} `cbor:",toarray"`
	Account string
	Devices []uint64
}

// UnmarshalCBOR decodes an entry, reporting a wrong number of elements as
// such.
func (a *AccountDevices) UnmarshalCBOR(b []byte) error { return pair(b, &a.Account, &a.Devices) }

func (a *AccountDevices) check() error {
	err := firstErr(checkAccount(a.Account), checkCount(len(a.Devices), 1, 1+MaxCompanions))
	for _, d := range a.Devices {
		err = firstErr(err, checkDevice(d))
	}
	return firstErr(err, sortedUnique(a.Devices, cmpUint))
}

// DeviceListFetch is device-list-fetch (section 11.4).
type DeviceListFetch struct {
	Account string `cbor:"1,keyasint"`
}

func (f *DeviceListFetch) check() error { return checkAccount(f.Account) }

// DeviceListResult is device-list-result.
type DeviceListResult struct {
	DeviceList []byte `cbor:"1,keyasint"` // a SignedDeviceList
}

func (r *DeviceListResult) check() error { return checkRange(r.DeviceList, 1, MaxFrameSize) }

// OpenedSync is opened-sync (section 17.4).
type OpenedSync []ConversationMessage

func (o *OpenedSync) check() error { return checkConversation(*o) }

// BlobCreate is blob-create (section 17.3).
type BlobCreate struct {
	Size   uint64 `cbor:"1,keyasint"`
	Digest []byte `cbor:"2,keyasint"`
}

func (c *BlobCreate) check() error {
	return firstErr(checkWithin(c.Size, MinBlobSize, MaxBlobSize), checkSize(c.Digest, sha256Size))
}

// BlobCreated is blob-created.
type BlobCreated struct {
	BlobID   string `cbor:"1,keyasint"`
	Received uint64 `cbor:"2,keyasint"`
}

func (c *BlobCreated) check() error { return checkText(c.BlobID, 1, MaxBlobID) }

// BlobPut is blob-put.
type BlobPut struct {
	BlobID string `cbor:"1,keyasint"`
	Offset uint64 `cbor:"2,keyasint"`
	Data   []byte `cbor:"3,keyasint"`
}

func (p *BlobPut) check() error {
	return firstErr(checkText(p.BlobID, 1, MaxBlobID), checkRange(p.Data, 1, MaxBlobChunk))
}

// BlobProgress is blob-progress.
type BlobProgress struct {
	Received uint64 `cbor:"1,keyasint"`
}

func (*BlobProgress) check() error { return nil }

// BlobGet is blob-get.
type BlobGet struct {
	BlobID string `cbor:"1,keyasint"`
	Offset uint64 `cbor:"2,keyasint"`
	Length uint64 `cbor:"3,keyasint"`
}

func (g *BlobGet) check() error {
	return firstErr(checkText(g.BlobID, 1, MaxBlobID), checkWithin(g.Length, 1, MaxBlobChunk))
}

// BlobChunk is blob-chunk.
type BlobChunk struct {
	Size uint64 `cbor:"1,keyasint"`
	Data []byte `cbor:"2,keyasint"`
}

func (c *BlobChunk) check() error { return checkRange(c.Data, 1, MaxBlobChunk) }

// EncodeGroupDevices returns the encoding of a group-devices list, the
// input of the device digest (section 16.4).
func EncodeGroupDevices(g GroupDevices) ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := encMode.NewEncoder(&buf).Encode(g); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
