package wire

import (
	"bytes"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/missive-protocol/missive/ref/errcode"
)

// Limits of spec/11-messages.md section 11.1.
const (
	MaxFrameSize        = 1052672
	MaxEnvelopeSize     = 1048576
	MaxDeviceMessage    = 73728
	MaxFanout           = 16
	MaxPrekeysPerUpload = 100
	MaxBundles          = 16
	MaxTTL              = 2592000
	MaxText             = 16384
	MaxReceiptIDs       = 256
	MaxSubscriptions    = 256
	MaxContacts         = 1000
	MaxVersions         = 8
	MaxDetail           = 256
	MaxMIME             = 127
	MaxBlobID           = 64
	PrekeyGrace         = MaxTTL + PrekeySessionAge + 86400 // MAX_SENT_AHEAD
	MessageIDSize       = 16
	maxUint32           = 1<<32 - 1
	maxFrameType        = 29
	maxPresenceState    = 3
	maxVisibility       = 2
	maxNoticeType       = 2
	maxEnvelopeType     = 4
	maxPriority         = 2
	maxMessageKind      = 2
	maxDeliveryKind     = 3
	maxContentType      = 13
	maxReceiptKind      = 3
	maxMediaKind        = 4
	sha256Size          = 32
	blobKeySize         = 32
)

// Limits of spec/04-pqxdh.md section 4.7, for the replacement of a
// device's signed and last-resort prekeys (PQX-012, PQX-013) and the age
// of an initiator's bundle (PQX-014).
const (
	PrekeyRotation      = 604800
	PrekeyRotationSlack = 10
	PrekeySessionAge    = MaxTTL
)

// Frame types (section 11.3).
const (
	FrameHello             = 1
	FrameResult            = 2
	FrameError             = 3
	FrameUploadPrekeys     = 4
	FrameFetchPrekeys      = 5
	FrameSend              = 6
	FrameDeliver           = 7
	FrameAck               = 8
	FramePing              = 9
	FramePong              = 10
	FrameSubscribePresence = 11
	FramePresence          = 12
	FrameSetPrivacy        = 13
	FrameSetContacts       = 14
	FrameTyping            = 15
	FrameNotice            = 16
	FrameOpenLink          = 17
	FrameLinkRequest       = 18
	FrameLink              = 19
	FrameAnswerLink        = 20
	FrameSetDeviceList     = 21
	FrameDeviceList        = 22
	FrameSendGroup         = 23
	FrameSetGroup          = 24
	FrameGetGroup          = 25
	FrameCreateBlob        = 26
	FramePutBlob           = 27
	FrameGetBlob           = 28
	FrameFetchDeviceList   = 29
)

// Enumerations of chapter 11.
const (
	EnvelopeChat    = 1
	EnvelopeReceipt = 2
	EnvelopeSync    = 3
	EnvelopeControl = 4

	PriorityLow    = 0
	PriorityNormal = 1
	PriorityHigh   = 2

	KindRatchet = 1
	KindPrekey  = 2
	KindGroup   = 3 // deliveries only

	VisibilityEveryone = 0
	VisibilityContacts = 1
	VisibilityNobody   = 2

	PresenceOnline  = 1
	PresenceOffline = 2
	PresenceHidden  = 3

	NoticePrekeysLow   = 1
	NoticeShuttingDown = 2

	ContentText        = 1
	ContentReceipt     = 2
	ContentMedia       = 3
	ContentEdit        = 4
	ContentDelete      = 5
	ContentSent        = 6
	ContentRead        = 7
	ContentDeleted     = 8
	ContentHistory     = 9
	ContentSenderKey   = 10
	ContentGroupUpdate = 11
	ContentTimer       = 12
	ContentOpened      = 13

	ReceiptDelivered = 1
	ReceiptRead      = 2
	ReceiptPlayed    = 3

	MediaImage = 1
	MediaVideo = 2
	MediaAudio = 3
	MediaFile  = 4
)

