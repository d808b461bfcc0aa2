package gen

import (
	"bytes"
	"fmt"
)

// deviceListCase is one case of device_lists.json (section 9.2).
type deviceListCase struct {
	caseHead
	Account         string     `json:"account"`
	PrimaryPrivate  hexBytes   `json:"primary_private"`
	Z               hexBytes   `json:"z"`
	RecordedPrimary hexBytes   `json:"recorded_primary,omitempty"`
	Accepted        []hexBytes `json:"accepted"`
	List            hexBytes   `json:"list"`
	Expect          string     `json:"expect"`
	Error           string     `json:"error,omitempty"`
}

var deviceListNotes = notes{
	{"companions", "the list holds companion devices beside device 1"},
	{"at_limit", "the list holds 1 + MAX_COMPANIONS (5) devices, the most it may; the case is valid"},
	{"version_gap", "the list's version is more than one above the highest the device accepted: a device accepts it " +
		"(DEV-001 only forbids a lower version), where a server would require exactly one more (DEV-002)"},
	{"replay", "list is byte for byte a signed device list that the device accepted before"},
	{"resigned", "list holds, byte for byte, the device list (field 1) of an accepted list of the same version, with " +
		"another signature (another z): the same list, signed twice, is not two lists of one version (see the " +
		"description)"},
	{"equivocation", "list has the version of an accepted list and other content: the primary signed two lists of one " +
		"version"},
	{"signature", "the signature is not xeddsa_sign(IK of device 1, LABEL_DEVICE_LIST || field 1, z); the comment says " +
		"what primary_private and z signed instead"},
	{"decode", "list does not decode (chapter 10; field 1 decoded as device-list, a top-level item of its own): the " +
		"error is the decode code of the first fault, DEV-001 step 1"},
	{"check_order", "several checks of DEV-001 fail; the error is that of the first in the order of DEV-001"},
}

const deviceListDescription = "Signed device lists that a device checks (section 15.2, DEV-001) for the account it asked " +
	"for. The device holds recorded_primary (the device-1 identity key it recorded for the account, absent when it has " +
	"none) and has accepted, in order, the lists of accepted (each of which passes DEV-001 in turn; the first one " +
	"accepted sets the recorded key, so recorded_primary is present exactly when accepted is not empty). It then checks " +
	"list, in the order of DEV-001: (1) list decodes as signed-device-list and its field 1 as device-list (chapter 10, " +
	"all stages, with the checks of wire.json: a list of more than 1 + MAX_COMPANIONS devices fails here with " +
	"decode.too_many, before DEV-003's policy.too_many_devices could apply, which is a server's code), and its account " +
	"is account, else auth.device_list_invalid; (2) it lists device 1, else auth.device_list_invalid; (3) " +
	"xeddsa_verify(device 1's key, LABEL_DEVICE_LIST || the bytes of field 1 (the device-list encoding, without the " +
	"byte string's CBOR head), field 2), else auth.bad_signature; (4) device 1's key equals recorded_primary, if any, " +
	"else auth.identity_changed; (5) its version is not lower than the highest accepted, else " +
	"state.device_list_rollback; and when an accepted list has the same version, its field 1 is byte for byte the " +
	"same as that list's field 1, else auth.device_list_invalid (a list signed again, with another signature, is the " +
	"same list). primary_private and z are the key and the randomness of the signature of list: for a valid case, " +
	"xeddsa_sign(primary_private, LABEL_DEVICE_LIST || field 1, z) is its field 2 and X25519(primary_private, 9) is the " +
	"key it lists for device 1; an invalid case's comment says what they signed. Lists of accepted are signed with " +
	"randomness of their own, not given."

// dlCase is a case being built, with what the self-check needs to
// reproduce its signature.
type dlCase struct {
	c deviceListCase
	// signed is the message that primary_private and z signed.
	signed []byte
	// alter turns that signature into the one in list (nil: unchanged).
	alter func(sig []byte) []byte
	// sigOf returns the signature of the list as it was before any change
	// that breaks its decoding; nil: field 2 of list.
	sigOf []byte
}

