// Package devices implements the multi-device mechanics of
// spec/15-devices.md: signed device lists (making, signing, checking),
// the keys and code of linking, and fingerprints (safety numbers).
package devices

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 15.1.
const (
	MaxCompanions         = wire.MaxCompanions
	LinkSecretSize        = 16
	FingerprintIterations = 5200
	LabelDeviceList       = "Missive v1 device list"
	LabelLink             = "Missive v1 linking keys"
	LabelLinkMAC          = "Missive v1 link request"
	LabelFingerprint      = "Missive v1 fingerprint"
)

// List is a decoded device list with its encodings.
type List struct {
	wire.DeviceList
	Raw    []byte // the device-list encoding: what was signed
	Signed []byte // the signed-device-list encoding
}

// Device returns the listed identity key of a device, or false.
func (l *List) Device(id uint32) (keys.PublicKey, bool) {
	for _, d := range l.Devices {
		if d.Device == uint64(id) {
			k, err := keys.DecodePublicKey(d.IdentityKey)
			return k, err == nil
		}
	}
	return keys.PublicKey{}, false
}

// IDs returns the listed device ids, in increasing order.
func (l *List) IDs() []uint32 {
	out := make([]uint32, len(l.Devices))
	for i, d := range l.Devices {
		out[i] = uint32(d.Device)
	}
	return out
}

// Primary returns the identity key of device 1.
func (l *List) Primary() keys.PublicKey {
	k, _ := l.Device(1)
	return k
}

// Sign makes and signs a device list with the primary's identity key,
// drawing 64 bytes from rand. devices must be sorted, device 1 first.
func Sign(primary *keys.PrivateKey, account string, version uint64, devices []wire.ListedDevice, issuedAt uint64, rand io.Reader) (*List, error) {
	l := wire.DeviceList{Version: wire.ProtocolVersion, Account: account, Serial: version, Devices: devices, IssuedAt: issuedAt}
	enc, err := wire.Marshal(&l)
	if err != nil {
		return nil, err
	}
	sig, err := primary.Sign(append([]byte(LabelDeviceList), enc...), rand)
	if err != nil {
		return nil, err
	}
	signed, err := wire.Marshal(&wire.SignedDeviceList{List: enc, Signature: sig})
	if err != nil {
		return nil, err
	}
	return &List{DeviceList: l, Raw: enc, Signed: signed}, nil
}

// Parse decodes a signed device list for account and checks steps 1 to 3
// of DEV-001: it is for the account, lists device 1, and device 1's key
// signed it.
func Parse(signed []byte, account string) (*List, error) {
	var s wire.SignedDeviceList
	if err := wire.Unmarshal(signed, &s); err != nil {
		return nil, fmt.Errorf("devices: signed list: %w", err)
	}
	var l wire.DeviceList
	if err := wire.Unmarshal(s.List, &l); err != nil {
		return nil, fmt.Errorf("devices: list: %w", err)
	}
	if l.Account != account || len(l.Devices) == 0 || l.Devices[0].Device != 1 {
		return nil, fmt.Errorf("devices: list of %q for %q: %w", l.Account, account, errcode.AuthDeviceListInvalid)
	}
	primary, err := keys.DecodePublicKey(l.Devices[0].IdentityKey)
	if err != nil {
		return nil, fmt.Errorf("devices: primary key: %w", err)
	}
	if err := primary.Verify(append([]byte(LabelDeviceList), s.List...), s.Signature); err != nil {
		return nil, fmt.Errorf("devices: list signature: %w", err)
	}
	return &List{DeviceList: l, Raw: bytes.Clone(s.List), Signed: bytes.Clone(signed)}, nil
}

