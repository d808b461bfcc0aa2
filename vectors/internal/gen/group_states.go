package gen

import (
	"bytes"
	"fmt"
	"strings"
)

// This file writes group_states.json (section 9.2): signed group states that
// a device (GRP-001) or the server (GRP-002) checks, after the states and
// device lists it accepted before.

// groupStateCase is one case of group_states.json.
type groupStateCase struct {
	caseHead
	Checker       string     `json:"checker"`
	GroupID       hexBytes   `json:"group_id"`
	Connection    string     `json:"connection,omitempty"`
	Accounts      []string   `json:"accounts,omitempty"`
	AcceptedLists []hexBytes `json:"accepted_lists"`
	Accepted      []hexBytes `json:"accepted"`
	AuthorPrivate hexBytes   `json:"author_private"`
	Z             hexBytes   `json:"z"`
	State         hexBytes   `json:"state"`
	Expect        string     `json:"expect"`
	Error         string     `json:"error,omitempty"`
}

var groupStateNotes = notes{
	{"server", "the server checks the state on set-group (GRP-002): P is its current state of the group, the author must " +
		"be the connection's device, and every member account must exist"},
	{"create", "the state is version 1 of the group"},
	{"added", "the checking device holds no state of the group and the state's version is above 1: it was added, and " +
		"accepts the state as its first (GRP-001 step 4)"},
	{"leave", "the author's account leaves the group: the state is P without it (GRP-001 step 5)"},
	{"companion", "the state is made and signed by a companion device of the author's account"},
	{"at_limit", "the state has MAX_GROUP_MEMBERS (1024) members, the most it may; the case is valid"},
	{"duplicate", "state has field 1 of a state the checker accepted, byte for byte: it is ignored"},
	{"signature", "the state's signature is not xeddsa_sign(the author's identity key, LABEL_GROUP_STATE || field 1, z); " +
		"the comment says what author_private and z signed instead"},
	{"device_list", "the device list of field 3 fails DEV-001 steps 1 to 4, differs from an accepted list of its version, " +
		"or does not list the author device (GRP-001 step 2)"},
	{"version", "the state's version is not the next one after the checker's latest state (GRP-001 step 4)"},
	{"admin", "the rules of admins fail (GRP-001 steps 5 and 6)"},
	{"decode", "state does not decode (GRP-001 step 1: the signed state, its field 1 as group-state, its field 3 as " +
		"signed-device-list): the error is the decode code of the first fault"},
	{"check_order", "several checks fail; the error is that of the first in the order of GRP-001 (and GRP-002)"},
}

const groupStateDescription = "Signed group states that a device (checker \"device\", GRP-001) or the server (checker " +
	"\"server\", GRP-002) checks for the group group_id. The checker has accepted, in order, the signed device lists " +
	"of accepted_lists (each passes DEV-001 for its own account in turn: they give the device-1 key recorded for each " +
	"account, from the first list of the account, and the lists accepted of each version; the server's lists are those " +
	"it holds, with the primary keys it registered), and the signed group states of accepted (each passes the same " +
	"checks as state in turn; the last is P, the checker's latest state of the group; accepted is empty when the " +
	"checker holds no state of the group). A group state's embedded device list is checked, not accepted: it " +
	"is not a list of accepted_lists for later states; but a device that has recorded no key for the author's " +
	"account records the list's device-1 key once the state passes (trust on first use), as a first accepted " +
	"list would, and later lists of the account, embedded or not, must give that key (DEV-001 step 4). The checker then checks state, in the " +
	"order of GRP-001: (1) it decodes (signed-group-state; its field 1 as group-state; its field 3 as " +
	"signed-device-list), else the decode code; and, for a device, its group id is group_id, else auth.group_invalid " +
	"(the server looks the group up by the state's group id, which is group_id); for the server, the author (field 5) " +
	"is the connection's device, connection, else auth.sender_mismatch; (2) the device list of field 3 passes steps 1 " +
	"to 4 of DEV-001 for the author's account, its version may be lower than the highest accepted for the account, " +
	"but a list of a version accepted must be that list's field 1 byte for byte, else auth.device_list_invalid; then it " +
	"lists the author's device id, else auth.device_not_listed; (3) xeddsa_verify(the identity key that list gives the " +
	"author device, LABEL_GROUP_STATE || the bytes of field 1, field 2), else auth.bad_signature; (4) with n the " +
	"state's version and P the latest accepted state: when P exists and n is P's version plus one, the check goes " +
	"on; when n is a version the checker accepted, the state is a duplicate (expect \"duplicate\": ignored, nothing " +
	"changes) if its field 1 is byte for byte that state's field 1, else state.group_rollback; any other n " +
	"(a gap) is state.group_rollback (a device fetches the states in between, GRP-003, which a vector case " +
	"does not model); when no P exists, a device goes on whatever n, while the server goes on only when " +
	"n is 1, else state.unknown_group; (5) the author's account is an admin in P (in the state itself when there is no " +
	"P), else policy.not_admin, unless the author's account is a member of P and the state is P without it, with only " +
	"the version, the author and the time (fields 3, 5 and 6) changed as well (a member leaves); (6) the state has an " +
	"admin, else policy.not_admin; and, for the server, every member account is in accounts, else " +
	"state.unknown_account. P is the checker's latest state, whatever its version (chapter 16 calls it the state of " +
	"version n - 1, the one a valid state follows). author_private and z are the key and the randomness of the " +
	"state's signature: for a valid case, xeddsa_sign(author_private, LABEL_GROUP_STATE || field 1, z) is field 2 and " +
	"X25519(author_private, 9) is the key the embedded list gives the author device; an invalid case's comment says " +
	"what they signed. Device lists, and the states of accepted, are signed with randomness of their own, not given. " +
	"expect is \"valid\" (the checker accepts the state: it becomes the latest), \"duplicate\" (it is ignored), or " +
	"\"invalid\" with error."

