package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/media"
	"github.com/missive-protocol/missive/ref/wire"
)

// The scenario verbs of groups, media and the message lifecycle (spec
// chapters 16 to 18); testscripts/testscripts.go lists them.

// sentMedia is an attachment a scenario sent, by its caption.
type sentMedia struct {
	data     []byte
	viewOnce bool
}

// conv parses a conversation argument: @NAME for a group the scenario
// created, else an account.
func (w *world) conv(ts *testscript.TestScript, arg string) conv {
	if !strings.HasPrefix(arg, "@") {
		return conv{account: arg}
	}
	gid := w.groups[arg]
	if gid == nil {
		ts.Fatalf("no group %s: create it first (NAME group-create %s ACCOUNT...)", arg, arg)
	}
	return conv{group: gid}
}

// parseSize parses a size in bytes: 100, 600KiB, 1.5MiB.
func parseSize(s string) (int, error) {
	mult := 1.0
	for suffix, m := range map[string]float64{"KiB": 1 << 10, "MiB": 1 << 20} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = n, m
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad size %q (want bytes, or a number of KiB or MiB)", s)
	}
	return int(f * mult), nil
}

// attachment returns the size bytes of an attachment named by caption: the
// same bytes for the same caption and size in every run.
func attachment(caption string, size int) []byte {
	seed := sha256.Sum256([]byte(caption))
	r := mrand.NewChaCha8(seed)
	out := make([]byte, size)
	r.Read(out)
	return out
}

// wantCode takes an optional registered error name off the front of args.
func wantCode(args []string) (errcode.Code, []string) {
	if len(args) > 1 && strings.Contains(args[0], ".") {
		if c, ok := errcode.Parse(args[0]); ok {
			return c, args[1:]
		}
	}
	return 0, args
}

// mustFail checks that a step failed, with the code want when it is set.
func mustFail(ts *testscript.TestScript, what string, err error, want errcode.Code) {
	var (
		un  unimplemented
		bad badRefusal
	)
	switch {
	case err == nil:
		fail(ts, UnexpectedSuccess, "%s succeeded, and should have failed", what)
	case errors.As(err, &un):
		ts.Fatalf("[skip] unimplemented: %s", un.method)
	case errors.Is(err, ErrAdapter):
		fail(ts, AdapterBroken, "%s: %v", what, err)
	case errors.As(err, &bad):
		fail(ts, WrongError, "%s: %v", what, err)
	case want != 0 && errcode.Of(err) != want:
		fail(ts, WrongError, "%s failed with %v, want %v", what, err, want)
	}
}

// refOnly returns the actor as a reference client, for the verbs that play
// a misbehaving peer or inspect the server.
func refOnly(ts *testscript.TestScript, name string, a actor, verb string) *refActor {
	ra, ok := a.(*refActor)
	if !ok {
		ts.Fatalf("%s: %s is a verb of reference actors only (%s create ref)", verb, name, name)
	}
	return ra
}

// sentID returns the id of the message sent with a text (or caption).
func (w *world) sentID(ts *testscript.TestScript, text string) []byte {
	id := w.sent[text]
	if id == nil {
		ts.Fatalf("no message was sent with the text %q", text)
	}
	return id
}