// dlBuilder draws the keys and signatures of one case from its stream.
type dlBuilder struct {
	v *vb
}

// list returns the encoding of a device list.
func (b *dlBuilder) list(account string, version uint64, devs []deviceKey) []byte {
	return encodeCBOR(deviceList(account, version, devs, wireT0+3_600_000*version))
}

// signed signs a device-list encoding with signer and returns the signed
// list and the z it drew.
func (b *dlBuilder) signed(signer, list []byte) ([]byte, []byte) {
	z := b.v.read(64)
	sig, err := deviceListSignature(signer, list, z)
	b.v.fail(err)
	return encodeCBOR(cMap{{1, cBytes(list)}, {2, cBytes(sig)}}), z
}

func genDeviceLists() (any, error) {
	var cases []dlCase
	type spec struct {
		id, comment string
		flags       []string
		build       func(b *dlBuilder) dlCase
		err         *codeError
	}
	// common builds a case whose list is signed by signer over the list
	// given, and whose history is accepted (signed by primary).
	common := func(b *dlBuilder, account string, signer []byte, list []byte, recorded []byte, accepted ...[]byte) dlCase {
		sl, z := b.signed(signer, list)
		acc := []hexBytes{}
		for _, a := range accepted {
			acc = append(acc, a)
		}
		return dlCase{c: deviceListCase{Account: account, PrimaryPrivate: signer, Z: z, RecordedPrimary: recorded,
			Accepted: acc, List: sl}, signed: append([]byte(labelDeviceList), list...)}
	}
	// history returns bob's primary key, its devices, and the accepted
	// signed lists of the versions given, each listing devices 1 .. n.
	type bob struct {
		devs     []deviceKey // devices 1 .. 6, device 1 the primary
		primary  []byte
		recorded []byte
	}
	newBob := func(b *dlBuilder) bob {
		devs := b.v.deviceKeys(1, 2, 3, 4, 5, 6)
		return bob{devs: devs, primary: devs[0].priv, recorded: devs[0].enc}
	}
	pick := func(devs []deviceKey, ids ...uint32) []deviceKey {
		var out []deviceKey
		for _, id := range ids {
			for _, d := range devs {
				if d.id == id {
					out = append(out, d)
				}
			}
		}
		return out
	}
	acceptedList := func(b *dlBuilder, p bob, version uint64, ids ...uint32) []byte {
		sl, _ := b.signed(p.primary, b.list("bob", version, pick(p.devs, ids...)))
		return sl
	}
	// withSignature returns c with its list's signature replaced by sig
	// (a signature that primary_private and z made over signed).
	resign := func(c dlCase, list, signed []byte, alter func([]byte) []byte) (dlCase, error) {
		sig, err := xeddsaSign(c.c.PrimaryPrivate, signed, c.c.Z)
		if err != nil {
			return c, err
		}
		if alter != nil {
			sig = alter(sig)
		}
		c.c.List = encodeCBOR(cMap{{1, cBytes(list)}, {2, cBytes(sig)}})
		c.signed, c.alter = signed, alter
		return c, nil
	}
	var buildErr error
	must := func(c dlCase, err error) dlCase {
		if err != nil && buildErr == nil {
			buildErr = err
		}
		return c
	}
	flip := func(sig []byte) []byte {
		out := cloneBytes(sig)
		out[32] ^= 0x01 // the low bit of s
		return out
	}
	specs := []spec{
		// Valid.
		{"device_list_first_version", "Version 1 of bob's list, device 1 alone, as registration implies it; the device " +
			"has no list of bob yet and records device 1's key.", nil, func(b *dlBuilder) dlCase {
			p := newBob(b)
			return common(b, "bob", p.primary, b.list("bob", 1, pick(p.devs, 1)), nil)
		}, nil},
		{"device_list_companions_added", "Version 2 adds companions 2 and 3 after the accepted version 1.",
			[]string{"companions"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v1 := acceptedList(b, p, 1, 1)
				return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 1, 2, 3)), p.recorded, v1)
			}, nil},
		{"device_list_next_version", "The device accepted version 2 (devices 1 and 2; the first list it saw of bob); " +
			"version 3 unlinks device 2 and links device 3.", []string{"companions"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			v2 := acceptedList(b, p, 2, 1, 2)
			return common(b, "bob", p.primary, b.list("bob", 3, pick(p.devs, 1, 3)), p.recorded, v2)
		}, nil},
		{"device_list_first_seen_later_version", "The first list the device sees of bob has version 7 (devices 1 and " +
			"5): with no accepted list, no version is too low.", []string{"companions"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			return common(b, "bob", p.primary, b.list("bob", 7, pick(p.devs, 1, 5)), nil)
		}, nil},
		{"device_list_same_list_again", "The list accepted before (version 2), byte for byte: a list of the same " +
			"version that is the same is accepted again.", []string{"companions", "replay"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			c := common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 1, 2)), p.recorded)
			c.c.Accepted = []hexBytes{c.c.List}
			return c
		}, nil},
		{"device_list_same_list_signed_again", "The device list (field 1) of the accepted version 2, byte for byte, " +
			"with a second signature of the primary (another z): the same list, not two lists of one version.",
			[]string{"companions", "resigned"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				list := b.list("bob", 2, pick(p.devs, 1, 2))
				first, _ := b.signed(p.primary, list)
				return common(b, "bob", p.primary, list, p.recorded, first)
			}, nil},
		{"device_list_version_skipped", "The device accepted version 1; version 4 (devices 1 and 4) comes next: it " +
			"missed versions 2 and 3, which DEV-001 allows.", []string{"companions", "version_gap"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				v1 := acceptedList(b, p, 1, 1)
				return common(b, "bob", p.primary, b.list("bob", 4, pick(p.devs, 1, 4)), p.recorded, v1)
			}, nil},
		{"device_list_most_devices", "Version 5 with devices 1 to 5: 1 + MAX_COMPANIONS devices.",
			[]string{"companions", "at_limit"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v4 := acceptedList(b, p, 4, 1, 2, 3, 4)
				return common(b, "bob", p.primary, b.list("bob", 5, pick(p.devs, 1, 2, 3, 4, 5)), p.recorded, v4)
			}, nil},
		// Invalid, one check each.
		{"device_list_wrong_account", "A valid list of account mallory, signed by mallory's primary, given for bob.",
			nil, func(b *dlBuilder) dlCase {
				p := newBob(b)
				return common(b, "bob", p.primary, b.list("mallory", 1, pick(p.devs, 1)), nil)
			}, errDeviceListInvalid},
		{"device_list_without_device_1", "Version 2 of bob's list lists devices 2 and 3 only, signed by device 1's " +
			"key: with no device 1, there is no key to verify under.", []string{"companions"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 2, 3)), nil)
		}, errDeviceListInvalid},
		{"device_list_bad_signature", "Version 2 after the accepted version 1, with the low bit of s of the primary's " +
			"signature flipped (primary_private and z sign LABEL_DEVICE_LIST || field 1; the case flips that bit).",
			[]string{"companions", "signature"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v1 := acceptedList(b, p, 1, 1)
				list := b.list("bob", 2, pick(p.devs, 1, 2))
				c := common(b, "bob", p.primary, list, p.recorded, v1)
				return must(resign(c, list, append([]byte(labelDeviceList), list...), flip))
			}, errBadSignature},
		{"device_list_signature_without_label", "Version 1, signed by the primary over field 1 alone, without " +
			"LABEL_DEVICE_LIST (primary_private and z sign the device-list encoding).", []string{"signature"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				list := b.list("bob", 1, pick(p.devs, 1))
				c := common(b, "bob", p.primary, list, nil)
				return must(resign(c, list, list, nil))
			}, errBadSignature},
		{"device_list_signature_over_byte_string", "Version 1, signed by the primary over LABEL_DEVICE_LIST || the " +
			"CBOR byte string of field 1 with its head (primary_private and z sign that): the signed bytes are the " +
			"device-list encoding alone.", []string{"signature"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			list := b.list("bob", 1, pick(p.devs, 1))
			c := common(b, "bob", p.primary, list, nil)
			return must(resign(c, list, append([]byte(labelDeviceList), encodeCBOR(cBytes(list))...), nil))
		}, errBadSignature},
		{"device_list_signed_by_companion", "Version 3 (devices 1, 2 and 3) after the accepted version 2, signed by " +
			"companion 2's key, which the list holds, instead of device 1's: primary_private is the companion's key.",
			[]string{"companions", "signature"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v2 := acceptedList(b, p, 2, 1, 2)
				return common(b, "bob", p.devs[1].priv, b.list("bob", 3, pick(p.devs, 1, 2, 3)), p.recorded, v2)
			}, errBadSignature},
		{"device_list_identity_changed", "The device accepted version 1 and recorded its device-1 key; version 2 " +
			"lists another device-1 key and is validly signed by it (primary_private): an account deleted and " +
			"registered again, or a lying server.", nil, func(b *dlBuilder) dlCase {
			p := newBob(b)
			v1 := acceptedList(b, p, 1, 1)
			other := b.v.deviceKeys(1)
			return common(b, "bob", other[0].priv, b.list("bob", 2, other), p.recorded, v1)
		}, errIdentityChanged},
		{"device_list_rollback_replay", "The device accepted versions 1, 2 and 3; list is the accepted version 2 " +
			"again, byte for byte: a version lower than the highest accepted.", []string{"companions", "replay"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				v1 := acceptedList(b, p, 1, 1)
				c := common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 1, 2)), p.recorded)
				v3 := acceptedList(b, p, 3, 1, 2, 3)
				c.c.Accepted = []hexBytes{v1, c.c.List, v3}
				return c
			}, errDeviceListRollback},
		{"device_list_rollback", "The device accepted version 4 (devices 1, 3 and 4); list is a version 3 it never " +
			"saw (devices 1 and 3), validly signed: a stale list.", []string{"companions"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			v4 := acceptedList(b, p, 4, 1, 3, 4)
			return common(b, "bob", p.primary, b.list("bob", 3, pick(p.devs, 1, 3)), p.recorded, v4)
		}, errDeviceListRollback},
		{"device_list_same_version_other_devices", "The device accepted version 2 with devices 1 and 2; list is a " +
			"version 2 with devices 1 and 3, validly signed by the primary.", []string{"companions", "equivocation"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				v2 := acceptedList(b, p, 2, 1, 2)
				return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 1, 3)), p.recorded, v2)
			}, errDeviceListInvalid},
		{"device_list_same_version_other_time", "The device accepted version 2 with devices 1 and 2; list is a version " +
			"2 with the same devices and keys and another creation time (field 5), validly signed.",
			[]string{"companions", "equivocation"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v2 := acceptedList(b, p, 2, 1, 2)
				list := encodeCBOR(deviceList("bob", 2, pick(p.devs, 1, 2), wireT0+3_600_000*2+1))
				return common(b, "bob", p.primary, list, p.recorded, v2)
			}, errDeviceListInvalid},
		{"device_list_too_many_devices", "Version 6 with devices 1 to 6, one more than 1 + MAX_COMPANIONS, validly " +
			"signed: field 1 fails to decode as device-list (its field 4 has more elements than it allows), so DEV-001 " +
			"step 1 fails with decode.too_many; a server that decodes it the same way never reaches DEV-003.",
			[]string{"companions", "decode"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v5 := acceptedList(b, p, 5, 1, 2, 3, 4, 5)
				return common(b, "bob", p.primary, b.list("bob", 6, p.devs), p.recorded, v5)
			}, errTooMany},
		{"device_list_truncated", "A valid version 1 without its last byte.", []string{"decode"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			c := common(b, "bob", p.primary, b.list("bob", 1, pick(p.devs, 1)), nil)
			c.sigOf = nodeOf(c.c.List).get(2).bstr
			c.c.List = c.c.List[:len(c.c.List)-1]
			return c
		}, errTruncated},
		{"device_list_devices_unsorted", "Version 2 listing device 2 before device 1, validly signed: field 1 fails " +
			"to decode (MSG-010: sorted by device id).", []string{"companions", "decode"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 2, 1)), nil)
		}, errValueOutOfRange},
		{"device_list_protocol_version_2", "A device list of protocol version 2 (field 1 of device-list), validly " +
			"signed: stage 2 of the decoding of field 1 fails.", []string{"decode"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			m := deviceList("bob", 1, pick(p.devs, 1), wireT0)
			m[0].v = cUint(2)
			return common(b, "bob", p.primary, encodeCBOR(m), nil)
		}, errUnsupportedVersion},
		// Invalid, several checks: the first in the order of DEV-001.
		{"device_list_too_many_devices_and_wrong_account", "Seven devices of account mallory: decoding fails " +
			"first.", []string{"companions", "decode", "check_order"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			devs := append(append([]deviceKey{}, p.devs...), b.v.deviceKeys(7)...)
			return common(b, "bob", p.primary, b.list("mallory", 3, devs), nil)
		}, errTooMany},
		{"device_list_wrong_account_and_bad_signature", "A list of account mallory whose signature has the low bit of " +
			"s flipped: the account is checked first (step 1).", []string{"signature", "check_order"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				list := b.list("mallory", 1, pick(p.devs, 1))
				c := common(b, "bob", p.primary, list, nil)
				return must(resign(c, list, append([]byte(labelDeviceList), list...), flip))
			}, errDeviceListInvalid},
		{"device_list_without_device_1_and_rollback", "After the accepted version 3, a version 2 without device 1: " +
			"step 2 comes before step 5.", []string{"companions", "check_order"}, func(b *dlBuilder) dlCase {
			p := newBob(b)
			v3 := acceptedList(b, p, 3, 1, 2, 3)
			return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 2, 3)), p.recorded, v3)
		}, errDeviceListInvalid},
		{"device_list_bad_signature_and_identity_changed", "After the accepted version 1, a version 2 with another " +
			"device-1 key whose signature by that key has the low bit of s flipped: step 3 comes before step 4.",
			[]string{"signature", "check_order"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v1 := acceptedList(b, p, 1, 1)
				other := b.v.deviceKeys(1)
				list := b.list("bob", 2, other)
				c := common(b, "bob", other[0].priv, list, p.recorded, v1)
				return must(resign(c, list, append([]byte(labelDeviceList), list...), flip))
			}, errBadSignature},
		{"device_list_identity_changed_and_rollback", "After the accepted version 3, a version 1 with another " +
			"device-1 key, validly signed by it: step 4 comes before step 5.", []string{"companions", "check_order"},
			func(b *dlBuilder) dlCase {
				p := newBob(b)
				v3 := acceptedList(b, p, 3, 1, 2, 3)
				other := b.v.deviceKeys(1)
				return common(b, "bob", other[0].priv, b.list("bob", 1, other), p.recorded, v3)
			}, errIdentityChanged},
		{"device_list_rollback_and_equivocation", "The device accepted version 2 (devices 1 and 2), then version 3; " +
			"list is another version 2 (devices 1 and 3): lower than the highest accepted, which step 5 checks first.",
			[]string{"companions", "equivocation", "check_order"}, func(b *dlBuilder) dlCase {
				p := newBob(b)
				v2 := acceptedList(b, p, 2, 1, 2)
				v3 := acceptedList(b, p, 3, 1, 2, 3)
				return common(b, "bob", p.primary, b.list("bob", 2, pick(p.devs, 1, 3)), p.recorded, v2, v3)
			}, errDeviceListRollback},
	}
	for _, s := range specs {
		b := &dlBuilder{v: newVB("Missive v1 test vectors: device_lists: " + s.id)}
		c := s.build(b)
		if b.v.err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, b.v.err)
		}
		if buildErr != nil {
			return nil, fmt.Errorf("%s: %v", s.id, buildErr)
		}
		flags := s.flags
		if flags == nil {
			flags = []string{}
		}
		reqs := []string{"DEV-001"}
		c.c.caseHead = caseHead{ID: s.id, Comment: s.comment, Flags: flags, Requirements: reqs}
		c.c.Expect = "valid"
		if s.err != nil {
			c.c.Expect, c.c.Error = "invalid", s.err.name
			if s.err.name[:7] == "decode." {
				c.c.Requirements = append(c.c.Requirements, "CBOR-004")
			}
			c.c.Requirements = withErr001(c.c.Requirements)
		}
		cases = append(cases, c)
	}
	out := make([]deviceListCase, len(cases))
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		if err := checkDeviceListCase(c); err != nil {
			return nil, fmt.Errorf("%s: %v", c.c.ID, err)
		}
		out[i], heads[i] = c.c, c.c.caseHead
	}
	if err := checkHeads("device_lists", deviceListNotes, heads); err != nil {
		return nil, err
	}
	return newFile("device_lists", deviceListDescription, deviceListNotes, out), nil
}

