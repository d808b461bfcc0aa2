package gen

import (
	"bytes"
	"fmt"
)

func reqs(base []string, more ...string) []string {
	return append(append([]string{}, base...), more...)
}

var ratchetCaseFuncs = []func(basic []string) (ratchetCase, error){
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_in_order", "Several messages each way, each decrypted in order.", nil, basic)
		for round := 0; round < 3; round++ {
			from, to := "alice", "bob"
			if round%2 == 1 {
				from, to = "bob", "alice"
			}
			for i := 0; i < 3; i++ {
				pt := b.pt(10 + 7*i)
				b.ok(to, b.encrypt(from, pt), pt)
			}
		}
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_out_of_order_in_chain", "Alice sends four messages; Bob decrypts them in the "+
			"order 2, 0, 3, 1, using stored skipped keys; then Bob answers.", []string{"out_of_order", "skipped_keys"},
			reqs(basic, "SES-004"))
		pts, msgs := b.sendN("alice", 4, func(i int) int { return 20 * i })
		for _, i := range []int{2, 0, 3, 1} {
			b.ok("bob", msgs[i], pts[i])
		}
		pt := b.pt(5)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_ping_pong", "Eight messages, alternating direction: every decryption performs a "+
			"DH ratchet step.", []string{"dh_ratchet"}, basic)
		for i := 0; i < 8; i++ {
			from, to := "alice", "bob"
			if i%2 == 1 {
				from, to = "bob", "alice"
			}
			pt := b.pt(i * 3)
			b.ok(to, b.encrypt(from, pt), pt)
		}
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_out_of_order_across_dh_step", "Alice sends a0, a1, a2; Bob receives a0 and "+
			"answers; Alice ratchets and sends a3 with PN = 3. Bob receives a3 first, which stores the keys of a1 and a2 "+
			"under Alice's previous ratchet key (PN skipping), then a2 and a1.",
			[]string{"out_of_order", "skipped_keys", "dh_ratchet"}, basic)
		pts, msgs := b.sendN("alice", 3, func(int) int { return 16 })
		b.ok("bob", msgs[0], pts[0])
		pt := b.pt(16)
		b.ok("alice", b.encrypt("bob", pt), pt)
		pt3 := b.pt(16)
		m3 := b.encrypt("alice", pt3)
		b.ok("bob", m3, pt3)
		b.ok("bob", msgs[2], pts[2])
		b.ok("bob", msgs[1], pts[1])
		pt = b.pt(16)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_padding_boundaries", "Plaintexts of 0, 1, 30, 31, 32, 35, 36, 100, 1000 and 1024 "+
			"bytes: padded to 32, 32, 32, 32, 36, 36, 40, 104, 1024 and 1056 bytes.", []string{"padding_lengths"},
			reqs(basic, "RAT-005"))
		for _, n := range []int{0, 1, 30, 31, 32, 35, 36, 100, 1000, 1024} {
			pt := b.pt(n)
			b.ok("bob", b.encrypt("alice", pt), pt)
		}
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_max_plaintext", "A plaintext of exactly MAX_PLAINTEXT (65536) bytes: its "+
			"ciphertext has exactly MAX_CIPHERTEXT (67600) bytes.", []string{"limit"}, reqs(basic, "RAT-006"))
		pt := b.pt(maxPlaintext)
		b.ok("bob", b.encrypt("alice", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_plaintext_too_large", "Alice refuses a plaintext of MAX_PLAINTEXT + 1 bytes; "+
			"her next message is still her first.", []string{"limit", "sender_failure", "state_unchanged"},
			[]string{"RAT-006", "RAT-009"})
		b.encryptFail("alice", b.pt(maxPlaintext+1), errTooLarge)
		pt := b.pt(8)
		b.ok("bob", b.encrypt("alice", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_responder_cannot_send_first", "Bob has no sending chain before he receives "+
			"Alice's first message.", []string{"sender_failure", "state_unchanged"}, reqs(basic))
		b.encryptFail("bob", b.pt(8), errNoSendingChain)
		pt := b.pt(8)
		b.ok("bob", b.encrypt("alice", pt), pt)
		pt = b.pt(8)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_max_skip", "Alice's message N = 1000 (made after 1000 unlisted messages) is "+
			"Bob's first: he skips exactly MAX_SKIP keys. Then the skipped messages N = 0 and N = 999.",
			[]string{"injected", "limit", "skipped_keys", "out_of_order"}, reqs(basic, "RAT-011"))
		a := b.peek("alice")
		var msgs, pts [][]byte
		for i := 0; i <= 1000; i++ {
			pt := b.pt(4)
			pts, msgs = append(pts, pt), append(msgs, b.offEncrypt(a, pt))
		}
		b.ok("bob", msgs[1000], pts[1000])
		b.ok("bob", msgs[0], pts[0])
		b.ok("bob", msgs[999], pts[999])
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_too_many_skipped", "Alice's message N = 1001 as Bob's first message would skip "+
			"MAX_SKIP + 1 keys: rejected after the DH ratchet step (which draws its key), and the state is unchanged: "+
			"the message N = 1000 is then accepted.", []string{"injected", "limit", "skipped_keys", "state_unchanged"},
			[]string{"RAT-009", "RAT-010", "RAT-011"})
		a := b.peek("alice")
		var msgs, pts [][]byte
		for i := 0; i <= 1001; i++ {
			pt := b.pt(4)
			pts, msgs = append(pts, pt), append(msgs, b.offEncrypt(a, pt))
		}
		b.decrypt("bob", msgs[1001], nil, errTooManySkipped)
		b.ok("bob", msgs[1000], pts[1000])
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_max_skip_two_chains", "One message skips MAX_SKIP keys in Alice's previous "+
			"chain (PN = 1001, Bob had received N = 0) and MAX_SKIP keys in her new chain (N = 1000): 2000 keys are "+
			"stored, exactly MAX_STORED_SKIPPED, and the oldest of them (previous chain, N = 1) is still usable.",
			[]string{"injected", "limit", "skipped_keys", "out_of_order"}, reqs(basic, "RAT-011", "RAT-012"))
		pt0 := b.pt(4)
		m0 := b.encrypt("alice", pt0)
		b.ok("bob", m0, pt0)
		ptb := b.pt(4)
		mb := b.encrypt("bob", ptb)
		a := b.peek("alice")
		var old, oldPT [][]byte
		old, oldPT = append(old, m0), append(oldPT, pt0)
		for i := 1; i <= 1000; i++ {
			pt := b.pt(4)
			oldPT, old = append(oldPT, pt), append(old, b.offEncrypt(a, pt))
		}
		b.offDecrypt(a, mb)
		var nw, nwPT [][]byte
		for i := 0; i <= 1000; i++ {
			pt := b.pt(4)
			nwPT, nw = append(nwPT, pt), append(nw, b.offEncrypt(a, pt))
		}
		b.ok("bob", nw[1000], nwPT[1000])
		b.ok("bob", old[1], oldPT[1])
		b.ok("bob", nw[0], nwPT[0])
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_too_many_skipped_previous_chain", "Like ratchet_max_skip_two_chains, but Alice "+
			"sent 1002 messages in her previous chain: PN = 1002 would make Bob skip MAX_SKIP + 1 keys of that chain, "+
			"rejected before the DH ratchet step; then that chain's message N = 1001 (1000 skipped keys) is accepted.",
			[]string{"injected", "limit", "skipped_keys", "state_unchanged"}, []string{"RAT-009", "RAT-010", "RAT-011"})
		pt0 := b.pt(4)
		b.ok("bob", b.encrypt("alice", pt0), pt0)
		ptb := b.pt(4)
		mb := b.encrypt("bob", ptb)
		a := b.peek("alice")
		var old, oldPT [][]byte
		for i := 1; i <= 1001; i++ {
			pt := b.pt(4)
			oldPT, old = append(oldPT, pt), append(old, b.offEncrypt(a, pt))
		}
		b.offDecrypt(a, mb)
		b.decrypt("bob", b.offEncrypt(a, b.pt(4)), nil, errTooManySkipped)
		b.ok("bob", old[1000], oldPT[1000])
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_skipped_key_eviction", "Bob receives Alice's messages N = 1000, 2000 and 3000 of "+
			"one chain (made after unlisted messages), which store 1000 + 999 + 999 skipped keys: the 998 oldest "+
			"(N = 0 .. 997) are evicted to keep MAX_STORED_SKIPPED. N = 997 then fails like a replay; N = 998 is "+
			"the oldest key kept.", []string{"injected", "limit", "skipped_keys", "out_of_order"},
			[]string{"RAT-009", "RAT-012", "SES-004"})
		a := b.peek("alice")
		var msgs, pts [][]byte
		for i := 0; i <= 3000; i++ {
			pt := b.pt(2)
			pts, msgs = append(pts, pt), append(msgs, b.offEncrypt(a, pt))
		}
		for _, i := range []int{1000, 2000, 3000} {
			b.ok("bob", msgs[i], pts[i])
		}
		b.decrypt("bob", msgs[997], nil, errDuplicateMessage)
		b.ok("bob", msgs[998], pts[998])
		b.ok("bob", msgs[2999], pts[2999])
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_replay_current_chain", "Bob decrypts a0 and a1, then a0 again: its key is used "+
			"and its ratchet key is the current one.", []string{"replay", "state_unchanged"},
			[]string{"RAT-009", "RAT-010", "RAT-013"})
		pt0, pt1 := b.pt(12), b.pt(12)
		m0, m1 := b.encrypt("alice", pt0), b.encrypt("alice", pt1)
		b.ok("bob", m0, pt0)
		b.ok("bob", m1, pt1)
		b.decrypt("bob", m0, nil, errDuplicateMessage)
		pt2 := b.pt(12)
		b.ok("bob", b.encrypt("alice", pt2), pt2)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_replay_skipped_message", "Bob decrypts a1 (storing the key of a0), then a0 with "+
			"the stored key, which deletes it, then a0 again.", []string{"replay", "skipped_keys", "out_of_order"},
			[]string{"RAT-002", "RAT-009", "RAT-013"})
		pt0, pt1 := b.pt(12), b.pt(12)
		m0, m1 := b.encrypt("alice", pt0), b.encrypt("alice", pt1)
		b.ok("bob", m1, pt1)
		b.ok("bob", m0, pt0)
		b.decrypt("bob", m0, nil, errDuplicateMessage)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_replay_previous_chain", "After a full round trip, Bob receives Alice's first "+
			"message again. Its ratchet key is no longer the current one and no key of it is stored, so it triggers a "+
			"DH ratchet step (drawing a key) that derives other keys: auth.decrypt_failed, as section 5.8 notes. The "+
			"state is unchanged: Bob's next message decrypts.", []string{"replay", "dh_ratchet", "state_unchanged"},
			[]string{"RAT-009", "RAT-010", "RAT-013", "PRIM-004"})
		pt0 := b.pt(12)
		m0 := b.encrypt("alice", pt0)
		b.ok("bob", m0, pt0)
		pt := b.pt(12)
		b.ok("alice", b.encrypt("bob", pt), pt)
		pt = b.pt(12)
		b.ok("bob", b.encrypt("alice", pt), pt)
		b.decrypt("bob", m0, nil, errDecryptFailed)
		pt = b.pt(12)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_tampered_skipped_message", "Bob decrypts a1, storing the key of a0; a0 then "+
			"arrives with a ciphertext byte flipped and fails with the stored key, which stays stored: the real a0 "+
			"then decrypts.", []string{"tampered", "injected", "skipped_keys", "out_of_order", "state_unchanged"},
			[]string{"RAT-002", "RAT-009", "RAT-010", "PRIM-004"})
		pt0, pt1 := b.pt(12), b.pt(12)
		m0, m1 := b.encrypt("alice", pt0), b.encrypt("alice", pt1)
		b.ok("bob", m1, pt1)
		pm, err := parseRatchetMessage(m0)
		if err != nil {
			return ratchetCase{}, err
		}
		b.decrypt("bob", ratchetMessage(1, pm.header, flipBit(pm.ct, 3, 0x10)), nil, errDecryptFailed)
		b.ok("bob", m0, pt0)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_tampered_header_n", "Alice's a1 with N changed from 1 to 2 in the header: Bob "+
			"would skip the key of a1 and use another; the header is authenticated anyway. Then the real a1 decrypts.",
			[]string{"tampered", "injected", "state_unchanged"}, []string{"RAT-007", "RAT-009", "RAT-010", "PRIM-004"})
		pt0, pt1 := b.pt(12), b.pt(12)
		m0, m1 := b.encrypt("alice", pt0), b.encrypt("alice", pt1)
		b.ok("bob", m0, pt0)
		pm, err := parseRatchetMessage(m1)
		if err != nil {
			return ratchetCase{}, err
		}
		bad, err := editMessage(m1, msgEdit{header: ratchetHeader(pm.dh, pm.pn, pm.n+1)})
		if err != nil {
			return ratchetCase{}, err
		}
		b.decrypt("bob", bad, nil, errDecryptFailed)
		b.ok("bob", m1, pt1)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_tampered_header_pn", "Alice's first message with PN changed from 0 to 5: for a "+
			"first message PN skips nothing and the message key is the same, so only the authentication of the header "+
			"bytes (AD || header) detects it.", []string{"tampered", "injected", "state_unchanged"},
			[]string{"RAT-007", "RAT-009", "RAT-010", "PRIM-004"})
		pt0 := b.pt(12)
		m0 := b.encrypt("alice", pt0)
		pm, err := parseRatchetMessage(m0)
		if err != nil {
			return ratchetCase{}, err
		}
		bad, err := editMessage(m0, msgEdit{header: ratchetHeader(pm.dh, 5, pm.n)})
		if err != nil {
			return ratchetCase{}, err
		}
		b.decrypt("bob", bad, nil, errDecryptFailed)
		b.ok("bob", m0, pt0)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		return tamperCase("ratchet_tampered_ciphertext", "Alice's first message with the first ciphertext byte flipped.",
			func(ct []byte) []byte { return flipBit(ct, 0, 0x01) })
	},
	func(basic []string) (ratchetCase, error) {
		return tamperCase("ratchet_tampered_tag", "Alice's first message with the last byte of the tag flipped.",
			func(ct []byte) []byte { return flipBit(ct, len(ct)-1, 0x80) })
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_wrong_associated_data", "Bob receives a message made by an Alice with the same "+
			"keys but another AD (ad with its last byte flipped), so the message was produced under a different AD "+
			"than the case's ad; then Alice's real first message.", []string{"tampered", "injected", "state_unchanged"},
			[]string{"RAT-007", "RAT-009", "RAT-010", "PRIM-004", "PQX-005"})
		otherAD := flipBit(b.c.AD, len(b.c.AD)-1, 0x01)
		bobPub, err := x25519Public(b.c.BobRatchetPrivate)
		if err != nil {
			return ratchetCase{}, err
		}
		other, err := newAlice(b.c.SK, otherAD, b.c.AliceRatchetPrivate, bobPub)
		if err != nil {
			return ratchetCase{}, err
		}
		pt0 := b.pt(12)
		b.decrypt("bob", b.offEncrypt(other, pt0), nil, errDecryptFailed)
		b.ok("bob", b.encrypt("alice", pt0), pt0)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		return paddingCase("ratchet_bad_padding_no_marker", "The padded plaintext is 32 zero bytes: no non-zero byte.",
			func(b *ratchetBuilder) []byte { return make([]byte, 32) })
	},
	func(basic []string) (ratchetCase, error) {
		return paddingCase("ratchet_bad_padding_wrong_marker", "The padded plaintext is a 5-byte message, 0x01 and 26 "+
			"zero bytes: the last non-zero byte is not 0x80.", func(b *ratchetBuilder) []byte {
			x := make([]byte, 32)
			copy(x, b.pt(5))
			x[5] = 0x01
			return x
		})
	},
	func(basic []string) (ratchetCase, error) {
		return paddingCase("ratchet_bad_padding_too_long", "The padded plaintext is a 5-byte message, 0x80 and 58 zero "+
			"bytes (64 bytes): the marker is right but pad_len(6) = 32.", func(b *ratchetBuilder) []byte {
			x := make([]byte, 64)
			copy(x, b.pt(5))
			x[5] = 0x80
			return x
		})
	},
	func(basic []string) (ratchetCase, error) {
		return paddingCase("ratchet_bad_padding_unpadded_length", "The padded plaintext is a 32-byte message and 0x80 "+
			"(33 bytes): the padding is 1 byte short, pad_len(33) = 36.", func(b *ratchetBuilder) []byte {
			return append(b.pt(32), 0x80)
		})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_unsupported_version", "Alice's first message with version 2.", nil,
			[]string{"VER-002", "RAT-009"}, errUnsupportedVersion,
			func(m []byte, pm *parsedMessage) ([]byte, error) { return ratchetMessage(2, pm.header, pm.ct), nil })
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_ciphertext_too_short", "Alice's first message with the ciphertext cut to 15 bytes.",
			[]string{"cbor"}, []string{"RAT-009", "CBOR-004"}, errTooShort,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				return ratchetMessage(1, pm.header, pm.ct[:15]), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_ciphertext_too_long", "Alice's first message with the ciphertext extended with zero "+
			"bytes to MAX_CIPHERTEXT + 1 (67601) bytes.", []string{"cbor", "limit"}, []string{"RAT-009", "CBOR-004"},
			errTooLong, func(m []byte, pm *parsedMessage) ([]byte, error) {
				ct := make([]byte, maxCiphertext+1)
				copy(ct, pm.ct)
				return ratchetMessage(1, pm.header, ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_n_out_of_range", "Alice's first message with N = 2^32 in the header.",
			[]string{"cbor"}, []string{"RAT-014", "CBOR-004"}, errValueOutOfRange,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(pm.pn)}, {3, cUint(1 << 32)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_pn_out_of_range", "Alice's first message with PN = 2^32 in the header.",
			[]string{"cbor"}, []string{"RAT-014", "CBOR-004"}, errValueOutOfRange,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(1 << 32)}, {3, cUint(pm.n)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_n_last", "Alice's first message with N = 2^32 - 1 in the header: refused "+
			"before anything else (a receiver that skipped to it instead would fail with state.too_many_skipped, "+
			"and at the end of a long chain would take it and wrap Nr round to 0).", []string{"limit"},
			[]string{"RAT-016"}, errChainExhausted,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(pm.pn)}, {3, cUint(maxUint32)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_header_n_last_current_chain", "Bob has Alice's message N = 0; a message of "+
			"the same chain (her ratchet key, the current DHr) with N = 2^32 - 1 is refused with "+
			"state.chain_exhausted, the state unchanged: her message N = 1 then decrypts.",
			[]string{"limit", "injected", "state_unchanged"}, []string{"RAT-009", "RAT-010", "RAT-016"})
		pt0, pt1 := b.pt(8), b.pt(8)
		m0 := b.encrypt("alice", pt0)
		m1 := b.encrypt("alice", pt1)
		b.ok("bob", m0, pt0)
		if b.err != nil {
			return ratchetCase{}, b.err
		}
		pm, err := parseRatchetMessage(m1)
		if err != nil {
			return ratchetCase{}, err
		}
		h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(pm.pn)}, {3, cUint(maxUint32)}})
		b.decrypt("bob", ratchetMessage(1, h, pm.ct), nil, errChainExhausted)
		b.ok("bob", m1, pt1)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_n_non_shortest", "Alice's first message with N = 0 encoded in two bytes "+
			"(0x18 0x00) in the header.", []string{"cbor"}, []string{"CBOR-004", "CBOR-005"}, errNonShortest,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(pm.pn)}, {3, cRaw{0x18, 0x00}}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_missing_n", "Alice's first message whose header has no field 3 (N).",
			[]string{"cbor"}, []string{"CBOR-004"}, errMissingField,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(encX25519(pm.dh))}, {2, cUint(pm.pn)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_message_trailing_bytes", "Alice's first message followed by one zero byte.",
			[]string{"cbor"}, []string{"CBOR-004", "CBOR-005"}, errTrailingBytes,
			func(m []byte, pm *parsedMessage) ([]byte, error) { return append(cloneBytes(m), 0x00), nil })
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_message_unknown_field", "Alice's first message with an extra field 4 (an empty byte "+
			"string).", []string{"cbor"}, []string{"CBOR-002", "CBOR-004"}, errUnknownField,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				return encodeCBOR(cMap{{1, cUint(1)}, {2, cBytes(pm.header)}, {3, cBytes(pm.ct)}, {4, cBytes{}}}), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_message_unsorted_map", "Alice's first message with fields 2 and 3 in the order 3, 2.",
			[]string{"cbor"}, []string{"CBOR-001", "CBOR-004", "CBOR-005"}, errUnsortedMap,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				out := appendHead(nil, 5, 3)
				out = cUint(1).appendCBOR(out)
				out = cUint(1).appendCBOR(out)
				out = cUint(3).appendCBOR(out)
				out = cBytes(pm.ct).appendCBOR(out)
				out = cUint(2).appendCBOR(out)
				return cBytes(pm.header).appendCBOR(out), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_key_wrong_type", "Alice's first message whose header key has the ML-KEM type "+
			"byte 0x0A (33 bytes).", []string{"header_key"}, []string{"CONV-003", "RAT-009"}, errKeyType,
			func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(append([]byte{typeMLKEMPublic}, pm.dh...))}, {2, cUint(pm.pn)}, {3, cUint(pm.n)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		return editCase("ratchet_header_key_noncanonical", "Alice's first message whose header key has the high bit "+
			"of u set (u + 2^255).", []string{"header_key"}, []string{"CONV-003", "CONV-004", "RAT-009"},
			errKeyNoncanonical, func(m []byte, pm *parsedMessage) ([]byte, error) {
				h := encodeCBOR(cMap{{1, cBytes(highBitKey(pm.dh))}, {2, cUint(pm.pn)}, {3, cUint(pm.n)}})
				return ratchetMessage(1, h, pm.ct), nil
			})
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_low_order_ratchet_key", "After Alice's first message, Bob receives a message "+
			"whose header carries a ratchet key of order 8 (PN = 1, N = 0, an arbitrary 48-byte ciphertext): the first "+
			"X25519 of the DH ratchet step is all zero, before any key is drawn. Then Alice's second message decrypts.",
			[]string{"low_order", "injected", "state_unchanged"}, []string{"PRIM-001", "PRIM-002", "RAT-009", "RAT-010"})
		pt0, pt1 := b.pt(12), b.pt(12)
		m0, m1 := b.encrypt("alice", pt0), b.encrypt("alice", pt1)
		b.ok("bob", m0, pt0)
		bad := ratchetMessage(1, ratchetHeader(lowOrderPoints[2], 1, 0), b.pt(48))
		b.decrypt("bob", bad, nil, errLowOrderKey)
		b.ok("bob", m1, pt1)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_reused_ratchet_key", "Alice sends x0, x1, x2 under her ratchet key X; Bob "+
			"receives x2, storing the keys of x0 and x1 under X. After a round trip (Alice's key Z), Alice's next DH "+
			"ratchet step draws X's private key again (a broken random source, or a peer doing it on purpose): "+
			"she sends a0, a1, a2 under X, and Bob, receiving a2, stores (X, 0) and (X, 1) again. Each replaces "+
			"the stored key and counts as the newest (section 5.8): Bob holds two skipped keys, a0 and a1 "+
			"decrypt, and x0 then fails as a replay.",
			[]string{"skipped_keys", "dh_ratchet", "out_of_order"}, reqs(basic, "RAT-012", "SES-004"))
		x := cloneBytes(b.party("alice").dhsPriv)
		xpts, xs := b.sendN("alice", 3, func(int) int { return 8 })
		b.ok("bob", xs[2], xpts[2])
		pt := b.pt(8)
		b.ok("alice", b.encrypt("bob", pt), pt)
		pt = b.pt(8)
		b.ok("bob", b.encrypt("alice", pt), pt)
		pt = b.pt(8)
		b.decryptWith("alice", b.encrypt("bob", pt), pt, nil, bytes.NewReader(x))
		apts, as := b.sendN("alice", 3, func(int) int { return 8 })
		b.ok("bob", as[2], apts[2])
		if n := len(b.party("bob").skipped); n != 2 {
			b.fail("bob holds %d skipped keys, want 2", n)
		}
		b.ok("bob", as[0], apts[0])
		b.ok("bob", as[1], apts[1])
		b.decrypt("bob", xs[0], nil, errDuplicateMessage)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_initiator_dhr_before_reply", "Before she hears back, Alice receives a "+
			"message whose header key is her DHr, Bob's signed prekey (PN = 0, N = 0), sealed under the message key "+
			"that KDF_CK gives for an empty chain key: she has no receiving chain, so it fails with "+
			"auth.decrypt_failed (an implementation that took the absent chain key for empty bytes would "+
			"accept this forgery), and her state is unchanged: Bob's real reply then decrypts.",
			[]string{"injected", "tampered", "state_unchanged"}, []string{"RAT-009", "RAT-010", "RAT-015"})
		pt0 := b.pt(12)
		b.ok("bob", b.encrypt("alice", pt0), pt0)
		a := b.party("alice")
		header := ratchetHeader(a.dhr, 0, 0)
		_, mk := kdfCK(nil)
		ct, err := sealWith(mk, pad(b.pt(12)), a.ad, header)
		if err != nil {
			return ratchetCase{}, err
		}
		b.decrypt("alice", ratchetMessage(1, header, ct), nil, errDecryptFailed)
		pt := b.pt(12)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b := newRatchetBuilder("ratchet_forged_dh_step_rolled_back", "After Alice's first message, Bob receives a "+
			"forgery with a fresh valid ratchet key (PN = 1, N = 0, an arbitrary 48-byte ciphertext): it performs a DH "+
			"ratchet step, drawing a key, then fails to decrypt. The state is unchanged: Bob's reply uses his "+
			"previous sending chain, and the conversation continues.",
			[]string{"injected", "tampered", "dh_ratchet", "state_unchanged"},
			[]string{"RAT-009", "RAT-010", "PRIM-004"})
		pt0 := b.pt(12)
		b.ok("bob", b.encrypt("alice", pt0), pt0)
		fake, err := x25519Public(b.pt(32))
		if err != nil {
			return ratchetCase{}, err
		}
		b.decrypt("bob", ratchetMessage(1, ratchetHeader(fake, 1, 0), b.pt(48)), nil, errDecryptFailed)
		pt := b.pt(12)
		b.ok("alice", b.encrypt("bob", pt), pt)
		pt = b.pt(12)
		b.ok("bob", b.encrypt("alice", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b, sc, m0, err := prekeySessionBuilder("ratchet_prekey_session_continued", "The session of the pqxdh case "+
			"pqxdh_last_resort_without_one_time_prekey. Alice's first message is the one enclosed in that case's "+
			"prekey_message; before she hears back she sends two more, each in a prekey message with the same "+
			"Enc(IK_A) and Enc(EK_A) (PQX-007). Bob decrypts the first (drawing that case's bob_ratchet_private), then "+
			"the third and the second in the same session, as the lookup of PQX-011 (section 4.6, step 2) makes him do; "+
			"he answers and Alice decrypts. The lookup itself is session-layer behaviour that this format cannot "+
			"express (a pqxdh case has one prekey_message); this case gives the ratchet half of it.",
			[]string{"out_of_order", "skipped_keys"}, reqs(basic, "PQX-007"))
		if err != nil {
			return ratchetCase{}, err
		}
		pt1, pt2 := b.pt(24), b.pt(24)
		m1, m2 := b.encrypt("alice", pt1), b.encrypt("alice", pt2)
		b.decryptWith("bob", m0, sc.plaintext, nil, bytes.NewReader(sc.bobRatch))
		b.ok("bob", m2, pt2)
		b.ok("bob", m1, pt1)
		pt := b.pt(12)
		b.ok("alice", b.encrypt("bob", pt), pt)
		return b.finish()
	},
	func(basic []string) (ratchetCase, error) {
		b, sc, m0, err := prekeySessionBuilder("ratchet_prekey_session_repeated_first_message", "The session of the "+
			"pqxdh case pqxdh_last_resort_without_one_time_prekey, which uses no one-time prekey. Bob decrypts Alice's "+
			"first message, then receives her first prekey message again: by PQX-011 he finds the session created "+
			"from it and decrypts the enclosed message there, which is a replay in the current chain "+
			"(state.duplicate_message), not a second session. Then Alice's next message decrypts.",
			[]string{"replay", "state_unchanged"}, []string{"RAT-009", "RAT-010", "RAT-013"})
		if err != nil {
			return ratchetCase{}, err
		}
		b.decryptWith("bob", m0, sc.plaintext, nil, bytes.NewReader(sc.bobRatch))
		b.decrypt("bob", m0, nil, errDuplicateMessage)
		pt := b.pt(12)
		b.ok("bob", b.encrypt("alice", pt), pt)
		return b.finish()
	},
}

