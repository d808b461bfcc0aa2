package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// This file implements the Noise Protocol Framework (Perrin, revision 34)
// for the two protocols of chapter 12, Noise_XX_25519_ChaChaPoly_SHA256 and
// Noise_IK_25519_ChaChaPoly_SHA256, from the Noise specification: the
// CipherState, SymmetricState and HandshakeState objects of its section 5,
// with the 25519 DH functions, the ChaChaPoly cipher functions and the
// SHA256 hash functions of its section 12.

const noiseMaxMessage = 65535 // Noise section 3; MAX_SEGMENT of section 12.1

// noiseCipher is a CipherState (Noise section 5.1).
type noiseCipher struct {
	k []byte // nil: empty
	n uint64
}

// nonce is ChaChaPoly's nonce: 32 bits of zeros, then n in 64 bits
// little-endian (Noise section 12.3).
func (c *noiseCipher) nonce() []byte {
	b := make([]byte, 12)
	binary.LittleEndian.PutUint64(b[4:], c.n)
	return b
}

func (c *noiseCipher) encryptWithAd(ad, pt []byte) ([]byte, error) {
	if c.k == nil {
		return cloneBytes(pt), nil
	}
	if c.n == ^uint64(0) {
		return nil, errors.New("noise: nonce exhausted")
	}
	a, err := chacha20poly1305.New(c.k)
	if err != nil {
		return nil, err
	}
	ct := a.Seal(nil, c.nonce(), pt, ad)
	c.n++
	return ct, nil
}

// decryptWithAd fails with auth.decrypt_failed and leaves n unchanged when
// the tag does not verify (Noise section 5.1).
func (c *noiseCipher) decryptWithAd(ad, ct []byte) ([]byte, error) {
	if c.k == nil {
		return cloneBytes(ct), nil
	}
	if c.n == ^uint64(0) {
		return nil, errors.New("noise: nonce exhausted")
	}
	a, err := chacha20poly1305.New(c.k)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, c.nonce(), ct, ad)
	if err != nil {
		return nil, errDecryptFailed
	}
	c.n++
	return pt, nil
}

// noiseHKDF is HKDF of Noise section 4.3, with HMAC-SHA256.
func noiseHKDF(ck, ikm []byte, outputs int) [][]byte {
	temp := hmacSHA256(ck, ikm)
	var out [][]byte
	prev := []byte{}
	for i := 1; i <= outputs; i++ {
		prev = hmacSHA256(temp, append(cloneBytes(prev), byte(i)))
		out = append(out, prev)
	}
	return out
}

// noiseSymmetric is a SymmetricState (Noise section 5.2).
type noiseSymmetric struct {
	cs    noiseCipher
	ck, h []byte
}

func newNoiseSymmetric(protocolName string) *noiseSymmetric {
	var h []byte
	if len(protocolName) <= sha256.Size {
		h = make([]byte, sha256.Size)
		copy(h, protocolName)
	} else {
		s := sha256.Sum256([]byte(protocolName))
		h = s[:]
	}
	return &noiseSymmetric{ck: cloneBytes(h), h: h}
}

func (s *noiseSymmetric) mixKey(ikm []byte) {
	o := noiseHKDF(s.ck, ikm, 2)
	s.ck, s.cs = o[0], noiseCipher{k: o[1]}
}

func (s *noiseSymmetric) mixHash(data []byte) {
	h := sha256.New()
	h.Write(s.h)
	h.Write(data)
	s.h = h.Sum(nil)
}

func (s *noiseSymmetric) encryptAndHash(pt []byte) ([]byte, error) {
	ct, err := s.cs.encryptWithAd(s.h, pt)
	if err != nil {
		return nil, err
	}
	s.mixHash(ct)
	return ct, nil
}

func (s *noiseSymmetric) decryptAndHash(ct []byte) ([]byte, error) {
	pt, err := s.cs.decryptWithAd(s.h, ct)
	if err != nil {
		return nil, err
	}
	s.mixHash(ct)
	return pt, nil
}

func (s *noiseSymmetric) split() (*noiseCipher, *noiseCipher) {
	o := noiseHKDF(s.ck, nil, 2)
	return &noiseCipher{k: o[0]}, &noiseCipher{k: o[1]}
}

// noisePatterns are the message patterns of Noise section 7.5, and whether
// the responder's static key is a pre-message.
var noisePatterns = map[string]struct {
	preResponderS bool
	messages      [][]string
}{
	"XX": {false, [][]string{{"e"}, {"e", "ee", "s", "es"}, {"s", "se"}}},
	"IK": {true, [][]string{{"e", "es", "s", "ss"}, {"e", "ee", "se"}}},
}

// noiseHandshake is a HandshakeState (Noise section 5.3).
type noiseHandshake struct {
	ss          *noiseSymmetric
	initiator   bool
	sPriv, sPub []byte
	ePriv, ePub []byte
	rs, re      []byte
	messages    [][]string
	next        int
	rnd         io.Reader // GENERATE_KEYPAIR draws 32 bytes (section 2.2)
}