// dlState is what a device holds about one account's device lists.
type dlState struct {
	recorded []byte            // Enc(IK of device 1), once a list is accepted
	highest  uint64            // the highest version accepted
	fields   map[uint64][]byte // field 1 of the accepted list of each version
}

// deviceListSteps1to4 runs steps 1 to 4 of DEV-001 on a signed device list
// for account and returns the decoded device list, its encoding (field 1)
// and device 1's key.
func deviceListSteps1to4(st *dlState, account string, enc []byte) (dl *item, field1, ik []byte, err error) {
	w, err := loadWireRules()
	if err != nil {
		return nil, nil, nil, err
	}
	// Step 1: it decodes, and its account is the one asked for.
	sl, err := w.decodeWire("signed-device-list", enc)
	if err != nil {
		return nil, nil, nil, err
	}
	field1, sig := sl.get(1).bstr, sl.get(2).bstr
	dl, err = w.decodeWire("device-list", field1)
	if err != nil {
		return nil, nil, nil, err
	}
	if string(dl.get(2).bstr) != account {
		return nil, nil, nil, errDeviceListInvalid
	}
	// Step 2: device 1 is listed.
	for _, d := range dl.get(4).arr {
		if d.get(1).val == 1 {
			ik = d.get(2).bstr
		}
	}
	if ik == nil {
		return nil, nil, nil, errDeviceListInvalid
	}
	// Step 3: the signature verifies under device 1's key.
	u, err := decodeX25519(ik)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := xeddsaVerify(u, append([]byte(labelDeviceList), field1...), sig); err != nil {
		return nil, nil, nil, err
	}
	// Step 4: the recorded key.
	if st.recorded != nil && !bytes.Equal(st.recorded, ik) {
		return nil, nil, nil, errIdentityChanged
	}
	return dl, field1, ik, nil
}

