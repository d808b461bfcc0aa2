package gen

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
)

// This file holds the valid cases of wire.json for the structures of
// chapters 16, 17 and 18 and for the fields of chapter 11 that they added.

// Content types, envelope types and delivery kinds added by chapters 16 to
// 18 (section 11.9, 11.5, 11.6).
const (
	ctSenderKey, ctGroupUpdate, ctTimer, ctOpened = 10, 11, 12, 13
	envControl                                    = 4
	kindGroup                                     = 3
)

// signedGroupStateOf returns a signed group state of alice's group, made by
// device author of alice, whose device list (version 3, devices 1 and 2) it
// carries.
func (v *vb) signedGroupStateOf(gid []byte, version uint64, members []gMember, author uint32, createdAt uint64, name string) []byte {
	devs := v.deviceKeys(1, 2)
	list := v.signedDeviceList(devs[0].priv, encodeCBOR(deviceList("alice", 3, devs, wireT0)))
	st := groupState{groupID: gid, version: version, members: members, author: rcAddr{"alice", author},
		createdAt: createdAt, name: name}.encode()
	return signedGroupState(st, v.sign(devs[author-1].priv, groupStateMessage(st)), list)
}

// groupMessageOf returns a group message of a sender key drawn from the
// stream, at iteration i, carrying pt, after checking that a receiver
// holding the key's distribution at iteration 0 decrypts it.
func (v *vb) groupMessageOf(gid []byte, groupVersion uint64, keyID, i uint32, pt []byte) []byte {
	k, err := makeSenderKey(gid, uint32(groupVersion), keyID, v.read(32), v.read(32))
	if err != nil {
		v.fail(err)
		return nil
	}
	r := k.receiverCopy()
	k.advance(i)
	msg, err := k.encrypt(groupVersion, pt, v.read(64))
	if err != nil {
		v.fail(err)
		return nil
	}
	p, err := parseGroupMessage(msg)
	if err == nil {
		err = r.verify(p)
	}
	var got []byte
	if err == nil {
		got, _, err = r.open(p)
	}
	switch {
	case err != nil:
		v.fail(fmt.Errorf("a generated group message does not decrypt: %v", err))
	case !bytes.Equal(got, pt):
		v.fail(fmt.Errorf("a generated group message does not decrypt to its plaintext"))
	}
	return msg
}

// distributionOf returns a sender-key-distribution of a key drawn from the
// stream, at iteration i.
func (v *vb) distributionOf(gid []byte, epoch, keyID, i uint32) []byte {
	k, err := makeSenderKey(gid, epoch, keyID, v.read(32), v.read(32))
	if err != nil {
		v.fail(err)
		return nil
	}
	k.advance(i)
	return k.distribution()
}

var (
	wireGroupMembers = sortedMembers(gMember{"alice", true}, gMember{"bob", false}, gMember{"carol", false})
)

