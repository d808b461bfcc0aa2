package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// Buckets for groups (spec chapter 16).
var (
	bucketGroups      = []byte("groups")       // group id -> groupRecord (CBOR)
	bucketGroupStates = []byte("group-states") // group id || u32be version -> signed group state
	bucketSenderKeys  = []byte("sender-keys")  // group id || address key -> []group.SenderKey (CBOR), received keys
)

func init() { allBuckets = append(allBuckets, bucketGroups, bucketGroupStates, bucketSenderKeys) }

// groupRecord is what a device keeps about a group besides its states.
type groupRecord struct {
	Version  uint64            `cbor:"1,keyasint"` // the latest accepted state's version
	Removals []uint64          `cbor:"2,keyasint,omitempty"`
	OwnKey   *group.SenderKey  `cbor:"3,keyasint,omitempty"`
	LastKey  uint32            `cbor:"4,keyasint,omitempty"` // the key id of the last own key
	Given    []string          `cbor:"5,keyasint,omitempty"` // addresses ("account/device") the own key went to
	Devices  wire.GroupDevices `cbor:"6,keyasint,omitempty"` // the group devices, as the server last said
	Left     bool              `cbor:"7,keyasint,omitempty"` // this account is no longer a member
}

func addrString(account string, device uint64) string { return fmt.Sprintf("%s/%d", account, device) }

func getGroup(tx *bolt.Tx, gid []byte) (*groupRecord, error) {
	v := tx.Bucket(bucketGroups).Get(gid)
	if v == nil {
		return nil, nil
	}
	var r groupRecord
	if err := cborDec.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func putGroup(tx *bolt.Tx, gid []byte, r *groupRecord) error {
	enc, err := cborEnc.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketGroups).Put(gid, enc)
}

func stateKey(gid []byte, version uint64) []byte {
	return binary.BigEndian.AppendUint32(bytes.Clone(gid), uint32(version))
}

// groupState returns an accepted state of a group, or nil.
func groupState(tx *bolt.Tx, gid []byte, version uint64) *group.State {
	v := tx.Bucket(bucketGroupStates).Get(stateKey(gid, version))
	if v == nil {
		return nil
	}
	var s wire.SignedGroupState
	if wire.Unmarshal(bytes.Clone(v), &s) != nil {
		return nil
	}
	var st wire.GroupState
	if wire.Unmarshal(s.State, &st) != nil {
		return nil
	}
	return &group.State{GroupState: st, Raw: s.State, Signed: bytes.Clone(v)}
}

// txLists gives group.Parse what this device knows of device lists.
type txLists struct{ tx *bolt.Tx }

func (l txLists) Recorded(account string) *keys.PublicKey { return recorded(l.tx, account) }

func (l txLists) Accepted(account string, version uint64) *devices.List {
	if cur := list(l.tx, account); cur != nil && cur.Serial == version {
		return cur
	}
	return nil
}

// errGroupGap says that the device must fetch the states of a group from
// a version on before it can go on (GRP-003).
type errGroupGap struct {
	gid  []byte
	from uint64
	// update says that group-update content, or a sender key of a later
	// epoch from an account the device's state does not list, asks for
	// the fetch, which GRP-017 bounds (Device.updateThrottled).
	update bool
}

func (e errGroupGap) Error() string {
	return fmt.Sprintf("client: group %x: states from version %d are missing", e.gid, e.from)
}

// groupUpdated is group-update content (GRP-016): its state is not
// accepted, only read for its group and version. A version this device
// holds already is nothing new; a later one, or any of a group it holds
// no state of, is an errGroupGap, so that the caller fetches the states
// from the server and processes the content again; once fetched, the
// content is done.
func (d *Device) groupUpdated(tx *bolt.Tx, signed []byte) error {
	var (
		sgs wire.SignedGroupState
		gs  wire.GroupState
	)
	if err := wire.Unmarshal(signed, &sgs); err != nil {
		return errFailed{err}
	}
	if err := wire.Unmarshal(sgs.State, &gs); err != nil {
		return errFailed{err}
	}
	rec, err := getGroup(tx, gs.GroupID)
	switch {
	case err != nil:
		return err
	case rec == nil:
		return errGroupGap{gid: gs.GroupID, from: gs.Serial, update: true}
	case gs.Serial > rec.Version:
		return errGroupGap{gid: gs.GroupID, from: rec.Version + 1, update: true}
	}
	return nil
}