// gsAccount is an account of a group_states case: its devices' keys and
// its signed device list (version 2, devices 1 and 2).
type gsAccount struct {
	name string
	devs []deviceKey // devices 1, 2 and 3; the list holds 1 and 2
	list []byte
}

// gsWorld draws the accounts, the group and the states of one case.
type gsWorld struct {
	v     *vb
	gid   []byte
	accts map[string]*gsAccount
}

func (w *gsWorld) account(name string) *gsAccount {
	if a, ok := w.accts[name]; ok {
		return a
	}
	a := &gsAccount{name: name, devs: w.v.deviceKeys(1, 2, 3)}
	a.list = w.v.signedDeviceList(a.devs[0].priv, encodeCBOR(deviceList(name, 2, a.devs[:2], wireT0+60_000)))
	w.accts[name] = a
	return a
}

// gsState is a signed group state being built, with what reproduces its
// signature.
type gsState struct {
	state      groupState
	field1     []byte
	list       []byte // field 3
	signer, z  []byte // author_private and z
	signed     []byte // the message signer and z signed
	alter      func([]byte) []byte
	enc        []byte // the signed state
	overridden bool   // enc is not the encoding of field1, signature, list
}

// sign signs st's field 1 with the key of device author of its author's
// account, over LABEL_GROUP_STATE || field 1, with the account's list.
func (w *gsWorld) sign(st groupState) *gsState {
	a := w.account(st.author.account)
	var signer []byte
	for _, d := range a.devs {
		if d.id == st.author.device {
			signer = d.priv
		}
	}
	s := &gsState{state: st, field1: st.encode(), list: a.list, signer: signer}
	s.signed = groupStateMessage(s.field1)
	return s.finish(w)
}

// finish draws z and computes the signed state.
func (s *gsState) finish(w *gsWorld) *gsState {
	s.z = w.v.read(64)
	sig, err := xeddsaSign(s.signer, s.signed, s.z)
	w.v.fail(err)
	if s.alter != nil {
		sig = s.alter(sig)
	}
	s.enc = signedGroupState(s.field1, sig, s.list)
	return s
}

// st returns a group state of the case's group.
func (w *gsWorld) st(version uint64, author rcAddr, name string, ms ...gMember) groupState {
	return groupState{groupID: w.gid, version: version, members: sortedMembers(ms...), author: author,
		createdAt: wireT0 + 86_400_000 + 60_000*version, name: name}
}

// chain returns the states of the case's group used by most cases:
//
//	v1: alice/1 creates "Hiking club": alice (admin), bob, carol
//	v2: alice/1 adds dave
//	v3: alice/2 promotes bob
//	v4: bob/1 removes carol
//	v5: alice/1 renames the group "Hiking & biking"
func (w *gsWorld) chain(n int) []*gsState {
	a1, a2, b1 := rcAddr{"alice", 1}, rcAddr{"alice", 2}, rcAddr{"bob", 1}
	alice, bob, carol, dave := gMember{"alice", true}, gMember{"bob", false}, gMember{"carol", false}, gMember{"dave", false}
	bobA := gMember{"bob", true}
	all := []groupState{
		w.st(1, a1, "Hiking club", alice, bob, carol),
		w.st(2, a1, "Hiking club", alice, bob, carol, dave),
		w.st(3, a2, "Hiking club", alice, bobA, carol, dave),
		w.st(4, b1, "Hiking club", alice, bobA, dave),
		w.st(5, a1, "Hiking & biking", alice, bobA, dave),
	}
	var out []*gsState
	for _, s := range all[:n] {
		out = append(out, w.sign(s))
	}
	return out
}

func encs(ss []*gsState) []hexBytes {
	out := []hexBytes{}
	for _, s := range ss {
		out = append(out, s.enc)
	}
	return out
}

// gsCase is a case being built.
type gsCase struct {
	server     bool
	connection string
	accounts   []string
	lists      []string // the accounts whose lists are accepted, in order
	extraLists [][]byte // further accepted lists, after those
	accepted   []*gsState
	state      *gsState
	groupID    []byte // when not the world's group
}