// wireValidsGroups returns the valid cases of chapters 16 to 18, and of the
// fields of chapter 11 that they added, in the order of the chapters.
func wireValidsGroups(r func(more ...string) []string) (cases, frames []wireValid) {
	t1 := uint64(wireT0 + 3_600_000)
	text := func(v *vb, s string) []byte {
		return encodeCBOR(content(ctText, v.messageID(), t1, cPair{5, cText(s)}))
	}
	state := func(v *vb) []byte {
		return v.signedGroupStateOf(v.read(16), 1, wireGroupMembers, 1, t1, "Hiking club")
	}
	groupDevs := func() cArray {
		return groupDevicesList("alice", []uint32{2}, "bob", []uint32{1, 3}, "carol", []uint32{1})
	}
	groupEnvelope := func(v *vb) cMap {
		gid := v.read(16)
		id := v.messageID()
		msg := v.groupMessageOf(gid, 4, 1, 6, encodeCBOR(content(ctText, id, t1, cPair{5, cText("Trail closed, meet at 9")})))
		return cMap{{1, cUint(1)}, {2, cBytes(id)}, {3, address("alice", 1)}, {4, cBytes(gid)}, {5, cUint(4)},
			{6, cBytes(groupDevicesDigest(gid, encodeCBOR(groupDevs())))}, {7, cBytes(msg)}, {8, cUint(prioNormal)},
			{9, cUint(604800)}, {10, cUint(t1)}}
	}
	blobBytes := func(v *vb, n int) []byte {
		K := v.read(32)
		key, err := mediaKeyOf(K)
		v.fail(err)
		b, err := sealMedia(key, mediaPlaintext(n), mediaPieces(n))
		v.fail(err)
		return b
	}
	digest := func(b []byte) []byte { d := sha256.Sum256(b); return d[:] }
	blobID := func(v *vb) cText { return cText(fmt.Sprintf("%x", v.read(24))) }
	history := func(v *vb, n int) cArray {
		gid := v.read(16)
		out := cArray{}
		ms := wireGroupMembers
		for i := 1; i <= n; i++ {
			if i > 1 {
				ms = append(append([]gMember{}, ms...), gMember{fmt.Sprintf("user%04d", i), false})
				ms = sortedMembers(ms...)
			}
			out = append(out, cBytes(v.signedGroupStateOf(gid, uint64(i), ms, 1, t1+uint64(i)*60_000, "")))
		}
		return out
	}
	cases = []wireValid{
		// Chapter 11, fields and values added for chapters 15 to 18.
		{"device_list_fetch", "A fetch of bob's current device list.", nil, r(), "device-list-fetch",
			func(v *vb) cval { return cMap{{1, cText("bob")}} }},
		{"device_list_result", "bob's current device list: version 3, devices 1 and 2.", nil, r(), "device-list-result",
			func(v *vb) cval {
				devs := v.deviceKeys(1, 2)
				return cMap{{1, cBytes(v.signedDeviceList(devs[0].priv, encodeCBOR(deviceList("bob", 3, devs, wireT0))))}}
			}},
		{"envelope_control", "A control envelope (type 4) from alice's device 1 to bob's devices 1 and 2, carrying " +
			"sender-key content (section 16.3).", nil, r("MSG-020"), "envelope", func(v *vb) cval {
			id := v.messageID()
			pt := encodeCBOR(content(ctSenderKey, id, t1, cPair{13, cRaw(v.distributionOf(v.read(16), 2, 1, 0))}))
			return cMap{{1, cUint(1)}, {2, cBytes(id)}, {3, address("alice", 1)}, {4, cText("bob")},
				{5, cArray{v.deviceMessage(1, kindRatchet, pt), v.deviceMessage(2, kindRatchet, pt)}},
				{6, cUint(envControl)}, {7, cUint(prioNormal)}, {8, cUint(604800)}, {9, cUint(t1)}}
		}},
		{"delivery_group", "A delivery of kind group (3): the ciphertext is a group message (section 16.4), fanned " +
			"out by the server from a send-group, in a chat envelope.", nil, r(), "delivery", func(v *vb) cval {
			gid, id := v.read(16), v.messageID()
			msg := v.groupMessageOf(gid, 2, 1, 0, encodeCBOR(content(ctText, id, t1, cPair{5, cText("Welcome, carol!")})))
			return cMap{{1, cUint(1)}, {2, cUint(88)}, {3, cBytes(id)}, {4, address("alice", 1)}, {5, cUint(envChat)},
				{6, cUint(prioNormal)}, {7, cUint(kindGroup)}, {8, cBytes(msg)}, {9, cUint(t1)}, {10, cUint(t1 + 412)},
				{11, cUint(t1 + 412 + 604800*1000)}, {12, cUint(1)}}
		}},
		{"error_body_group_fanout_mismatch", "state.fanout_mismatch (3008) after a send-group, with the group " +
			"devices (field 6, section 16.4).", nil, r("MSG-016", "MSG-010"), "error-body", func(v *vb) cval {
			return cMap{{1, cUint(3008)}, {6, groupDevs()}}
		}},
		{"error_body_group_stale", "state.group_stale (3016) with the group's current signed state (field 7).", nil,
			r("MSG-016"), "error-body", func(v *vb) cval { return cMap{{1, cUint(3016)}, {7, cBytes(state(v))}} }},
		{"content_sender_key", "sender-key content: a sender key of epoch 3, key id 2, at iteration 0.", nil, r(),
			"content", func(v *vb) cval {
				return content(ctSenderKey, v.messageID(), t1, cPair{13, cRaw(v.distributionOf(v.read(16), 3, 2, 0))})
			}},
		{"content_group_update", "group-update content: a signed group state of version 1.", nil, r(), "content",
			func(v *vb) cval { return content(ctGroupUpdate, v.messageID(), t1, cPair{14, cBytes(state(v))}) }},
		{"content_timer", "timer content: messages disappear a day after they are sent.", nil, r(), "content",
			func(v *vb) cval { return content(ctTimer, v.messageID(), t1, cPair{15, cUint(86400)}) }},
		{"content_timer_off", "timer content that turns the timer off (0).", []string{"at_limit"}, r(), "content",
			func(v *vb) cval { return content(ctTimer, v.messageID(), t1, cPair{15, cUint(0)}) }},
		{"content_timer_longest", "timer content of MAX_TIMER (7776000 seconds, 90 days).", []string{"at_limit"}, r(),
			"content", func(v *vb) cval { return content(ctTimer, v.messageID(), t1, cPair{15, cUint(7776000)}) }},
		{"content_text_expire_after", "A text that disappears an hour after it was sent (field 16).", nil, r("LIF-007"),
			"content", func(v *vb) cval {
				return content(ctText, v.messageID(), t1, cPair{5, cText("This message will self-destruct")},
					cPair{16, cUint(3600)})
			}},
		{"content_text_expire_after_bounds", "A text with expire-after 1, the smallest.", []string{"at_limit"},
			r("LIF-007"), "content", func(v *vb) cval {
				return content(ctText, v.messageID(), t1, cPair{5, cText("blink")}, cPair{16, cUint(1)})
			}},
		{"content_media_expire_after", "View-once media with expire-after MAX_TIMER (7776000).", []string{"at_limit"},
			r("LIF-007"), "content", func(v *vb) cval {
				return content(ctMedia, v.messageID(), t1, cPair{7, v.media(1, "image/jpeg", "", true)},
					cPair{16, cUint(7776000)})
			}},
		{"content_opened", "opened content: two view-once messages opened on another device of the account.", nil,
			r("MED-007"), "content", func(v *vb) cval {
				return content(ctOpened, v.messageID(), t1, cPair{17, v.conversationMessages("bob", "carol")})
			}},
		{"opened_sync", "One view-once message from bob, opened on another device.", nil, r(), "opened-sync",
			func(v *vb) cval { return v.conversationMessages("bob") }},
		{"opened_sync_most", "MAX_RECEIPT_IDS (256) messages.", []string{"at_limit"}, r(), "opened-sync",
			func(v *vb) cval {
				var as []string
				for i := 0; i < 256; i++ {
					as = append(as, fmt.Sprintf("user%d", i%5))
				}
				return v.conversationMessages(as...)
			}},
		// Chapter 16.
		{"group_state_created", "Version 1 of a group, made by alice's device 1: alice (admin), bob and carol, named.",
			nil, r("GRP-001"), "group-state", func(v *vb) cval {
				return groupState{groupID: v.read(16), version: 1, members: wireGroupMembers, author: rcAddr{"alice", 1},
					createdAt: t1, name: "Hiking club"}.cval()
			}},
		{"group_state_changed", "Version 7 of a group, without a name, made by bob's device 3: two admins.", nil,
			r("GRP-001"), "group-state", func(v *vb) cval {
				return groupState{groupID: v.read(16), version: 7, members: sortedMembers(gMember{"amy", false},
					gMember{"bob", true}, gMember{"dave", true}), author: rcAddr{"bob", 3}, createdAt: t1}.cval()
			}},
		{"group_state_most_members", "MAX_GROUP_MEMBERS (1024) members, sorted by account.", []string{"at_limit"},
			r("GRP-001", "MSG-010"), "group-state", func(v *vb) cval {
				var ms []gMember
				for i := 0; i < maxGroupMembers; i++ {
					ms = append(ms, gMember{fmt.Sprintf("user%04d", i), i == 0})
				}
				return groupState{groupID: v.read(16), version: 2, members: ms, author: rcAddr{"user0000", 1},
					createdAt: t1}.cval()
			}},
		{"group_state_longest_name", "A name of MAX_GROUP_NAME (100) bytes, and the largest group version.",
			[]string{"at_limit"}, r(), "group-state", func(v *vb) cval {
				return groupState{groupID: v.read(16), version: 4294967295, members: []gMember{{"alice", true}},
					author: rcAddr{"alice", 1}, createdAt: t1, name: strings.Repeat("ü", 50)}.cval()
			}},
		{"group_member_admin", "An admin.", nil, r(), "group-member",
			func(v *vb) cval { return cArray{cText("alice"), cUint(1)} }},
		{"group_member", "A member.", nil, r(), "group-member",
			func(v *vb) cval { return cArray{cText("bob"), cUint(0)} }},
		{"signed_group_state", "Version 1 signed by alice's device 1 (LABEL_GROUP_STATE || field 1), with alice's " +
			"device list, which lists device 1 with the key that verifies.", nil, r("GRP-001"), "signed-group-state",
			func(v *vb) cval { return cRaw(state(v)) }},
		{"signed_group_state_companion", "Version 2 signed by alice's companion device 2, which her list holds.", nil,
			r("GRP-001"), "signed-group-state", func(v *vb) cval {
				return cRaw(v.signedGroupStateOf(v.read(16), 2, append(append([]gMember{}, wireGroupMembers...),
					gMember{"dave", false}), 2, t1, "Hiking club"))
			}},
		{"group_fetch", "A fetch of a group's states from version 1.", nil, r(), "group-fetch",
			func(v *vb) cval { return cMap{{1, cBytes(v.read(16))}, {2, cUint(1)}} }},
		{"group_fetch_later", "A fetch from version 12.", nil, r(), "group-fetch",
			func(v *vb) cval { return cMap{{1, cBytes(v.read(16))}, {2, cUint(12)}} }},
		{"group_history", "Versions 1 to 3 of a group, in increasing version order.", nil, r("GRP-004"),
			"group-history", func(v *vb) cval { return cMap{{1, history(v, 3)}} }},
		{"group_history_most", "MAX_GROUP_STATES (64) states.", []string{"at_limit"}, r("GRP-004"), "group-history",
			func(v *vb) cval { return cMap{{1, history(v, 64)}} }},
		{"sender_key_distribution", "A sender key at iteration 0: epoch 1, key id 1.", nil, r("GRP-006"),
			"sender-key-distribution", func(v *vb) cval { return cRaw(v.distributionOf(v.read(16), 1, 1, 0)) }},
		{"sender_key_distribution_later", "A sender key given to a new member at the iteration it had reached (57): " +
			"epoch 4, key id 3.", nil, r("GRP-012"), "sender-key-distribution",
			func(v *vb) cval { return cRaw(v.distributionOf(v.read(16), 4, 3, 57)) }},
		{"group_message", "A group message at iteration 2 of key id 1, carrying text content; the signature " +
			"verifies under the key's signing key.", nil, r("GRP-005"), "group-message", func(v *vb) cval {
			return cRaw(v.groupMessageOf(v.read(16), 3, 1, 2, text(v, "Who brings the map?")))
		}},
		{"group_message_body", "The body of a group message at iteration 0.", nil, r("GRP-005"), "group-message-body",
			func(v *vb) cval {
				msg := v.groupMessageOf(v.read(16), 1, 1, 0, text(v, "First!"))
				return cRaw(nodeOf(msg).get(1).bstr)
			}},
		{"group_message_body_ciphertext_16_bytes", "A body whose ciphertext has the smallest length decoding " +
			"allows (16 bytes), and the largest key id and iteration.", []string{"at_limit"}, r(), "group-message-body",
			func(v *vb) cval { return cRaw(groupMessageBody(v.read(16), 2, 4294967295, 4294967295, v.read(16))) }},
		{"group_envelope", "A send-group envelope: a group message of version 4, with the device digest of the " +
			"group devices alice/2, bob/1, bob/3 and carol/1.", nil, r("GRP-009"), "group-envelope",
			func(v *vb) cval { return groupEnvelope(v) }},
		{"group_devices", "The group devices of three member accounts, sorted by account, each with its devices " +
			"sorted.", nil, r("MSG-010"), "group-devices", func(v *vb) cval { return groupDevs() }},
		{"group_devices_empty", "No group device: the sender's own device is the only device of the group.",
			[]string{"at_limit"}, r(), "group-devices", func(v *vb) cval { return cArray{} }},
		{"account_devices", "bob's group devices 1 and 3.", nil, r("MSG-010"), "account-devices",
			func(v *vb) cval { return groupDevicesList("bob", []uint32{1, 3})[0] }},
		{"account_devices_most", "1 + MAX_COMPANIONS (5) devices.", []string{"at_limit"}, r("MSG-010"),
			"account-devices", func(v *vb) cval { return groupDevicesList("dave", []uint32{1, 2, 3, 6, 9})[0] }},
		// Chapter 17.
		{"blob_create", "An upload of a blob of an attachment of 100000 bytes (two chunks).", nil, r("MED-003"),
			"blob-create", func(v *vb) cval {
				b := blobBytes(v, 100000)
				return cMap{{1, cUint(uint64(len(b)))}, {2, cBytes(digest(b))}}
			}},
		{"blob_create_smallest", "The smallest blob (16 bytes: an empty attachment).", []string{"at_limit"}, r(),
			"blob-create", func(v *vb) cval {
				b := blobBytes(v, 0)
				return cMap{{1, cUint(uint64(len(b)))}, {2, cBytes(digest(b))}}
			}},
		{"blob_create_largest", "A blob of MAX_BLOB_SIZE (104857600) bytes.", []string{"at_limit"}, r(), "blob-create",
			func(v *vb) cval { return cMap{{1, cUint(104857600)}, {2, cBytes(v.read(32))}} }},
		{"blob_created", "A new blob: no byte held yet.", nil, r("MED-003"), "blob-created",
			func(v *vb) cval { return cMap{{1, blobID(v)}, {2, cUint(0)}} }},
		{"blob_created_resumed", "A resumed upload: the server holds 524288 bytes of it.", nil, r("MED-003"),
			"blob-created", func(v *vb) cval { return cMap{{1, blobID(v)}, {2, cUint(524288)}} }},
		{"blob_put", "The first 1000 bytes of a blob.", nil, r(), "blob-put", func(v *vb) cval {
			return cMap{{1, blobID(v)}, {2, cUint(0)}, {3, cBytes(blobBytes(v, 2000)[:1000])}}
		}},
		{"blob_progress", "The server holds 1000 bytes.", nil, r(), "blob-progress",
			func(v *vb) cval { return cMap{{1, cUint(1000)}} }},
		{"blob_get", "The first 65552 bytes of a blob (its first chunk).", nil, r(), "blob-get",
			func(v *vb) cval { return cMap{{1, blobID(v)}, {2, cUint(0)}, {3, cUint(65552)}} }},
		{"blob_get_most", "BLOB_CHUNK (524288) bytes from offset 1048576.", []string{"at_limit"}, r(), "blob-get",
			func(v *vb) cval { return cMap{{1, blobID(v)}, {2, cUint(1048576)}, {3, cUint(524288)}} }},
		{"blob_chunk", "The last 32 bytes of a blob of 2032 bytes: fewer than wanted, at the end of the blob.", nil,
			r(), "blob-chunk", func(v *vb) cval {
				b := blobBytes(v, 2016)
				return cMap{{1, cUint(uint64(len(b)))}, {2, cBytes(b[len(b)-32:])}}
			}},
	}
	frames = []wireValid{
		{"frame_send_group", "A send-group request.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(23, 31, encodeCBOR(groupEnvelope(v))) }},
		{"frame_set_group", "A set-group request with a signed group state.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(24, 32, state(v)) }},
		{"frame_get_group", "A get-group request.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(25, 33, encodeCBOR(cMap{{1, cBytes(v.read(16))}, {2, cUint(1)}})) }},
		{"frame_result_group_history", "The result of a get-group: group-history.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 33, encodeCBOR(cMap{{1, history(v, 2)}})) }},
		{"frame_create_blob", "A create-blob request.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			b := blobBytes(v, 300)
			return frameMap(26, 34, encodeCBOR(cMap{{1, cUint(uint64(len(b)))}, {2, cBytes(digest(b))}}))
		}},
		{"frame_result_blob_created", "The result of a create-blob: blob-created.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 34, encodeCBOR(cMap{{1, blobID(v)}, {2, cUint(0)}})) }},
		{"frame_put_blob", "A put-blob request with a whole small blob.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			return frameMap(27, 35, encodeCBOR(cMap{{1, blobID(v)}, {2, cUint(0)}, {3, cBytes(blobBytes(v, 300))}}))
		}},
		{"frame_result_blob_progress", "The result of a put-blob: blob-progress.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(2, 35, encodeCBOR(cMap{{1, cUint(316)}})) }},
		{"frame_get_blob", "A get-blob request.", nil, r("MSG-003"), "frame", func(v *vb) cval {
			return frameMap(28, 36, encodeCBOR(cMap{{1, blobID(v)}, {2, cUint(0)}, {3, cUint(524288)}}))
		}},
		{"frame_result_blob_chunk", "The result of a get-blob: blob-chunk.", nil, r("MSG-003"), "frame",
			func(v *vb) cval {
				b := blobBytes(v, 300)
				return frameMap(2, 36, encodeCBOR(cMap{{1, cUint(uint64(len(b)))}, {2, cBytes(b)}}))
			}},
		{"frame_fetch_device_list", "A fetch-device-list request.", nil, r("MSG-003"), "frame",
			func(v *vb) cval { return frameMap(29, 37, encodeCBOR(cMap{{1, cText("bob")}})) }},
		{"frame_result_device_list", "The result of a fetch-device-list: device-list-result.", nil, r("MSG-003"),
			"frame", func(v *vb) cval {
				devs := v.deviceKeys(1)
				l := v.signedDeviceList(devs[0].priv, encodeCBOR(deviceList("bob", 1, devs, wireT0)))
				return frameMap(2, 37, encodeCBOR(cMap{{1, cBytes(l)}}))
			}},
		{"frame_error_group_stale", "An error that answers a send-group: state.group_stale with the current state.",
			nil, r("MSG-003"), "frame", func(v *vb) cval {
				return frameMap(3, 31, encodeCBOR(cMap{{1, cUint(3016)}, {7, cBytes(state(v))}}))
			}},
	}
	return cases, frames
}