// acceptDeviceList runs DEV-001 on a signed device list for account and,
// when it passes, updates the state.
func acceptDeviceList(st *dlState, account string, enc []byte) error {
	dl, field1, ik, err := deviceListSteps1to4(st, account, enc)
	if err != nil {
		return err
	}
	// Step 5: no rollback, no second list of one version.
	version := dl.get(3).val
	if st.fields != nil && version < st.highest {
		return errDeviceListRollback
	}
	if prev, ok := st.fields[version]; ok && !bytes.Equal(prev, field1) {
		return errDeviceListInvalid
	}
	if st.fields == nil {
		st.fields = map[uint64][]byte{}
	}
	if st.recorded == nil {
		st.recorded = cloneBytes(ik)
	}
	if version > st.highest {
		st.highest = version
	}
	st.fields[version] = cloneBytes(field1)
	return nil
}

// checkDeviceListCase runs a case through acceptDeviceList and checks its
// signature's reproduction and its fields.
func checkDeviceListCase(c dlCase) error {
	st := &dlState{}
	for i, a := range c.c.Accepted {
		if err := acceptDeviceList(st, c.c.Account, a); err != nil {
			return fmt.Errorf("accepted list %d is refused: %v", i, err)
		}
		if i == 0 && !bytes.Equal(st.recorded, c.c.RecordedPrimary) {
			return fmt.Errorf("recorded_primary is not device 1's key of the first accepted list")
		}
	}
	if len(c.c.Accepted) == 0 && c.c.RecordedPrimary != nil {
		return fmt.Errorf("recorded_primary without an accepted list")
	}
	got, err := errName(acceptDeviceList(st, c.c.Account, c.c.List))
	if err != nil {
		return err
	}
	if got != c.c.Error {
		return fmt.Errorf("DEV-001: got %q, want %q", got, c.c.Error)
	}
	// The signature: primary_private and z reproduce it.
	sig := c.sigOf
	if sig == nil {
		it, err := decodeCBOR(c.c.List)
		if err != nil {
			return fmt.Errorf("list does not decode as CBOR, and the case gives no signature: %v", err)
		}
		sig = it.get(2).bstr
	}
	want, err := xeddsaSign(c.c.PrimaryPrivate, c.signed, c.c.Z)
	if err != nil {
		return err
	}
	if c.alter != nil {
		want = c.alter(want)
	}
	if !bytes.Equal(sig, want) {
		return fmt.Errorf("primary_private and z do not reproduce the signature")
	}
	hasFlag := func(f string) bool {
		for _, x := range c.c.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	// The flag signature marks exactly the cases whose signature is not
	// device 1's over LABEL_DEVICE_LIST || field 1.
	if sl, err := decodeCBOR(c.c.List); err == nil {
		field1 := sl.get(1).bstr
		pub, err := x25519Public(c.c.PrimaryPrivate)
		if err != nil {
			return err
		}
		byDevice1 := true
		if dl, err := decodeCBOR(field1); err == nil {
			for _, d := range dl.get(4).arr {
				if d.get(1).val == 1 {
					byDevice1 = bytes.Equal(d.get(2).bstr, encX25519(pub))
				}
			}
		}
		proper := c.alter == nil && byDevice1 && bytes.Equal(c.signed, append([]byte(labelDeviceList), field1...))
		if hasFlag("signature") == proper {
			return fmt.Errorf("the signature flag does not match the signature")
		}
	}
	if c.c.Expect == "valid" {
		// X25519(primary_private) is the key of device 1.
		pub, err := x25519Public(c.c.PrimaryPrivate)
		if err != nil {
			return err
		}
		sl, _ := decodeCBOR(c.c.List)
		dl, _ := decodeCBOR(sl.get(1).bstr)
		if !bytes.Equal(dl.get(4).arr[0].get(2).bstr, encX25519(pub)) {
			return fmt.Errorf("primary_private is not the key of device 1")
		}
		if hasFlag("signature") || hasFlag("decode") || hasFlag("check_order") || hasFlag("equivocation") {
			return fmt.Errorf("a valid case with a flag of an invalid one")
		}
	}
	if hasFlag("replay") {
		found := false
		for _, a := range c.c.Accepted {
			found = found || bytes.Equal(a, c.c.List)
		}
		if !found {
			return fmt.Errorf("flag replay, but list is not an accepted list")
		}
	}
	if hasFlag("decode") != (len(c.c.Error) > 7 && c.c.Error[:7] == "decode.") {
		return fmt.Errorf("the decode flag does not match the error")
	}
	return nil
}