// waitShown polls what an actor shows of the message sent with text until
// ok accepts it, and fails with what it last showed.
func (w *world) waitShown(ts *testscript.TestScript, ctx context.Context, name string, a actor, text, want string, ok func(shown) bool) shown {
	id := w.sentID(ts, text)
	deadline := pollDeadline(ctx)
	for {
		s, err := a.get(ctx, w.author[text], id)
		must(ts, name+" message.get", err)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			fail(ts, WrongOutput, "%s shows the message %q as %s, want %s", name, text, describe(s), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(s shown) string {
	switch {
	case !s.present:
		return "absent"
	case s.deleted:
		return fmt.Sprintf("deleted (text %q)", s.text)
	case s.edited:
		return fmt.Sprintf("%q (edited)", s.text)
	}
	return fmt.Sprintf("%q", s.text)
}

// lifecycleVerb runs a verb of chapters 16 to 18; it returns false for a
// verb it does not know.
func (w *world) lifecycleVerb(ts *testscript.TestScript, ctx context.Context, name string, a actor, verb string, rest []string, neg bool) bool {
	switch verb {
	case "group-create":
		if len(rest) < 1 || !strings.HasPrefix(rest[0], "@") || w.groups[rest[0]] != nil {
			ts.Fatalf("usage: %s group-create @NEWGROUP ACCOUNT...", name)
		}
		gid, err := a.groupCreate(ctx, rest[0][1:], rest[1:])
		must(ts, name+" group-create", err)
		w.groups[rest[0]] = gid
	case "group-add", "group-remove", "group-admin":
		code, rest := wantCode(rest)
		if len(rest) < 2 {
			ts.Fatalf("usage: %s %s [CODE] @GROUP ACCOUNT...", name, verb)
		}
		g := w.conv(ts, rest[0]).group
		var add, remove, admins []string
		switch verb {
		case "group-add":
			add = rest[1:]
		case "group-remove":
			remove = rest[1:]
		default:
			admins = rest[1:]
		}
		err := a.groupUpdate(ctx, g, add, remove, admins)
		if neg {
			mustFail(ts, name+" "+verb, err, code)
			return true
		}
		must(ts, name+" "+verb, err)
	case "member-status":
		// member-status TEXT ACCOUNT STATUS: the status of a group message
		// for one member account (GRP-013); unknown when it has none.
		if len(rest) < 3 {
			ts.Fatalf("usage: %s member-status TEXT ACCOUNT STATUS", name)
		}
		text, member, want := strings.Join(rest[:len(rest)-2], " "), rest[len(rest)-2], rest[len(rest)-1]
		w.memberStatus(ts, ctx, name, a, text, member, want)
	case "send-media", "forge-media":
		// send-media ACCOUNT|@GROUP SIZE [view-once] CAPTION...
		if len(rest) < 3 {
			ts.Fatalf("usage: %s %s ACCOUNT|@GROUP SIZE [view-once] CAPTION...", name, verb)
		}
		to := w.conv(ts, rest[0])
		size, err := parseSize(rest[1])
		if err != nil {
			ts.Fatalf("%v", err)
		}
		viewOnce := rest[2] == "view-once"
		if viewOnce {
			rest = rest[1:]
		}
		caption := strings.Join(rest[2:], " ")
		data := attachment(caption, size)
		var id []byte
		if verb == "forge-media" {
			id, err = refOnly(ts, name, a, verb).forgeMedia(ctx, to, data, caption)
		} else {
			id, err = a.sendMedia(ctx, to, data, "application/octet-stream", caption, viewOnce)
		}
		must(ts, name+" "+verb, err)
		w.record(caption, id, name)
		w.media[caption] = sentMedia{data: data, viewOnce: viewOnce}
	case "expect-media":
		// expect-media [@GROUP] ACCOUNT CAPTION...: shown, then downloaded
		// (view-once media is opened with open-once instead).
		group, from, caption := w.expectArgs(ts, name, verb, rest)
		r := w.expect(ts, ctx, name, a, group, from, caption)
		sm := w.media[caption]
		if !r.media || r.viewOnce != sm.viewOnce {
			fail(ts, WrongOutput, "%s was shown %v as media %v, view-once %v; want media, view-once %v", name, r, r.media, r.viewOnce, sm.viewOnce)
		}
		if !sm.viewOnce {
			data, err := a.download(ctx, r.id)
			must(ts, name+" download", err)
			w.checkBytes(ts, name, caption, data)
		}
	case "download", "open-once":
		code, rest := wantCode(rest)
		caption := strings.Join(rest, " ")
		id := w.sentID(ts, caption)
		var (
			data []byte
			err  error
		)
		if verb == "download" {
			data, err = a.download(ctx, id)
		} else {
			data, err = a.openOnce(ctx, id)
		}
		if neg {
			mustFail(ts, name+" "+verb+" "+caption, err, code)
			return true
		}
		must(ts, name+" "+verb, err)
		w.checkBytes(ts, name, caption, data)
	case "opened":
		text := strings.Join(rest, " ")
		w.waitShown(ts, ctx, name, a, text, "opened", func(s shown) bool { return s.opened })
	case "edit", "forge-edit":
		// edit TEXT NEWTEXT, each one argument (quote them).
		code, rest := wantCode(rest)
		if len(rest) != 2 {
			ts.Fatalf("usage: %s %s [CODE] 'TEXT' 'NEW TEXT'", name, verb)
		}
		id := w.sentID(ts, rest[0])
		var err error
		if verb == "forge-edit" {
			err = refOnly(ts, name, a, verb).forgeChange(ctx, id, false, rest[1])
		} else {
			err = a.edit(ctx, id, rest[1])
		}
		if neg {
			mustFail(ts, name+" edit "+rest[0], err, code)
			return true
		}
		must(ts, name+" "+verb, err)
	case "forge-edit-first", "forge-unsend-first":
		// forge-edit-first ACCOUNT 'TEXT' 'NEW TEXT': a message and its
		// edit, the edit sent first; forge-unsend-first ACCOUNT TEXT: a
		// message and its delete, the delete sent first (LIF-005).
		del := verb == "forge-unsend-first"
		if (del && len(rest) < 2) || (!del && len(rest) != 3) {
			ts.Fatalf("usage: %s forge-edit-first ACCOUNT 'TEXT' 'NEW TEXT', or forge-unsend-first ACCOUNT TEXT", name)
		}
		text, edit := rest[1], ""
		if del {
			text = strings.Join(rest[1:], " ")
		} else {
			edit = rest[2]
		}
		id, err := refOnly(ts, name, a, verb).forgeChangeFirst(ctx, rest[0], text, del, edit)
		must(ts, name+" "+verb, err)
		w.record(text, id, name)
	case "unsend", "forge-unsend":
		code, rest := wantCode(rest)
		text := strings.Join(rest, " ")
		id := w.sentID(ts, text)
		var err error
		if verb == "forge-unsend" {
			err = refOnly(ts, name, a, verb).forgeChange(ctx, id, true, "")
		} else {
			err = a.unsend(ctx, id)
		}
		if neg {
			mustFail(ts, name+" unsend "+text, err, code)
			return true
		}
		must(ts, name+" "+verb, err)
	case "delete-here":
		// delete-here ACCOUNT TEXT: the message sent with TEXT, of the
		// conversation with ACCOUNT, is deleted on this device and its
		// account's other devices (DEV-023).
		if len(rest) < 2 {
			ts.Fatalf("usage: %s delete-here ACCOUNT TEXT", name)
		}
		text := strings.Join(rest[1:], " ")
		must(ts, name+" delete-here", a.deleteHere(ctx, w.acct(accountOf(rest[0])), w.sentID(ts, text)))
	case "shows":
		// shows TEXT SHOWN: the message sent with TEXT is shown as SHOWN.
		if len(rest) != 2 {
			ts.Fatalf("usage: %s shows 'TEXT' 'SHOWN TEXT'", name)
		}
		want := rest[1]
		w.waitShown(ts, ctx, name, a, rest[0], fmt.Sprintf("%q", want), func(s shown) bool {
			return s.present && !s.deleted && s.text == want
		})
	case "shows-deleted":
		text := strings.Join(rest, " ")
		s := w.waitShown(ts, ctx, name, a, text, "deleted", func(s shown) bool { return s.present && s.deleted })
		if s.text != "" {
			fail(ts, WrongOutput, "%s keeps the text %q of the deleted message %q (LIF-004)", name, s.text, text)
		}
	case "shows-nothing":
		text := strings.Join(rest, " ")
		w.waitShown(ts, ctx, name, a, text, "absent", func(s shown) bool { return !s.present })
	case "expires":
		// expires TEXT DURATION: the message's expire-after.
		if len(rest) < 2 {
			ts.Fatalf("usage: %s expires TEXT DURATION", name)
		}
		d := w.duration(ts, rest[len(rest)-1])
		text := strings.Join(rest[:len(rest)-1], " ")
		s := w.waitShown(ts, ctx, name, a, text, "present", func(s shown) bool { return s.present })
		if s.expire != d {
			fail(ts, WrongOutput, "%s holds %q with expire-after %d s, want %d s", name, text, s.expire, d)
		}
	case "timer":
		if len(rest) != 2 {
			ts.Fatalf("usage: %s timer ACCOUNT|@GROUP DURATION|off", name)
		}
		must(ts, name+" timer", a.setTimer(ctx, w.conv(ts, rest[0]), uint32(w.duration(ts, rest[1]))))
	case "forge-receipt":
		// forge-receipt ACCOUNT delivered|read|played TEXT
		if len(rest) < 3 {
			ts.Fatalf("usage: %s forge-receipt ACCOUNT delivered|read|played TEXT", name)
		}
		kind := map[string]uint64{"delivered": wire.ReceiptDelivered, "read": wire.ReceiptRead, "played": wire.ReceiptPlayed}[rest[1]]
		if kind == 0 {
			ts.Fatalf("usage: %s forge-receipt ACCOUNT delivered|read|played TEXT", name)
		}
		id := w.sentID(ts, strings.Join(rest[2:], " "))
		must(ts, name+" forge-receipt", refOnly(ts, name, a, verb).forgeReceipt(ctx, rest[0], kind, id))
	case "failures":
		// failures N: the deliveries the device could not process.
		n, err := strconv.Atoi(strings.Join(rest, ""))
		if err != nil {
			ts.Fatalf("usage: %s failures N", name)
		}
		if got := refOnly(ts, name, a, verb).failed(); len(got) != n {
			fail(ts, WrongOutput, "%s could not process %d deliveries, want %d: %v", name, len(got), n, got)
		}
	case "blob-upload":
		w.blobUpload(ts, ctx, name, refOnly(ts, name, a, verb), rest, neg)
	case "blob-resume":
		// blob-resume NAME HELD: the upload goes on from HELD bytes, which
		// the server says it holds (MED-003).
		if len(rest) != 2 || w.blobs[rest[0]] == nil {
			ts.Fatalf("usage: %s blob-resume NAME HELD (of a blob uploaded with blob-upload)", name)
		}
		b := w.blobs[rest[0]]
		want, err := parseSize(rest[1])
		if err != nil {
			ts.Fatalf("%v", err)
		}
		held, err := refOnly(ts, name, a, verb).uploadPart(ctx, b, len(b.sealed.Blob))
		must(ts, name+" blob-resume", err)
		if held != uint64(want) {
			fail(ts, WrongOutput, "create-blob said the server holds %d bytes of %s, want %d", held, rest[0], want)
		}
	case "blob-get":
		code, rest := wantCode(rest)
		if len(rest) != 1 || w.blobs[rest[0]] == nil {
			ts.Fatalf("usage: %s blob-get [CODE] NAME (of a blob uploaded with blob-upload)", name)
		}
		b := w.blobs[rest[0]]
		data, err := refOnly(ts, name, a, verb).getBlob(ctx, b)
		if neg {
			mustFail(ts, name+" blob-get "+rest[0], err, code)
			return true
		}
		must(ts, name+" blob-get", err)
		if !bytes.Equal(data, b.data) {
			fail(ts, WrongOutput, "%s got %d bytes of the blob %s, not the %d uploaded", name, len(data), rest[0], len(b.data))
		}
	default:
		return false
	}
	return true
}

// duration parses a duration in whole seconds, or "off" for 0.
func (w *world) duration(ts *testscript.TestScript, s string) uint64 {
	if s == "off" {
		return 0
	}
	d, err := parseDuration(s)
	if err != nil || d < 0 || d%time.Second != 0 {
		ts.Fatalf("bad duration %q (want whole seconds, such as 3600s, 1h or 1d, or off)", s)
	}
	return uint64(d / time.Second)
}

// checkBytes compares downloaded bytes with the attachment sent.
func (w *world) checkBytes(ts *testscript.TestScript, name, caption string, data []byte) {
	want := w.media[caption].data
	if !bytes.Equal(data, want) {
		fail(ts, WrongOutput, "%s got %d bytes for %q, not the %d bytes sent", name, len(data), caption, len(want))
	}
}

// memberStatus waits until the status of a group message for a member
// account is want.
func (w *world) memberStatus(ts *testscript.TestScript, ctx context.Context, name string, a actor, text, member, want string) {
	id := w.sentID(ts, text)
	deadline := pollDeadline(ctx)
	last := ""
	for {
		s, err := a.status(ctx, id)
		must(ts, name+" status", err)
		st, ok := s.members[member]
		if !ok {
			st = "unknown"
		}
		if st == want {
			return
		}
		if last != "" && rank(st) < rank(last) {
			fail(ts, WrongOutput, "the status of %q for %s went from %s back to %s", text, member, last, st)
		}
		last = st
		if time.Now().After(deadline) || rank(st) > rank(want) {
			fail(ts, WrongOutput, "%s's message %q is %s for %s, want %s", name, text, st, member, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// blobUpload is "blob-upload NAME SIZE [UPTO] [bad-digest]": a new blob of
// SIZE bytes of plaintext, uploaded until the server holds UPTO bytes (all
// of it by default); with bad-digest, create-blob names a digest that is not
// the blob's.
func (w *world) blobUpload(ts *testscript.TestScript, ctx context.Context, name string, a *refActor, args []string, neg bool) {
	bad := len(args) > 0 && args[len(args)-1] == "bad-digest"
	if bad {
		args = args[:len(args)-1]
	}
	if len(args) < 2 || len(args) > 3 || w.blobs[args[0]] != nil {
		ts.Fatalf("usage: %s blob-upload NEWNAME SIZE [UPTO] [bad-digest]", name)
	}
	size, err := parseSize(args[1])
	if err != nil {
		ts.Fatalf("%v", err)
	}
	data := attachment(args[0], size)
	sealed, err := media.Encrypt(data, rand.Reader)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	b := &blob{data: data, sealed: sealed, digest: sealed.Digest}
	if bad {
		b.digest = bytes.Clone(sealed.Digest)
		b.digest[0] ^= 1
	}
	upTo := len(sealed.Blob)
	if len(args) == 3 {
		if upTo, err = parseSize(args[2]); err != nil {
			ts.Fatalf("%v", err)
		}
	}
	w.blobs[args[0]] = b
	code := errcode.AuthDigestMismatch
	_, err = a.uploadPart(ctx, b, upTo)
	if neg {
		if !bad {
			code = 0
		}
		mustFail(ts, name+" blob-upload "+args[0], err, code)
		return
	}
	must(ts, name+" blob-upload", err)
}
