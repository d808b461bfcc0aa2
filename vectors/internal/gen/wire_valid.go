package gen

import (
	"fmt"
	"strings"
)

// wireValid is a valid case of wire.json, built from its own stream.
type wireValid struct {
	id, comment string
	flags       []string
	reqs        []string
	rule        string
	build       func(v *vb) cval
}

// wireValids returns the valid cases, in the order of the chapters.
func wireValids() []wireValid {
	helloBody := func(v *vb) []byte { return encodeCBOR(v.hello([]uint64{1}, "alice", 1, true)) }
	welcomeBody := func(v *vb) []byte {
		return encodeCBOR(cMap{{1, cUint(1)}, {2, cUint(wireT0 + 1234)}, {3, cUint(0)}, {4, cUint(0)}})
	}
	fullUpload := func(v *vb, nOTP, nKEM int) cMap {
		ik := v.read(32)
		m := cMap{{1, v.signedPrekey(ik, 2)}, {2, v.kemPrekey(ik, 1, true)}}
		var otp, kem cArray
		for i := 0; i < nOTP; i++ {
			otp = append(otp, v.oneTimePrekey(uint32(101+i)))
		}
		for i := 0; i < nKEM; i++ {
			kem = append(kem, v.kemPrekey(ik, uint32(2+i), false))
		}
		if nOTP > 0 {
			m = append(m, cPair{3, otp})
		}
		if nKEM > 0 {
			m = append(m, cPair{4, kem})
		}
		return m
	}
	otpUpload := func(v *vb, n int) cMap {
		var otp cArray
		for i := 0; i < n; i++ {
			otp = append(otp, v.oneTimePrekey(uint32(1001+i)))
		}
		return cMap{{3, otp}}
	}
	// signedList returns the signed device list of account, version
	// version, listing devs, signed by devs[0] (device 1).
	signedList := func(v *vb, account string, version uint64, devs []deviceKey) []byte {
		return v.signedDeviceList(devs[0].priv, encodeCBOR(deviceList(account, version, devs, wireT0+60_000*version)))
	}
	// fetchResult returns bundles of bob's devices with the identity keys
	// of bob's signed device list of version 4, which lists exactly them.
	fetchResult := func(v *vb, devices ...uint32) cMap {
		keys := v.deviceKeys(devices...)
		var bs cArray
		for i, d := range keys {
			bs = append(bs, cMap{{1, cUint(d.id)}, {2, cBytes(v.bundleOf(d.priv, d.enc, uint32(7+i), uint32(40+i), i%2 == 1,
				i%2 == 0, uint32(300+i)))}})
		}
		return cMap{{1, bs}, {2, cBytes(signedList(v, "bob", 4, keys))}}
	}
	// linkFlow is one linking of section 15.3: alice's primary (device 1,
	// with companion 2) links a companion that gets device id 3, in list
	// version 3.
	type linkFlow struct {
		id, ikC, mac []byte
		device       uint32
		list         []byte
	}
	newLinkFlow := func(v *vb) linkFlow {
		id, ikC, mac := v.link()
		devs := v.deviceKeys(1, 2)
		devs = append(devs, deviceKey{id: 3, enc: ikC})
		return linkFlow{id: id, ikC: ikC, mac: mac, device: 3, list: signedList(v, "alice", 3, devs)}
	}
	historyEntries := func(v *vb, n int) cArray {
		out := cArray{}
		for i := 0; i < n; i++ {
			outgoing := i%2 == 0
			status := uint64(1 + (i/2)%4)
			if !outgoing {
				status = 3 * uint64((i/2)%2)
			}
			out = append(out, v.historyEntry([]string{"bob", "carol", "dave"}[i%3], outgoing, fmt.Sprintf("message %d", i),
				wireT0+60_000*uint64(i), status))
		}
		return out
	}
	fanout := func(missing, extra, stale []uint64) cMap {
		l := func(xs []uint64) cArray {
			out := cArray{}
			for _, x := range xs {
				out = append(out, cUint(x))
			}
			return out
		}
		return cMap{{1, l(missing)}, {2, l(extra)}, {3, l(stale)}}
	}
	ids := func(xs ...uint64) cArray {
		out := cArray{}
		for _, x := range xs {
			out = append(out, cUint(x))
		}
		return out
	}
	base := []string{"CBOR-001", "CBOR-002", "CBOR-003", "CBOR-004"}
	r := func(more ...string) []string { return append(append([]string{}, base...), more...) }
	t1 := uint64(wireT0 + 3_600_000)

	cases := []wireValid{
		// Chapter 4.
		{"prekey_bundle_with_one_time_prekey", "A bundle with a one-time EC prekey; both signatures verify under IK_B.", nil,
			r("PQX-001"), "prekey-bundle", func(v *vb) cval { return cRaw(v.bundle(1, 23, false, true, 24)) }},
		{"prekey_bundle_without_one_time_prekey", "A bundle without field 5 and with the last-resort KEM prekey.", nil,
			r("PQX-001"), "prekey-bundle", func(v *vb) cval { return cRaw(v.bundle(4294967295, 4294967295, true, false, 0)) }},
		{"signed_prekey", "A signed prekey with its signature by the identity key.", nil, r("PQX-001"), "signed-prekey",
			func(v *vb) cval { return v.signedPrekey(v.read(32), 17) }},
		{"kem_prekey_last_resort", "A last-resort KEM prekey (flag true).", nil, r("PQX-001"), "kem-prekey",
			func(v *vb) cval { return v.kemPrekey(v.read(32), 1, true) }},
		{"kem_prekey_one_time", "A one-time KEM prekey (flag false).", nil, r("PQX-001"), "kem-prekey",
			func(v *vb) cval { return v.kemPrekey(v.read(32), 4294967295, false) }},
		{"one_time_prekey", "A one-time EC prekey with id 0.", nil, r(), "one-time-prekey",
			func(v *vb) cval { return v.oneTimePrekey(0) }},
		{"prekey_message_with_one_time_prekey", "A prekey message with field 7 (DH4 used); Bob's processing returns " +
			"its plaintext.", nil, r("PQX-007"), "prekey-message", func(v *vb) cval {
			return cRaw(v.prekeyMessage([]byte("hello Bob"), true))
		}},
		{"prekey_message_without_one_time_prekey", "A prekey message without field 7.", nil, r("PQX-007"), "prekey-message",
			func(v *vb) cval { return cRaw(v.prekeyMessage([]byte("hello again"), false)) }},
		// Chapter 5.
		{"ratchet_message", "The first message of a session; the receiver decrypts it.", nil, r("RAT-007"),
			"ratchet-message", func(v *vb) cval { return cRaw(v.ratchetMessage([]byte("See you at 7?"))) }},
		{"ratchet_message_ciphertext_16_bytes", "A ratchet message whose ciphertext has the smallest length that " +
			"decoding allows (16 bytes, a tag alone): it decodes, and would fail later, in AEAD-Open.", []string{"at_limit"},
			r(), "ratchet-message", func(v *vb) cval {
				_, k := v.x25519Key()
				return cMap{{1, cUint(1)}, {2, cBytes(ratchetHeader(k[1:], 0, 0))}, {3, cBytes(v.read(16))}}
			}},
		{"ratchet_header", "A header with PN 3 and N 12.", nil, r(), "ratchet-header", func(v *vb) cval {
			_, k := v.x25519Key()
			return cRaw(ratchetHeader(k[1:], 3, 12))
		}},
		{"ratchet_header_largest_numbers", "A header with PN and N 2^32 - 1, the largest uint32.", []string{"at_limit"},
			r("RAT-014"), "ratchet-header", func(v *vb) cval {
				_, k := v.x25519Key()
				return cRaw(ratchetHeader(k[1:], 4294967295, 4294967295))
			}},
		// Chapter 11.
		{"address", "The primary device of account alice.", nil, r("MSG-001"), "address",
			func(v *vb) cval { return address("alice", 1) }},
		{"address_largest", "An account name of 32 characters and device id 2^32 - 1.", []string{"at_limit"},
			r("MSG-001"), "address", func(v *vb) cval { return address("abcdefghijklmnopqrstuvwxyz012345", 4294967295) }},
		{"address_account_punctuation", "An account name that starts with a digit and has '.', '_' and '-'.", nil,
			r("MSG-001"), "address", func(v *vb) cval { return address("7.of_9-x", 2) }},
		{"empty", "The empty result (of set-privacy and set-contacts).", nil, r(), "empty", func(v *vb) cval { return cMap{} }},
		{"hello_register", "A hello that registers account alice with its primary device (device id 1).", nil,
			r("MSG-001"), "hello", func(v *vb) cval { return v.hello([]uint64{1}, "alice", 1, true) }},
		{"hello_existing_device", "A hello of device 3 of an existing account, without register.", nil, r(), "hello",
			func(v *vb) cval { return v.hello([]uint64{1}, "carol.d", 3, false) }},
		{"hello_most_versions", "A hello that lists MAX_VERSIONS (8) versions, highest first.", []string{"at_limit"}, r(),
			"hello", func(v *vb) cval { return v.hello([]uint64{8, 7, 6, 5, 4, 3, 2, 1}, "dave-99", 2, false) }},
		{"welcome", "The server chose version 1 and holds no prekeys for the device.", nil, r(), "welcome",
			func(v *vb) cval { return cRaw(welcomeBody(v)) }},
		{"welcome_device_list", "A welcome with the account's current signed device list (field 5): version 2, devices " +
			"1 and 2.", nil, r(), "welcome", func(v *vb) cval {
			return cMap{{1, cUint(1)}, {2, cUint(wireT0 + 1234)}, {3, cUint(12)}, {4, cUint(3)},
				{5, cBytes(signedList(v, "alice", 2, v.deviceKeys(1, 2)))}}
		}},
		{"prekey_upload_all_fields", "A new signed prekey, a new last-resort KEM prekey, two one-time EC prekeys " +
			"and one one-time KEM prekey, signed by the device's identity key.", nil, r("MSG-006", "MSG-007"),
			"prekey-upload", func(v *vb) cval { return fullUpload(v, 2, 1) }},
		{"prekey_upload_one_time_prekeys", "One-time EC prekeys only (field 3).", nil, r("MSG-006"), "prekey-upload",
			func(v *vb) cval { return otpUpload(v, 3) }},
		{"prekey_upload_signed_prekey", "A signed prekey only (field 1): a rotation.", nil, r("MSG-006"), "prekey-upload",
			func(v *vb) cval { return cMap{{1, v.signedPrekey(v.read(32), 9)}} }},
		{"prekey_upload_kem_prekeys", "One-time KEM prekeys only (field 4), with flags false.", nil, r("MSG-006", "MSG-007"),
			"prekey-upload", func(v *vb) cval {
				ik := v.read(32)
				return cMap{{4, cArray{v.kemPrekey(ik, 51, false), v.kemPrekey(ik, 52, false)}}}
			}},
		{"prekey_upload_most_one_time_prekeys", "MAX_PREKEYS_PER_UPLOAD (100) one-time EC prekeys.", []string{"at_limit"},
			r("MSG-006"), "prekey-upload", func(v *vb) cval { return otpUpload(v, 100) }},
		{"upload_result", "The server now holds 100 one-time EC prekeys and 1 one-time KEM prekey.", nil, r(),
			"upload-result", func(v *vb) cval { return cMap{{1, cUint(100)}, {2, cUint(1)}} }},
		{"prekey_fetch_every_device", "A fetch of every device of bob (no field 2).", nil, r(), "prekey-fetch",
			func(v *vb) cval { return cMap{{1, cText("bob")}} }},
		{"prekey_fetch_some_devices", "A fetch of devices 2 and 5 of bob.", nil, r(), "prekey-fetch",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, ids(2, 5)}} }},
		{"fetch_result", "Bundles of devices 1 and 4, sorted by device id, and bob's signed device list (version 4), " +
			"which lists exactly these devices with the identity keys of their bundles.", nil, r("MSG-010"),
			"fetch-result", func(v *vb) cval { return fetchResult(v, 1, 4) }},
		{"device_bundle", "The bundle of device 2.", nil, r(), "device-bundle", func(v *vb) cval {
			return cMap{{1, cUint(2)}, {2, cBytes(v.bundle(3, 3, true, true, 77))}}
		}},
		{"send_result", "The envelope was accepted at this time.", nil, r(), "send-result",
			func(v *vb) cval { return cMap{{1, cUint(t1 + 412)}} }},
		{"presence_subscribe", "A subscription to three accounts, sorted, without duplicates.", nil, r("MSG-010"),
			"presence-subscribe", func(v *vb) cval { return cMap{{1, cArray{cText("amy"), cText("bob"), cText("carol")}}} }},
		{"presence_subscribe_most_accounts", "MAX_SUBSCRIPTIONS (256) accounts.", []string{"at_limit"}, r("MSG-010"),
			"presence-subscribe", func(v *vb) cval { return cMap{{1, accounts("user", 256)}} }},
		{"presence_result_empty", "No account the device may see.", nil, r(), "presence-result",
			func(v *vb) cval { return cMap{{1, cArray{}}} }},
		{"presence_result", "Three presence updates: online, offline with last seen, hidden.", nil, r(), "presence-result",
			func(v *vb) cval {
				return cMap{{1, cArray{cMap{{1, cText("amy")}, {2, cUint(1)}},
					cMap{{1, cText("bob")}, {2, cUint(2)}, {3, cUint(t1 - 60_000)}}, cMap{{1, cText("carol")}, {2, cUint(3)}}}}}
			}},
		{"privacy", "Last seen visible to contacts, online visible to nobody.", nil, r(), "privacy",
			func(v *vb) cval { return cMap{{1, cUint(1)}, {2, cUint(2)}} }},
		{"privacy_everyone", "Everything visible to everyone (value 0).", nil, r(), "privacy",
			func(v *vb) cval { return cMap{{1, cUint(0)}, {2, cUint(0)}} }},
		{"contacts_empty", "An empty contact list.", nil, r(), "contacts", func(v *vb) cval { return cMap{{1, cArray{}}} }},
		{"contacts", "Three contacts, sorted, without duplicates.", nil, r("MSG-010"), "contacts",
			func(v *vb) cval { return cMap{{1, cArray{cText("amy"), cText("bob"), cText("carol")}}} }},
		{"contacts_most", "MAX_CONTACTS (1000) contacts.", []string{"at_limit"}, r("MSG-010"), "contacts",
			func(v *vb) cval { return cMap{{1, accounts("c", 1000)}} }},
		{"envelope_chat", "A chat envelope from alice's device 1 to bob's devices 1, 2 and 5: a prekey message, a " +
			"ratchet message and a ratchet message, each carrying the same text content.", nil, r("MSG-010"),
			"envelope", func(v *vb) cval {
				return v.envelope(envChat, "bob", []uint32{1, 2, 5}, []uint64{kindPrekey, kindRatchet, kindRatchet},
					"Café at 7? ☕", t1)
			}},
		{"envelope_sync", "A sync envelope to alice's own devices 2 and 3 (not the sender, device 1), carrying a sent " +
			"transcript.", nil, r("MSG-013"), "envelope", func(v *vb) cval {
			return v.envelope(envSync, "alice", []uint32{2, 3}, []uint64{kindRatchet, kindRatchet}, "On my way", t1)
		}},
		{"envelope_receipt", "A receipt envelope with low priority.", nil, r(), "envelope", func(v *vb) cval {
			return v.envelope(envReceipt, "bob", []uint32{1}, []uint64{kindRatchet}, "", t1)
		}},
		{"envelope_most_device_messages", "MAX_FANOUT (16) device messages.", []string{"at_limit"}, r("MSG-010"),
			"envelope", func(v *vb) cval {
				devs := make([]uint32, 16)
				kinds := make([]uint64, 16)
				for i := range devs {
					devs[i], kinds[i] = uint32(i+1), kindRatchet
				}
				return v.envelope(envChat, "bob", devs, kinds, "hi all", t1)
			}},
		{"envelope_time_to_live_bounds", "A high-priority envelope with time-to-live 1, the smallest.", []string{"at_limit"},
			r(), "envelope", func(v *vb) cval {
				m := v.envelope(envChat, "bob", []uint32{3}, []uint64{kindRatchet}, "ping", t1)
				m[6].v, m[7].v = cUint(prioHigh), cUint(1)
				return m
			}},
		{"envelope_largest_time_to_live", "Time-to-live MAX_TTL (2592000 seconds).", []string{"at_limit"}, r(), "envelope",
			func(v *vb) cval {
				m := v.envelope(envChat, "bob", []uint32{3}, []uint64{kindRatchet}, "see you next month", t1)
				m[7].v = cUint(wireMaxTTL)
				return m
			}},
		{"device_message_ratchet", "A ratchet message for device 2.", nil, r(), "device-message",
			func(v *vb) cval { return v.deviceMessage(2, kindRatchet, []byte("hi")) }},
		{"device_message_prekey", "A prekey message for device 1.", nil, r(), "device-message",
			func(v *vb) cval { return v.deviceMessage(1, kindPrekey, []byte("hi")) }},
		{"delivery", "A first delivery attempt of a chat message.", nil, r(), "delivery",
			func(v *vb) cval { return v.delivery(7341, 1) }},
		{"delivery_redelivered", "A third delivery attempt.", nil, r(), "delivery",
			func(v *vb) cval { return v.delivery(4294967296, 3) }},
		{"ack", "Three queue ids, sorted, without duplicates.", nil, r("MSG-010"), "ack",
			func(v *vb) cval { return cMap{{1, ids(7339, 7340, 7341)}} }},
		{"ack_most", "MAX_RECEIPT_IDS (256) queue ids.", []string{"at_limit"}, r("MSG-010"), "ack", func(v *vb) cval {
			out := cArray{}
			for i := 0; i < 256; i++ {
				out = append(out, cUint(uint64(1000+3*i)))
			}
			return cMap{{1, out}}
		}},
		{"presence_update_online", "bob is online.", nil, r(), "presence-update",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, cUint(1)}} }},
		{"presence_update_last_seen", "bob is offline, last seen a minute ago.", nil, r(), "presence-update",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, cUint(2)}, {3, cUint(t1 - 60_000)}} }},
		{"presence_update_hidden", "bob's presence is hidden from the subscriber.", nil, r(), "presence-update",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, cUint(3)}} }},
		{"typing_started", "The device started typing to bob.", nil, r(), "typing",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, cBool(true)}} }},
		{"typing_stopped", "The device stopped typing to bob.", nil, r(), "typing",
			func(v *vb) cval { return cMap{{1, cText("bob")}, {2, cBool(false)}} }},
		{"typing_notice", "alice's device 2 is typing.", nil, r(), "typing-notice",
			func(v *vb) cval { return cMap{{1, address("alice", 2)}, {2, cBool(true)}} }},
		{"notice_prekeys_low", "Five one-time prekeys are left.", nil, r(), "notice",
			func(v *vb) cval { return cMap{{1, cUint(1)}, {2, cUint(5)}} }},
		{"notice_shutting_down", "The server shuts down; retry after 30 seconds.", nil, r(), "notice",
			func(v *vb) cval { return cMap{{1, cUint(2)}, {3, cUint(30_000)}} }},
		{"error_body", "state.not_authenticated (3011) without detail.", nil, r("MSG-016"), "error-body",
			func(v *vb) cval { return cMap{{1, cUint(3011)}} }},
		{"error_body_detail", "policy.rate_limited (4003) with a detail and a retry-after.", nil, r("MSG-016"), "error-body",
			func(v *vb) cval {
				return cMap{{1, cUint(4003)}, {2, cText("too many sends; slow down")}, {4, cUint(2500)}}
			}},
		{"error_body_longest_detail", "A detail of MAX_DETAIL (256) bytes, of two-byte characters.", []string{"at_limit"},
			r("MSG-016"), "error-body", func(v *vb) cval {
				return cMap{{1, cUint(1001)}, {2, cText(strings.Repeat("é", 128))}}
			}},
		{"error_body_fanout_mismatch", "state.fanout_mismatch (3008) with its lists and bob's current signed device " +
			"list (field 5, DEV-017): version 3 lists devices 1, 3 and 4; 3 and 4 are missing from the envelope, 9 never " +
			"existed, 2 was removed.", nil, r("MSG-016", "MSG-010"),
			"error-body", func(v *vb) cval {
				return cMap{{1, cUint(3008)}, {3, fanout([]uint64{3, 4}, []uint64{9}, []uint64{2})},
					{5, cBytes(signedList(v, "bob", 3, v.deviceKeys(1, 3, 4)))}}
			}},
		{"fanout_mismatch", "Devices 3 and 4 are missing, 9 never existed, 2 was removed.", nil, r("MSG-010"),
			"fanout-mismatch", func(v *vb) cval { return fanout([]uint64{3, 4}, []uint64{9}, []uint64{2}) }},
		{"fanout_mismatch_stale_only", "Only a removed device.", nil, r(), "fanout-mismatch",
			func(v *vb) cval { return fanout(nil, nil, []uint64{2}) }},
		{"content_text", "A text message with non-ASCII text.", nil, r(), "content",
			func(v *vb) cval { return content(ctText, v.messageID(), t1, cPair{5, cText("Grüße aus Köln 👋")}) }},
		{"content_text_longest", "A text of MAX_TEXT (16384) bytes.", []string{"at_limit"}, r(), "content",
			func(v *vb) cval {
				return content(ctText, v.messageID(), t1, cPair{5, cText(strings.Repeat("lorem ipsum ", 1366)[:16384])})
			}},
		{"content_receipt", "A read receipt for two messages.", nil, r(), "content", func(v *vb) cval {
			return content(ctReceipt, v.messageID(), t1, cPair{6, cMap{{1, cUint(2)}, {2, v.sortedIDs(2)}}})
		}},
		{"content_media", "An image with a caption.", nil, r(), "content", func(v *vb) cval {
			return content(ctMedia, v.messageID(), t1, cPair{7, v.media(1, "image/jpeg", "sunset", false)})
		}},
		{"content_edit", "An edit of an earlier message.", nil, r(), "content", func(v *vb) cval {
			return content(ctEdit, v.messageID(), t1, cPair{5, cText("See you at 8?")}, cPair{8, cBytes(v.messageID())})
		}},
		{"content_delete", "A deletion of an earlier message.", nil, r(), "content", func(v *vb) cval {
			return content(ctDelete, v.messageID(), t1, cPair{8, cBytes(v.messageID())})
		}},
		{"content_sent", "A sent transcript: what the device sent to bob.", nil, r(), "content", func(v *vb) cval {
			id := v.messageID()
			inner := encodeCBOR(content(ctText, id, t1, cPair{5, cText("On my way")}))
			return content(ctSent, id, t1, cPair{9, cMap{{1, cText("bob")}, {2, cBytes(inner)}}})
		}},
		{"receipt_delivered", "A delivered receipt for one message.", nil, r(), "receipt",
			func(v *vb) cval { return cMap{{1, cUint(1)}, {2, v.sortedIDs(1)}} }},
		{"receipt_played", "A played receipt for three messages, sorted.", nil, r("MSG-010"), "receipt",
			func(v *vb) cval { return cMap{{1, cUint(3)}, {2, v.sortedIDs(3)}} }},
		{"receipt_most", "MAX_RECEIPT_IDS (256) message ids.", []string{"at_limit"}, r("MSG-010"), "receipt",
			func(v *vb) cval { return cMap{{1, cUint(2)}, {2, v.sortedIDs(256)}} }},
		{"media_view_once", "A video with a caption, to be viewed once.", nil, r(), "media",
			func(v *vb) cval { return v.media(2, "video/mp4", "🎉", true) }},
		{"media_file", "A file without caption.", nil, r(), "media",
			func(v *vb) cval { return v.media(4, "application/pdf", "", false) }},
		{"media_longest_strings", "A blob id of MAX_BLOB_ID (64) bytes and a media type of MAX_MIME (127) bytes.",
			[]string{"at_limit"}, r(), "media", func(v *vb) cval {
				m := v.media(3, "audio/"+strings.Repeat("x", 121), "", false)
				m[1].v = cText(strings.Repeat("b", 64))
				return m
			}},
		{"sent_transcript", "A text sent to bob.", nil, r(), "sent-transcript", func(v *vb) cval {
			inner := encodeCBOR(content(ctText, v.messageID(), t1, cPair{5, cText("On my way")}))
			return cMap{{1, cText("bob")}, {2, cBytes(inner)}}
		}},
		{"content_read", "A read sync: two messages, from bob and from carol, were read on another device of the " +
			"account.", nil, r(), "content", func(v *vb) cval {
			return content(ctRead, v.messageID(), t1, cPair{10, v.conversationMessages("bob", "carol")})
		}},
		{"content_deleted", "A deleted sync: a message of the conversation with bob was deleted on another device.",
			nil, r(), "content", func(v *vb) cval {
				return content(ctDeleted, v.messageID(), t1, cPair{11, v.conversationMessages("bob")})
			}},
		{"content_history", "History for a new companion: three messages with their statuses.", nil, r(), "content",
			func(v *vb) cval { return content(ctHistory, v.messageID(), t1, cPair{12, historyEntries(v, 3)}) }},
		// Chapter 15.
		{"device_list_primary_only", "Version 1 of alice's list, as registration implies it: device 1 alone.", nil,
			r("DEV-001"), "device-list", func(v *vb) cval { return deviceList("alice", 1, v.deviceKeys(1), wireT0) }},
		{"device_list_companions", "Version 3 of bob's list: devices 1, 2 and 4, sorted by device id (device 3 was " +
			"unlinked).", nil, r("DEV-001", "MSG-010"), "device-list", func(v *vb) cval {
			return deviceList("bob", 3, v.deviceKeys(1, 2, 4), wireT0+7_200_000)
		}},
		{"device_list_most_devices", "1 + MAX_COMPANIONS (5) devices, the most a list holds.", []string{"at_limit"},
			r("DEV-001", "MSG-010"), "device-list", func(v *vb) cval {
				return deviceList("carol.d", 9, v.deviceKeys(1, 5, 6, 8, 9), wireT0+9_000_000)
			}},
		{"device_list_largest_version", "List version 2^32 - 1, the largest, and a companion with device id 2^32 - 1.",
			[]string{"at_limit"}, r("DEV-001"), "device-list", func(v *vb) cval {
				return deviceList("dave-99", 4294967295, v.deviceKeys(1, 4294967295), wireT0)
			}},
		{"listed_device", "Device 2 with its identity key.", nil, r(), "listed-device", func(v *vb) cval {
			_, ik := v.x25519Key()
			return cMap{{1, cUint(2)}, {2, cBytes(ik)}}
		}},
		{"signed_device_list", "Version 1 of alice's list signed by device 1 (LABEL_DEVICE_LIST || field 1); the " +
			"signature verifies.", nil, r("DEV-001"), "signed-device-list", func(v *vb) cval {
			return cRaw(signedList(v, "alice", 1, v.deviceKeys(1)))
		}},
		{"signed_device_list_companions", "Version 5 of bob's list (devices 1, 3 and 6) signed by device 1.", nil,
			r("DEV-001"), "signed-device-list", func(v *vb) cval {
				return cRaw(signedList(v, "bob", 5, v.deviceKeys(1, 3, 6)))
			}},
		{"open_link", "A link id derived from a linking secret (section 15.3).", nil, r(), "open-link", func(v *vb) cval {
			id, _, _ := v.link()
			return cMap{{1, cBytes(id)}}
		}},
		{"link_request", "A companion's link request: link id, identity key and the MAC under the linking secret.", nil,
			r(), "link-request", func(v *vb) cval {
				id, ik, mac := v.link()
				return cMap{{1, cBytes(id)}, {2, cBytes(ik)}, {3, cBytes(mac)}}
			}},
		{"link_notice", "The link request passed to the primary with the device id 3 that the server reserved.", nil,
			r(), "link-notice", func(v *vb) cval {
				id, ik, mac := v.link()
				return cMap{{1, cBytes(id)}, {2, cBytes(ik)}, {3, cBytes(mac)}, {4, cUint(3)}}
			}},
		{"answer_link", "The primary accepts: list version 3 adds the companion as device 3 with the requested key.", nil,
			r(), "answer-link", func(v *vb) cval {
				f := newLinkFlow(v)
				return cMap{{1, cBytes(f.id)}, {2, cBytes(f.list)}}
			}},
		{"answer_link_refused", "The primary refuses the companion: no list.", nil, r(), "answer-link",
			func(v *vb) cval {
				id, _, _ := v.link()
				return cMap{{1, cBytes(id)}}
			}},
		{"link_result", "The companion's result: device id 3 and the list that adds it.", nil, r(), "link-result",
			func(v *vb) cval {
				f := newLinkFlow(v)
				return cMap{{1, cUint(f.device)}, {2, cBytes(f.list)}}
			}},
		{"set_device_list", "Version 4 of alice's list, which unlinks device 2.", nil, r(), "set-device-list",
			func(v *vb) cval { return cMap{{1, cBytes(signedList(v, "alice", 4, v.deviceKeys(1, 3)))}} }},
		{"read_sync", "Two messages read on another device: one from bob, one from carol.", nil, r(), "read-sync",
			func(v *vb) cval { return v.conversationMessages("bob", "carol") }},
		{"read_sync_most", "MAX_RECEIPT_IDS (256) messages.", []string{"at_limit"}, r(), "read-sync",
			func(v *vb) cval {
				var as []string
				for i := 0; i < 256; i++ {
					as = append(as, fmt.Sprintf("user%d", i%7))
				}
				return v.conversationMessages(as...)
			}},
		{"deleted_sync", "One message of the conversation with bob, deleted on another device.", nil, r(), "deleted-sync",
			func(v *vb) cval { return v.conversationMessages("bob") }},
		{"deleted_sync_most", "MAX_RECEIPT_IDS (256) messages.", []string{"at_limit"}, r(), "deleted-sync",
			func(v *vb) cval {
				var as []string
				for i := 0; i < 256; i++ {
					as = append(as, "bob")
				}
				return v.conversationMessages(as...)
			}},
		{"conversation_message", "A message of the conversation with bob.", nil, r(), "conversation-message",
			func(v *vb) cval { return cArray{cText("bob"), cBytes(v.messageID())} }},
		{"history", "Three messages: sent (status 1), received (0), sent (2).", nil, r(), "history",
			func(v *vb) cval { return historyEntries(v, 3) }},
		{"history_most_entries", "64 entries, the most in one history content.", []string{"at_limit"}, r(), "history",
			func(v *vb) cval { return historyEntries(v, 64) }},
		{"history_entry_sent", "A message sent to bob, delivered (status 2) as a whole.", nil, r(), "history-entry",
			func(v *vb) cval { return v.historyEntry("bob", true, "See you at 7?", t1, 2) }},
		{"history_entry_received_read", "A message received from carol and read (status 3).", nil, r(), "history-entry",
			func(v *vb) cval { return v.historyEntry("carol", false, "Grüße 👋", t1-60_000, 3) }},
		{"history_entry_empty_text", "A received message with an empty text (the size range starts at 0), not read " +
			"(status 0).", []string{"at_limit"}, r(), "history-entry",
			func(v *vb) cval { return v.historyEntry("bob", false, "", t1, 0) }},
		{"history_entry_longest_text", "A sent message with a text of 16384 bytes, played (status 4).",
			[]string{"at_limit"}, r(), "history-entry", func(v *vb) cval {
				return v.historyEntry("bob", true, strings.Repeat("0123456789abcdef", 1024), t1, 4)
			}},
	}
	// Frames of every type of section 11.3, with bodies that are valid
	// encodings of their rules.
	frames := []wireValid{
		{"frame_hello", "A hello request with request id 1.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(1, 1, helloBody(v)) }},
		{"frame_result_welcome", "The result of the hello.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 1, welcomeBody(v)) }},
		{"frame_result_empty", "The result of a set-privacy request: empty.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 4294967295, []byte{0xa0}) }},
		{"frame_error_answer", "An error that answers request 7.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(3, 7, encodeCBOR(cMap{{1, cUint(4003)}, {4, cUint(1000)}})) }},
		{"frame_error_unsolicited", "An error that answers no request (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(3, 0, encodeCBOR(cMap{{1, cUint(4008)}, {4, cUint(5000)}})) }},
		{"frame_upload_prekeys", "An upload of two one-time EC prekeys.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(4, 2, encodeCBOR(otpUpload(v, 2))) }},
		{"frame_fetch_prekeys", "A fetch of bob's bundles.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(5, 3, encodeCBOR(cMap{{1, cText("bob")}})) }},
		{"frame_send", "A send of a chat envelope.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			return frameMap(6, 4, encodeCBOR(v.envelope(envChat, "bob", []uint32{1}, []uint64{kindRatchet}, "hi", t1)))
		}},
		{"frame_result_send", "The result of a send.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 4, encodeCBOR(cMap{{1, cUint(t1 + 412)}})) }},
		{"frame_deliver", "A delivery (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(7, 0, encodeCBOR(v.delivery(12, 1))) }},
		{"frame_ack", "An acknowledgement (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(8, 0, encodeCBOR(cMap{{1, ids(12)}})) }},
		{"frame_ping", "A ping: no request id, no body.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(9, 0, nil) }},
		{"frame_pong", "A pong: no request id, no body.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(10, 0, nil) }},
		{"frame_subscribe_presence", "A presence subscription.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(11, 5, encodeCBOR(cMap{{1, cArray{cText("bob")}}})) }},
		{"frame_presence", "A presence update (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(12, 0, encodeCBOR(cMap{{1, cText("bob")}, {2, cUint(1)}})) }},
		{"frame_set_privacy", "A set-privacy request.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(13, 6, encodeCBOR(cMap{{1, cUint(1)}, {2, cUint(1)}})) }},
		{"frame_set_contacts", "A set-contacts request.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(14, 8, encodeCBOR(cMap{{1, cArray{cText("bob")}}})) }},
		{"frame_typing_device", "A typing frame from a device (body typing).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(15, 0, encodeCBOR(cMap{{1, cText("bob")}, {2, cBool(true)}})) }},
		{"frame_typing_server", "A typing frame from the server (body typing-notice).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(15, 0, encodeCBOR(cMap{{1, address("alice", 2)}, {2, cBool(true)}})) }},
		{"frame_notice", "A notice (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(16, 0, encodeCBOR(cMap{{1, cUint(1)}, {2, cUint(5)}})) }},
		{"frame_open_link", "The primary opens a link.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			id, _, _ := v.link()
			return frameMap(17, 10, encodeCBOR(cMap{{1, cBytes(id)}}))
		}},
		{"frame_link_request", "A companion's link request, the first frame of its connection.", nil, r("MSG-003"),
			"frame", func(v *vb) cval {
				id, ik, mac := v.link()
				return frameMap(18, 1, encodeCBOR(cMap{{1, cBytes(id)}, {2, cBytes(ik)}, {3, cBytes(mac)}}))
			}},
		{"frame_link", "The server passes the link request to the primary (no request id).", nil, r("MSG-003"), "frame",
			func(v *vb) cval {
				id, ik, mac := v.link()
				return frameMap(19, 0, encodeCBOR(cMap{{1, cBytes(id)}, {2, cBytes(ik)}, {3, cBytes(mac)}, {4, cUint(3)}}))
			}},
		{"frame_answer_link", "The primary's answer with the list that adds the companion.", nil, r("MSG-003"), "frame",
			func(v *vb) cval {
				f := newLinkFlow(v)
				return frameMap(20, 11, encodeCBOR(cMap{{1, cBytes(f.id)}, {2, cBytes(f.list)}}))
			}},
		{"frame_answer_link_refused", "The primary's answer without a list: it refuses the companion.", nil, r("MSG-003"),
			"frame", func(v *vb) cval {
				id, _, _ := v.link()
				return frameMap(20, 12, encodeCBOR(cMap{{1, cBytes(id)}}))
			}},
		{"frame_result_link", "The result of a link request: link-result.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			f := newLinkFlow(v)
			return frameMap(2, 1, encodeCBOR(cMap{{1, cUint(f.device)}, {2, cBytes(f.list)}}))
		}},
		{"frame_set_device_list", "The primary uploads version 1 of its list right after registering.", nil,
			r("MSG-003"), "frame", func(v *vb) cval {
				return frameMap(21, 2, encodeCBOR(cMap{{1, cBytes(signedList(v, "alice", 1, v.deviceKeys(1)))}}))
			}},
		{"frame_device_list", "The server pushes a new list (no request id); the body is a signed-device-list.", nil,
			r("MSG-003"), "frame", func(v *vb) cval {
				return frameMap(22, 0, signedList(v, "alice", 2, v.deviceKeys(1, 2)))
			}},
	}
	gcases, gframes := wireValidsGroups(r)
	return append(append(append(cases, gcases...), frames...), gframes...)
}
