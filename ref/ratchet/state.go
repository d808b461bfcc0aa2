package ratchet

import (
	"fmt"

	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// MarshalBinary returns the stored form of the state: the informative
// session-state structure of spec/06-session-state.md, in canonical CBOR.
// Equal states give equal bytes.
func (s *State) MarshalBinary() ([]byte, error) {
	w := &wire.SessionState{
		Version: 1,
		DHs:     s.dhs.Encode(),
		DHr:     optional(s.dhrEnc),
		RK:      s.rk[:],
		Ns:      uint64(s.ns),
		Nr:      uint64(s.nr),
		PN:      uint64(s.pn),
		AD:      s.ad,
		Skipped: make([]wire.SkippedKey, 0, s.skipped.len()),
	}
	if s.cks != nil {
		w.CKs = wire.Ptr(s.cks[:])
	}
	if s.ckr != nil {
		w.CKr = wire.Ptr(s.ckr[:])
	}
	for _, id := range s.skipped.live() {
		mk := s.skipped.keys[id].mk
		enc := append([]byte{keys.TypeX25519Public}, id.dh[:]...)
		w.Skipped = append(w.Skipped, wire.SkippedKey{RatchetKey: enc, N: uint64(id.n), MK: mk[:]})
	}
	return wire.Marshal(w)
}

// UnmarshalBinary restores a state stored by MarshalBinary.
func (s *State) UnmarshalBinary(data []byte) error {
	var w wire.SessionState
	if err := wire.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("ratchet: state: %w", err)
	}
	dhs, err := keys.DecodePrivateKey(w.DHs)
	if err != nil {
		return fmt.Errorf("ratchet: state DHs: %w", err)
	}
	n := State{ad: w.AD}
	n.dhs, n.dhsEnc = dhs, dhs.Public().Encode()
	if w.DHr != nil {
		if n.dhr, err = keys.DecodePublicKey(*w.DHr); err != nil {
			return fmt.Errorf("ratchet: state DHr: %w", err)
		}
		n.dhrEnc = *w.DHr
	}
	n.rk = key32(w.RK)
	if w.CKs != nil {
		ck := key32(*w.CKs)
		n.cks = &ck
	}
	if w.CKr != nil {
		ck := key32(*w.CKr)
		n.ckr = &ck
	}
	n.ns, n.nr, n.pn = uint32(w.Ns), uint32(w.Nr), uint32(w.PN)
	entries := make([]skippedEntry, 0, len(w.Skipped))
	for _, k := range w.Skipped {
		if _, err := keys.DecodePublicKey(k.RatchetKey); err != nil {
			return fmt.Errorf("ratchet: state skipped key: %w", err)
		}
		entries = append(entries, skippedEntry{skipID{key32(k.RatchetKey[1:]), uint32(k.N)}, key32(k.MK)})
	}
	n.skipped.add(entries)
	*s = n
	return nil
}

// optional returns nil for a nil slice and a pointer to it otherwise.
func optional(b []byte) *[]byte {
	if b == nil {
		return nil
	}
	return &b
}
