package devices

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/internal/vectest"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// fuzzRand is a deterministic byte source for the seeds.
type fuzzRand struct{ state [32]byte }

func (r *fuzzRand) Read(p []byte) (int, error) {
	for i := range p {
		if i%32 == 0 {
			r.state = sha256.Sum256(r.state[:])
		}
		p[i] = r.state[i%32]
	}
	return len(p), nil
}

// FuzzParse checks Parse on a signed device list and an account: no
// panic, registered codes only, decode codes for what does not decode,
// and a list accepted that keeps its encodings, which encode back to
// themselves, is the account's with device 1 first, and that Accept takes
// again with its own primary key recorded and itself as the last list.
// The seeds are the lists of vectors/v1/device_lists.json and lists signed
// here.
func FuzzParse(f *testing.F) {
	vf := vectest.Load[listCase](f, "device_lists")
	for _, c := range vf.Cases {
		f.Add([]byte(c.List), c.Account)
		for _, a := range c.Accepted {
			f.Add([]byte(a), c.Account)
		}
	}
	r := &fuzzRand{sha256.Sum256([]byte("fuzz devices"))}
	primary, err := keys.GeneratePrivateKey(r)
	if err != nil {
		f.Fatal(err)
	}
	companion, err := keys.GeneratePrivateKey(r)
	if err != nil {
		f.Fatal(err)
	}
	for _, devs := range [][]wire.ListedDevice{
		{{Device: 1, IdentityKey: primary.Public().Encode()}},
		{{Device: 1, IdentityKey: primary.Public().Encode()}, {Device: 7, IdentityKey: companion.Public().Encode()}},
		{{Device: 2, IdentityKey: primary.Public().Encode()}}, // no device 1
	} {
		l, err := Sign(primary, "alice", 3, devs, 1000, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(l.Signed, "alice")
		f.Add(l.Signed, "bob")
	}
	f.Fuzz(func(t *testing.T, data []byte, account string) {
		l, err := Parse(data, account)
		if err != nil {
			c := errcode.Of(err)
			if !c.Registered() {
				t.Fatalf("error %v has no registered code", err)
			}
			var s wire.SignedDeviceList
			var dl wire.DeviceList
			if werr := wire.Unmarshal(data, &s); werr != nil || wire.Unmarshal(s.List, &dl) != nil {
				if c.Layer() != "decode" {
					t.Fatalf("list that does not decode: got %v, want a decode code", err)
				}
			}
			return
		}
		if !bytes.Equal(l.Signed, data) {
			t.Fatalf("signed encoding: got %x, want %x", l.Signed, data)
		}
		var s wire.SignedDeviceList
		if err := wire.Unmarshal(data, &s); err != nil || !bytes.Equal(s.List, l.Raw) {
			t.Fatalf("list encoding: got %x, want field 1 of %x (%v)", l.Raw, data, err)
		}
		again, err := wire.Marshal(&l.DeviceList)
		if err != nil {
			t.Fatalf("accepted list does not encode: %v", err)
		}
		if !bytes.Equal(again, l.Raw) {
			t.Fatalf("parse then marshal changed the bytes:\n%x\n%x", l.Raw, again)
		}
		if l.Account != account || len(l.Devices) == 0 || l.Devices[0].Device != 1 {
			t.Fatalf("accepted a list of %q with %d devices for %q", l.Account, len(l.Devices), account)
		}
		p := l.Primary()
		if p.IsZero() {
			t.Fatalf("accepted list has no primary key")
		}
		if _, err := Accept(data, account, &p, l); err != nil {
			t.Fatalf("Accept of the same list again: %v", err)
		}
		if account != "" {
			if _, err := Parse(data, account+"x"); !errors.Is(err, errcode.AuthDeviceListInvalid) {
				t.Fatalf("Parse for another account: got %v, want %v", err, errcode.AuthDeviceListInvalid)
			}
		}
	})
}

// FuzzParseLinkCode checks that no text makes ParseLinkCode panic, and
// that what it accepts is a valid account, a secret and a short
// fingerprint of the right sizes, spelled canonically (in any case), which
// the canonical form of the code gives again. Its errors are plain errors by design (a link code is typed
// by a user, not received), so they are not checked for codes.
func FuzzParseLinkCode(f *testing.F) {
	k, err := keys.NewPrivateKey(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		f.Fatal(err)
	}
	code := LinkCode("alice", bytes.Repeat([]byte{0xA5}, LinkSecretSize), k.Public())
	noncanonical := code[:len(code)-1] + string(code[len(code)-1]+1) // unused low bits set
	for _, s := range []string{code, strings.ToUpper(code), " " + code + "\n", code + ":", "alice::", "", ":::", noncanonical} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		account, secret, fp, err := ParseLinkCode(code)
		if err != nil {
			return
		}
		if !wire.ValidAccount(account) || len(secret) != LinkSecretSize || len(fp) != 16 {
			t.Fatalf("accepted %q: account %q, secret of %d bytes, fingerprint of %d bytes", code, account, len(secret), len(fp))
		}
		canon := account + ":" + strings.ToLower(b32.EncodeToString(secret)) + ":" + strings.ToLower(b32.EncodeToString(fp))
		if !strings.EqualFold(strings.TrimSpace(code), canon) {
			t.Fatalf("accepted %q, which is not the canonical %q in another case", code, canon)
		}
		a2, s2, fp2, err := ParseLinkCode(canon)
		if err != nil || a2 != account || !bytes.Equal(s2, secret) || !bytes.Equal(fp2, fp) {
			t.Fatalf("canonical form %q of %q: got %q %x %x (%v), want %q %x %x", canon, code, a2, s2, fp2, err, account, secret, fp)
		}
	})
}