// prekeySessionBuilder starts a case from the session of the pqxdh case
// pqxdh_last_resort_without_one_time_prekey: Alice's first message is the
// ratchet message enclosed in that case's prekey message, and Bob's first
// decryption draws that case's bob_ratchet_private.
func prekeySessionBuilder(id, comment string, flags, reqList []string) (*ratchetBuilder, *pqxdhScenario, []byte, error) {
	sc, err := lastResortScenario()
	if err != nil {
		return nil, nil, nil, err
	}
	b := newRatchetBuilderFrom(newStream("Missive v1 test vectors: ratchet: "+id), id, comment,
		append([]string{"pqxdh_session"}, flags...), reqList, sc.result.sk, sc.result.ad, sc.ratch, sc.keys.spkPriv)
	m0 := b.encrypt("alice", sc.plaintext)
	if b.err == nil && !bytes.Equal(m0, sc.result.parts.ratchet) {
		return nil, nil, nil, fmt.Errorf("%s: Alice's first message is not the one enclosed in %s", id, sc.id)
	}
	return b, sc, m0, b.err
}

func highBitKey(u []byte) []byte { return flipBit(encX25519(u), 32, 0x80) }

// tamperCase: Alice's first message with its ciphertext altered, then the real one.
func tamperCase(id, comment string, alter func([]byte) []byte) (ratchetCase, error) {
	return editCase(id, comment, []string{"tampered"}, []string{"RAT-009", "PRIM-004"}, errDecryptFailed,
		func(m []byte, pm *parsedMessage) ([]byte, error) {
			return ratchetMessage(1, pm.header, alter(pm.ct)), nil
		})
}