// maxUpdateLiars is how many sending accounts a device remembers a
// fetch for group-update content (or a sender key, GRP-006) of that served
// nothing (GRP-017): beyond
// it, it forgets those older than GROUP_UPDATE_INTERVAL, and while all are
// newer it fetches for no other account's content either.
const maxUpdateLiars = 1024

// updateThrottled reports whether group-update content, or a sender key
// (GRP-006), of account must not make the device fetch group states now: a
// fetch for such content of that account's within GROUP_UPDATE_INTERVAL did
// not reach the content's version (GRP-017).
func (d *Device) updateThrottled(account string) bool {
	if faults.Has(faults.FetchEveryUpdate) {
		return false
	}
	now := d.now()
	d.updateMu.Lock()
	defer d.updateMu.Unlock()
	if last, ok := d.updateLiars[account]; ok {
		return now.Sub(last) < wire.GroupUpdateInterval*time.Second && !now.Before(last)
	}
	return len(d.updateLiars) >= maxUpdateLiars && !d.pruneLiars(now)
}

// pruneLiars forgets the accounts whose interval has ended, with
// updateMu held, and reports whether there is room for another.
func (d *Device) pruneLiars(now time.Time) bool {
	for a, t := range d.updateLiars {
		if now.Sub(t) >= wire.GroupUpdateInterval*time.Second || now.Before(t) {
			delete(d.updateLiars, a)
		}
	}
	return len(d.updateLiars) < maxUpdateLiars
}

// fetchedInVain notes that a fetch for group-update content, or a sender
// key, of account did not reach the content's version: the server has no
// such state, or serves it none.
func (d *Device) fetchedInVain(account string) {
	now := d.now()
	d.updateMu.Lock()
	defer d.updateMu.Unlock()
	if d.updateLiars == nil {
		d.updateLiars = map[string]time.Time{}
	}
	if _, ok := d.updateLiars[account]; ok || len(d.updateLiars) < maxUpdateLiars || d.pruneLiars(now) {
		d.updateLiars[account] = now
	}
}

// acceptGroupState runs GRP-001 on a signed state and stores it. A state
// of a version beyond the next one is an errGroupGap.
func (d *Device) acceptGroupState(tx *bolt.Tx, signed, gid []byte) (*group.State, error) {
	return d.acceptGroupStateTOFU(tx, signed, gid, true)
}

// acceptGroupStateTOFU is acceptGroupState, recording the author's key
// (GRP-001 step 2) only when tofu is set: the mutant accept-pushed-fork
// accepts the states of group-update content without it.
func (d *Device) acceptGroupStateTOFU(tx *bolt.Tx, signed, gid []byte, tofu bool) (*group.State, error) {
	s, err := group.Parse(signed, gid, txLists{tx})
	if err != nil {
		return nil, err
	}
	gid = s.GroupID
	rec, err := getGroup(tx, gid)
	if err != nil {
		return nil, err
	}
	var prev *group.State
	if rec != nil {
		prev = groupState(tx, gid, rec.Version)
		// A gap is never skipped (GRP-003), not even by a state that adds
		// this device's account again after it was removed: get-group
		// serves the states made while it was away (GRP-004), each checked
		// against the one before (GRP-001 step 4), so that no server can
		// fork the group for a device removed from it or that left it.
		if s.Serial > rec.Version+1 {
			return nil, errGroupGap{gid: gid, from: rec.Version + 1}
		}
		if s.Serial < rec.Version {
			if old := groupState(tx, gid, s.Serial); old != nil && bytes.Equal(old.Raw, s.Raw) {
				return nil, group.ErrDuplicate
			}
			return nil, fmt.Errorf("client: group version %d after %d: %w", s.Serial, rec.Version, errcode.StateGroupRollback)
		}
	}
	if err := group.Check(prev, s); err != nil {
		return nil, err
	}
	// GRP-001 step 2: the author's device-1 key, when this device had none
	// recorded for the account, is recorded from the state's list (trust on
	// first use), so that a state forged with another key for the account,
	// or a later list with one, shows as a changed key (DEV-014). Not after
	// the user trusted a new key for the account (Trust, until its next
	// list): the state may be older than the change, and would put the old
	// key back.
	if tofu && recorded(tx, s.Author.Account) == nil && trustedList(tx, s.Author.Account) == nil {
		if err := tx.Bucket(bucketIdentity).Put([]byte(s.Author.Account), s.AuthorPrimary.Encode()); err != nil {
			return nil, err
		}
	}
	if rec == nil {
		rec = &groupRecord{}
	}
	rec.Version = s.Serial
	// The server's last group devices were those of an older state: the
	// next send starts again from the members' lists (GRP-010), and never
	// gives a key to an account the new state removed (GRP-011).
	rec.Devices = nil
	if prev != nil {
		if removed := group.Removed(prev, s); len(removed) > 0 {
			rec.Removals = append(rec.Removals, s.Serial)
			// GRP-011: a new own key before the next message, and the
			// removed accounts' keys deleted.
			if !faults.Has(faults.KeepSenderKeyAfterRemoval) {
				rec.OwnKey, rec.Given = nil, nil
			}
			for _, a := range removed {
				if err := dropSenderKeys(tx, gid, a); err != nil {
					return nil, err
				}
			}
		}
	}
	// Leaving, the device deletes every sender key of the group (GRP-011);
	// the states made while it was away, which it accepts once it is added
	// again (GRP-004), do not remove it again: a key a member gave it
	// meanwhile (GRP-006) is kept.
	wasLeft := rec.Left && prev != nil
	rec.Left = !s.IsMember(d.Account)
	if rec.Left && !wasLeft {
		rec.OwnKey, rec.Given = nil, nil
		if err := dropSenderKeys(tx, gid, ""); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketGroupStates).Put(stateKey(gid, s.Serial), s.Signed); err != nil {
		return nil, err
	}
	return s, putGroup(tx, gid, rec)
}

