package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flynn/noise"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/group"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/pqxdh"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// rawVerb runs the verbs of reference actors that send what a correct
// device would not, or read what the reference client does not show, so
// that a scenario can see a server refuse or withhold it. It reports
// whether verb is one of them.
//
//	[!] NAME group-fetch [CODE] @GROUP FROM [V...] get-group from a version; with versions, the states served must be
//	                                              those, in that order (GRP-004)
//	! NAME group-send-raw CODE @GROUP VERSION     send-group with that version and a digest of zeros (GRP-009)
//	! NAME flood CODE ACCOUNT N                   up to N sends at once, the first SEND_BURST messages "flood 0", "flood 1", ...,
//	                                              the rest refused state.fanout_mismatch; one must fail with CODE (SRV-016)
//	! NAME send-closes CODE ACCOUNT TEXT...       a send refused with CODE and a retry time, after which the server
//	                                              closes the connection within 5 s (SRV-017)
//	NAME last-seen ACCOUNT none|shown             whether presence gives a last-seen time (SRV-014)
//	NAME deaf on|off                              drop deliveries unread and unacknowledged, or not (SRV-010)
//	NAME delivered N TEXT...                      the message came in N deliveries, after a second more (SRV-008)
//	NAME messages-delivered N                     N distinct messages came in deliveries so far, waiting for them up to the
//	                                              step's wait, then a second more for any beyond (SRV-009)
//	NAME delivered-in-order TEXT TEXT...          the messages came, their first deliveries in this order, within the step's wait (SRV-019)
//	NAME send-many ACCOUNT N TEXT                 N messages, "TEXT 0" to "TEXT N-1", one after the other
//	NAME typing ACCOUNT on|off                    tell the server NAME types to ACCOUNT, or stopped (SRV-015)
//	NAME typing-seen ACCOUNT on|off|none          a typing notice from ACCOUNT came, saying on or off, within the step's
//	                                              wait; or none came in a second (all that came before are looked at)
//	NAME list-version ACCOUNT N                   the device accepts version N of the account's list within 5 s, unasked (DEV-010)
//	[!] NAME send-in [CODE] ENVELOPE ACCOUNT text TEXT...  content in an envelope of type chat, receipt, sync or control (MSG-021),
//	                                              which the server refuses with "!" (MSG-013);
//	NAME send-in ENVELOPE ACCOUNT timer DURATION  a timer (DURATION or off); a receipt KIND (delivered, read
//	NAME send-in ENVELOPE ACCOUNT receipt KIND TEXT...  or played) for the message TEXT
//	NAME send-in ENVELOPE ACCOUNT forged-group OWNER  group-update content whose state is version 1 of a new group, of OWNER
//	                                              as admin and ACCOUNT as member, signed in OWNER's name with a key made up,
//	                                              and its list too: a state the server never sees (GRP-016)
//	NAME send-in ENVELOPE ACCOUNT forged-groups OWNER N  N such contents, one after the other (GRP-017)
//	NAME send-in ENVELOPE ACCOUNT unset-group @GROUP OTHER  group-update content whose state is the next version of @GROUP as
//	                                              NAME holds it, without OTHER, signed by NAME's device (an admin) and
//	                                              never set on the server: a fork of the group (GRP-016)
//	[!] NAME send-ahead [CODE] DURATION ACCOUNT TEXT...  a text whose sent-at is DURATION ahead of the clock (SRV-023)
//	! NAME hello CODE CHECK                       a new connection whose first frame fails one check of TRN-012: first-frame,
//	                                              version, binding, unknown-account, unknown-device (of NAME's account),
//	                                              identity (NAME's device with another key), register-device (2),
//	                                              register-taken (NAME's account); the connection must then close
//	! NAME registrations CODE ADDRESS             new accounts registered from the loopback ADDRESS, eight at a time, until
//	                                              the server refuses one with CODE and a retry time, and closes the connection,
//	                                              having welcomed at most REGISTER_BURST and one per REGISTER_RATE (SRV-026);
//	                                              skipped when nothing connects from ADDRESS (only 127.0.0.1 on some systems)
//	! NAME send-as CODE ACCOUNT                   a send to ACCOUNT whose envelope names ACCOUNT's device 1 as its
//	                                              sender, not NAME's device (MSG-012)
//	! NAME prekey-reuse CODE signed|kem           a connection of the runner's own registers a new account, uploads a
//	                                              signed (or one-time KEM) prekey with id 1, then another with id 1 (MSG-009)
//	! NAME upload-prekeys CODE signed|kem          upload-prekeys of a signed prekey (id 4000) or a one-time KEM prekey
//	                                              (id 4000) signed by a key that is not the device's identity key (MSG-008)
//	[!] NAME raw ...                              frames and connections that break chapters 11 and 12 (scenario_frames.go)
//	NAME device-id-not NAME...                    NAME's device id is none of those of the other devices named, removed
//	                                              ones included (SRV-001)
//	! NAME link-forged CODE                       a companion of the runner's own asks for NAME's link with a wrong mac:
//	                                              refused with CODE, and NAME's device list unchanged (DEV-006); NAME
//	                                              may be the implementation's
func (w *world) rawVerb(ts *testscript.TestScript, ctx context.Context, name string, a actor, verb string, rest []string, neg bool) bool {
	switch verb {
	case "group-fetch", "group-send-raw", "flood", "send-closes", "last-seen", "list-version", "deaf", "delivered", "messages-delivered", "send-many", "send-in", "send-ahead", "hello", "registrations", "upload-prekeys", "send-as", "prekey-reuse", "raw", "delivered-in-order", "typing", "typing-seen", "link-forged", "device-id-not":
	default:
		return false
	}
	if verb == "link-forged" { // of any primary: the implementation's too
		w.linkForged(ts, ctx, name, a, rest, neg)
		return true
	}
	if verb == "device-id-not" {
		if len(rest) == 0 || neg {
			ts.Fatalf("usage: %s device-id-not NAME... (other devices of %s's account)", name, accountOf(name))
		}
		for _, other := range rest {
			o := w.actors[other]
			if o == nil || accountOf(other) != accountOf(name) || other == name {
				ts.Fatalf("usage: %s device-id-not NAME... (other devices of %s's account)", name, accountOf(name))
			}
			if o.deviceID() == a.deviceID() {
				fail(ts, WrongOutput, "%s is device %d of its account, the id %s had", name, a.deviceID(), other)
			}
		}
		return true
	}
	ra := refOnly(ts, name, a, verb)
	if verb == "raw" {
		w.rawFrames(ts, ctx, name, rest, neg)
		return true
	}
	if verb == "deaf" {
		if len(rest) != 1 || rest[0] != "on" && rest[0] != "off" || neg {
			ts.Fatalf("usage: %s deaf on|off", name)
		}
		ra.deaf.Store(rest[0] == "on")
		return true
	}
	if verb == "messages-delivered" {
		n, err := strconv.Atoi(strings.Join(rest, ""))
		if len(rest) != 1 || err != nil || neg {
			ts.Fatalf("usage: %s messages-delivered N", name)
		}
		delivered := func() int {
			ra.dmu.Lock()
			defer ra.dmu.Unlock()
			return len(ra.count)
		}
		// Until N came (or the step's wait ends), then a second more for
		// any beyond N.
		for deadline := pollDeadline(ctx); delivered() < n && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		if got := delivered(); got != n {
			fail(ts, WrongOutput, "%s got deliveries of %d messages, want %d", name, got, n)
		}
		return true
	}
	if verb == "typing-seen" {
		w.typingSeen(ts, ctx, name, ra, rest, neg)
		return true
	}
	if verb == "delivered-in-order" {
		if len(rest) < 2 || neg {
			ts.Fatalf("usage: %s delivered-in-order TEXT TEXT...", name)
		}
		deadline := pollDeadline(ctx)
		for i := 0; i < len(rest); {
			place, ok := ra.firstDelivered(w.sentID(ts, rest[i]))
			switch {
			case !ok && time.Now().Before(deadline):
				time.Sleep(50 * time.Millisecond)
				continue
			case !ok:
				fail(ts, WrongOutput, "%s got no delivery of %q", name, rest[i])
			case i > 0:
				if before, _ := ra.firstDelivered(w.sentID(ts, rest[i-1])); before > place {
					fail(ts, WrongOutput, "%s got %q before %q, want them in the order they were sent", name, rest[i], rest[i-1])
				}
			}
			i++
		}
		return true
	}
	if verb == "delivered" {
		n, err := strconv.Atoi(strings.Join(rest[:min(1, len(rest))], ""))
		if len(rest) < 2 || err != nil || neg {
			ts.Fatalf("usage: %s delivered N TEXT...", name)
		}
		text := strings.Join(rest[1:], " ")
		id := w.sentID(ts, text)
		time.Sleep(time.Second) // a second delivery would have come by now
		if got := ra.deliveries(id); got != n {
			fail(ts, WrongOutput, "%s got %q in %d deliveries, want %d", name, text, got, n)
		}
		return true
	}
	c, err := ra.conn()
	must(ts, name+" "+verb, err)
	code, rest := wantCode(rest)
	onlyNeg := verb == "group-send-raw" || verb == "flood" || verb == "send-closes" || verb == "hello" || verb == "upload-prekeys" || verb == "send-as" || verb == "prekey-reuse"
	if onlyNeg && !neg || !neg && code != 0 || (verb == "last-seen" || verb == "list-version") && neg {
		ts.Fatalf("%s %s: see the usage of the verbs in conformance/scenario_raw.go", name, verb)
	}
	number := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			ts.Fatalf("%s %s: %q is not a number", name, verb, s)
		}
		return n
	}
	switch verb {
	case "typing":
		if len(rest) != 2 || rest[1] != "on" && rest[1] != "off" || neg {
			ts.Fatalf("usage: %s typing ACCOUNT on|off", name)
		}
		must(ts, name+" typing", c.Typing(rest[0], rest[1] == "on"))
	case "group-fetch":
		if len(rest) < 2 || neg && len(rest) > 2 {
			ts.Fatalf("usage: [!] %s group-fetch [CODE] @GROUP FROM [VERSION...]", name)
		}
		var h wire.GroupHistory
		err := c.Call(ctx, wire.FrameGetGroup, &wire.GroupFetch{GroupID: w.conv(ts, rest[0]).group, From: number(rest[1])}, &h)
		if neg {
			mustFail(ts, name+" group-fetch", err, code)
			return true
		}
		must(ts, name+" group-fetch", err)
		if len(rest) == 2 {
			return true
		}
		var want, got []uint64
		for _, v := range rest[2:] {
			want = append(want, number(v))
		}
		for _, signed := range h.States {
			var st wire.GroupState
			var s wire.SignedGroupState
			if err := wire.Unmarshal(signed, &s); err != nil {
				fail(ts, WrongOutput, "%s group-fetch: a state that does not decode: %v", name, err)
			}
			if err := wire.Unmarshal(s.State, &st); err != nil {
				fail(ts, WrongOutput, "%s group-fetch: a state that does not decode: %v", name, err)
			}
			got = append(got, st.Serial)
		}
		if !slices.Equal(got, want) {
			fail(ts, WrongOutput, "%s group-fetch from %s: got versions %v, want %v (GRP-004)", name, rest[1], got, want)
		}
	case "group-send-raw":
		if len(rest) != 2 {
			ts.Fatalf("usage: ! %s group-send-raw CODE @GROUP VERSION", name)
		}
		id := make([]byte, wire.MessageIDSize)
		rand.Read(id)
		env := &wire.GroupEnvelope{Version: wire.ProtocolVersion, MessageID: id, Sender: ra.d.Address(),
			GroupID: w.conv(ts, rest[0]).group, Serial: number(rest[1]), Digest: make([]byte, 32),
			Message: []byte("not read by the server"), Priority: wire.PriorityNormal, TTL: 3600,
			SentAt: uint64(w.clock.now().UnixMilli())}
		mustFail(ts, name+" group-send-raw", c.Call(ctx, wire.FrameSendGroup, env, new(wire.SendResult)), code)
	case "send-many":
		if len(rest) < 3 || neg {
			ts.Fatalf("usage: %s send-many ACCOUNT N TEXT...", name)
		}
		text := strings.Join(rest[2:], " ")
		for i := range number(rest[1]) {
			t := fmt.Sprintf("%s %d", text, i)
			m, err := c.SendTo(ctx, w.conv(ts, rest[0]).ref(), t)
			must(ts, name+" send-many", err)
			w.record(t, m.ID, name)
		}
	case "send-in":
		w.sendIn(ts, ctx, name, c, rest, neg, code)
	case "hello":
		if len(rest) != 1 || code == 0 || !slices.Contains(helloChecks, rest[0]) {
			ts.Fatalf("usage: ! %s hello CODE %s", name, strings.Join(helloChecks, "|"))
		}
		mustFail(ts, name+" hello "+rest[0], badHello(ctx, w.server.address(), ra.d.Account, w.ns, rest[0]), code)
	case "registrations":
		from := net.ParseIP(strings.Join(rest, ""))
		if len(rest) != 1 || code == 0 || from == nil || !from.IsLoopback() {
			ts.Fatalf("usage: ! %s registrations CODE LOOPBACK-ADDRESS", name)
		}
		err := registrations(ctx, w.server.address(), w.ns, from)
		if errors.Is(err, errNoSource) {
			ts.Fatalf("[skip] %s registrations: %v", name, err)
		}
		mustFail(ts, name+" registrations from "+from.String(), err, code)
	case "prekey-reuse":
		if len(rest) != 1 || code == 0 || rest[0] != "signed" && rest[0] != "kem" {
			ts.Fatalf("usage: ! %s prekey-reuse CODE signed|kem", name)
		}
		mustFail(ts, name+" prekey-reuse "+rest[0], prekeyReuse(ctx, w.server.address(), w.ns, rest[0] == "kem"), code)
	case "send-as":
		if len(rest) != 1 || code == 0 {
			ts.Fatalf("usage: ! %s send-as CODE ACCOUNT", name)
		}
		to := w.conv(ts, rest[0]).account
		id := make([]byte, wire.MessageIDSize)
		rand.Read(id)
		msgs := []wire.DeviceMessage{{Device: 1, Kind: wire.KindRatchet, Ciphertext: []byte("not read by the server")}}
		env := &wire.Envelope{Version: wire.ProtocolVersion, MessageID: id, Sender: wire.Address{Account: to, Device: 1}, Recipient: to,
			Messages: msgs, Type: wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(w.clock.now().UnixMilli())}
		mustFail(ts, name+" send-as "+rest[0], c.Call(ctx, wire.FrameSend, env, new(wire.SendResult)), code)
	case "upload-prekeys":
		if len(rest) != 1 || code == 0 || rest[0] != "signed" && rest[0] != "kem" {
			ts.Fatalf("usage: ! %s upload-prekeys CODE signed|kem", name)
		}
		up, err := forgedUpload(rest[0] == "kem")
		if err != nil {
			ts.Fatalf("%s upload-prekeys: %v", name, err)
		}
		mustFail(ts, name+" upload-prekeys "+rest[0], c.Call(ctx, wire.FrameUploadPrekeys, up, new(wire.UploadResult)), code)
	case "send-ahead":
		if len(rest) < 3 {
			ts.Fatalf("usage: [!] %s send-ahead [CODE] DURATION ACCOUNT TEXT...", name)
		}
		ahead, err := parseDuration(rest[0])
		if err != nil {
			ts.Fatalf("%s send-ahead: %v", name, err)
		}
		text := strings.Join(rest[2:], " ")
		sentAt := uint64(w.clock.now().Add(ahead).UnixMilli())
		content := &wire.Content{Type: wire.ContentText, Text: &text, SentAt: sentAt}
		id, err := c.SendContentIn(ctx, rest[1], wire.EnvelopeChat, content)
		if neg {
			mustFail(ts, fmt.Sprintf("%s send-ahead %s %q", name, rest[0], text), err, code)
			return true
		}
		must(ts, name+" send-ahead", err)
		w.record(text, id, name)
	case "flood":
		if len(rest) != 2 {
			ts.Fatalf("usage: ! %s flood CODE ACCOUNT N", name)
		}
		// The first SEND_BURST are messages, which the recipient reads;
		// the rest are sends that name a device the recipient does not
		// have, each refused state.fanout_mismatch (SRV-005 check 6) but
		// only after it took its token (check 2). They cost the sender no
		// encryption and no write of its own store, so that they go
		// faster than SEND_RATE on any machine: the messages alone went
		// at 25 to 49 a second on this one, a sync of the sender's store
		// each, and never ran out of the burst.
		n := number(rest[1])
		to := w.conv(ts, rest[0])
		for i := range n {
			var err error
			if i < server.SendBurst {
				_, err = c.SendTo(ctx, to.ref(), fmt.Sprintf("flood %d", i))
			} else {
				id := make([]byte, wire.MessageIDSize)
				rand.Read(id)
				env := &wire.Envelope{Version: wire.ProtocolVersion, MessageID: id, Sender: ra.d.Address(), Recipient: to.account,
					Messages: []wire.DeviceMessage{{Device: 65535, Kind: wire.KindRatchet, Ciphertext: []byte("not read by the server")}},
					Type:     wire.EnvelopeChat, Priority: wire.PriorityNormal, TTL: 3600, SentAt: uint64(w.clock.now().UnixMilli())}
				err = c.Call(ctx, wire.FrameSend, env, new(wire.SendResult))
				if errcode.Of(err) == errcode.StateFanoutMismatch {
					continue
				}
			}
			if err != nil {
				mustFail(ts, fmt.Sprintf("%s flood, send %d", name, i+1), err, code)
				return true
			}
		}
		fail(ts, UnexpectedSuccess, "%s sent %d messages to %s at once, and none was refused", name, n, rest[0])
	case "send-closes":
		if len(rest) < 2 || code == 0 {
			ts.Fatalf("usage: ! %s send-closes CODE ACCOUNT TEXT...", name)
		}
		_, err := c.SendTo(ctx, w.conv(ts, rest[0]).ref(), strings.Join(rest[1:], " "))
		mustFail(ts, name+" send-closes", err, code)
		var re *transport.RemoteError
		if !errors.As(err, &re) || re.Body.RetryAfter == nil || *re.Body.RetryAfter == 0 {
			fail(ts, WrongOutput, "%s's send was refused with %v but no retry time", name, code)
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			fail(ts, WrongOutput, "the server left %s's connection open 5 s after it refused a send with %v", name, code)
		}
	case "list-version":
		if len(rest) != 2 {
			ts.Fatalf("usage: %s list-version ACCOUNT N", name)
		}
		want := number(rest[1])
		deadline := time.Now().Add(5 * time.Second)
		for {
			var got uint64
			if l := ra.d.DeviceList(rest[0]); l != nil {
				got = l.Serial
			}
			if got == want {
				return true
			}
			if time.Now().After(deadline) {
				fail(ts, WrongOutput, "%s holds version %d of %s's device list, want %d", name, got, rest[0], want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	case "last-seen":
		if len(rest) != 2 || rest[1] != "none" && rest[1] != "shown" {
			ts.Fatalf("usage: %s last-seen ACCOUNT none|shown", name)
		}
		us, err := c.Subscribe(ctx, rest[0])
		must(ts, name+" last-seen", err)
		if len(us) != 1 {
			fail(ts, WrongOutput, "%s got %d presence updates for %s, want 1", name, len(us), rest[0])
		}
		if got := map[bool]string{true: "shown", false: "none"}[us[0].LastSeen != nil]; got != rest[1] {
			fail(ts, WrongOutput, "%s sees the last seen of %s: got %s, want %s", name, rest[0], got, rest[1])
		}
	}
	return true
}

// sendIn runs "[!] NAME send-in [CODE] ENVELOPE ACCOUNT text|timer|receipt
// ...": content of a type in an envelope of any type (MSG-021), which the
// server refuses, with "!", when the envelope's type does not go to that
// account (MSG-013).
func (w *world) sendIn(ts *testscript.TestScript, ctx context.Context, name string, c *client.Conn, rest []string, neg bool, code errcode.Code) {
	const usage = "usage: [!] %s send-in [CODE] chat|receipt|sync|control ACCOUNT text TEXT... | timer DURATION|off | receipt delivered|read|played TEXT... | forged-group OWNER | forged-groups OWNER N | unset-group @GROUP OTHER"
	if len(rest) < 4 {
		ts.Fatalf(usage, name)
	}
	env := map[string]uint64{"chat": wire.EnvelopeChat, "receipt": wire.EnvelopeReceipt, "sync": wire.EnvelopeSync, "control": wire.EnvelopeControl}[rest[0]]
	text := strings.Join(rest[3:], " ")
	var content *wire.Content
	switch rest[2] {
	case "text":
		content = &wire.Content{Type: wire.ContentText, Text: &text}
	case "timer":
		secs := w.duration(ts, text)
		content = &wire.Content{Type: wire.ContentTimer, Timer: &secs}
	case "receipt":
		kind := map[string]uint64{"delivered": wire.ReceiptDelivered, "read": wire.ReceiptRead, "played": wire.ReceiptPlayed}[rest[3]]
		if kind == 0 || len(rest) < 5 {
			ts.Fatalf(usage, name)
		}
		id := w.sentID(ts, strings.Join(rest[4:], " "))
		content = &wire.Content{Type: wire.ContentReceipt, Receipt: &wire.Receipt{Kind: kind, MessageIDs: [][]byte{id}}}
	case "forged-group":
		if len(rest) != 4 {
			ts.Fatalf(usage, name)
		}
		signed, err := forgedGroupState(rest[3], rest[1], w.clock.now())
		if err != nil {
			ts.Fatalf("%s send-in forged-group: %v", name, err)
		}
		content = &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}
	case "forged-groups":
		// N of them, each of a new group, one after the other.
		n, err := strconv.Atoi(rest[len(rest)-1])
		if len(rest) != 5 || err != nil || n < 1 || neg || env == 0 {
			ts.Fatalf(usage, name)
		}
		for range n {
			signed, err := forgedGroupState(rest[3], rest[1], w.clock.now())
			if err != nil {
				ts.Fatalf("%s send-in forged-groups: %v", name, err)
			}
			_, err = c.SendContentIn(ctx, rest[1], env, &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed})
			must(ts, name+" send-in", err)
		}
		return
	case "unset-group":
		if len(rest) != 5 {
			ts.Fatalf(usage, name)
		}
		gid := w.conv(ts, rest[3]).group
		cur, err := c.Device().Group(gid)
		if err != nil {
			ts.Fatalf("%s send-in unset-group: %v", name, err)
		}
		ms := slices.DeleteFunc(slices.Clone(cur.Members), func(m wire.GroupMember) bool { return m.Account == rest[4] })
		if len(ms) == len(cur.Members) {
			ts.Fatalf("%s send-in unset-group: %s is not a member of %s", name, rest[4], rest[3])
		}
		signed, err := c.Device().SignGroupState(gid, ms)
		if err != nil {
			ts.Fatalf("%s send-in unset-group: %v", name, err)
		}
		content = &wire.Content{Type: wire.ContentGroupUpdate, Group: &signed}
	}
	if env == 0 || content == nil {
		ts.Fatalf(usage, name)
	}
	id, err := c.SendContentIn(ctx, rest[1], env, content)
	if neg {
		mustFail(ts, fmt.Sprintf("%s send-in %s %s", name, rest[0], rest[1]), err, code)
		return
	}
	must(ts, name+" send-in", err)
	if rest[2] == "text" {
		w.record(text, id, name)
	}
}