// Accept runs DEV-001 in full: Parse, then the recorded primary key (nil
// when none is recorded) and the last accepted list (nil when none).
func Accept(signed []byte, account string, recorded *keys.PublicKey, last *List) (*List, error) {
	l, err := Parse(signed, account)
	if err != nil {
		return nil, err
	}
	if recorded != nil && !recorded.Equal(l.Primary()) {
		return nil, fmt.Errorf("devices: %s: %w", account, errcode.AuthIdentityChanged)
	}
	if last != nil && !faults.Has(faults.AcceptListRollback) {
		switch {
		case l.Serial < last.Serial:
			return nil, fmt.Errorf("devices: %s: version %d after %d: %w", account, l.Serial, last.Serial, errcode.StateDeviceListRollback)
		case l.Serial == last.Serial && !bytes.Equal(l.Raw, last.Raw):
			return nil, fmt.Errorf("devices: %s: two lists of version %d: %w", account, l.Serial, errcode.AuthDeviceListInvalid)
		}
	}
	return l, nil
}

// LinkKeys derives the link id and the MAC key from a linking secret.
func LinkKeys(secret []byte) (linkID, macKey []byte, err error) {
	var salt [32]byte
	out, err := hkdf.Key(sha256.New, secret, salt[:], LabelLink, wire.LinkIDSize+32)
	if err != nil {
		return nil, nil, err
	}
	return out[:wire.LinkIDSize], out[wire.LinkIDSize:], nil
}

// LinkMAC returns the MAC of a link request for the companion's identity key.
func LinkMAC(macKey, linkID []byte, companion keys.PublicKey) []byte {
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(LabelLinkMAC))
	m.Write(linkID)
	m.Write(companion.Encode())
	return m.Sum(nil)
}

// ShortFingerprint is SHA-256(Enc(IK))[0:16], which a link code carries.
func ShortFingerprint(primary keys.PublicKey) []byte {
	h := sha256.Sum256(primary.Encode())
	return h[:16]
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// LinkCode returns the code a user carries from the primary to the
// companion.
func LinkCode(account string, secret []byte, primary keys.PublicKey) string {
	return account + ":" + strings.ToLower(b32.EncodeToString(secret)) + ":" + strings.ToLower(b32.EncodeToString(ShortFingerprint(primary)))
}

// ParseLinkCode splits a link code. Letters may be of either case; the
// base32 of the secret and the fingerprint must be canonical (the unused
// bits of the last character zero), so that one code has one spelling.
func ParseLinkCode(code string) (account string, secret, fingerprint []byte, err error) {
	parts := strings.Split(strings.TrimSpace(code), ":")
	// ASCII only: case folding would otherwise take other letters (such as
	// U+017F, long s) for base32 ones.
	if len(parts) != 3 || !wire.ValidAccount(parts[0]) || !isASCII(parts[1]) || !isASCII(parts[2]) {
		return "", nil, nil, fmt.Errorf("devices: not a link code (want account:secret:fingerprint)")
	}
	secret, err1 := b32.DecodeString(strings.ToUpper(parts[1]))
	fingerprint, err2 := b32.DecodeString(strings.ToUpper(parts[2]))
	if err1 != nil || err2 != nil || len(secret) != LinkSecretSize || len(fingerprint) != 16 ||
		!strings.EqualFold(b32.EncodeToString(secret), parts[1]) || !strings.EqualFold(b32.EncodeToString(fingerprint), parts[2]) {
		return "", nil, nil, fmt.Errorf("devices: not a link code (bad secret or fingerprint)")
	}
	return parts[0], secret, fingerprint, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Fingerprint returns the 30-digit fingerprint of an account (section
// 15.6), as 6 groups of 5 digits separated by spaces.
func Fingerprint(account string, primary keys.PublicKey) string {
	enc := primary.Encode()
	h := append(append([]byte(LabelFingerprint), enc...), account...)
	for range FingerprintIterations {
		s := sha512.New()
		s.Write(h)
		s.Write(enc)
		h = s.Sum(nil)
	}
	groups := make([]string, 6)
	for i := range groups {
		var b [8]byte
		copy(b[:5], h[5*i:5*i+5])
		groups[i] = fmt.Sprintf("%05d", binary.LittleEndian.Uint64(b[:])%100000)
	}
	return strings.Join(groups, " ")
}

// SafetyNumber returns the safety number of two accounts: both
// fingerprints, the lower first.
func SafetyNumber(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + " " + b
}