func genGroupStates() (any, error) {
	alice, bob, carol, dave := gMember{"alice", true}, gMember{"bob", false}, gMember{"carol", false}, gMember{"dave", false}
	a1, b1, c1 := rcAddr{"alice", 1}, rcAddr{"bob", 1}, rcAddr{"carol", 1}
	members4 := []string{"alice", "bob", "carol", "dave"}
	flip := func(sig []byte) []byte {
		out := cloneBytes(sig)
		out[32] ^= 0x01 // the low bit of s
		return out
	}
	// resign replaces a state's signature: signed is what signer signs,
	// alter (or nil) what is done to the signature.
	resign := func(w *gsWorld, s *gsState, signer, signed []byte, alter func([]byte) []byte) *gsState {
		c := *s
		c.signer, c.signed, c.alter = signer, signed, alter
		return c.finish(w)
	}
	// withList replaces a state's device list.
	withList := func(w *gsWorld, s *gsState, list []byte) *gsState {
		c := *s
		c.list = list
		return c.finish(w)
	}
	type spec struct {
		id, comment string
		flags, reqs []string
		build       func(w *gsWorld) gsCase
		expect      string // "valid", "duplicate", or "" with err
		err         *codeError
	}
	dev := func(w *gsWorld, accepted []*gsState, state *gsState) gsCase {
		return gsCase{lists: members4, accepted: accepted, state: state}
	}
	// otherPrimary is version 1 accepted, then version 2 by alice carrying
	// a list of hers with another device-1 key, validly signed by it, and
	// signed by that key.
	otherPrimary := func(w *gsWorld) gsCase {
		c := w.chain(2)
		other := w.v.deviceKeys(1)
		list := w.v.signedDeviceList(other[0].priv, encodeCBOR(deviceList("alice", 3, other, wireT0+120_000)))
		s := withList(w, c[1], list)
		return dev(w, c[:1], resign(w, s, other[0].priv, s.signed, nil))
	}
	specs := []spec{
		// Valid chains.
		{"group_state_create", "alice's device 1 creates the group (version 1): alice (admin), bob and carol, named " +
			"\"Hiking club\".", []string{"create"}, nil, func(w *gsWorld) gsCase {
			return dev(w, nil, w.chain(1)[0])
		}, "valid", nil},
		{"group_state_add_member", "After version 1, alice adds dave (version 2).", nil, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c[:1], c[1])
		}, "valid", nil},
		{"group_state_promote", "After versions 1 and 2, alice's companion device 2 promotes bob to admin (version 3).",
			[]string{"companion"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(3)
				return dev(w, c[:2], c[2])
			}, "valid", nil},
		{"group_state_remove_member", "After versions 1 to 3, bob, now an admin, removes carol (version 4).", nil, nil,
			func(w *gsWorld) gsCase {
				c := w.chain(4)
				return dev(w, c[:3], c[3])
			}, "valid", nil},
		{"group_state_rename", "After versions 1 to 4, alice renames the group \"Hiking & biking\" (version 5).", nil,
			nil, func(w *gsWorld) gsCase {
				c := w.chain(5)
				return dev(w, c[:4], c[4])
			}, "valid", nil},
		{"group_state_demote", "After versions 1 to 3 (alice and bob admins), alice demotes bob (version 4): alice " +
			"remains an admin.", nil, nil, func(w *gsWorld) gsCase {
			c := w.chain(3)
			return dev(w, c, w.sign(w.st(4, a1, "Hiking club", alice, bob, carol, dave)))
		}, "valid", nil},
		{"group_state_remove_name", "After versions 1 and 2, alice removes the group's name (version 3 has no field 7).",
			nil, nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c, w.sign(w.st(3, a1, "", alice, bob, carol, dave)))
			}, "valid", nil},
		{"group_state_add_and_remove", "After versions 1 and 2, alice removes bob and carol and adds erin as an admin " +
			"in one change (version 3).", nil, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(3, a1, "Hiking club", alice, dave, gMember{"erin", true})))
		}, "valid", nil},
		{"group_state_member_leaves", "After versions 1 and 2, carol, a member but not an admin, leaves: version 3, by " +
			"carol's device 1, is version 2 without carol.", []string{"leave"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(3, c1, "Hiking club", alice, bob, dave)))
		}, "valid", nil},
		{"group_state_admin_leaves", "After versions 1 to 3 (alice and bob admins), alice leaves: bob remains an admin.",
			[]string{"leave"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(3)
				return dev(w, c, w.sign(w.st(4, a1, "Hiking club", gMember{"bob", true}, carol, dave)))
			}, "valid", nil},
		{"group_state_added_later", "The device holds no state of the group; the first it sees is version 4 (by bob, " +
			"an admin in it): it was added, and accepts it as its first state.", []string{"added"}, nil,
			func(w *gsWorld) gsCase { return dev(w, nil, w.chain(4)[3]) }, "valid", nil},
		{"group_state_author_list_older", "After version 1, version 2 by alice carries her device list version 2 " +
			"(devices 1 and 2), while the device has accepted her version 3 (devices 1, 2 and 3): a state may be older " +
			"than the list.", nil, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			a := w.account("alice")
			v3 := w.v.signedDeviceList(a.devs[0].priv, encodeCBOR(deviceList("alice", 3, a.devs, wireT0+120_000)))
			g := dev(w, c[:1], c[1])
			g.extraLists = [][]byte{v3}
			return g
		}, "valid", nil},
		{"group_state_author_unknown", "The device has accepted no device list of alice: the state's own list is all " +
			"it has, and it passes DEV-001 steps 1 to 4 with no recorded key.", []string{"create"}, nil,
			func(w *gsWorld) gsCase {
				g := dev(w, nil, w.chain(1)[0])
				g.lists = []string{"bob", "carol"}
				return g
			}, "valid", nil},
		{"group_state_most_members", "Version 1 with MAX_GROUP_MEMBERS (1024) members: alice (admin) and user0001 " +
			"to user1023.", []string{"create", "at_limit"}, nil, func(w *gsWorld) gsCase {
			ms := []gMember{alice}
			for i := 1; i < maxGroupMembers; i++ {
				ms = append(ms, gMember{fmt.Sprintf("user%04d", i), false})
			}
			return dev(w, nil, w.sign(w.st(1, a1, "", ms...)))
		}, "valid", nil},
		// Duplicates.
		{"group_state_duplicate_latest", "After versions 1 and 2, version 2 again, byte for byte.", []string{"duplicate"},
			nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c, c[1])
			}, "duplicate", nil},
		{"group_state_duplicate_earlier", "After versions 1 to 3, version 1 again, byte for byte.", []string{"duplicate"},
			nil, func(w *gsWorld) gsCase {
				c := w.chain(3)
				return dev(w, c, c[0])
			}, "duplicate", nil},
		{"group_state_duplicate_signed_again", "After versions 1 and 2, the field 1 of version 2 with another signature " +
			"by alice's device 1 (another z): the same state.", []string{"duplicate"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			again := *c[1]
			return dev(w, c, again.finish(w))
		}, "duplicate", nil},
		// One check fails.
		{"group_state_other_group", "After versions 1 and 2 of the group, a valid version 3 of another group, by alice.",
			nil, nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				st := w.st(3, a1, "Hiking club", alice, bob)
				st.groupID = w.v.read(16)
				return dev(w, c, w.sign(st))
			}, "", errGroupInvalid},
		{"group_state_bad_signature", "After version 1, version 2 with the low bit of s of its signature flipped " +
			"(author_private and z sign LABEL_GROUP_STATE || field 1; the case flips that bit).", []string{"signature"},
			nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c[:1], resign(w, c[1], c[1].signer, c[1].signed, flip))
			}, "", errBadSignature},
		{"group_state_signature_without_label", "After version 1, version 2 signed over field 1 alone, without " +
			"LABEL_GROUP_STATE.", []string{"signature"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c[:1], resign(w, c[1], c[1].signer, c[1].field1, nil))
		}, "", errBadSignature},
		{"group_state_signature_over_device_list_label", "After version 1, version 2 signed over LABEL_DEVICE_LIST || " +
			"field 1: a signature made for another purpose.", []string{"signature"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c[:1], resign(w, c[1], c[1].signer, append([]byte(labelDeviceList), c[1].field1...), nil))
		}, "", errBadSignature},
		{"group_state_signed_by_other_device", "After version 1, version 2 names alice's device 1 as its author but is " +
			"signed by her device 2, which her list holds (author_private is device 2's key).", []string{"signature"}, nil,
			func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c[:1], resign(w, c[1], w.account("alice").devs[1].priv, c[1].signed, nil))
			}, "", errBadSignature},
		{"group_state_author_not_listed", "After version 1, version 2 by alice's device 3, signed by device 3's key; " +
			"her list (version 2) holds devices 1 and 2 only.", []string{"device_list"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(1)
			return dev(w, c, w.sign(w.st(2, rcAddr{"alice", 3}, "Hiking club", alice, bob, carol, dave)))
		}, "", errDeviceNotListed},
		{"group_state_list_of_other_account", "After version 1, version 2 by alice's device 1 carries bob's device " +
			"list (valid for bob) instead of alice's.", []string{"device_list"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c[:1], withList(w, c[1], w.account("bob").list))
		}, "", errDeviceListInvalid},
		{"group_state_list_signed_by_other_key", "The device has accepted no list of alice. Version 1 carries a list " +
			"of alice's that lists her device-1 key but is signed by another key (a forged list).",
			[]string{"device_list", "create"}, nil, func(w *gsWorld) gsCase {
				s := w.chain(1)[0]
				a := w.account("alice")
				other := w.v.deviceKeys(1)
				forged := w.v.signedDeviceList(other[0].priv, encodeCBOR(deviceList("alice", 2, a.devs[:2], wireT0+60_000)))
				g := dev(w, nil, withList(w, s, forged))
				g.lists = []string{"bob", "carol", "dave"}
				return g
			}, "", errBadSignature},
		{"group_state_list_primary_changed", "After version 1, the device having recorded alice's device-1 key, " +
			"version 2 carries a list of alice's with another device-1 key, validly signed by it, and is signed by that " +
			"key (author_private): the list passes DEV-001 step 3 and fails step 4.", []string{"device_list"}, nil,
			otherPrimary, "", errIdentityChanged},
		{"group_state_author_key_first_use", "The device has accepted no device list of alice; version 1, by " +
			"her, recorded her device-1 key from its own list (GRP-001 step 2, trust on first use). Version 2 carries " +
			"a list of alice's with another device-1 key, validly signed by it, and is signed by that key " +
			"(author_private), as a server that forged her state would make it: the list passes DEV-001 step 3 and " +
			"fails step 4.", []string{"device_list"}, nil,
			func(w *gsWorld) gsCase {
				g := otherPrimary(w)
				g.lists = []string{"bob", "carol"}
				return g
			}, "", errIdentityChanged},
		{"group_state_list_equivocation", "After version 1, version 2 by alice's device 1 carries a list of alice's " +
			"version 2, validly signed by her primary, that lists devices 1 and 3: another list of a version the device " +
			"accepted (devices 1 and 2).", []string{"device_list"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			a := w.account("alice")
			other := w.v.signedDeviceList(a.devs[0].priv, encodeCBOR(deviceList("alice", 2,
				[]deviceKey{a.devs[0], a.devs[2]}, wireT0+60_000)))
			return dev(w, c[:1], withList(w, c[1], other))
		}, "", errDeviceListInvalid},
		{"group_state_version_gap", "After versions 1 and 2, version 4 (valid after a version 3 that the device " +
			"never saw): a gap.", []string{"version"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(4)
			return dev(w, c[:2], c[3])
		}, "", errGroupRollback},
		{"group_state_rollback", "After versions 1 to 3, a version 2 by alice that the device never accepted (it " +
			"adds erin).", []string{"version"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(3)
			return dev(w, c, w.sign(w.st(2, a1, "Hiking club", alice, bob, carol, gMember{"erin", false})))
		}, "", errGroupRollback},
		{"group_state_same_version_other_members", "After versions 1 and 2, another version 2 by alice: it adds erin " +
			"instead of dave.", []string{"version"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(2, a1, "Hiking club", alice, bob, carol, gMember{"erin", false})))
		}, "", errGroupRollback},
		{"group_state_same_version_other_time", "After versions 1 and 2, version 2 with the same members and another " +
			"time (field 6, one millisecond later).", []string{"version"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			st := c[1].state
			st.createdAt++
			return dev(w, c, w.sign(st))
		}, "", errGroupRollback},
		{"group_state_not_admin", "After versions 1 and 2, bob, a member but not an admin, adds erin.", []string{"admin"},
			nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c, w.sign(w.st(3, b1, "Hiking club", alice, bob, carol, dave, gMember{"erin", false})))
			}, "", errNotAdmin},
		{"group_state_not_admin_promotes_itself", "After versions 1 and 2, bob, not an admin, makes himself one.",
			[]string{"admin"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c, w.sign(w.st(3, b1, "Hiking club", alice, gMember{"bob", true}, carol, dave)))
			}, "", errNotAdmin},
		{"group_state_leave_and_rename", "After versions 1 and 2, carol leaves and renames the group in the same " +
			"state: more than leaving.", []string{"leave", "admin"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(3, c1, "Carol was here", alice, bob, dave)))
		}, "", errNotAdmin},
		{"group_state_leave_and_remove_other", "After versions 1 and 2, carol leaves and removes dave in the same " +
			"state.", []string{"leave", "admin"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(3, c1, "Hiking club", alice, bob)))
		}, "", errNotAdmin},
		{"group_state_non_member_leaves", "After versions 1 and 2, erin, not a member, makes version 3: version 2 with " +
			"nothing left out.", []string{"admin"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			g := dev(w, c, w.sign(w.st(3, rcAddr{"erin", 1}, "Hiking club", alice, bob, carol, dave)))
			g.lists = append(g.lists, "erin")
			return g
		}, "", errNotAdmin},
		{"group_state_no_admin_left", "After versions 1 and 2, alice, the only admin, leaves: the state has no admin " +
			"(step 6).", []string{"leave", "admin"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return dev(w, c, w.sign(w.st(3, a1, "Hiking club", bob, carol, dave)))
		}, "", errNotAdmin},
		{"group_state_last_admin_demoted", "After versions 1 and 2, alice, the only admin, demotes herself.",
			[]string{"admin"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return dev(w, c, w.sign(w.st(3, a1, "Hiking club", gMember{"alice", false}, bob, carol, dave)))
			}, "", errNotAdmin},
		{"group_state_create_by_non_admin", "Version 1 by bob's device 1 that makes alice the admin and bob a member: " +
			"with no P, the author must be an admin in the state itself.", []string{"create", "admin"}, nil,
			func(w *gsWorld) gsCase { return dev(w, nil, w.sign(w.st(1, b1, "", alice, bob, carol))) }, "", errNotAdmin},
		{"group_state_added_later_by_non_admin", "The device holds no state of the group; the first it sees is a " +
			"version 4 by carol, a member but not an admin in it.", []string{"added", "admin"}, nil,
			func(w *gsWorld) gsCase {
				return dev(w, nil, w.sign(w.st(4, c1, "Hiking club", alice, bob, carol, gMember{"erin", false})))
			}, "", errNotAdmin},
		{"group_state_too_many_members", "Version 1 with 1025 members, one more than MAX_GROUP_MEMBERS, validly signed: " +
			"field 1 fails to decode.", []string{"create", "decode"}, nil, func(w *gsWorld) gsCase {
			ms := []gMember{alice}
			for i := 1; i <= maxGroupMembers; i++ {
				ms = append(ms, gMember{fmt.Sprintf("user%04d", i), false})
			}
			return dev(w, nil, w.sign(w.st(1, a1, "", ms...)))
		}, "", errTooMany},
		{"group_state_members_unsorted", "After version 1, version 2 listing carol before bob, validly signed: field " +
			"1 fails to decode (MSG-010: sorted by account).", []string{"decode"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(1)
			st := w.st(2, a1, "Hiking club", alice, bob, carol, dave)
			st.members[1], st.members[2] = st.members[2], st.members[1]
			return dev(w, c, w.sign(st))
		}, "", errValueOutOfRange},
		{"group_state_member_twice", "After version 1, version 2 listing bob twice, as a member and as an admin, " +
			"validly signed: not strictly increasing.", []string{"decode"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(1)
			st := w.st(2, a1, "Hiking club", alice, bob, carol)
			st.members = []gMember{alice, {"bob", true}, bob, carol}
			return dev(w, c, w.sign(st))
		}, "", errValueOutOfRange},
		{"group_state_truncated", "After version 1, a valid version 2 without its last byte.", []string{"decode"}, nil,
			func(w *gsWorld) gsCase {
				c := w.chain(2)
				s := *c[1]
				s.enc = s.enc[:len(s.enc)-1]
				s.overridden = true
				return dev(w, c[:1], &s)
			}, "", errTruncated},
		{"group_state_protocol_version_2", "A version 1 state whose group-state has protocol version 2 (its field 1), " +
			"validly signed.", []string{"create", "decode"}, nil, func(w *gsWorld) gsCase {
			s := w.chain(1)[0]
			m := s.state.cval()
			m[0].v = cUint(2)
			c := *s
			c.field1 = encodeCBOR(m)
			c.signed = groupStateMessage(c.field1)
			return dev(w, nil, c.finish(w))
		}, "", errUnsupportedVersion},
		// Several checks fail: the first in the order of GRP-001.
		{"group_state_other_group_and_bad_signature", "A version 2 of another group whose signature has the low bit " +
			"of s flipped: the group id is checked first (step 1).", []string{"signature", "check_order"}, nil,
			func(w *gsWorld) gsCase {
				c := w.chain(1)
				st := w.st(2, a1, "Hiking club", alice, bob)
				st.groupID = w.v.read(16)
				s := w.sign(st)
				return dev(w, c, resign(w, s, s.signer, s.signed, flip))
			}, "", errGroupInvalid},
		{"group_state_not_listed_and_bad_signature", "After version 1, version 2 by alice's device 3, which her list " +
			"does not hold, signed by device 1's key: step 2 comes before step 3.",
			[]string{"device_list", "signature", "check_order"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(1)
				s := w.sign(w.st(2, rcAddr{"alice", 3}, "Hiking club", alice, bob, carol, dave))
				return dev(w, c, resign(w, s, w.account("alice").devs[0].priv, s.signed, nil))
			}, "", errDeviceNotListed},
		{"group_state_bad_signature_and_gap", "After version 1, a version 3 whose signature has the low bit of s " +
			"flipped: step 3 comes before step 4.", []string{"signature", "version", "check_order"}, nil,
			func(w *gsWorld) gsCase {
				c := w.chain(3)
				return dev(w, c[:1], resign(w, c[2], c[2].signer, c[2].signed, flip))
			}, "", errBadSignature},
		{"group_state_gap_and_not_admin", "After version 1, a version 3 by bob, not an admin in version 1: step 4 " +
			"comes before step 5.", []string{"version", "admin", "check_order"}, nil, func(w *gsWorld) gsCase {
			c := w.chain(1)
			return dev(w, c, w.sign(w.st(3, b1, "Hiking club", alice, bob, carol, dave)))
		}, "", errGroupRollback},
		{"group_state_duplicate_by_non_admin", "After versions 1 to 3, version 3 again: its author alice/2 is an " +
			"admin, but the duplicate rule of step 4 comes first in any case, so nothing is checked after it.",
			[]string{"duplicate", "companion"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(3)
				return dev(w, c, c[2])
			}, "duplicate", nil},
		{"group_state_duplicate_author_no_longer_admin", "After versions 1 to 3, bob demotes alice in version 4; " +
			"then version 2, signed by alice when she was an admin, comes again byte for byte. It is a duplicate: " +
			"the duplicate rule of step 4 comes before the admin check of step 5, which alice would now fail.",
			[]string{"duplicate", "check_order"}, nil, func(w *gsWorld) gsCase {
				c := w.chain(3)
				v4 := w.sign(w.st(4, b1, "Hiking club", gMember{"alice", false}, gMember{"bob", true}, carol, dave))
				cs := append(c, v4)
				return dev(w, cs, c[1])
			}, "duplicate", nil},
		// The server (GRP-002).
		{"group_state_server_create", "The server holds no state of the group; alice's device 1, on its connection, " +
			"creates it; alice, bob and carol exist.", []string{"server", "create"}, []string{"GRP-002"},
			func(w *gsWorld) gsCase {
				return gsCase{server: true, connection: "alice/1", accounts: []string{"alice", "bob", "carol"},
					lists: []string{"alice", "bob", "carol"}, state: w.chain(1)[0]}
			}, "valid", nil},
		{"group_state_server_next_version", "The server holds versions 1 and 2; alice's device 2 sends version 3.",
			[]string{"server", "companion"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(3)
				return gsCase{server: true, connection: "alice/2", accounts: members4, lists: members4, accepted: c[:2],
					state: c[2]}
			}, "valid", nil},
		{"group_state_server_unknown_group", "The server holds no state of the group; bob's device 1 sends version 4, " +
			"valid after versions 1 to 3 (a device would accept it as its first state).", []string{"server"},
			[]string{"GRP-002"}, func(w *gsWorld) gsCase {
				return gsCase{server: true, connection: "bob/1", accounts: members4, lists: members4, state: w.chain(4)[3]}
			}, "", errUnknownGroup},
		{"group_state_server_existing_group", "The server holds versions 1 and 2; dave's device 1 sends a version 1 " +
			"of the same group id that makes dave its admin: a group id it holds.", []string{"server", "create", "version"},
			[]string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return gsCase{server: true, connection: "dave/1", accounts: members4, lists: members4, accepted: c,
					state: w.sign(w.st(1, rcAddr{"dave", 1}, "", gMember{"dave", true}))}
			}, "", errGroupRollback},
		{"group_state_server_gap", "The server holds version 1; alice's device 1 sends version 3.",
			[]string{"server", "version"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return gsCase{server: true, connection: "alice/1", accounts: members4, lists: members4, accepted: c[:1],
					state: w.sign(w.st(3, a1, "Hiking club", alice, bob, carol, dave))}
			}, "", errGroupRollback},
		{"group_state_server_duplicate", "The server holds versions 1 and 2; alice's device 1 sends version 2 again, " +
			"byte for byte (a retry after a lost answer): a duplicate, which changes nothing.",
			[]string{"server", "duplicate"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return gsCase{server: true, connection: "alice/1", accounts: members4, lists: members4, accepted: c,
					state: c[1]}
			}, "duplicate", nil},
		{"group_state_server_sender_mismatch", "The server holds version 1; version 2 by alice's device 1 arrives on " +
			"bob's device 1's connection.", []string{"server"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
			c := w.chain(2)
			return gsCase{server: true, connection: "bob/1", accounts: members4, lists: members4, accepted: c[:1],
				state: c[1]}
		}, "", errSenderMismatch},
		{"group_state_server_sender_mismatch_and_bad_signature", "Version 2 by alice's device 1, with the low bit of s " +
			"of its signature flipped, on alice's device 2's connection: the author is checked after step 1, before " +
			"the signature.", []string{"server", "signature", "check_order"}, []string{"GRP-002"},
			func(w *gsWorld) gsCase {
				c := w.chain(2)
				return gsCase{server: true, connection: "alice/2", accounts: members4, lists: members4, accepted: c[:1],
					state: resign(w, c[1], c[1].signer, c[1].signed, flip)}
			}, "", errSenderMismatch},
		{"group_state_server_unknown_account", "The server holds version 1; alice's device 1 adds zoe, an account that " +
			"does not exist.", []string{"server"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
			c := w.chain(1)
			return gsCase{server: true, connection: "alice/1", accounts: members4, lists: members4, accepted: c,
				state: w.sign(w.st(2, a1, "Hiking club", alice, bob, carol, gMember{"zoe", false}))}
		}, "", errUnknownAccount},
		{"group_state_server_not_admin_and_unknown_account", "The server holds version 1; bob, not an admin, adds zoe, " +
			"who does not exist: step 6 and the admin rules come before the accounts.",
			[]string{"server", "admin", "check_order"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(1)
				return gsCase{server: true, connection: "bob/1", accounts: members4, lists: members4, accepted: c,
					state: w.sign(w.st(2, b1, "Hiking club", alice, bob, carol, gMember{"zoe", false}))}
			}, "", errNotAdmin},
		{"group_state_server_leave", "The server holds versions 1 and 2; carol leaves, on her device 1's connection.",
			[]string{"server", "leave"}, []string{"GRP-002"}, func(w *gsWorld) gsCase {
				c := w.chain(2)
				return gsCase{server: true, connection: "carol/1", accounts: members4, lists: members4, accepted: c,
					state: w.sign(w.st(3, c1, "Hiking club", alice, bob, dave))}
			}, "valid", nil},
	}
	var cases []groupStateCase
	for _, s := range specs {
		w := &gsWorld{v: newVB("Missive v1 test vectors: group_states: " + s.id), accts: map[string]*gsAccount{}}
		w.gid = w.v.read(16)
		g := s.build(w)
		if w.v.err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, w.v.err)
		}
		flags := s.flags
		if flags == nil {
			flags = []string{}
		}
		reqs := s.reqs
		if reqs == nil {
			reqs = []string{"GRP-001"}
		}
		c := groupStateCase{caseHead: caseHead{ID: s.id, Comment: s.comment, Flags: flags, Requirements: reqs},
			Checker: "device", GroupID: w.gid, AcceptedLists: []hexBytes{}, Accepted: encs(g.accepted),
			AuthorPrivate: g.state.signer, Z: g.state.z, State: g.state.enc, Expect: s.expect}
		if g.groupID != nil {
			c.GroupID = g.groupID
		}
		if g.server {
			c.Checker, c.Connection, c.Accounts = "server", g.connection, g.accounts
		}
		for _, a := range g.lists {
			c.AcceptedLists = append(c.AcceptedLists, w.account(a).list)
		}
		for _, l := range g.extraLists {
			c.AcceptedLists = append(c.AcceptedLists, l)
		}
		if s.err != nil {
			c.Expect, c.Error = "invalid", s.err.name
			if strings.HasPrefix(s.err.name, "decode.") {
				c.Requirements = append(c.Requirements, "CBOR-004")
			}
			c.Requirements = withErr001(c.Requirements)
		}
		if err := checkGroupStateCase(&c, g.state); err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("group_states", groupStateNotes, heads); err != nil {
		return nil, err
	}
	return newFile("group_states", groupStateDescription, groupStateNotes, cases), nil
}