// ValidAccount reports whether name is an account name (section 11.2):
// 1 to 32 bytes of [a-z0-9._-], starting with [a-z0-9].
func ValidAccount(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func checkAccount(name string) error {
	if !ValidAccount(name) {
		return errcode.DecodeValueOutOfRange
	}
	return nil
}

func checkDevice(id uint64) error {
	if id == 0 || id > maxUint32 {
		return errcode.DecodeValueOutOfRange
	}
	return nil
}

func checkEnum(v, hi uint64) error { return checkWithin(v, 0, hi) }

func checkWithin(v, lo, hi uint64) error {
	if v < lo || v > hi {
		return errcode.DecodeValueOutOfRange
	}
	return nil
}

// checkText checks a text string against a range of sizes in bytes.
func checkText(s string, lo, hi int) error {
	switch {
	case len(s) > hi:
		return errcode.DecodeTooLong
	case len(s) < lo:
		return errcode.DecodeTooShort
	}
	return nil
}

// checkCount checks the number of elements of an array.
func checkCount(n, lo, hi int) error {
	switch {
	case n > hi:
		return errcode.DecodeTooMany
	case n < lo:
		return errcode.DecodeTooShort
	}
	return nil
}

// sortedUnique reports whether xs is strictly increasing in cmp.
func sortedUnique[T any](xs []T, cmp func(a, b T) int) error {
	for i := 1; i < len(xs); i++ {
		if cmp(xs[i-1], xs[i]) >= 0 {
			return errcode.DecodeValueOutOfRange
		}
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Address is an address: an account and one of its devices.
type Address struct {
	_       struct{} `cbor:",toarray"`
	Account string
	Device  uint64
}

// countError reports an array with another number of elements than its
// type has; classify maps it to decode.too_short or decode.too_many.
type countError struct{ code errcode.Code }

func (e countError) Error() string { return e.code.Error() }

// UnmarshalCBOR decodes an address, reporting a wrong number of elements
// as such rather than as a wrong type.
func (a *Address) UnmarshalCBOR(b []byte) error {
	var raw []cbor.RawMessage
	if err := decMode.Unmarshal(b, &raw); err != nil {
		return err
	}
	// The types of the elements that are there (pass 3a), then the count
	// (pass 3c).
	if len(raw) > 0 {
		if err := decMode.Unmarshal(raw[0], &a.Account); err != nil {
			return err
		}
	}
	if len(raw) > 1 {
		if err := decMode.Unmarshal(raw[1], &a.Device); err != nil {
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

func (a *Address) check() error { return firstErr(checkAccount(a.Account), checkDevice(a.Device)) }

// Frame is a frame (section 11.3).
type Frame struct {
	Version   uint64  `cbor:"1,keyasint"`
	Type      uint64  `cbor:"2,keyasint"`
	RequestID *uint64 `cbor:"3,keyasint,omitempty"`
	Body      *[]byte `cbor:"4,keyasint,omitempty"`
}

func (*Frame) isVersioned() {}

// frameRules says, per frame type, whether the request id and the body are
// present: 1 required, 0 absent, 2 either (error frames).
var frameRules = [maxFrameType + 1]struct{ request, body uint8 }{
	FrameHello: {1, 1}, FrameResult: {1, 1}, FrameError: {2, 1}, FrameUploadPrekeys: {1, 1},
	FrameFetchPrekeys: {1, 1}, FrameSend: {1, 1}, FrameDeliver: {0, 1}, FrameAck: {0, 1},
	FramePing: {0, 0}, FramePong: {0, 0}, FrameSubscribePresence: {1, 1}, FramePresence: {0, 1},
	FrameSetPrivacy: {1, 1}, FrameSetContacts: {1, 1}, FrameTyping: {0, 1}, FrameNotice: {0, 1},
	FrameOpenLink: {1, 1}, FrameLinkRequest: {1, 1}, FrameLink: {0, 1}, FrameAnswerLink: {1, 1},
	FrameSetDeviceList: {1, 1}, FrameDeviceList: {0, 1}, FrameSendGroup: {1, 1}, FrameSetGroup: {1, 1},
	FrameGetGroup: {1, 1}, FrameCreateBlob: {1, 1}, FramePutBlob: {1, 1}, FrameGetBlob: {1, 1},
	FrameFetchDeviceList: {1, 1},
}

// presence implements stage 3b for the presence rules of MSG-003.
func (f *Frame) presence() error {
	if f.Type == 0 || f.Type > maxFrameType {
		return nil // stage 3c reports the type
	}
	r := frameRules[f.Type]
	for _, c := range []struct {
		present bool
		rule    uint8
	}{{f.RequestID != nil, r.request}, {f.Body != nil, r.body}} {
		switch {
		case c.rule == 1 && !c.present:
			return errcode.DecodeMissingField
		case c.rule == 0 && c.present:
			return errcode.DecodeUnknownField
		}
	}
	return nil
}

func (f *Frame) check() error {
	err := checkWithin(f.Type, 1, maxFrameType)
	if err == nil && f.RequestID != nil {
		err = checkWithin(*f.RequestID, 1, maxUint32)
	}
	return err
}

// Empty is empty: the result of requests with nothing to return.
type Empty struct{}

func (*Empty) check() error { return nil }

// Hello is hello (section 11.4).
type Hello struct {
	Versions    []uint64 `cbor:"1,keyasint"`
	Account     string   `cbor:"2,keyasint"`
	Device      uint64   `cbor:"3,keyasint"`
	IdentityKey []byte   `cbor:"4,keyasint"`
	Binding     []byte   `cbor:"5,keyasint"`
	Register    *bool    `cbor:"6,keyasint,omitempty"`
}

func (h *Hello) check() error {
	err := checkCount(len(h.Versions), 1, MaxVersions)
	for _, v := range h.Versions {
		err = firstErr(err, checkWithin(v, 1, maxUint32))
	}
	// Highest first, without duplicates (MSG-010).
	err = firstErr(err, sortedUnique(h.Versions, func(a, b uint64) int { return cmpUint(b, a) }))
	err = firstErr(err, checkAccount(h.Account), checkDevice(h.Device),
		checkSize(h.IdentityKey, X25519PublicSize), checkSize(h.Binding, SignatureSize))
	if err == nil && h.Register != nil && !*h.Register {
		err = errcode.DecodeValueOutOfRange
	}
	return err
}

// Welcome is welcome.
type Welcome struct {
	Version    uint64  `cbor:"1,keyasint"`
	Time       uint64  `cbor:"2,keyasint"`
	OneTimeEC  uint64  `cbor:"3,keyasint"`
	OneTimeKEM uint64  `cbor:"4,keyasint"`
	DeviceList *[]byte `cbor:"5,keyasint,omitempty"` // a SignedDeviceList
}

func (w *Welcome) check() error {
	err := checkWithin(w.Version, 1, maxUint32)
	if err == nil && w.DeviceList != nil {
		err = checkRange(*w.DeviceList, 1, MaxFrameSize)
	}
	return err
}

// PrekeyUpload is prekey-upload.
type PrekeyUpload struct {
	SignedPreKey *SignedPreKey    `cbor:"1,keyasint,omitempty"`
	LastResort   *KEMPreKey       `cbor:"2,keyasint,omitempty"`
	OneTime      *[]OneTimePreKey `cbor:"3,keyasint,omitempty"`
	OneTimeKEM   *[]KEMPreKey     `cbor:"4,keyasint,omitempty"`
}

func (u *PrekeyUpload) presence() error {
	if u.SignedPreKey == nil && u.LastResort == nil && u.OneTime == nil && u.OneTimeKEM == nil {
		return errcode.DecodeMissingField
	}
	return nil
}

func (u *PrekeyUpload) check() error {
	var err error
	if u.SignedPreKey != nil {
		err = u.SignedPreKey.check()
	}
	if err == nil && u.LastResort != nil {
		err = firstErr(u.LastResort.check(), boolIs(u.LastResort.LastResort, true))
	}
	if err == nil && u.OneTime != nil {
		l := *u.OneTime
		err = checkCount(len(l), 1, MaxPrekeysPerUpload)
		for i := 0; err == nil && i < len(l); i++ {
			err = l[i].check()
		}
	}
	if err == nil && u.OneTimeKEM != nil {
		l := *u.OneTimeKEM
		err = checkCount(len(l), 1, MaxPrekeysPerUpload)
		for i := 0; err == nil && i < len(l); i++ {
			err = firstErr(l[i].check(), boolIs(l[i].LastResort, false))
		}
	}
	return err
}

func boolIs(v, want bool) error {
	if v != want {
		return errcode.DecodeValueOutOfRange
	}
	return nil
}

// UploadResult is upload-result.
type UploadResult struct {
	OneTimeEC  uint64 `cbor:"1,keyasint"`
	OneTimeKEM uint64 `cbor:"2,keyasint"`
}

func (*UploadResult) check() error { return nil }

// PrekeyFetch is prekey-fetch.
type PrekeyFetch struct {
	Account string    `cbor:"1,keyasint"`
	Devices *[]uint64 `cbor:"2,keyasint,omitempty"`
}

func (p *PrekeyFetch) check() error {
	err := checkAccount(p.Account)
	if err == nil && p.Devices != nil {
		l := *p.Devices
		err = firstErr(checkCount(len(l), 1, MaxFanout), sortedUnique(l, cmpUint))
		for _, d := range l {
			err = firstErr(err, checkDevice(d))
		}
	}
	return err
}

// FetchResult is fetch-result.
type FetchResult struct {
	Bundles    []DeviceBundle `cbor:"1,keyasint"`
	DeviceList []byte         `cbor:"2,keyasint"` // a SignedDeviceList
}

func (r *FetchResult) check() error {
	err := checkCount(len(r.Bundles), 1, MaxBundles)
	for i := 0; err == nil && i < len(r.Bundles); i++ {
		err = r.Bundles[i].check()
	}
	if err == nil {
		err = sortedUnique(r.Bundles, func(a, b DeviceBundle) int { return cmpUint(a.Device, b.Device) })
	}
	return firstErr(err, checkRange(r.DeviceList, 1, MaxFrameSize))
}

// DeviceBundle is device-bundle.
type DeviceBundle struct {
	Device uint64 `cbor:"1,keyasint"`
	Bundle []byte `cbor:"2,keyasint"` // a Bundle
}

func (d *DeviceBundle) check() error {
	return firstErr(checkDevice(d.Device), checkRange(d.Bundle, 1, MaxFrameSize))
}

// SendResult is send-result.
type SendResult struct {
	AcceptedAt uint64 `cbor:"1,keyasint"`
}

func (*SendResult) check() error { return nil }

// PresenceSubscribe is presence-subscribe.
type PresenceSubscribe struct {
	Accounts []string `cbor:"1,keyasint"`
}

func (p *PresenceSubscribe) check() error { return checkAccounts(p.Accounts, 1, MaxSubscriptions) }

func checkAccounts(as []string, lo, hi int) error {
	err := checkCount(len(as), lo, hi)
	for _, a := range as {
		err = firstErr(err, checkAccount(a))
	}
	return firstErr(err, sortedUnique(as, cmpEncodedText))
}

// cmpEncodedText orders text strings bytewise (section 11.2).
func cmpEncodedText(a, b string) int { return strings.Compare(a, b) }

// PresenceResult is presence-result.
type PresenceResult struct {
	Updates []PresenceUpdate `cbor:"1,keyasint"`
}

func (r *PresenceResult) check() error {
	err := checkCount(len(r.Updates), 0, MaxSubscriptions)
	for i := 0; err == nil && i < len(r.Updates); i++ {
		err = r.Updates[i].check()
	}
	return err
}

// Privacy is privacy.
type Privacy struct {
	LastSeen uint64 `cbor:"1,keyasint"`
	Online   uint64 `cbor:"2,keyasint"`
}

func (p *Privacy) check() error {
	return firstErr(checkEnum(p.LastSeen, maxVisibility), checkEnum(p.Online, maxVisibility))
}

// Contacts is contacts.
type Contacts struct {
	Accounts []string `cbor:"1,keyasint"`
}

func (c *Contacts) check() error { return checkAccounts(c.Accounts, 0, MaxContacts) }

// Envelope is envelope (section 11.5).
type Envelope struct {
	Version   uint64          `cbor:"1,keyasint"`
	MessageID []byte          `cbor:"2,keyasint"`
	Sender    Address         `cbor:"3,keyasint"`
	Recipient string          `cbor:"4,keyasint"`
	Messages  []DeviceMessage `cbor:"5,keyasint"`
	Type      uint64          `cbor:"6,keyasint"`
	Priority  uint64          `cbor:"7,keyasint"`
	TTL       uint64          `cbor:"8,keyasint"`
	SentAt    uint64          `cbor:"9,keyasint"`
}

func (*Envelope) isVersioned() {}
func (*Envelope) maxSize() int { return MaxEnvelopeSize }

func (e *Envelope) check() error {
	err := firstErr(checkSize(e.MessageID, MessageIDSize), e.Sender.check(), checkAccount(e.Recipient),
		checkCount(len(e.Messages), 1, MaxFanout))
	for i := 0; err == nil && i < len(e.Messages); i++ {
		err = e.Messages[i].check()
	}
	if err == nil {
		err = sortedUnique(e.Messages, func(a, b DeviceMessage) int { return cmpUint(a.Device, b.Device) })
	}
	return firstErr(err, checkWithin(e.Type, 1, maxEnvelopeType), checkEnum(e.Priority, maxPriority),
		checkWithin(e.TTL, 1, MaxTTL))
}

// DeviceMessage is device-message.
type DeviceMessage struct {
	Device     uint64 `cbor:"1,keyasint"`
	Kind       uint64 `cbor:"2,keyasint"`
	Ciphertext []byte `cbor:"3,keyasint"`
}

func (m *DeviceMessage) check() error {
	return firstErr(checkDevice(m.Device), checkWithin(m.Kind, 1, maxMessageKind),
		checkRange(m.Ciphertext, 1, MaxDeviceMessage))
}

// Delivery is delivery (section 11.6).
type Delivery struct {
	Version    uint64  `cbor:"1,keyasint"`
	QueueID    uint64  `cbor:"2,keyasint"`
	MessageID  []byte  `cbor:"3,keyasint"`
	Sender     Address `cbor:"4,keyasint"`
	Type       uint64  `cbor:"5,keyasint"`
	Priority   uint64  `cbor:"6,keyasint"`
	Kind       uint64  `cbor:"7,keyasint"`
	Ciphertext []byte  `cbor:"8,keyasint"`
	SentAt     uint64  `cbor:"9,keyasint"`
	AcceptedAt uint64  `cbor:"10,keyasint"`
	ExpiresAt  uint64  `cbor:"11,keyasint"`
	Attempt    uint64  `cbor:"12,keyasint"`
}

func (*Delivery) isVersioned() {}

func (d *Delivery) check() error {
	return firstErr(checkSize(d.MessageID, MessageIDSize), d.Sender.check(),
		checkWithin(d.Type, 1, maxEnvelopeType), checkEnum(d.Priority, maxPriority),
		checkWithin(d.Kind, 1, maxDeliveryKind), checkRange(d.Ciphertext, 1, MaxDeviceMessage),
		checkWithin(d.Attempt, 1, maxUint32))
}

// Ack is ack.
type Ack struct {
	QueueIDs []uint64 `cbor:"1,keyasint"`
}

func (a *Ack) check() error {
	return firstErr(checkCount(len(a.QueueIDs), 1, MaxReceiptIDs), sortedUnique(a.QueueIDs, cmpUint))
}

// PresenceUpdate is presence-update (section 11.7).
type PresenceUpdate struct {
	Account  string  `cbor:"1,keyasint"`
	State    uint64  `cbor:"2,keyasint"`
	LastSeen *uint64 `cbor:"3,keyasint,omitempty"`
}

func (p *PresenceUpdate) check() error {
	return firstErr(checkAccount(p.Account), checkWithin(p.State, 1, maxPresenceState))
}

// Typing is typing, from a device.
type Typing struct {
	Account string `cbor:"1,keyasint"`
	Typing  bool   `cbor:"2,keyasint"`
}

func (t *Typing) check() error { return checkAccount(t.Account) }

// TypingNotice is typing-notice, from the server.
type TypingNotice struct {
	From   Address `cbor:"1,keyasint"`
	Typing bool    `cbor:"2,keyasint"`
}

func (t *TypingNotice) check() error { return t.From.check() }

// Notice is notice.
type Notice struct {
	Type       uint64  `cbor:"1,keyasint"`
	Count      *uint64 `cbor:"2,keyasint,omitempty"`
	RetryAfter *uint64 `cbor:"3,keyasint,omitempty"`
}

func (n *Notice) check() error { return checkWithin(n.Type, 1, maxNoticeType) }

// ErrorBody is error-body (section 11.8).
type ErrorBody struct {
	Code       uint64          `cbor:"1,keyasint"`
	Detail     *string         `cbor:"2,keyasint,omitempty"`
	Fanout     *FanoutMismatch `cbor:"3,keyasint,omitempty"`
	RetryAfter *uint64         `cbor:"4,keyasint,omitempty"`
	DeviceList *[]byte         `cbor:"5,keyasint,omitempty"` // a SignedDeviceList
	Group      *GroupDevices   `cbor:"6,keyasint,omitempty"`
	GroupState *[]byte         `cbor:"7,keyasint,omitempty"` // a SignedGroupState
}

func (e *ErrorBody) check() error {
	err := checkWithin(e.Code, 1, 0xFFFF)
	if err == nil && !errcode.Code(e.Code).Registered() {
		err = errcode.DecodeValueOutOfRange
	}
	if err == nil && e.Detail != nil {
		err = checkText(*e.Detail, 1, MaxDetail)
	}
	if err == nil && e.Fanout != nil {
		err = e.Fanout.check()
	}
	if err == nil && e.DeviceList != nil {
		err = checkRange(*e.DeviceList, 1, MaxFrameSize)
	}
	if err == nil && e.Group != nil {
		err = e.Group.check()
	}
	if err == nil && e.GroupState != nil {
		err = checkRange(*e.GroupState, 1, MaxFrameSize)
	}
	return err
}

// FanoutMismatch is fanout-mismatch.
type FanoutMismatch struct {
	Missing []uint64 `cbor:"1,keyasint"`
	Extra   []uint64 `cbor:"2,keyasint"`
	Stale   []uint64 `cbor:"3,keyasint"`
}

func (f *FanoutMismatch) check() error {
	var err error
	for _, l := range [][]uint64{f.Missing, f.Extra, f.Stale} {
		err = firstErr(err, checkCount(len(l), 0, MaxItems), sortedUnique(l, cmpUint))
		for _, d := range l {
			err = firstErr(err, checkDevice(d))
		}
	}
	return err
}

// Content is content (section 11.9): the plaintext devices encrypt.
type Content struct {
	Version    uint64                 `cbor:"1,keyasint"`
	Type       uint64                 `cbor:"2,keyasint"`
	MessageID  []byte                 `cbor:"3,keyasint"`
	SentAt     uint64                 `cbor:"4,keyasint"`
	Text       *string                `cbor:"5,keyasint,omitempty"`
	Receipt    *Receipt               `cbor:"6,keyasint,omitempty"`
	Media      *Media                 `cbor:"7,keyasint,omitempty"`
	Target     *[]byte                `cbor:"8,keyasint,omitempty"`
	Transcript *SentTranscript        `cbor:"9,keyasint,omitempty"`
	Read       *ReadSync              `cbor:"10,keyasint,omitempty"`
	Deleted    *DeletedSync           `cbor:"11,keyasint,omitempty"`
	History    *History               `cbor:"12,keyasint,omitempty"`
	SenderKey  *SenderKeyDistribution `cbor:"13,keyasint,omitempty"`
	Group      *[]byte                `cbor:"14,keyasint,omitempty"` // a SignedGroupState
	Timer      *uint64                `cbor:"15,keyasint,omitempty"`
	Expire     *uint64                `cbor:"16,keyasint,omitempty"` // expire-after, seconds
	Opened     *OpenedSync            `cbor:"17,keyasint,omitempty"`
}

func (*Content) isVersioned() {}

// contentFields lists, per content type, what each of the fields 5 to 17
// is with it: forbidden (0), required (1) or allowed (2).
var contentFields = [maxContentType + 1][13]uint8{
	ContentText:        {0: 1, 11: 2},
	ContentReceipt:     {1: 1},
	ContentMedia:       {2: 1, 11: 2},
	ContentEdit:        {0: 1, 3: 1},
	ContentDelete:      {3: 1},
	ContentSent:        {4: 1},
	ContentRead:        {5: 1},
	ContentDeleted:     {6: 1},
	ContentHistory:     {7: 1},
	ContentSenderKey:   {8: 1},
	ContentGroupUpdate: {9: 1},
	ContentTimer:       {10: 1},
	ContentOpened:      {12: 1},
}

// contentEnvelopes is the last column of section 11.9's table: the
// envelope type each content type arrives in.
var contentEnvelopes = [maxContentType + 1]uint64{
	ContentText: EnvelopeChat, ContentReceipt: EnvelopeReceipt, ContentMedia: EnvelopeChat,
	ContentEdit: EnvelopeChat, ContentDelete: EnvelopeChat, ContentSent: EnvelopeSync,
	ContentRead: EnvelopeSync, ContentDeleted: EnvelopeSync, ContentHistory: EnvelopeSync,
	ContentSenderKey: EnvelopeControl, ContentGroupUpdate: EnvelopeControl, ContentTimer: EnvelopeChat,
	ContentOpened: EnvelopeSync,
}

// EnvelopeOf returns the envelope type that content of type t arrives in
// (MSG-020, MSG-021), or 0 for a type section 11.9 does not define.
func EnvelopeOf(t uint64) uint64 {
	if t > maxContentType {
		return 0
	}
	return contentEnvelopes[t]
}

// presence implements the type table of section 11.9 (MSG-017).
func (c *Content) presence() error {
	if c.Type == 0 || c.Type > maxContentType {
		return nil // stage 3c reports the type
	}
	have := [13]bool{c.Text != nil, c.Receipt != nil, c.Media != nil, c.Target != nil, c.Transcript != nil,
		c.Read != nil, c.Deleted != nil, c.History != nil, c.SenderKey != nil, c.Group != nil, c.Timer != nil,
		c.Expire != nil, c.Opened != nil}
	want := contentFields[c.Type]
	for i := range have {
		if want[i] == 1 && !have[i] {
			return errcode.DecodeMissingField
		}
	}
	for i := range have {
		if want[i] == 0 && have[i] {
			return errcode.DecodeUnknownField
		}
	}
	return nil
}

func (c *Content) check() error {
	err := firstErr(checkWithin(c.Type, 1, maxContentType), checkSize(c.MessageID, MessageIDSize))
	if err == nil && c.Text != nil {
		err = checkText(*c.Text, 1, MaxText)
	}
	if err == nil && c.Receipt != nil {
		err = c.Receipt.check()
	}
	if err == nil && c.Media != nil {
		err = c.Media.check()
	}
	if err == nil && c.Target != nil {
		err = checkSize(*c.Target, MessageIDSize)
	}
	if err == nil && c.Transcript != nil {
		err = c.Transcript.check()
	}
	if err == nil && c.Read != nil {
		err = c.Read.check()
	}
	if err == nil && c.Deleted != nil {
		err = c.Deleted.check()
	}
	if err == nil && c.History != nil {
		err = c.History.check()
	}
	if err == nil && c.SenderKey != nil {
		err = c.SenderKey.check()
	}
	if err == nil && c.Group != nil {
		err = checkRange(*c.Group, 1, MaxFrameSize)
	}
	if err == nil && c.Timer != nil {
		err = checkWithin(*c.Timer, 0, MaxTimer)
	}
	if err == nil && c.Expire != nil {
		err = checkWithin(*c.Expire, 1, MaxTimer)
	}
	if err == nil && c.Opened != nil {
		err = c.Opened.check()
	}
	return err
}

// Receipt is receipt.
type Receipt struct {
	Kind       uint64   `cbor:"1,keyasint"`
	MessageIDs [][]byte `cbor:"2,keyasint"`
}

func (r *Receipt) check() error {
	err := firstErr(checkWithin(r.Kind, 1, maxReceiptKind), checkCount(len(r.MessageIDs), 1, MaxReceiptIDs))
	for _, id := range r.MessageIDs {
		err = firstErr(err, checkSize(id, MessageIDSize))
	}
	return firstErr(err, sortedUnique(r.MessageIDs, bytes.Compare))
}

// Media is media.
type Media struct {
	Kind     uint64  `cbor:"1,keyasint"`
	BlobID   string  `cbor:"2,keyasint"`
	Key      []byte  `cbor:"3,keyasint"`
	Digest   []byte  `cbor:"4,keyasint"`
	Size     uint64  `cbor:"5,keyasint"`
	MIME     string  `cbor:"6,keyasint"`
	Caption  *string `cbor:"7,keyasint,omitempty"`
	ViewOnce *bool   `cbor:"8,keyasint,omitempty"`
}

func (m *Media) check() error {
	err := firstErr(checkWithin(m.Kind, 1, maxMediaKind), checkText(m.BlobID, 1, MaxBlobID),
		checkSize(m.Key, blobKeySize), checkSize(m.Digest, sha256Size), checkText(m.MIME, 1, MaxMIME))
	if err == nil && m.Caption != nil {
		err = checkText(*m.Caption, 1, MaxText)
	}
	if err == nil && m.ViewOnce != nil {
		err = boolIs(*m.ViewOnce, true)
	}
	return err
}

// SentTranscript is sent-transcript.
type SentTranscript struct {
	Recipient string `cbor:"1,keyasint"`
	Content   []byte `cbor:"2,keyasint"` // a Content
}

func (s *SentTranscript) check() error {
	return firstErr(checkAccount(s.Recipient), checkRange(s.Content, 1, MaxFrameSize))
}

// Rules maps each CDDL rule of a structure (a map or an array) that the
// specification puts on the wire to a constructor of its Go type.
var Rules = map[string]func() Message{
	"prekey-bundle":           func() Message { return new(Bundle) },
	"signed-prekey":           func() Message { return new(SignedPreKey) },
	"kem-prekey":              func() Message { return new(KEMPreKey) },
	"one-time-prekey":         func() Message { return new(OneTimePreKey) },
	"prekey-message":          func() Message { return new(PreKeyMessage) },
	"ratchet-message":         func() Message { return new(RatchetMessage) },
	"ratchet-header":          func() Message { return new(RatchetHeader) },
	"address":                 func() Message { return new(Address) },
	"frame":                   func() Message { return new(Frame) },
	"empty":                   func() Message { return new(Empty) },
	"hello":                   func() Message { return new(Hello) },
	"welcome":                 func() Message { return new(Welcome) },
	"prekey-upload":           func() Message { return new(PrekeyUpload) },
	"upload-result":           func() Message { return new(UploadResult) },
	"prekey-fetch":            func() Message { return new(PrekeyFetch) },
	"fetch-result":            func() Message { return new(FetchResult) },
	"device-bundle":           func() Message { return new(DeviceBundle) },
	"send-result":             func() Message { return new(SendResult) },
	"presence-subscribe":      func() Message { return new(PresenceSubscribe) },
	"presence-result":         func() Message { return new(PresenceResult) },
	"privacy":                 func() Message { return new(Privacy) },
	"contacts":                func() Message { return new(Contacts) },
	"envelope":                func() Message { return new(Envelope) },
	"device-message":          func() Message { return new(DeviceMessage) },
	"delivery":                func() Message { return new(Delivery) },
	"ack":                     func() Message { return new(Ack) },
	"presence-update":         func() Message { return new(PresenceUpdate) },
	"typing":                  func() Message { return new(Typing) },
	"typing-notice":           func() Message { return new(TypingNotice) },
	"notice":                  func() Message { return new(Notice) },
	"error-body":              func() Message { return new(ErrorBody) },
	"fanout-mismatch":         func() Message { return new(FanoutMismatch) },
	"content":                 func() Message { return new(Content) },
	"receipt":                 func() Message { return new(Receipt) },
	"media":                   func() Message { return new(Media) },
	"sent-transcript":         func() Message { return new(SentTranscript) },
	"device-list":             func() Message { return new(DeviceList) },
	"listed-device":           func() Message { return new(ListedDevice) },
	"signed-device-list":      func() Message { return new(SignedDeviceList) },
	"open-link":               func() Message { return new(OpenLink) },
	"link-request":            func() Message { return new(LinkRequest) },
	"link-notice":             func() Message { return new(LinkNotice) },
	"answer-link":             func() Message { return new(AnswerLink) },
	"link-result":             func() Message { return new(LinkResult) },
	"set-device-list":         func() Message { return new(SetDeviceList) },
	"read-sync":               func() Message { return new(ReadSync) },
	"deleted-sync":            func() Message { return new(DeletedSync) },
	"conversation-message":    func() Message { return new(ConversationMessage) },
	"history":                 func() Message { return new(History) },
	"history-entry":           func() Message { return new(HistoryEntry) },
	"device-list-fetch":       func() Message { return new(DeviceListFetch) },
	"device-list-result":      func() Message { return new(DeviceListResult) },
	"opened-sync":             func() Message { return new(OpenedSync) },
	"group-state":             func() Message { return new(GroupState) },
	"group-member":            func() Message { return new(GroupMember) },
	"signed-group-state":      func() Message { return new(SignedGroupState) },
	"group-fetch":             func() Message { return new(GroupFetch) },
	"group-history":           func() Message { return new(GroupHistory) },
	"sender-key-distribution": func() Message { return new(SenderKeyDistribution) },
	"group-message":           func() Message { return new(GroupMessage) },
	"group-message-body":      func() Message { return new(GroupMessageBody) },
	"group-envelope":          func() Message { return new(GroupEnvelope) },
	"group-devices":           func() Message { return new(GroupDevices) },
	"account-devices":         func() Message { return new(AccountDevices) },
	"blob-create":             func() Message { return new(BlobCreate) },
	"blob-created":            func() Message { return new(BlobCreated) },
	"blob-put":                func() Message { return new(BlobPut) },
	"blob-progress":           func() Message { return new(BlobProgress) },
	"blob-get":                func() Message { return new(BlobGet) },
	"blob-chunk":              func() Message { return new(BlobChunk) },
}

// RuleNames returns the names of Rules, sorted.
func RuleNames() []string {
	out := make([]string, 0, len(Rules))
	for name := range Rules {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