// editCase: Alice encrypts her first message; Bob decrypts an edited copy,
// which fails, then the message itself.
func editCase(id, comment string, flags, reqList []string, want *codeError,
	edit func(m []byte, pm *parsedMessage) ([]byte, error)) (ratchetCase, error) {
	b := newRatchetBuilder(id, comment+" Then the message itself decrypts.",
		append(append([]string{}, flags...), "injected", "state_unchanged"), append(reqList, "RAT-010"))
	pt0 := b.pt(12)
	m0 := b.encrypt("alice", pt0)
	if b.err != nil {
		return ratchetCase{}, b.err
	}
	pm, err := parseRatchetMessage(m0)
	if err != nil {
		return ratchetCase{}, err
	}
	bad, err := edit(m0, pm)
	if err != nil {
		return ratchetCase{}, err
	}
	b.decrypt("bob", bad, nil, want)
	b.ok("bob", m0, pt0)
	return b.finish()
}

// paddingCase: a message encrypted with Alice's first message key over an
// invalid padded plaintext, then Alice's real first message.
func paddingCase(id, comment string, padded func(b *ratchetBuilder) []byte) (ratchetCase, error) {
	b := newRatchetBuilder(id, comment+" It is encrypted with the right keys (Alice's first message key), so AEAD-Open "+
		"succeeds; then Alice's real first message, under the same key, decrypts.",
		[]string{"padding", "injected", "state_unchanged"}, []string{"RAT-005", "RAT-009", "RAT-010"})
	if b.err != nil {
		return ratchetCase{}, b.err
	}
	x := padded(b)
	if _, err := unpad(x); err == nil {
		return ratchetCase{}, fmt.Errorf("%s: the padding is valid", id)
	}
	bad, err := b.peek("alice").encryptPadded(x)
	if err != nil {
		return ratchetCase{}, err
	}
	pt0 := b.pt(12)
	m0 := b.encrypt("alice", pt0)
	b.decrypt("bob", bad, nil, errBadPadding)
	b.ok("bob", m0, pt0)
	return b.finish()
}