// gsChecker is a device or the server checking group states of one group.
type gsChecker struct {
	server     bool
	groupID    []byte
	connection rcAddr
	accounts   map[string]bool
	lists      map[string]*dlState
	accepted   []groupState
	field1s    map[uint64][]byte // field 1 of each accepted version
}

func newGSChecker(c *groupStateCase) (*gsChecker, error) {
	k := &gsChecker{server: c.Checker == "server", groupID: c.GroupID, lists: map[string]*dlState{},
		field1s: map[uint64][]byte{}, accounts: map[string]bool{}}
	if k.server {
		a, err := parseAddr(c.Connection)
		if err != nil {
			return nil, err
		}
		k.connection = a
		for _, x := range c.Accounts {
			k.accounts[x] = true
		}
	}
	w, err := loadWireRules()
	if err != nil {
		return nil, err
	}
	for i, l := range c.AcceptedLists {
		sl, err := w.decodeWire("signed-device-list", l)
		if err != nil {
			return nil, fmt.Errorf("accepted list %d: %v", i, err)
		}
		dl, err := w.decodeWire("device-list", sl.get(1).bstr)
		if err != nil {
			return nil, fmt.Errorf("accepted list %d: %v", i, err)
		}
		acct := string(dl.get(2).bstr)
		if k.lists[acct] == nil {
			k.lists[acct] = &dlState{}
		}
		if err := acceptDeviceList(k.lists[acct], acct, l); err != nil {
			return nil, fmt.Errorf("accepted list %d is refused: %v", i, err)
		}
	}
	for i, s := range c.Accepted {
		dup, err := k.check(s, true)
		if err != nil || dup {
			return nil, fmt.Errorf("accepted state %d is refused (%v) or a duplicate (%v)", i, err, dup)
		}
	}
	return k, nil
}