// TestParseLinkCodeCanonical checks that a code whose fingerprint is
// spelled with the unused bits of its last character set, which base32
// decodes to the same bytes, is refused: one code has one spelling.
func TestParseLinkCodeCanonical(t *testing.T) {
	k, err := keys.NewPrivateKey(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	code := LinkCode("alice", bytes.Repeat([]byte{0xA5}, LinkSecretSize), k.Public())
	if _, _, _, err := ParseLinkCode(code); err != nil {
		t.Fatalf("ParseLinkCode(%q): %v", code, err)
	}
	i := strings.LastIndexByte(code, ':')
	fp, err := b32.DecodeString(strings.ToUpper(code[i+1:]))
	if err != nil {
		t.Fatal(err)
	}
	last := code[len(code)-1]
	for _, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		alias := code[:len(code)-1] + string(c)
		got, err := b32.DecodeString(strings.ToUpper(alias[i+1:]))
		if byte(c) == last || err != nil || !bytes.Equal(got, fp) {
			continue // not another spelling of the same bytes
		}
		if _, _, _, err := ParseLinkCode(alias); err == nil {
			t.Errorf("ParseLinkCode(%q), another spelling of %q: got nil error, want a refusal", alias, code)
		}
	} // Letters outside ASCII that fold to base32 ones: long s (U+017F) and
	// the Kelvin sign (U+212A).
	j := strings.IndexByte(code, ':')
	secret := code[j+1 : i]
	n := 0
	for _, r := range []struct{ from, to string }{{"s", "\u017f"}, {"k", "\u212a"}} {
		if !strings.Contains(secret, r.from) {
			continue
		}
		n++
		alias := code[:j+1] + strings.Replace(secret, r.from, r.to, 1) + code[i:]
		if _, _, _, err := ParseLinkCode(alias); err == nil {
			t.Errorf("ParseLinkCode(%q), %q for %q: got nil error, want a refusal", alias, r.to, r.from)
		}
	}
	if n == 0 {
		t.Fatalf("the secret %q has neither s nor k: the non-ASCII cases test nothing", secret)
	}
}