// newNoiseHandshake initializes a handshake. rs is the responder's static
// public key, which an IK initiator knows in advance.
func newNoiseHandshake(pattern string, initiator bool, prologue, sPriv, rs []byte, rnd io.Reader) (*noiseHandshake, error) {
	p, ok := noisePatterns[pattern]
	if !ok {
		return nil, fmt.Errorf("noise: no pattern %s", pattern)
	}
	hs := &noiseHandshake{ss: newNoiseSymmetric("Noise_" + pattern + "_25519_ChaChaPoly_SHA256"), initiator: initiator,
		sPriv: cloneBytes(sPriv), rs: cloneBytes(rs), messages: p.messages, rnd: rnd}
	var err error
	if hs.sPub, err = x25519Public(sPriv); err != nil {
		return nil, err
	}
	hs.ss.mixHash(prologue)
	if p.preResponderS {
		if initiator {
			if len(rs) != 32 {
				return nil, errors.New("noise: IK initiator without the responder's static key")
			}
			hs.ss.mixHash(rs)
		} else {
			hs.ss.mixHash(hs.sPub)
		}
	}
	return hs, nil
}

func (hs *noiseHandshake) dh(token string) ([]byte, error) {
	switch {
	case token == "ee":
		return x25519(hs.ePriv, hs.re)
	case token == "ss":
		return x25519(hs.sPriv, hs.rs)
	case token == "es" && hs.initiator, token == "se" && !hs.initiator:
		return x25519(hs.ePriv, hs.rs)
	default: // es at the responder, se at the initiator
		return x25519(hs.sPriv, hs.re)
	}
}

// writeMessage writes the next handshake message; it returns the two
// CipherStates after the last one.
func (hs *noiseHandshake) writeMessage(payload []byte) ([]byte, *noiseCipher, *noiseCipher, error) {
	if hs.next >= len(hs.messages) || (hs.next%2 == 0) != hs.initiator {
		return nil, nil, nil, errors.New("noise: not this side's turn to write")
	}
	var buf []byte
	for _, t := range hs.messages[hs.next] {
		switch t {
		case "e":
			hs.ePriv = make([]byte, 32)
			if _, err := io.ReadFull(hs.rnd, hs.ePriv); err != nil {
				return nil, nil, nil, err
			}
			var err error
			if hs.ePub, err = x25519Public(hs.ePriv); err != nil {
				return nil, nil, nil, err
			}
			buf = append(buf, hs.ePub...)
			hs.ss.mixHash(hs.ePub)
		case "s":
			ct, err := hs.ss.encryptAndHash(hs.sPub)
			if err != nil {
				return nil, nil, nil, err
			}
			buf = append(buf, ct...)
		default:
			out, err := hs.dh(t)
			if err != nil {
				return nil, nil, nil, err
			}
			hs.ss.mixKey(out)
		}
	}
	ct, err := hs.ss.encryptAndHash(payload)
	if err != nil {
		return nil, nil, nil, err
	}
	buf = append(buf, ct...)
	hs.next++
	if hs.next == len(hs.messages) {
		c1, c2 := hs.ss.split()
		return buf, c1, c2, nil
	}
	return buf, nil, nil, nil
}

// readMessage reads the next handshake message.
func (hs *noiseHandshake) readMessage(msg []byte) ([]byte, *noiseCipher, *noiseCipher, error) {
	if hs.next >= len(hs.messages) || (hs.next%2 == 0) == hs.initiator {
		return nil, nil, nil, errors.New("noise: not this side's turn to read")
	}
	for _, t := range hs.messages[hs.next] {
		switch t {
		case "e":
			if len(msg) < 32 {
				return nil, nil, nil, errDecryptFailed
			}
			hs.re, msg = cloneBytes(msg[:32]), msg[32:]
			hs.ss.mixHash(hs.re)
		case "s":
			n := 32
			if hs.ss.cs.k != nil {
				n += 16
			}
			if len(msg) < n {
				return nil, nil, nil, errDecryptFailed
			}
			pt, err := hs.ss.decryptAndHash(msg[:n])
			if err != nil {
				return nil, nil, nil, err
			}
			hs.rs, msg = pt, msg[n:]
		default:
			out, err := hs.dh(t)
			if err != nil {
				return nil, nil, nil, err
			}
			hs.ss.mixKey(out)
		}
	}
	payload, err := hs.ss.decryptAndHash(msg)
	if err != nil {
		return nil, nil, nil, err
	}
	hs.next++
	if hs.next == len(hs.messages) {
		c1, c2 := hs.ss.split()
		return payload, c1, c2, nil
	}
	return payload, nil, nil, nil
}