// dropSenderKeys deletes the received sender keys of a group from the
// devices of account, or of every account when account is "".
func dropSenderKeys(tx *bolt.Tx, gid []byte, account string) error {
	b := tx.Bucket(bucketSenderKeys)
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(gid); k != nil && bytes.HasPrefix(k, gid); k, _ = c.Next() {
		if account == "" || string(k[len(gid)+4:]) == account {
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// dropDeviceSenderKeys deletes the sender keys received from one device,
// in every group.
func dropDeviceSenderKeys(tx *bolt.Tx, account string, device uint32) error {
	suffix := addrKey(account, device)
	b := tx.Bucket(bucketSenderKeys)
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == wire.GroupIDSize+len(suffix) && bytes.HasSuffix(k, suffix) {
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// rekeyGroupsOf marks for a new own sender key every group in which
// account is a member: one of its devices was removed (GRP-011). The
// server's last group devices of those groups name the removed device, so
// they are dropped too: the next send starts from the members' lists.
func rekeyGroupsOf(tx *bolt.Tx, account string) error {
	type upd struct {
		gid []byte
		rec *groupRecord
	}
	var todo []upd
	err := tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
		var r groupRecord
		if err := cborDec.Unmarshal(v, &r); err != nil {
			return err
		}
		s := groupState(tx, k, r.Version)
		if s == nil || !s.IsMember(account) || r.OwnKey == nil && r.Devices == nil {
			return nil
		}
		if !faults.Has(faults.KeepSenderKeyAfterRemoval) {
			r.OwnKey, r.Given = nil, nil
		}
		r.Devices = nil
		todo = append(todo, upd{bytes.Clone(k), &r})
		return nil
	})
	if err != nil {
		return err
	}
	for _, u := range todo {
		if err := putGroup(tx, u.gid, u.rec); err != nil {
			return err
		}
	}
	return nil
}

func getSenderKeys(tx *bolt.Tx, gid []byte, from wire.Address) ([]*group.SenderKey, error) {
	v := tx.Bucket(bucketSenderKeys).Get(append(bytes.Clone(gid), addrKey(from.Account, uint32(from.Device))...))
	if v == nil {
		return nil, nil
	}
	var ks []*group.SenderKey
	return ks, cborDec.Unmarshal(v, &ks)
}

func putSenderKeys(tx *bolt.Tx, gid []byte, from wire.Address, ks []*group.SenderKey) error {
	enc, err := cborEnc.Marshal(ks)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketSenderKeys).Put(append(bytes.Clone(gid), addrKey(from.Account, uint32(from.Device))...), enc)
}

// acceptSenderKey applies a sender-key distribution from a device (GRP-006).
func (d *Device) acceptSenderKey(tx *bolt.Tx, from wire.Address, dist *wire.SenderKeyDistribution) error {
	rec, err := getGroup(tx, dist.GroupID)
	if err != nil {
		return err
	}
	if rec == nil {
		// GRP-006: the states first; GRP-017 bounds the fetches, made-up
		// groups' included.
		return errGroupGap{gid: dist.GroupID, from: 1, update: true}
	}
	if s := groupState(tx, dist.GroupID, rec.Version); s == nil || !s.IsMember(from.Account) {
		if dist.Epoch > rec.Version && !faults.Has(faults.NoKeyEpochFetch) {
			// GRP-006: a member of a state this device does not hold yet
			// (one added while it was away from the group, or before its
			// group-update content came): the states first, as for
			// group-update content (GRP-017 bounds the fetches).
			return errGroupGap{gid: dist.GroupID, from: rec.Version + 1, update: true}
		}
		return fmt.Errorf("client: sender key from %s: %w", from.Account, errcode.PolicyNotMember)
	}
	k, err := group.FromDistribution(dist)
	if err != nil {
		return err
	}
	ks, err := getSenderKeys(tx, dist.GroupID, from)
	if err != nil {
		return err
	}
	for _, have := range ks {
		if have.KeyID == k.KeyID {
			return nil
		}
	}
	// The MAX_SENDER_KEYS keys with the highest ids, in whatever order
	// they came (GRP-006).
	ks = append(ks, k)
	slices.SortFunc(ks, func(a, b *group.SenderKey) int { return cmp.Compare(a.KeyID, b.KeyID) })
	if len(ks) > group.MaxKeys {
		ks = ks[len(ks)-group.MaxKeys:]
	}
	if !slices.Contains(ks, k) {
		return nil // older than every key kept
	}
	return putSenderKeys(tx, dist.GroupID, from, ks)
}

// decryptGroup runs GRP-007 on a group delivery and returns the content
// with the group's id and the message's group version. The new sender key
// is stored in tx; the caller rolls tx back if anything after fails.
func (d *Device) decryptGroup(tx *bolt.Tx, del *wire.Delivery) ([]byte, *group.Message, error) {
	m, err := group.ParseMessage(del.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	rec, err := getGroup(tx, m.GroupID)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		return nil, nil, errGroupGap{gid: m.GroupID, from: 1}
	}
	if m.Serial > rec.Version {
		return nil, nil, errGroupGap{gid: m.GroupID, from: rec.Version + 1}
	}
	st := groupState(tx, m.GroupID, m.Serial)
	if st == nil {
		return nil, nil, fmt.Errorf("client: group version %d not held: %w", m.Serial, errcode.StateUnknownGroup)
	}
	if !st.IsMember(del.Sender.Account) {
		return nil, nil, fmt.Errorf("client: group message from %s: %w", del.Sender.Account, errcode.PolicyNotMember)
	}
	ks, err := getSenderKeys(tx, m.GroupID, del.Sender)
	if err != nil {
		return nil, nil, err
	}
	i := slices.IndexFunc(ks, func(k *group.SenderKey) bool { return uint64(k.KeyID) == m.KeyID })
	if i < 0 {
		return nil, nil, fmt.Errorf("client: sender key %d of %s/%d: %w", m.KeyID, del.Sender.Account, del.Sender.Device, errcode.StateUnknownSenderKey)
	}
	k := ks[i]
	for _, v := range rec.Removals {
		if k.Epoch < v && v <= m.Serial {
			return nil, nil, fmt.Errorf("client: sender key of epoch %d after the removal at %d: %w", k.Epoch, v, errcode.StateStaleSenderKey)
		}
	}
	pt, next, err := group.Decrypt(k, m)
	if err != nil {
		return nil, nil, err
	}
	ks[i] = next
	return pt, m, putSenderKeys(tx, m.GroupID, del.Sender, ks)
}

// GroupInfo describes a group this device is in, or was.
type GroupInfo struct {
	ID      []byte
	Name    string
	Version uint64
	Members []wire.GroupMember
	Left    bool
}

// Groups returns the groups this device knows.
func (d *Device) Groups() ([]GroupInfo, error) {
	var out []GroupInfo
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGroups).ForEach(func(k, v []byte) error {
			var r groupRecord
			if err := cborDec.Unmarshal(v, &r); err != nil {
				return err
			}
			s := groupState(tx, k, r.Version)
			if s == nil {
				return nil
			}
			g := GroupInfo{ID: bytes.Clone(k), Version: r.Version, Members: s.Members, Left: r.Left}
			if s.Name != nil {
				g.Name = *s.Name
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

// Group returns the latest state this device accepted for a group.
func (d *Device) Group(gid []byte) (*group.State, error) {
	var s *group.State
	err := d.db.View(func(tx *bolt.Tx) error {
		r, err := getGroup(tx, gid)
		if err != nil || r == nil {
			return err
		}
		s = groupState(tx, gid, r.Version)
		return nil
	})
	if err == nil && s == nil {
		err = fmt.Errorf("client: group %x: %w", gid, errcode.StateUnknownGroup)
	}
	return s, err
}

// FindGroup returns the id of the group whose id starts with prefix (hex
// bytes) or whose name is name.
func (d *Device) FindGroup(nameOrPrefix string) ([]byte, error) {
	gs, err := d.Groups()
	if err != nil {
		return nil, err
	}
	var found [][]byte
	for _, g := range gs {
		if g.Name == nameOrPrefix || (len(nameOrPrefix) >= 4 && bytes.HasPrefix([]byte(fmt.Sprintf("%x", g.ID)), []byte(nameOrPrefix))) {
			found = append(found, g.ID)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("client: no group %q", nameOrPrefix)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("client: %d groups match %q; use the id", len(found), nameOrPrefix)
}

// syncGroup fetches the states of a group from a version on and accepts
// them (GRP-003).
func (c *Conn) syncGroup(ctx context.Context, gid []byte, from uint64) error {
	for moved := false; ; moved = true {
		start := from
		var h wire.GroupHistory
		if err := c.callNeeded(ctx, wire.FrameGetGroup, &wire.GroupFetch{GroupID: gid, From: from}, &h); err != nil {
			if moved && errcode.Of(err) == errcode.PolicyNotMember {
				return nil // nothing after the last page: GRP-004 refuses a fetch that would return none
			}
			return err
		}
		for _, signed := range h.States {
			var s *group.State
			err := c.d.db.Update(func(tx *bolt.Tx) error {
				var err error
				s, err = c.d.acceptGroupState(tx, signed, gid)
				return err
			})
			if err != nil && !errors.Is(err, group.ErrDuplicate) {
				return err
			}
			if s != nil {
				from = s.Serial + 1
			}
		}
		// A page that moved nothing forward would come again unchanged: a
		// server that answers with states already held cannot keep the
		// device asking. A page shorter than MAX_GROUP_STATES is the end
		// only when one more state would have fitted its frame: the server
		// serves fewer to fit one (GRP-004), about 28 of the largest.
		if from == start || !mayBeCut(h.States) {
			return nil
		}
	}
}

// maxSignedGroupState is above the size of any signed group state.
const maxSignedGroupState = wire.SignedGroupStateBound

// mayBeCut reports whether a group-history page may have been cut short of
// states the server holds: it holds MAX_GROUP_STATES, or one more state
// might not have fitted MAX_FRAME_SIZE with it (GRP-004).
func mayBeCut(states [][]byte) bool {
	if len(states) >= wire.MaxGroupStates {
		return true
	}
	size := 9 // the map, its key and the array's head, as the server counts
	for _, s := range states {
		size += len(s) + 9
	}
	return size+maxSignedGroupState+9 > wire.MaxFrameSize-64
}

// ownListSigned returns this account's latest accepted signed device list.
func (c *Conn) ownListSigned() ([]byte, error) {
	l := c.d.DeviceList(c.d.Account)
	if l == nil {
		return nil, errors.New("client: no device list of this account yet")
	}
	return l.Signed, nil
}

// SignGroupState signs the next version of a group this device holds,
// with members, as publishGroup would, but publishes nothing: the
// conformance runner sends it as group-update content of a state the
// server never saw (GRP-016).
func (d *Device) SignGroupState(gid []byte, members []wire.GroupMember) ([]byte, error) {
	cur, err := d.Group(gid)
	if err != nil {
		return nil, err
	}
	l := d.DeviceList(d.Account)
	if l == nil {
		return nil, errors.New("client: no device list of this account yet")
	}
	name := ""
	if cur.Name != nil {
		name = *cur.Name
	}
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b wire.GroupMember) int { return cmpString(a.Account, b.Account) })
	s, err := group.Sign(d.identity, d.Address(), l.Signed, gid, cur.Serial+1, ms, name, uint64(d.now().UnixMilli()), d.rand)
	if err != nil {
		return nil, err
	}
	return s.Signed, nil
}

// CreateGroup creates a group with this account as its admin and the
// given accounts as members, and tells them. It returns the group id.
func (c *Conn) CreateGroup(ctx context.Context, name string, members ...string) ([]byte, error) {
	gid := make([]byte, wire.GroupIDSize)
	if _, err := io.ReadFull(c.d.rand, gid); err != nil {
		return nil, err
	}
	ms := []wire.GroupMember{{Account: c.d.Account, Role: wire.RoleAdmin}}
	for _, a := range sortedAccounts(members) {
		if a != c.d.Account {
			ms = append(ms, wire.GroupMember{Account: a, Role: wire.RoleMember})
		}
	}
	slices.SortFunc(ms, func(a, b wire.GroupMember) int { return cmpString(a.Account, b.Account) })
	if err := c.publishGroup(ctx, gid, nil, 1, ms, name); err != nil {
		return nil, err
	}
	return gid, nil
}

func cmpString(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }

// ChangeGroup makes the next state of a group with change applied to its
// member list, publishes it and tells every account of the old and new
// states. Adding, removing, promoting and leaving are changes.
func (c *Conn) ChangeGroup(ctx context.Context, gid []byte, change func([]wire.GroupMember) ([]wire.GroupMember, error)) error {
	for attempt := 0; ; attempt++ {
		cur, err := c.d.Group(gid)
		if err != nil {
			return err
		}
		ms, err := change(slices.Clone(cur.Members))
		if err != nil {
			return err
		}
		slices.SortFunc(ms, func(a, b wire.GroupMember) int { return cmpString(a.Account, b.Account) })
		name := ""
		if cur.Name != nil {
			name = *cur.Name
		}
		err = c.publishGroup(ctx, gid, cur, cur.Serial+1, ms, name)
		var re *transport.RemoteError
		if errors.As(err, &re) && errcode.Code(re.Body.Code) == errcode.StateGroupRollback && attempt < 2 {
			// Another admin changed it first: catch up and try again.
			if err := c.syncGroup(ctx, gid, cur.Serial+1); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// publishGroup signs a state, has the server accept it (set-group),
// accepts it here, and sends it as group-update content to the accounts
// of the previous and the new state and to this account's other devices
// (section 16.5).
func (c *Conn) publishGroup(ctx context.Context, gid []byte, prev *group.State, version uint64, ms []wire.GroupMember, name string) error {
	own, err := c.ownListSigned()
	if err != nil {
		return err
	}
	s, err := group.Sign(c.d.identity, c.d.Address(), own, gid, version, ms, name, uint64(c.d.now().UnixMilli()), c.d.rand)
	if err != nil {
		return err
	}
	var sgs wire.SignedGroupState
	if err := wire.Unmarshal(s.Signed, &sgs); err != nil {
		return err
	}
	if err := c.call(ctx, wire.FrameSetGroup, &sgs, new(wire.Empty)); err != nil {
		return err
	}
	err = c.d.db.Update(func(tx *bolt.Tx) error {
		_, err := c.d.acceptGroupState(tx, s.Signed, gid)
		return err
	})
	if err != nil && !errors.Is(err, group.ErrDuplicate) {
		return err
	}
	accounts := s.Accounts()
	if prev != nil {
		accounts = append(accounts, prev.Accounts()...)
	}
	signed := bytes.Clone(s.Signed)
	for _, a := range sortedAccounts(accounts) {
		content := &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}
		var err error
		if a == c.d.Account {
			err = c.syncOwnControl(ctx, content)
		} else {
			err = c.sendControl(ctx, a, content)
		}
		if err != nil {
			c.emit(Event{Kind: EventError, Err: fmt.Errorf("telling %s about the group: %w", a, err)})
		}
	}
	return nil
}

// sendControl sends content to every device of account in a control
// envelope.
func (c *Conn) sendControl(ctx context.Context, account string, content *wire.Content) error {
	id, err := c.newID()
	if err != nil {
		return err
	}
	content.Version, content.MessageID, content.SentAt = wire.ProtocolVersion, id, uint64(c.d.now().UnixMilli())
	_, _, err = c.deliverContent(ctx, account, wire.EnvelopeControl, content, DefaultTTL)
	return err
}

// syncOwnControl sends content to this account's other devices in a
// control envelope.
func (c *Conn) syncOwnControl(ctx context.Context, content *wire.Content) error {
	if !c.d.hasOtherOwn() {
		return nil
	}
	return c.sendControl(ctx, c.d.Account, content)
}

// AddMembers adds accounts to a group as members.
func (c *Conn) AddMembers(ctx context.Context, gid []byte, accounts ...string) error {
	return c.ChangeGroup(ctx, gid, func(ms []wire.GroupMember) ([]wire.GroupMember, error) {
		for _, a := range accounts {
			if !slices.ContainsFunc(ms, func(m wire.GroupMember) bool { return m.Account == a }) {
				ms = append(ms, wire.GroupMember{Account: a, Role: wire.RoleMember})
			}
		}
		return ms, nil
	})
}

// RemoveMember removes an account from a group; removing this account is
// leaving.
func (c *Conn) RemoveMember(ctx context.Context, gid []byte, account string) error {
	return c.ChangeGroup(ctx, gid, func(ms []wire.GroupMember) ([]wire.GroupMember, error) {
		out := slices.DeleteFunc(ms, func(m wire.GroupMember) bool { return m.Account == account })
		if len(out) == len(ms) && account != "" {
			return nil, fmt.Errorf("client: %s is not a member", account)
		}
		return out, nil
	})
}

// Leave leaves a group.
func (c *Conn) Leave(ctx context.Context, gid []byte) error {
	return c.RemoveMember(ctx, gid, c.d.Account)
}

// SetRole makes an account of a group an admin or a member.
func (c *Conn) SetRole(ctx context.Context, gid []byte, account string, admin bool) error {
	return c.ChangeGroup(ctx, gid, func(ms []wire.GroupMember) ([]wire.GroupMember, error) {
		for i := range ms {
			if ms[i].Account == account {
				ms[i].Role = wire.RoleMember
				if admin {
					ms[i].Role = wire.RoleAdmin
				}
				return ms, nil
			}
		}
		return nil, fmt.Errorf("client: %s is not a member", account)
	})
}

// groupDevices returns the group devices as this device sees them: the
// server's last answer if any, else the listed devices of the members.
func (c *Conn) groupDevices(tx *bolt.Tx, gid []byte, rec *groupRecord, s *group.State) wire.GroupDevices {
	if rec.Devices != nil {
		// Only members' devices ever get the key (GRP-010, GRP-011).
		return slices.DeleteFunc(slices.Clone(rec.Devices), func(ad wire.AccountDevices) bool { return s == nil || !s.IsMember(ad.Account) })
	}
	var out wire.GroupDevices
	for _, a := range s.Accounts() {
		l := list(tx, a)
		if l == nil {
			continue
		}
		var ids []uint64
		for _, id := range l.IDs() {
			if a == c.d.Account && id == c.d.ID {
				continue
			}
			ids = append(ids, uint64(id))
		}
		if len(ids) > 0 {
			out = append(out, wire.AccountDevices{Account: a, Devices: ids})
		}
	}
	return out
}

// sendGroup sends content to a group (section 16.4): it makes or renews
// this device's sender key, gives it to every group device that lacks it,
// and sends one group message, correcting its view of the group when the
// server says it is stale. It returns the acceptance time and the group
// devices.
func (c *Conn) sendGroup(ctx context.Context, gid []byte, content *wire.Content, ttl uint64) (uint64, wire.GroupDevices, uint64, error) {
	pt, err := wire.Marshal(content)
	if err != nil {
		return 0, nil, 0, err
	}
	for attempt := 0; ; attempt++ {
		var (
			rec  *groupRecord
			s    *group.State
			devs wire.GroupDevices
		)
		err := c.d.db.Update(func(tx *bolt.Tx) error {
			var err error
			if rec, err = getGroup(tx, gid); err != nil {
				return err
			}
			if rec == nil {
				return fmt.Errorf("client: group %x: %w", gid, errcode.StateUnknownGroup)
			}
			if rec.Left {
				return fmt.Errorf("client: group %x: %w", gid, errcode.PolicyNotMember)
			}
			s = groupState(tx, gid, rec.Version)
			if rec.OwnKey == nil {
				rec.LastKey++
				k, err := group.New(gid, rec.Version, rec.LastKey, c.d.rand)
				if err != nil {
					return err
				}
				rec.OwnKey, rec.Given = k, nil
				if err := putGroup(tx, gid, rec); err != nil {
					return err
				}
			}
			devs = c.groupDevices(tx, gid, rec, s)
			return nil
		})
		if err != nil {
			return 0, nil, 0, err
		}
		// Give the key to the accounts with a device that lacks it
		// (GRP-010, GRP-012), before the message that needs it.
		dist := rec.OwnKey.Distribution()
		for _, ad := range devs {
			lacks := false
			for _, dev := range ad.Devices {
				if !slices.Contains(rec.Given, addrString(ad.Account, dev)) {
					lacks = true
				}
			}
			if !lacks {
				continue
			}
			if err := c.ensureSessions(ctx, ad.Account, ad.Devices); err != nil {
				return 0, nil, 0, err
			}
			d := dist
			content := &wire.Content{Type: wire.ContentSenderKey, SenderKey: &d}
			if err := c.sendControl(ctx, ad.Account, content); err != nil {
				return 0, nil, 0, fmt.Errorf("client: sender key for %s: %w", ad.Account, err)
			}
			for _, dev := range ad.Devices {
				rec.Given = append(rec.Given, addrString(ad.Account, dev))
			}
		}
		digest, err := group.Digest(gid, devs)
		if err != nil {
			return 0, nil, 0, err
		}
		// Encrypt with the own key and store it advanced before sending.
		// The sessions' fetches may have accepted a list without a device
		// of a member, or a new state may have come: the key it gave is
		// then no longer the key, and the send starts again (GRP-011).
		var msg []byte
		err = c.d.db.Update(func(tx *bolt.Tx) error {
			cur, err := getGroup(tx, gid)
			if err != nil {
				return err
			}
			if cur.OwnKey == nil || cur.OwnKey.KeyID != rec.OwnKey.KeyID || cur.Version != rec.Version || cur.Left {
				return errRekeyed
			}
			cur.Given = rec.Given
			msg, err = cur.OwnKey.Encrypt(cur.Version, pt, c.d.rand)
			if err != nil {
				return err
			}
			return putGroup(tx, gid, cur)
		})
		if errors.Is(err, errRekeyed) && attempt < maxFanoutRetries {
			continue
		}
		if err != nil {
			return 0, nil, 0, err
		}
		env := &wire.GroupEnvelope{Version: wire.ProtocolVersion, MessageID: content.MessageID, Sender: c.d.Address(),
			GroupID: gid, Serial: rec.Version, Digest: digest, Message: msg, Priority: wire.PriorityNormal, TTL: ttl,
			SentAt: content.SentAt}
		var res wire.SendResult
		err = c.call(ctx, wire.FrameSendGroup, env, &res)
		var re *transport.RemoteError
		if errors.As(err, &re) && attempt < maxFanoutRetries {
			switch {
			case errcode.Code(re.Body.Code) == errcode.StateGroupStale && re.Body.GroupState != nil:
				err := c.d.db.Update(func(tx *bolt.Tx) error {
					_, err := c.d.acceptGroupState(tx, *re.Body.GroupState, gid)
					return err
				})
				var gap errGroupGap
				if errors.As(err, &gap) {
					err = c.syncGroup(ctx, gid, gap.from)
				}
				if err != nil && !errors.Is(err, group.ErrDuplicate) {
					return 0, nil, 0, err
				}
				continue
			case re.Body.Group != nil:
				devs := *re.Body.Group
				// The group devices are the devices of the members: a
				// server that names another account does not get it this
				// device's sender key (GRP-010).
				for _, ad := range devs {
					if s == nil || !s.IsMember(ad.Account) {
						return 0, nil, 0, fmt.Errorf("client: the server's devices of group %x name %s: %w", gid, ad.Account, errcode.PolicyNotMember)
					}
				}
				err := c.d.db.Update(func(tx *bolt.Tx) error {
					cur, err := getGroup(tx, gid)
					if err != nil {
						return err
					}
					cur.Devices = devs
					return putGroup(tx, gid, cur)
				})
				if err != nil {
					return 0, nil, 0, err
				}
				continue
			}
		}
		if err != nil {
			return 0, nil, 0, err
		}
		return res.AcceptedAt, devs, rec.Version, nil
	}
}

// errRekeyed reports a group whose own sender key or state changed while
// a send gave the key out.
var errRekeyed = errors.New("client: the group's sender key changed during the send")

// ensureSessions makes sure this device has a session with each of the
// given devices of account, fetching bundles for the others; the list that
// comes with them must name them (DEV-004).
func (c *Conn) ensureSessions(ctx context.Context, account string, devs []uint64) error {
	var missing []uint32
	c.d.db.View(func(tx *bolt.Tx) error {
		have := c.d.sessionDevices(tx, account)
		for _, d := range devs {
			if !slices.Contains(have, uint32(d)) {
				missing = append(missing, uint32(d))
			}
		}
		return nil
	})
	if len(missing) == 0 {
		return nil
	}
	if err := c.fetch(ctx, account, missing); err != nil {
		return err
	}
	var still []uint32
	c.d.db.View(func(tx *bolt.Tx) error {
		have := c.d.sessionDevices(tx, account)
		for _, d := range missing {
			if !slices.Contains(have, d) {
				still = append(still, d)
			}
		}
		return nil
	})
	if len(still) > 0 {
		return fmt.Errorf("client: %s devices %v: %w", account, still, errcode.AuthDeviceNotListed)
	}
	return nil
}
