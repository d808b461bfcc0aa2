package gen

import (
	"bytes"
	"errors"
	"io"
	"slices"
)

// This file implements the Double Ratchet of chapter 5.

const ratVersion = 1

// skippedKey is one entry of MKSKIPPED.
type skippedKey struct {
	dh []byte // Enc of the ratchet public key
	n  uint32
	mk []byte
}

// session is the state of section 5.2.
type session struct {
	dhsPriv, dhsPub []byte
	dhr             []byte // the peer's ratchet public key body, or nil
	rk              []byte
	cks, ckr        []byte // nil when none
	ns, nr, pn      uint32
	skipped         []skippedKey // insertion order, oldest first
	ad              []byte
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (s *session) clone() *session {
	c := *s
	c.dhsPriv, c.dhsPub = cloneBytes(s.dhsPriv), cloneBytes(s.dhsPub)
	c.dhr, c.rk = cloneBytes(s.dhr), cloneBytes(s.rk)
	c.cks, c.ckr = cloneBytes(s.cks), cloneBytes(s.ckr)
	c.ad = cloneBytes(s.ad)
	c.skipped = make([]skippedKey, len(s.skipped))
	for i, k := range s.skipped {
		c.skipped[i] = skippedKey{cloneBytes(k.dh), k.n, cloneBytes(k.mk)}
	}
	return &c
}

// newAlice initializes the initiator (section 5.4).
func newAlice(sk, ad, ratchetPriv, bobRatchetPub []byte) (*session, error) {
	pub, err := x25519Public(ratchetPriv)
	if err != nil {
		return nil, err
	}
	dh, err := x25519(ratchetPriv, bobRatchetPub)
	if err != nil {
		return nil, err
	}
	rk, cks, err := kdfRK(sk, dh)
	if err != nil {
		return nil, err
	}
	return &session{dhsPriv: cloneBytes(ratchetPriv), dhsPub: pub, dhr: cloneBytes(bobRatchetPub),
		rk: rk, cks: cks, ad: cloneBytes(ad)}, nil
}

// newBob initializes the responder (section 5.4).
func newBob(sk, ad, spkPriv []byte) (*session, error) {
	pub, err := x25519Public(spkPriv)
	if err != nil {
		return nil, err
	}
	return &session{dhsPriv: cloneBytes(spkPriv), dhsPub: pub, rk: cloneBytes(sk), ad: cloneBytes(ad)}, nil
}

// ratchetHeader returns the encoding of a ratchet header.
func ratchetHeader(dhPub []byte, pn, n uint32) []byte {
	return encodeCBOR(cMap{{1, cBytes(encX25519(dhPub))}, {2, cUint(pn)}, {3, cUint(n)}})
}

// ratchetMessage returns the encoding of a ratchet message.
func ratchetMessage(version uint64, header, ct []byte) []byte {
	return encodeCBOR(cMap{{1, cUint(version)}, {2, cBytes(header)}, {3, cBytes(ct)}})
}

// encrypt is RatchetEncrypt of section 5.7.
func (s *session) encrypt(pt []byte) ([]byte, error) {
	if len(pt) > maxPlaintext {
		return nil, errTooLarge
	}
	if s.cks == nil {
		return nil, errNoSendingChain
	}
	if s.ns == maxUint32 {
		return nil, errChainExhausted
	}
	cks, mk := kdfCK(s.cks)
	header := ratchetHeader(s.dhsPub, s.pn, s.ns)
	ct, err := sealWith(mk, pad(pt), s.ad, header)
	if err != nil {
		return nil, err
	}
	s.cks = cks
	s.ns++
	return ratchetMessage(ratVersion, header, ct), nil
}

// sealWith encrypts an already padded plaintext under message key mk.
func sealWith(mk, padded, ad, header []byte) ([]byte, error) {
	key, nonce, err := msgKeys(mk)
	if err != nil {
		return nil, err
	}
	return aeadSeal(key, nonce, padded, append(cloneBytes(ad), header...))
}

// Schemas of section 5.6.
var (
	ratchetMessageSchema = schema{
		{key: 1, kind: kindUint, required: true, max: ^uint64(0)},
		{key: 2, kind: kindBytes, required: true, maxLen: int(^uint(0) >> 1)},
		{key: 3, kind: kindBytes, required: true, minLen: 16, maxLen: maxCiphertext},
	}
	ratchetHeaderSchema = schema{
		{key: 1, kind: kindBytes, required: true, minLen: lenX25519Public, maxLen: lenX25519Public},
		{key: 2, kind: kindUint, required: true, max: maxUint32},
		{key: 3, kind: kindUint, required: true, max: maxUint32},
	}
)

// parsedMessage is a decoded ratchet message.
type parsedMessage struct {
	header []byte // the exact bytes of field 2
	dh     []byte // the header key body
	pn, n  uint32
	ct     []byte
}

// parseRatchetMessage runs the decoding steps of section 5.8 (and 5.9).
func parseRatchetMessage(msg []byte) (*parsedMessage, error) {
	it, err := decodeCBOR(msg)
	if err != nil {
		return nil, err
	}
	return parseRatchetItem(it)
}

func parseRatchetItem(it *item) (*parsedMessage, error) {
	if err := checkVersion(it, ratVersion); err != nil {
		return nil, err
	}
	if err := checkSchema(it, ratchetMessageSchema); err != nil {
		return nil, err
	}
	pm := &parsedMessage{header: it.get(2).bstr, ct: it.get(3).bstr}
	h, err := decodeCBOR(pm.header)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(h, ratchetHeaderSchema); err != nil {
		return nil, err
	}
	pm.dh, err = decodeX25519(h.get(1).bstr)
	if err != nil {
		return nil, err
	}
	pm.pn, pm.n = uint32(h.get(2).val), uint32(h.get(3).val)
	return pm, nil
}

// decrypt is RatchetDecrypt of section 5.8. It works on a copy of the state
// and commits only on success. rnd supplies the new ratchet key of a DH
// ratchet step.
func (s *session) decrypt(msg []byte, rnd io.Reader) ([]byte, error) {
	pm, err := parseRatchetMessage(msg)
	if err != nil {
		return nil, err
	}
	return s.decryptParsed(pm, rnd)
}

func (s *session) decryptParsed(pm *parsedMessage, rnd io.Reader) ([]byte, error) {
	c := s.clone()
	pt, err := c.decryptTx(pm, rnd)
	if err != nil {
		return nil, err
	}
	*s = *c
	return pt, nil
}

func (c *session) decryptTx(pm *parsedMessage, rnd io.Reader) ([]byte, error) {
	if pm.n == maxUint32 {
		return nil, errChainExhausted // RAT-016, before anything else
	}
	encDH := encX25519(pm.dh)
	for i, k := range c.skipped {
		if k.n == pm.n && bytes.Equal(k.dh, encDH) {
			pt, err := c.open(k.mk, pm)
			if err != nil {
				return nil, err
			}
			c.skipped = append(c.skipped[:i:i], c.skipped[i+1:]...)
			return pt, nil
		}
	}
	if c.dhr == nil || !bytes.Equal(pm.dh, c.dhr) {
		if err := c.skipMessageKeys(pm.pn); err != nil {
			return nil, err
		}
		if err := c.dhRatchet(pm.dh, rnd); err != nil {
			return nil, err
		}
	} else if pm.n < c.nr {
		return nil, errDuplicateMessage
	} else if c.ckr == nil {
		return nil, errDecryptFailed // RAT-015: the initiator's DHr before any reply
	}
	if err := c.skipMessageKeys(pm.n); err != nil {
		return nil, err
	}
	ckr, mk := kdfCK(c.ckr)
	c.ckr = ckr
	c.nr++
	return c.open(mk, pm)
}

func (c *session) open(mk []byte, pm *parsedMessage) ([]byte, error) {
	key, nonce, err := msgKeys(mk)
	if err != nil {
		return nil, err
	}
	padded, err := aeadOpen(key, nonce, pm.ct, append(cloneBytes(c.ad), pm.header...))
	if err != nil {
		return nil, err
	}
	return unpad(padded)
}

func (c *session) skipMessageKeys(until uint32) error {
	if c.ckr == nil {
		return nil
	}
	if uint64(until) > uint64(c.nr)+maxSkip {
		return errTooManySkipped
	}
	for c.nr < until {
		ckr, mk := kdfCK(c.ckr)
		c.ckr = ckr
		// A pair already stored (a reused ratchet key) is replaced and
		// becomes the newest.
		dh := encX25519(c.dhr)
		c.skipped = slices.DeleteFunc(c.skipped, func(k skippedKey) bool { return k.n == c.nr && bytes.Equal(k.dh, dh) })
		c.skipped = append(c.skipped, skippedKey{dh, c.nr, mk})
		if len(c.skipped) > maxStored {
			c.skipped = c.skipped[1:]
		}
		c.nr++
	}
	return nil
}

func (c *session) dhRatchet(dh []byte, rnd io.Reader) error {
	c.pn = c.ns
	c.ns, c.nr = 0, 0
	c.dhr = cloneBytes(dh)
	out, err := x25519(c.dhsPriv, c.dhr)
	if err != nil {
		return err
	}
	c.rk, c.ckr, err = kdfRK(c.rk, out)
	if err != nil {
		return err
	}
	priv := make([]byte, 32)
	if _, err := io.ReadFull(rnd, priv); err != nil {
		return errors.New("ratchet: no randomness for the new ratchet key")
	}
	pub, err := x25519Public(priv)
	if err != nil {
		return err
	}
	c.dhsPriv, c.dhsPub = priv, pub
	out, err = x25519(c.dhsPriv, c.dhr)
	if err != nil {
		return err
	}
	c.rk, c.cks, err = kdfRK(c.rk, out)
	return err
}

// encryptPadded is RatchetEncrypt with a caller-chosen padded plaintext, for
// negative cases whose padding is invalid.
func (s *session) encryptPadded(padded []byte) ([]byte, error) {
	if s.cks == nil {
		return nil, errNoSendingChain
	}
	cks, mk := kdfCK(s.cks)
	header := ratchetHeader(s.dhsPub, s.pn, s.ns)
	ct, err := sealWith(mk, padded, s.ad, header)
	if err != nil {
		return nil, err
	}
	s.cks = cks
	s.ns++
	return ratchetMessage(ratVersion, header, ct), nil
}