// noiseSelfTest runs the generator's Noise against the published Noise test
// vectors (the "cacophony" vectors of the Noise project) for the two
// protocols of chapter 12, which have non-empty payloads, so that a mistake
// shared by both sides of the generator cannot go unseen.
func noiseSelfTest() error {
	for _, v := range cacophonyVectors {
		init, err := newNoiseHandshake(v.pattern, true, mustHex(v.prologue), mustHex(v.initStatic), mustHex(v.initRemoteStatic),
			bytes.NewReader(mustHex(v.initEphemeral)))
		if err != nil {
			return err
		}
		resp, err := newNoiseHandshake(v.pattern, false, mustHex(v.prologue), mustHex(v.respStatic), nil,
			bytes.NewReader(mustHex(v.respEphemeral)))
		if err != nil {
			return err
		}
		var ic1, ic2, rc1, rc2 *noiseCipher
		hsLen := len(noisePatterns[v.pattern].messages)
		for i, m := range v.messages {
			payload, want := mustHex(m[0]), mustHex(m[1])
			fromInit := i%2 == 0
			var got, back []byte
			switch {
			case i < hsLen && fromInit:
				got, ic1, ic2, err = init.writeMessage(payload)
				if err == nil {
					back, rc1, rc2, err = resp.readMessage(got)
				}
			case i < hsLen:
				got, rc1, rc2, err = resp.writeMessage(payload)
				if err == nil {
					back, ic1, ic2, err = init.readMessage(got)
				}
			case fromInit:
				got, err = ic1.encryptWithAd(nil, payload)
				if err == nil {
					back, err = rc1.decryptWithAd(nil, got)
				}
			default:
				got, err = rc2.encryptWithAd(nil, payload)
				if err == nil {
					back, err = ic2.decryptWithAd(nil, got)
				}
			}
			if err != nil {
				return fmt.Errorf("noise %s message %d: %v", v.pattern, i, err)
			}
			if !bytes.Equal(got, want) || !bytes.Equal(back, payload) {
				return fmt.Errorf("noise %s message %d: got %x, want %x", v.pattern, i, got, want)
			}
		}
		if !bytes.Equal(init.ss.h, mustHex(v.handshakeHash)) || !bytes.Equal(resp.ss.h, init.ss.h) {
			return fmt.Errorf("noise %s: handshake hash %x, want %x", v.pattern, init.ss.h, v.handshakeHash)
		}
	}
	return nil
}

// cacophonyVectors are the entries for Noise_XX_25519_ChaChaPoly_SHA256 and
// Noise_IK_25519_ChaChaPoly_SHA256 of the Noise project's cacophony test
// vectors (as distributed with the snow library, tests/vectors/cacophony.txt).
var cacophonyVectors = []struct {
	pattern, prologue                           string
	initStatic, initEphemeral, initRemoteStatic string
	respStatic, respEphemeral, handshakeHash    string
	messages                                    [][2]string // payload, ciphertext
}{
	{
		pattern: "XX", prologue: "4a6f686e2047616c74",
		initStatic:    "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
		initEphemeral: "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
		respStatic:    "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
		respEphemeral: "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
		handshakeHash: "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e",
		messages: [][2]string{
			{"4c756477696720766f6e204d69736573", "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573"},
			{"4d757272617920526f746862617264", "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad"},
			{"462e20412e20486179656b", "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030"},
			{"4361726c204d656e676572", "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df"},
			{"4a65616e2d426170746973746520536179", "3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"},
			{"457567656e2042f6686d20766f6e2042617765726b", "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"},
		},
	},
	{
		pattern: "IK", prologue: "4a6f686e2047616c74",
		initStatic:       "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
		initEphemeral:    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
		initRemoteStatic: "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62",
		respStatic:       "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
		respEphemeral:    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
		handshakeHash:    "0b0f68fb0c27e03ce9b97565995ed4838cc0581b762ef72b062f6a546419fad7",
		messages: [][2]string{
			{"4c756477696720766f6e204d69736573", "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944718da798efbcd91528520204f904b9bd6c7413dccdc214d951e15253e39987f18146e8cd0873654207148333479d4d16c289f0294b29960a72f48e0b7bba2e89083169825e59642148d492020664ccf7"},
			{"4d757272617920526f746862617264", "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f1448088435361e70b2ed446e6c9ec387d1d6b3b840f194e373979d241b203c4acafccf5"},
			{"462e20412e20486179656b", "050e9f3c8fac16b68dbce8f8c4bfbf6617c897f9ada4aa29aa19c8"},
			{"4361726c204d656e676572", "344233a6cabb7141d80f3da2fedc311d9646bbb0f505afe403a667"},
			{"4a65616e2d426170746973746520536179", "62cdeeb172ad7ade7aa7d9e069da5790f12331bfa00177787a1d0810c67dc3b2b4"},
			{"457567656e2042f6686d20766f6e2042617765726b", "029bead1b40992327044d409d9a1f3ad8f36c3c452775d557e18bbeb2e8dfcead32d514024"},
		},
	},
}