// check runs GRP-001 (and GRP-002 for the server) on a signed group state;
// it accepts the state when it passes, and reports a duplicate. A state
// accepted before (replay) came on its author's connection.
func (k *gsChecker) check(enc []byte, replay bool) (duplicate bool, err error) {
	w, err := loadWireRules()
	if err != nil {
		return false, err
	}
	// Step 1.
	ss, err := w.decodeWire("signed-group-state", enc)
	if err != nil {
		return false, err
	}
	field1, sig, list := ss.get(1).bstr, ss.get(2).bstr, ss.get(3).bstr
	gi, err := w.decodeWire("group-state", field1)
	if err != nil {
		return false, err
	}
	if _, err := w.decodeWire("signed-device-list", list); err != nil {
		return false, err
	}
	s := parseGroupState(gi)
	if !k.server && !bytes.Equal(s.groupID, k.groupID) {
		return false, errGroupInvalid
	}
	if k.server && !replay && s.author != k.connection {
		return false, errSenderMismatch
	}
	// Step 2.
	st := k.lists[s.author.account]
	if st == nil {
		st = &dlState{}
	}
	dl, lf1, primary, err := deviceListSteps1to4(st, s.author.account, list)
	if err != nil {
		return false, err
	}
	if prev, ok := st.fields[dl.get(3).val]; ok && !bytes.Equal(prev, lf1) {
		return false, errDeviceListInvalid
	}
	var ik []byte
	for _, d := range dl.get(4).arr {
		if d.get(1).val == uint64(s.author.device) {
			ik = d.get(2).bstr
		}
	}
	if ik == nil {
		return false, errDeviceNotListed
	}
	// Step 3.
	u, err := decodeX25519(ik)
	if err != nil {
		return false, err
	}
	if err := xeddsaVerify(u, groupStateMessage(field1), sig); err != nil {
		return false, err
	}
	// Step 4.
	var p *groupState
	if n := len(k.accepted); n > 0 {
		p = &k.accepted[n-1]
	}
	switch {
	case p != nil && s.version == p.version+1:
	case p != nil:
		if prev, ok := k.field1s[s.version]; ok && bytes.Equal(prev, field1) {
			return true, nil
		}
		return false, errGroupRollback
	case k.server && s.version != 1:
		return false, errUnknownGroup
	}
	// Step 5.
	ref := s
	if p != nil {
		ref = *p
	}
	if m := ref.member(s.author.account); m == nil || !m.admin {
		if p == nil || m == nil || !isLeave(*p, s) {
			return false, errNotAdmin
		}
	}
	// Step 6.
	admin := false
	for _, m := range s.members {
		admin = admin || m.admin
	}
	if !admin {
		return false, errNotAdmin
	}
	if k.server {
		for _, m := range s.members {
			if !k.accounts[m.account] {
				return false, errUnknownAccount
			}
		}
	}
	k.accepted = append(k.accepted, s)
	k.field1s[s.version] = cloneBytes(field1)
	if !k.server && st.recorded == nil {
		// Step 2: the author's device-1 key, recorded on first use.
		st.recorded = cloneBytes(primary)
		k.lists[s.author.account] = st
	}
	return false, nil
}