// forgedGroupState is version 1 of a new group of owner (admin) and member,
// signed as owner's device 1 with a key made up here, under a list of
// owner's made up with it.
func forgedGroupState(owner, member string, now time.Time) ([]byte, error) {
	ik, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ms := uint64(now.UnixMilli())
	l, err := devices.Sign(ik, owner, 1, []wire.ListedDevice{{Device: 1, IdentityKey: ik.Public().Encode()}}, ms, rand.Reader)
	if err != nil {
		return nil, err
	}
	members := []wire.GroupMember{{Account: owner, Role: wire.RoleAdmin}, {Account: member, Role: wire.RoleMember}}
	slices.SortFunc(members, func(a, b wire.GroupMember) int { return strings.Compare(a.Account, b.Account) })
	gid := make([]byte, wire.GroupIDSize)
	rand.Read(gid)
	s, err := group.Sign(ik, wire.Address{Account: owner, Device: 1}, l.Signed, gid, 1, members, "", ms, rand.Reader)
	if err != nil {
		return nil, err
	}
	return s.Signed, nil
}

// helloChecks are the checks badHello can make fail.
var helloChecks = []string{"first-frame", "version", "binding", "unknown-account", "unknown-device", "identity", "register-device", "register-taken"}

// badHello connects to the server at addr as a new device whose first
// frame fails one check of TRN-012 (section 12.4), and returns the
// server's answer as an error: its error frame's code, nil for a welcome.
// account is a registered account of the scenario, ns the suffix of the
// scenario's account names. A server that answers with an error frame and
// leaves the connection open fails with an error of no code.
func badHello(ctx context.Context, addr, account, ns, check string) error {
	r, err := dialRaw(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	nc, tc, ik, static, fresh := r.nc, r.tc, r.ik, r.static, r.fresh
	h := wire.Hello{Versions: []uint64{wire.ProtocolVersion}, Account: fresh, Device: 1, IdentityKey: ik.Public().Encode(), Register: wire.Ptr(true)}
	bindAccount := ""
	switch check {
	case "first-frame":
	case "version":
		h.Versions = []uint64{wire.ProtocolVersion + 1000}
	case "binding":
		bindAccount = "x" + fresh // a binding for another account
	case "unknown-account":
		h.Register = nil
	case "unknown-device":
		h.Account, h.Device, h.Register = account, 1000, nil
	case "identity":
		h.Account, h.Register = account, nil
	case "register-device":
		h.Device = 2
	case "register-taken":
		h.Account = account
	}
	if bindAccount == "" {
		bindAccount = h.Account
	}
	if check == "first-frame" {
		err = tc.Send(wire.FramePing, 0, nil)
	} else if h.Binding, err = transport.Bind(ik, static.Public, uint32(h.Device), bindAccount, rand.Reader); err == nil {
		err = tc.Send(wire.FrameHello, 1, &h)
	}
	if err != nil {
		return err
	}
	return firstAnswer(nc, tc)
}

// firstAnswer reads the server's answer to a connection's first frame:
// nil for a welcome, the refusal for an error frame, which must close the
// connection (TRN-012).
func firstAnswer(nc net.Conn, tc *transport.Conn) error {
	f, err := tc.Receive()
	if err != nil {
		return fmt.Errorf("no answer to the first frame: %v", err)
	}
	if f.Type != wire.FrameError {
		return nil // welcomed
	}
	var b wire.ErrorBody
	if err := transport.DecodeBody(f, &b); err != nil {
		return fmt.Errorf("an error frame that does not decode: %v", err)
	}
	refused := &transport.RemoteError{Body: &b}
	if !closes(nc) {
		return fmt.Errorf("%v, and the connection stayed open", refused)
	}
	return refused
}

// errNoSource is a source address this machine cannot connect from.
var errNoSource = errors.New("no connection from that address")

// registrations registers new accounts at the server at addr from the
// local address from, eight at a time, until the server refuses one
// (SRV-026). It returns the refusal, which must carry a retry time, and
// fails with no code when the server welcomed more than REGISTER_BURST,
// and the tokens due since the first, before it; with errNoSource when
// nothing connects from there.
func registrations(ctx context.Context, addr, ns string, from net.IP) error {
	const atOnce = 8
	start := time.Now()
	welcomed := 0
	for {
		errs := make([]error, atOnce)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				r, err := dialRawFrom(ctx, addr, ns, from)
				if err != nil {
					errs[i] = fmt.Errorf("%w: %v", errNoSource, err)
					return
				}
				defer r.close()
				h := wire.Hello{Versions: []uint64{wire.ProtocolVersion}, Account: r.fresh, Device: 1, IdentityKey: r.ik.Public().Encode(), Register: wire.Ptr(true)}
				if h.Binding, err = transport.Bind(r.ik, r.static.Public, 1, h.Account, rand.Reader); err == nil {
					err = r.tc.Send(wire.FrameHello, 1, &h)
				}
				if err == nil {
					err = firstAnswer(r.nc, r.tc)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		var refusal error
		for _, err := range errs {
			var re *transport.RemoteError
			switch {
			case err == nil:
				welcomed++
			case errors.As(err, &re) && (re.Body.RetryAfter == nil || *re.Body.RetryAfter == 0):
				return fmt.Errorf("%v, without a retry time", err)
			case refusal == nil:
				refusal = err
			}
		}
		if allowed := server.RegisterBurst + int(time.Since(start)/server.RegisterEvery) + 1; welcomed > allowed {
			return fmt.Errorf("the server welcomed %d registrations of new accounts from %v in %v, more than REGISTER_BURST (%d) and one per REGISTER_RATE (SRV-026)",
				welcomed, from, time.Since(start).Round(time.Millisecond), server.RegisterBurst)
		}
		if refusal != nil {
			return refusal
		}
	}
}

// closes reports whether the peer closes nc within 5 s, sending nothing
// more. (The transport's own reads set a deadline of their own, the idle
// timeout, so nc is read directly.)
func closes(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := nc.Read(make([]byte, 1))
	var ne net.Error
	return n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// forgedUpload is an upload of one signed prekey, or one one-time KEM
// prekey, signed by a new key: not the uploading device's identity key.
func forgedUpload(kem bool) (*wire.PrekeyUpload, error) {
	forger, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return signedUpload(forger, kem, 4000)
}

// signedKEM is a new KEM prekey with id, signed by ik.
func signedKEM(ik *keys.PrivateKey, id uint64) (wire.KEMPreKey, error) {
	k, err := keys.GenerateKEMPrivateKey(rand.Reader)
	if err != nil {
		return wire.KEMPreKey{}, err
	}
	sig, err := pqxdh.SignKEMPreKey(ik, k.Public(), rand.Reader)
	if err != nil {
		return wire.KEMPreKey{}, err
	}
	return wire.KEMPreKey{ID: id, Key: k.Public().Encode(), Signature: sig}, nil
}

// signedUpload is an upload of one new signed prekey, or one new one-time
// KEM prekey, with id, signed by ik.
func signedUpload(ik *keys.PrivateKey, kem bool, id uint64) (*wire.PrekeyUpload, error) {
	if kem {
		k, err := signedKEM(ik, id)
		if err != nil {
			return nil, err
		}
		return &wire.PrekeyUpload{OneTimeKEM: &[]wire.KEMPreKey{k}}, nil
	}
	k, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sig, err := pqxdh.SignSignedPreKey(ik, k.Public(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &wire.PrekeyUpload{SignedPreKey: &wire.SignedPreKey{ID: id, Key: k.Public().Encode(), Signature: sig}}, nil
}

// rawConn is a connection of the runner's own to a server, before hello,
// with a new identity key and a new account name (fresh) nobody has.
type rawConn struct {
	nc     net.Conn
	tc     *transport.Conn
	ik     *keys.PrivateKey
	static noise.DHKey
	fresh  string
	list   []byte // the signed device list makeReachable stored
}

func (r *rawConn) close() { r.tc.Close(); r.nc.Close() }

// dialRaw connects to the server at addr (ns: the suffix of the scenario's
// account names), within ctx's deadline.
func dialRaw(ctx context.Context, addr, ns string) (*rawConn, error) {
	return dialRawFrom(ctx, addr, ns, nil)
}

// dialRawFrom is dialRaw from the local address from (nil: the system's
// choice).
func dialRawFrom(ctx context.Context, addr, ns string, from net.IP) (*rawConn, error) {
	var dialer net.Dialer
	if from != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: from}
	}
	nc, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	r := &rawConn{nc: nc}
	if r.static, err = transport.Suite.GenerateKeypair(rand.Reader); err == nil {
		r.tc, err = transport.Client(nc, &transport.ClientConfig{Static: r.static})
	}
	if err == nil {
		r.ik, err = keys.GeneratePrivateKey(rand.Reader)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	r.fresh = fmt.Sprintf("h%x%s", suffix, ns)
	return r, nil
}

// prekeyReuse registers a new account of the runner's own, uploads a
// signed prekey (or a one-time KEM prekey) with id 1, then another of the
// same kind with the same id, and returns the second upload's error
// (MSG-009).
func prekeyReuse(ctx context.Context, addr, ns string, kem bool) error {
	r, err := dialRegistered(ctx, addr, ns)
	if err != nil {
		return err
	}
	defer r.close()
	for i := range 2 {
		up, err := signedUpload(r.ik, kem, 1)
		if err != nil {
			return err
		}
		err = r.tc.Call(wire.FrameUploadPrekeys, uint64(2+i), up, new(wire.UploadResult))
		if i == 1 {
			return err
		}
		if err != nil {
			return fmt.Errorf("the first upload: %v", err)
		}
	}
	return nil
}

// typingSeen runs "NAME typing-seen ACCOUNT on|off|none": the typing
// notices that came to NAME since the last look must hold one from
// ACCOUNT saying on (or off), waiting for it up to the step's wait; or,
// with none, none from ACCOUNT may come, within a second more.
func (w *world) typingSeen(ts *testscript.TestScript, ctx context.Context, name string, ra *refActor, rest []string, neg bool) {
	if len(rest) != 2 || rest[1] != "on" && rest[1] != "off" && rest[1] != "none" || neg {
		ts.Fatalf("usage: %s typing-seen ACCOUNT on|off|none", name)
	}
	from := w.conv(ts, rest[0]).account
	var seen []string
	look := func() (match bool) {
		for _, t := range ra.takeTyping() {
			if t.From.Account != from {
				continue
			}
			state := map[bool]string{true: "on", false: "off"}[t.Typing]
			seen = append(seen, state)
			match = match || state == rest[1]
		}
		return match
	}
	if rest[1] == "none" {
		time.Sleep(time.Second)
		if look(); len(seen) > 0 {
			fail(ts, WrongOutput, "%s got typing notices from %s (%s), want none", name, rest[0], strings.Join(seen, ", "))
		}
		return
	}
	deadline := pollDeadline(ctx)
	for !look() {
		if time.Now().After(deadline) {
			fail(ts, WrongOutput, "%s got no typing notice from %s saying %s (got: %v)", name, rest[0], rest[1], seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
