package gen

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// accumulatedCase is the single case of ratchet_accumulated.json.
type accumulatedCase struct {
	caseHead
	Sessions int      `json:"sessions"`
	Rounds   int      `json:"rounds"`
	Seed     string   `json:"seed"`
	Digest   hexBytes `json:"digest"`
	Expect   string   `json:"expect"`
}

// Parameters of the accumulated vector.
const (
	accumulatedSessions = 64
	accumulatedRounds   = 10
	accumulatedSeed     = "Missive v1 accumulated ratchet"
)

var accumulatedNotes = notes{
	{"accumulated", "the case is a procedure run over many generated sessions; only the digest of all messages and plaintexts is recorded"},
}

// accumulatedDigest runs the procedure of section 9.2.
func accumulatedDigest(sessions, rounds int, seed string) ([]byte, error) {
	r := newStream(seed)
	t := sha256.New()
	u8 := func() int { return int(r.read(1)[0]) }
	for s := 0; s < sessions; s++ {
		sk, ad := r.read(32), r.read(66)
		aliceRatchet, bobRatchet := r.read(32), r.read(32)
		alice, bob, err := initRatchet(sk, ad, aliceRatchet, bobRatchet)
		if err != nil {
			return nil, err
		}
		for round := 0; round < rounds; round++ {
			sender, receiver := alice, bob
			if round%2 == 1 {
				sender, receiver = bob, alice
			}
			k := 1 + u8()%4
			type sentMsg struct{ msg, pt []byte }
			var sent []sentMsg
			for j := 0; j < k; j++ {
				n := u8()
				n += 256 * (u8() % 4)
				pt := r.read(n)
				msg, err := sender.encrypt(pt)
				if err != nil {
					return nil, fmt.Errorf("session %d round %d: encrypt: %v", s, round, err)
				}
				t.Write(msg)
				sent = append(sent, sentMsg{msg, pt})
			}
			if u8()%2 == 1 {
				for i, j := 0, len(sent)-1; i < j; i, j = i+1, j-1 {
					sent[i], sent[j] = sent[j], sent[i]
				}
			}
			for _, m := range sent {
				out, err := receiver.decrypt(m.msg, r)
				if err != nil {
					return nil, fmt.Errorf("session %d round %d: decrypt: %v", s, round, err)
				}
				if !bytes.Equal(out, m.pt) {
					return nil, fmt.Errorf("session %d round %d: wrong plaintext", s, round)
				}
				t.Write(out)
			}
		}
	}
	return t.Sum(nil), nil
}

func genAccumulated() (any, error) {
	d, err := accumulatedDigest(accumulatedSessions, accumulatedRounds, accumulatedSeed)
	if err != nil {
		return nil, err
	}
	c := accumulatedCase{
		caseHead: caseHead{ID: "ratchet_accumulated_64x10", Comment: "64 sessions of 10 rounds (section 9.2): " +
			"messages of 0 to 1023 bytes, 1 to 4 per round, delivered in order or reversed.",
			Flags: []string{"accumulated"}, Requirements: []string{"RAT-001", "RAT-003", "RAT-004", "RAT-007",
				"RAT-009", "PRIM-005", "CBOR-001"}},
		Sessions: accumulatedSessions, Rounds: accumulatedRounds, Seed: accumulatedSeed, Digest: d, Expect: "valid",
	}
	if err := checkHeads("ratchet_accumulated", accumulatedNotes, []caseHead{c.caseHead}); err != nil {
		return nil, err
	}
	return newFile("ratchet_accumulated", "Many Double Ratchet sessions driven by a SHAKE-128 stream of seed, "+
		"condensed into one SHA-256 digest of every ratchet message and every decrypted plaintext (section 9.2).",
		accumulatedNotes, []accumulatedCase{c}), nil
}