// isLeave reports whether s is p with the author's account left out and
// nothing else changed but the version, the author and the time.
func isLeave(p, s groupState) bool {
	if p.member(s.author.account) == nil || s.member(s.author.account) != nil || p.name != s.name ||
		len(s.members) != len(p.members)-1 {
		return false
	}
	j := 0
	for _, m := range p.members {
		if m.account == s.author.account {
			continue
		}
		if s.members[j] != m {
			return false
		}
		j++
	}
	return true
}

// checkGroupStateCase runs a case through the checker and checks the
// reproduction of its signature and its flags.
func checkGroupStateCase(c *groupStateCase, s *gsState) error {
	k, err := newGSChecker(c)
	if err != nil {
		return err
	}
	dup, err := k.check(c.State, false)
	got, err := errName(err)
	if err != nil {
		return err
	}
	want := c.Error
	switch {
	case got != want:
		return fmt.Errorf("GRP-001: got %q, want %q", got, want)
	case dup != (c.Expect == "duplicate"):
		return fmt.Errorf("GRP-001: duplicate %v, expect %s", dup, c.Expect)
	}
	// author_private and z reproduce the signature.
	sig, err := xeddsaSign(c.AuthorPrivate, s.signed, c.Z)
	if err != nil {
		return err
	}
	if s.alter != nil {
		sig = s.alter(sig)
	}
	if !s.overridden && !bytes.Equal(signedGroupState(s.field1, sig, s.list), c.State) {
		return fmt.Errorf("author_private and z do not reproduce the state")
	}
	has := func(f string) bool {
		for _, x := range c.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	// The signature flag marks exactly the cases whose signature is not the
	// author's over LABEL_GROUP_STATE || field 1.
	it, derr := decodeCBOR(s.enc)
	if derr == nil {
		pub, err := x25519Public(c.AuthorPrivate)
		if err != nil {
			return err
		}
		byAuthor, listed := false, false
		if dl, err := decodeCBOR(s.list); err == nil {
			if l, err := decodeCBOR(dl.get(1).bstr); err == nil {
				if gs, err := decodeCBOR(it.get(1).bstr); err == nil && gs.get(5) != nil &&
					bytes.Equal(l.get(2).bstr, gs.get(5).arr[0].bstr) {
					for _, d := range l.get(4).arr {
						if d.get(1).val == gs.get(5).arr[1].val {
							listed, byAuthor = true, bytes.Equal(d.get(2).bstr, encX25519(pub))
						}
					}
				}
			}
		}
		// When the list is another account's, or does not hold the author
		// device, the comment says whose key signed.
		proper := s.alter == nil && bytes.Equal(s.signed, groupStateMessage(it.get(1).bstr)) && byAuthor
		if listed && has("signature") == proper {
			return fmt.Errorf("the signature flag does not match the signature")
		}
	}
	if has("decode") != strings.HasPrefix(c.Error, "decode.") {
		return fmt.Errorf("the decode flag does not match the error")
	}
	if has("server") != (c.Checker == "server") {
		return fmt.Errorf("the server flag does not match the checker")
	}
	if has("duplicate") != (c.Expect == "duplicate") {
		return fmt.Errorf("the duplicate flag does not match expect")
	}
	if c.Expect == "valid" && (has("signature") || has("decode") || has("check_order") || has("device_list") ||
		has("version") || has("admin")) {
		return fmt.Errorf("a valid case with a flag of an invalid one")
	}
	return nil
}
