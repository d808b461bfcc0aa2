package conformance

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/missive-protocol/missive/ref/devices"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/server"
	"github.com/missive-protocol/missive/ref/session"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/store/bolt"
	"github.com/missive-protocol/missive/ref/transport"
	"github.com/missive-protocol/missive/ref/wire"
)

// errUnsupported marks a scenario step that the server under test cannot
// take (an external server cannot be inspected): the scenario is skipped.
var errUnsupported = errors.New("not supported by this server")

// clock is the scenario's time: the system time plus an offset that
// "clock advance" moves.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// offsetAfter is the offset advance(d) would give.
func (c *clock) offsetAfter(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset + d
}

func (c *clock) advance(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	return c.offset
}

// serverControl starts, stops and inspects the server of a scenario.
type serverControl interface {
	address() string
	start() error
	stop() error
	kill() error
	// moveClock moves the scenario's clock, which the reference devices
	// read, by d, and the server's with it, in the order the server needs:
	// a server's clock must not lag the devices' (SRV-023 refuses a
	// sent-at far ahead of it).
	moveClock(c *clock, d time.Duration) error
	duplicate(on bool) error
	forget(on bool) error
	// rekey restarts the server with a new static key, or, with back, with
	// the key it had before (TRN-005).
	rekey(back bool) error
	queue(a store.Address) (int, error)
	// forge queues for to, as a server that forges would, a prekey message
	// with text under the sender address from, made with an identity key
	// of its own, which from's device list does not give from (DEV-020).
	forge(from, to store.Address, text string) error
	// quota restarts the server with a queue quota of that many entries
	// per device (0: the server's own).
	quota(entries int) error
	// storeFail makes the server's store fail to queue any envelope, or
	// work again (SRV-017).
	storeFail(on bool) error
	close()
}

// embedded is the reference server, in the runner's process.
type embedded struct {
	dir     string
	addr    string
	clock   *clock
	static  noise.DHKey
	old     noise.DHKey // the key before a rekey
	dup     bool
	noDedup bool
	entries int // the queue quota, 0 for the server's own
	srv     *server.Server
	st      *bolt.Store

	// watch makes the server hold each welcome back (hold, or
	// welcomeDelay) and note the devices that sent a frame after their
	// hello before it (TRN-013), log the frames it reads of each device
	// (TRN-014), and note the requests that came with the id of one
	// unanswered (MSG-005): the client suite's checks of every device.
	watch  bool
	hold   time.Duration // the welcome's hold when watching, 0: welcomeDelay
	answer time.Duration // how long each answer to a request waits, when watching
	emu    sync.Mutex
	early  []store.Address
	reused []reusedID
	frames map[store.Address]*frameLog // what the server read of each device (TRN-014, TRN-015)
	mute   map[store.Address]bool      // devices whose pings the server does not answer (TRN-015)

	// repeat makes the server hand out the one-time prekeys of the first
	// bundle it handed out of a device again, as a server without SRV-003
	// would (PQX-010): the mode of each device.
	repeat  map[store.Address]int
	bundles map[store.Address]*store.BundleKeys // the first bundle handed out of each device
	// taken holds the bundles takeBundles took of each device, to hand
	// out in the repeat mode taken, oldest first (PQX-015).
	taken map[store.Address][]*store.BundleKeys
	// pairs holds the first signed and last-resort prekeys each device
	// uploaded, and the latest (PQX-012, PQX-013).
	pairs map[store.Address]*prekeyPairs

	// keyIDs holds every prekey id each device uploaded, by kind, with
	// the digest of the key it named and the upload that first gave it;
	// uploads counts each device's uploads; reusedKeys the ids a device
	// gave a second key of the same kind (PQX-002), not yet reported.
	keyIDs     map[store.Address]map[keyID]firstKey
	uploads    map[store.Address]int
	reusedKeys []reusedKey
	drainedAt  map[store.Address]int // each device's uploads at its last drainPrekeys

	// forged holds, per account, a device list the server lies with: it
	// serves it for the account, and refuses every send to the account
	// with a fan-out mismatch that carries it (DEV-014).
	forged map[string][]byte

	// drops holds, per device, the account whose sends of the device the
	// server loses, closing the device's connection instead (DEV-022).
	drops map[store.Address]*dropArm
	// lose holds, per device, the account its next send goes to whose
	// answer the server loses, closing the connection instead of
	// answering (the send stored); lostSend the envelope whose answer it
	// lost, and whether the device has sent it again since (DEV-022).
	lose     map[store.Address]string
	lostSend map[store.Address]*lostEnvelope
}

// dropArm is a loss of sends that drop-send or drop-sends asked for.
type dropArm struct {
	to    string // the account the sends go to
	every bool   // every such send until it is turned off, not the next one
	n     int    // the sends lost so far
}

// lostEnvelope is an envelope whose answer the server lost.
type lostEnvelope struct {
	id     []byte
	sentAt uint64
	resent bool // sent again since, with the same message id and sent-at
}

// forgeList makes the server lie about an account's device list, or stop
// (on false): the list it gives is the account's at the next version,
// under a new primary key, with a second device, both keys of the runner's
// own making.
func (e *embedded) forgeList(account string, on bool) error {
	if !on {
		e.emu.Lock()
		delete(e.forged, account)
		e.emu.Unlock()
		return nil
	}
	if e.st == nil {
		return errors.New("the server is not running")
	}
	_, version, err := e.st.DeviceList(context.Background(), account)
	if err != nil {
		return fmt.Errorf("device list of %s: %w", account, err)
	}
	primary, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return err
	}
	second, err := keys.GeneratePrivateKey(rand.Reader)
	if err != nil {
		return err
	}
	listed := []wire.ListedDevice{{Device: 1, IdentityKey: primary.Public().Encode()}, {Device: 2, IdentityKey: second.Public().Encode()}}
	l, err := devices.Sign(primary, account, version+1, listed, uint64(e.clock.now().UnixMilli()), rand.Reader)
	if err != nil {
		return err
	}
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.forged == nil {
		e.forged = map[string][]byte{}
	}
	e.forged[account] = l.Signed
	return nil
}

// forgedList is the server's Config.ForgedList: the list it lies with
// for an account, if any.
func (e *embedded) forgedList(account string) []byte {
	e.emu.Lock()
	defer e.emu.Unlock()
	return e.forged[account]
}

// dropSend makes the server lose the next send of device a to account
// to (every such send, with every, until dropSend is called again with to
// ""): it closes the device's connection instead of serving it,
// unanswered and with nothing stored, as a connection lost before the
// send reached the server.
func (e *embedded) dropSend(a store.Address, to string, every bool) {
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.drops == nil {
		e.drops = map[store.Address]*dropArm{}
	}
	if to == "" {
		delete(e.drops, a)
		return
	}
	e.drops[a] = &dropArm{to: to, every: every}
}

// dropRequest is Config.DropRequest: true for a send dropSend asked to
// lose.
func (e *embedded) dropRequest(a store.Address, f *wire.Frame) bool {
	if f.Type != wire.FrameSend {
		return false
	}
	e.emu.Lock()
	arm := e.drops[a]
	e.emu.Unlock()
	if arm == nil {
		return false
	}
	var env wire.Envelope
	if transport.DecodeBody(f, &env) != nil || env.Recipient != arm.to {
		return false
	}
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.drops[a] != arm || !arm.every && arm.n > 0 {
		return false
	}
	arm.n++
	return true
}

// awaitDrop reports whether a send that dropSend asked to lose of device
// a has been lost, waiting for it up to wait.
func (e *embedded) awaitDrop(ctx context.Context, a store.Address, wait time.Duration) bool {
	return e.await(ctx, wait, func() bool {
		arm := e.drops[a]
		return arm != nil && arm.n > 0
	})
}

// await reports whether done, called under emu, returns true within wait
// (and ctx), asking every 50 ms.
func (e *embedded) await(ctx context.Context, wait time.Duration, done func() bool) bool {
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		e.emu.Lock()
		ok := done()
		e.emu.Unlock()
		if ok || time.Now().After(deadline) || ctx.Err() != nil {
			return ok
		}
	}
}

// loseAnswerTo makes the server lose the answer to the next send of
// device a to account to: it stores the send, then closes the connection
// instead of answering.
func (e *embedded) loseAnswerTo(a store.Address, to string) {
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.lose == nil {
		e.lose, e.lostSend = map[store.Address]string{}, map[store.Address]*lostEnvelope{}
	}
	e.lose[a] = to
	delete(e.lostSend, a)
}

// loseAnswer is Config.LoseAnswer: true for the send loseAnswerTo asked
// about, once; it notes a send of the envelope again.
func (e *embedded) loseAnswer(a store.Address, f *wire.Frame) bool {
	if f.Type != wire.FrameSend {
		return false
	}
	e.emu.Lock()
	_, armed := e.lose[a]
	l := e.lostSend[a]
	watching := armed || l != nil && !l.resent
	e.emu.Unlock()
	if !watching {
		return false
	}
	var env wire.Envelope
	if transport.DecodeBody(f, &env) != nil {
		return false
	}
	e.emu.Lock()
	defer e.emu.Unlock()
	if l := e.lostSend[a]; l != nil && bytes.Equal(l.id, env.MessageID) && l.sentAt == env.SentAt {
		l.resent = true
	}
	if to, armed := e.lose[a]; !armed || env.Recipient != to {
		return false
	}
	delete(e.lose, a)
	e.lostSend[a] = &lostEnvelope{id: env.MessageID, sentAt: env.SentAt}
	return true
}

// awaitLost reports whether the server has lost the answer loseAnswerTo
// asked about (resent false), or seen the device send that envelope again
// (resent true), waiting for it up to wait.
func (e *embedded) awaitLost(ctx context.Context, a store.Address, resent bool, wait time.Duration) bool {
	return e.await(ctx, wait, func() bool {
		l := e.lostSend[a]
		return l != nil && (!resent || l.resent)
	})
}

// The modes of embedded.repeat.
const (
	repeatOff   = iota
	repeatWhole // the first bundle again
	repeatKEM   // the first bundle again, without its one-time EC prekey
	repeatEC    // the keys just taken, with the first bundle's one-time EC prekey
	// the keys just taken, with the device's first signed prekey
	// (replaced since: PQX-013)
	repeatOldSigned
	// the current signed prekey, with the device's first last-resort KEM
	// prekey and no one-time key (PQX-013)
	repeatOldLastResort
	// the next of the bundles takeBundles took, while there is one
	// (PQX-015)
	repeatTaken
)

// prekeyPairs are the first and the latest signed and last-resort
// prekeys of a device's uploads.
type prekeyPairs struct {
	firstSigned, firstLastResort   *store.Prekey
	latestSigned, latestLastResort *store.Prekey
}

// handOut is the server's Config.HandOut: it records the first bundle of
// each device, and in a repeat mode hands its one-time prekeys out again.
func (e *embedded) handOut(a store.Address, bk *store.BundleKeys) *store.BundleKeys {
	e.emu.Lock()
	defer e.emu.Unlock()
	first := e.bundles[a]
	if first == nil {
		if e.bundles == nil {
			e.bundles = map[store.Address]*store.BundleKeys{}
		}
		e.bundles[a] = bk
		return bk
	}
	var again store.BundleKeys
	switch e.repeat[a] {
	case repeatWhole:
		again = *first
	case repeatKEM:
		again = *first
		again.OneTimeEC = nil
	case repeatEC:
		again = *bk
		again.OneTimeEC = first.OneTimeEC
	case repeatOldSigned:
		again = *bk
		again.SignedPrekey = *e.pairs[a].firstSigned
	case repeatOldLastResort:
		again = *bk
		again.KEMPrekey, again.LastResort, again.OneTimeEC = *e.pairs[a].firstLastResort, true, nil
	case repeatTaken:
		if len(e.taken[a]) == 0 {
			return bk
		}
		again = *e.taken[a][0]
		e.taken[a] = e.taken[a][1:]
	default:
		return bk
	}
	return &again
}

// repeatBundles sets a device's repeat mode. A mode whose one-time prekey
// the device's first bundle did not have cannot show what PQX-010 asks,
// and is refused with errUnsupported (the scenario is skipped).
func (e *embedded) repeatBundles(a store.Address, mode int) error {
	e.emu.Lock()
	defer e.emu.Unlock()
	if mode != repeatOff {
		first := e.bundles[a]
		switch {
		case first == nil:
			return fmt.Errorf("no bundle of %s/%d has been handed out yet", a.Account, a.Device)
		case mode == repeatWhole && first.OneTimeEC == nil && first.LastResort,
			mode == repeatKEM && first.LastResort:
			return fmt.Errorf("%w: the first bundle of %s/%d had no one-time KEM prekey (its last-resort one instead)", errUnsupported, a.Account, a.Device)
		case mode == repeatEC && first.OneTimeEC == nil:
			return fmt.Errorf("%w: the first bundle of %s/%d had no one-time EC prekey", errUnsupported, a.Account, a.Device)
		case mode == repeatTaken && len(e.taken[a]) == 0:
			return fmt.Errorf("no bundle of %s/%d is left of those take-bundles took", a.Account, a.Device)
		case (mode == repeatOldSigned || mode == repeatOldLastResort) && !e.pairs[a].rotated():
			return fmt.Errorf("%s/%d has not replaced its first signed and last-resort prekeys", a.Account, a.Device)
		}
	}
	if e.repeat == nil {
		e.repeat = map[store.Address]int{}
	}
	e.repeat[a] = mode
	return nil
}

// keyID is a prekey id of one kind: "signed prekey", "KEM prekey" (one-time
// and last-resort together) or "one-time EC prekey" (section 4.1).
type keyID struct {
	kind string
	id   uint32
}

// firstKey is the key an id was first given, and in which upload.
type firstKey struct {
	digest [32]byte
	upload int
}

// reusedKey is an id a device gave a second key of its kind (PQX-002).
type reusedKey struct {
	addr store.Address
	keyID
	first, upload int // the uploads that gave it, 1 the device's first
}

// uploaded is the server's Config.Uploaded: it records the ids of an
// upload and notes those given to another key before. The same key under
// the same id again (a retry of an upload whose answer was lost) is no
// second key.
func (e *embedded) uploaded(a store.Address, u store.PrekeyUpdate) {
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.keyIDs == nil {
		e.keyIDs, e.uploads = map[store.Address]map[keyID]firstKey{}, map[store.Address]int{}
	}
	if e.keyIDs[a] == nil {
		e.keyIDs[a] = map[keyID]firstKey{}
	}
	e.uploads[a]++
	n := e.uploads[a]
	note := func(kind string, k *store.Prekey) {
		id, d := keyID{kind, k.ID}, sha256.Sum256(k.Key)
		first, ok := e.keyIDs[a][id]
		switch {
		case !ok:
			e.keyIDs[a][id] = firstKey{d, n}
		case first.digest != d || first.upload == n:
			e.reusedKeys = append(e.reusedKeys, reusedKey{a, id, first.upload, n})
		}
	}
	if e.pairs == nil {
		e.pairs = map[store.Address]*prekeyPairs{}
	}
	p := e.pairs[a]
	if p == nil {
		p = &prekeyPairs{}
		e.pairs[a] = p
	}
	if u.SignedPrekey != nil {
		note("signed prekey", u.SignedPrekey)
		p.firstSigned = cmp.Or(p.firstSigned, u.SignedPrekey)
		p.latestSigned = u.SignedPrekey
	}
	if u.LastResort != nil {
		note("KEM prekey", u.LastResort)
		p.firstLastResort = cmp.Or(p.firstLastResort, u.LastResort)
		p.latestLastResort = u.LastResort
	}
	for i := range u.OneTimeKEM {
		note("KEM prekey", &u.OneTimeKEM[i])
	}
	for i := range u.OneTimeEC {
		note("one-time EC prekey", &u.OneTimeEC[i])
	}
}

// takeBundles takes n bundles of a device from the store, as fetches
// would, and keeps them for the repeat mode taken. Each must hand out a
// one-time EC and KEM prekey.
func (e *embedded) takeBundles(ctx context.Context, a store.Address, n int) error {
	if e.st == nil {
		return errors.New("the server is not running")
	}
	e.emu.Lock()
	defer e.emu.Unlock()
	for range n {
		bk, _, err := e.st.TakeBundle(ctx, a, store.Budget{})
		if err != nil {
			return err
		}
		if bk.OneTimeEC == nil || bk.LastResort {
			return fmt.Errorf("%w: %s/%d has no one-time prekeys left to take", errUnsupported, a.Account, a.Device)
		}
		if e.taken == nil {
			e.taken = map[store.Address][]*store.BundleKeys{}
		}
		e.taken[a] = append(e.taken[a], bk)
	}
	return nil
}

// getGroups returns how many get-group requests a device has sent.
func (e *embedded) getGroups(a store.Address) int {
	e.emu.Lock()
	defer e.emu.Unlock()
	if l := e.frames[a]; l != nil {
		return l.getGroups
	}
	return 0
}

// rotated reports whether the device has uploaded a signed prekey and a
// last-resort KEM prekey other than its first ones.
func (p *prekeyPairs) rotated() bool {
	return p != nil && p.firstSigned != nil && p.firstLastResort != nil &&
		p.latestSigned.ID != p.firstSigned.ID && p.latestLastResort.ID != p.firstLastResort.ID
}

// awaitRotation waits until a device has uploaded a signed prekey and a
// last-resort KEM prekey other than its first ones, and the server serves
// the signed prekey (the upload was stored, not refused), or the wait
// ends; it reports whether it did.
func (e *embedded) awaitRotation(ctx context.Context, a store.Address, wait time.Duration) bool {
	return e.await(ctx, wait, func() bool {
		p := e.pairs[a]
		if !p.rotated() || e.st == nil {
			return false
		}
		bk, _, err := e.st.TakeBundle(ctx, a, store.Budget{})
		return err == nil && bk.SignedPrekey.ID == p.latestSigned.ID
	})
}

// reusedPrekeyIDs returns the ids given a second key since the last call.
func (e *embedded) reusedPrekeyIDs() []reusedKey { return drain(e, &e.reusedKeys) }

// awaitUpload waits until a device has uploaded prekeys since its last
// drainPrekeys, or the wait ends; it reports whether it did.
func (e *embedded) awaitUpload(ctx context.Context, a store.Address, wait time.Duration) bool {
	return e.await(ctx, wait, func() bool { return e.uploads[a] > e.drainedAt[a] })
}

// drainPrekeys takes one-time prekeys of a device from the store, as
// fetches would, until the next fetch leaves fewer than PREKEY_LOW of a
// kind (the server then sends notice(prekeys-low), SRV-004), and notes
// the device's uploads so far (awaitUpload); it returns the bundles taken.
func (e *embedded) drainPrekeys(ctx context.Context, a store.Address) (int, error) {
	if e.st == nil {
		return 0, errors.New("the server is not running")
	}
	e.emu.Lock()
	if e.drainedAt == nil {
		e.drainedAt = map[store.Address]int{}
	}
	e.drainedAt[a] = e.uploads[a]
	e.emu.Unlock()
	// A device that has just registered may not have uploaded yet.
	counts, ok, err := e.st.PrekeyCounts(ctx, a)
	for deadline := time.Now().Add(waitLong); err == nil && !ok && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		counts, ok, err = e.st.PrekeyCounts(ctx, a)
	}
	if err != nil || !ok {
		return 0, cmp.Or(err, fmt.Errorf("%s/%d is not reachable %v after it registered: no signed and last-resort prekeys", a.Account, a.Device, waitLong))
	}
	taken := 0
	for min(counts.EC, counts.KEM) > server.PrekeyLow {
		if _, counts, err = e.st.TakeBundle(ctx, a, store.Budget{}); err != nil {
			return taken, err
		}
		taken++
	}
	return taken, nil
}

// reusedID is a request that came with the id of a request of the same
// connection not yet answered (MSG-005).
type reusedID struct {
	addr store.Address
	id   uint64
}

// frameLog is what a watching embedded server read of one device on its
// latest connection: when its last frame came, and each frame after the
// hello with the time since the one before it.
type frameLog struct {
	conns     int // the device's connections so far (hellos that passed)
	getGroups int // the device's get-group requests so far (GRP-017)
	last      time.Time
	frames    []frameSeen
	ended     int       // the device's connections whose reader has ended
	endErr    error     // what ended the last of them
	byUs      bool      // and whether the server had begun to close it itself
	wrote     time.Time // when the server last wrote to its latest connection
}

type frameSeen struct {
	at  time.Time
	gap time.Duration // since the device's frame before it
	typ uint64
}

// frameRead records a frame the server read from a device; a hello starts
// the log of a new connection.
func (e *embedded) frameRead(a store.Address, typ uint64) {
	now := time.Now()
	e.emu.Lock()
	defer e.emu.Unlock()
	if e.frames == nil {
		e.frames = map[store.Address]*frameLog{}
	}
	l := e.frames[a]
	if l == nil {
		l = &frameLog{}
		e.frames[a] = l
	}
	if typ == wire.FrameGetGroup {
		l.getGroups++
	}
	if typ == wire.FrameHello {
		l.conns++
		l.frames = nil
		l.wrote = now // its welcome follows
	} else {
		l.frames = append(l.frames, frameSeen{at: now, gap: now.Sub(l.last), typ: typ})
	}
	l.last = now
}

// readEnded records that the reader of a device's connection ended, and
// why (TRN-015).
func (e *embedded) readEnded(a store.Address, err error, byServer bool) {
	e.emu.Lock()
	defer e.emu.Unlock()
	if l := e.frames[a]; l != nil {
		l.ended++
		l.endErr, l.byUs = err, byServer
	}
}

// wroteTo records that the server wrote to a device's connection: what
// the device last received (TRN-015).
func (e *embedded) wroteTo(a store.Address) {
	now := time.Now()
	e.emu.Lock()
	defer e.emu.Unlock()
	if l := e.frames[a]; l != nil {
		l.wrote = now
	}
}

// muted reports whether the server answers no ping of a device.
func (e *embedded) muted(a store.Address) bool {
	e.emu.Lock()
	defer e.emu.Unlock()
	return e.mute[a]
}

// awaitIdleClose checks TRN-015 on a device: from now on the server
// answers none of its pings, and the device must end its connection of
// this moment within idle (IDLE_TIMEOUT) and grace of the last frame the
// server wrote to it, before or after this moment (an answer to a
// request, a push). The server ending it, by its own read deadline (a
// device that sent nothing for as long) or otherwise, is no pass.
func (e *embedded) awaitIdleClose(ctx context.Context, a store.Address, idle, grace time.Duration) error {
	start := time.Now()
	e.emu.Lock()
	l := e.frames[a]
	if l == nil || l.conns == 0 || l.ended >= l.conns {
		e.emu.Unlock()
		return errors.New("it has no connection open")
	}
	conns := l.conns
	if e.mute == nil {
		e.mute = map[store.Address]bool{}
	}
	e.mute[a] = true
	e.emu.Unlock()
	defer func() {
		e.emu.Lock()
		delete(e.mute, a)
		e.emu.Unlock()
	}()
	for {
		e.emu.Lock()
		ended, endErr, byUs, wrote, newer := l.ended >= conns, l.endErr, l.byUs, l.wrote, l.conns > conns
		e.emu.Unlock()
		var ne net.Error
		switch {
		case ended && errors.As(endErr, &ne) && ne.Timeout():
			return fmt.Errorf("the server's read deadline ended its connection %v after it was muted: it sent nothing for IDLE_TIMEOUT, and had not closed the connection", time.Since(start).Round(time.Millisecond))
		case ended && byUs && newer:
			return nil // it connected again first, and the server closed the old connection for it
		case ended && byUs:
			return fmt.Errorf("the server ended its connection %v after it was muted (%v), before the device did", time.Since(start).Round(time.Millisecond), endErr)
		case ended:
			return nil
		case time.Since(wrote) > idle+grace:
			return fmt.Errorf("it kept its connection open %v after the server's last frame to it, want at most IDLE_TIMEOUT (%v, with %v of grace)", time.Since(wrote).Round(time.Millisecond), idle, grace)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// keepaliveGrace is how much later than KEEPALIVE_INTERVAL after a
// device's last frame the runner takes its next one: for the timers and
// the scheduling of a loaded machine.
const keepaliveGrace = 2 * time.Second

// awaitKeepalive checks TRN-014 from since on, on the device's connection
// of that moment: the device must not be silent for longer than interval
// (KEEPALIVE_INTERVAL) and grace. It judges a whole window of that length
// and half the grace more, so that the device must have spoken in it (a
// ping, or any frame of a device that needs none), and fails at the first
// silence longer than that, or when the device connects again meanwhile.
func (e *embedded) awaitKeepalive(ctx context.Context, a store.Address, since time.Time, interval, grace time.Duration) error {
	limit := interval + grace
	e.emu.Lock()
	conns := 0
	if l := e.frames[a]; l != nil {
		conns = l.conns
	}
	e.emu.Unlock()
	if conns == 0 {
		return errors.New("the server has not seen it connect")
	}
	for {
		e.emu.Lock()
		l := e.frames[a]
		last, again := l.last, l.conns != conns
		var late *frameSeen
		for i, f := range l.frames {
			if !f.at.Before(since) && f.gap > limit {
				late = &l.frames[i]
				break
			}
		}
		e.emu.Unlock()
		switch {
		case again:
			return errors.New("it connected again during the wait: the check needs one connection, open all along")
		case late != nil:
			return fmt.Errorf("it sent nothing for %v before its next frame (type %d), want at most KEEPALIVE_INTERVAL (%v, with %v of grace)", late.gap.Round(time.Millisecond), late.typ, interval, grace)
		case time.Since(last) > limit:
			return fmt.Errorf("it has sent nothing for %v and sent no ping (KEEPALIVE_INTERVAL is %v; or its connection ended)", time.Since(last).Round(time.Millisecond), interval)
		case time.Since(since) > limit+grace/2:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// welcomeDelay is how long a watching embedded server holds a welcome
// back: long enough for what a device sends with or just after its hello
// to arrive, short enough to add little to a scenario.
const welcomeDelay = 30 * time.Millisecond

// earlyFrames returns the devices that sent a frame after their hello
// before the welcome, since the last call.
func (e *embedded) earlyFrames() []store.Address { return drain(e, &e.early) }

// drain returns what *s holds and empties it, under e.emu.
func drain[T any](e *embedded, s *[]T) []T {
	e.emu.Lock()
	defer e.emu.Unlock()
	out := *s
	*s = nil
	return out
}

// reusedIDs returns the requests that came with the id of one
// unanswered, since the last call.
func (e *embedded) reusedIDs() []reusedID { return drain(e, &e.reused) }

func newEmbedded(dir string, c *clock) (*embedded, error) {
	static, err := transport.Suite.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &embedded{dir: dir, addr: "127.0.0.1:0", clock: c, static: static}, nil
}

func (e *embedded) address() string { return e.addr }

func (e *embedded) start() error {
	if e.srv != nil {
		return nil
	}
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		return err
	}
	st, err := bolt.Open(filepath.Join(e.dir, "store.db"))
	if err != nil {
		return err
	}
	cfg := server.Config{Store: st, Static: e.static, Clock: e.clock.now,
		DuplicateDeliveries: e.dup, ForgetAccepted: e.noDedup, Quota: store.Quota{Entries: e.entries}, RedeliveryBase: 500 * time.Millisecond, ExpiryInterval: 100 * time.Millisecond,
		RegisterBurst: -1} // the runner's own server, not under test: its accounts are the scenario's (SRV-026)
	if e.watch {
		cfg.WelcomeDelay = cmp.Or(e.hold, welcomeDelay)
		cfg.EarlyFrame = func(a store.Address) {
			e.emu.Lock()
			e.early = append(e.early, a)
			e.emu.Unlock()
		}
		cfg.FrameRead = e.frameRead
		cfg.AnswerDelay = e.answer
		cfg.HandOut = e.handOut
		cfg.ForgedList = e.forgedList
		cfg.Mute, cfg.Wrote, cfg.ReadEnded = e.muted, e.wroteTo, e.readEnded
		cfg.Uploaded = e.uploaded
		cfg.DropRequest = e.dropRequest
		cfg.LoseAnswer = e.loseAnswer
		cfg.ReusedRequest = func(a store.Address, id uint64) {
			e.emu.Lock()
			e.reused = append(e.reused, reusedID{a, id})
			e.emu.Unlock()
		}
	}
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		return err
	}
	var ln net.Listener
	for try := 0; ; try++ { // the port of a restarted server may take a moment to free
		ln, err = transport.Listen(e.addr)
		if err == nil || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		st.Close()
		return err
	}
	e.addr = ln.Addr().String()
	e.srv, e.st = srv, st
	go srv.Serve(ln)
	return nil
}

func (e *embedded) stop() error {
	if e.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	e.st.Close()
	e.srv, e.st = nil, nil
	return err
}

func (e *embedded) kill() error {
	if e.srv == nil {
		return nil
	}
	e.srv.Close()
	e.st.Close()
	e.srv, e.st = nil, nil
	return nil
}

// moveClock moves the clock the server shares with the devices, then
// sweeps, so that what expired goes at once.
func (e *embedded) moveClock(c *clock, d time.Duration) error {
	c.advance(d)
	if e.srv != nil {
		e.srv.Sweep(context.Background())
	}
	return nil
}

// restart starts the server again with its settings, when it runs.
func (e *embedded) restart() error {
	if e.srv == nil {
		return nil
	}
	if err := e.stop(); err != nil {
		return err
	}
	return e.start()
}

func (e *embedded) duplicate(on bool) error {
	e.dup = on
	return e.restart()
}

func (e *embedded) quota(entries int) error {
	e.entries = entries
	return e.restart()
}

func (e *embedded) rekey(back bool) error {
	if err := e.stop(); err != nil {
		return err
	}
	switch {
	case back && e.old.Public != nil:
		e.static, e.old = e.old, noise.DHKey{}
	case !back:
		k, err := transport.Suite.GenerateKeypair(rand.Reader)
		if err != nil {
			return err
		}
		e.static, e.old = k, e.static
	}
	return e.start()
}

func (e *embedded) forget(on bool) error {
	e.noDedup = on
	return e.restart()
}

func (e *embedded) queue(a store.Address) (int, error) {
	if e.st == nil {
		return 0, errors.New("the server is not running")
	}
	s, err := e.st.Stats(context.Background(), a)
	return s.Entries, err
}

func (e *embedded) forge(from, to store.Address, text string) error {
	if e.st == nil {
		return errors.New("the server is not running")
	}
	ctx := context.Background()
	bk, _, err := e.st.TakeBundle(ctx, to, store.Budget{})
	if err != nil {
		return fmt.Errorf("bundle of %s/%d: %w", to.Account, to.Device, err)
	}
	bundle, err := server.EncodeBundle(bk)
	if err != nil {
		return err
	}
	ik, err := keys.GeneratePrivateKey(rand.Reader) // the forger's own
	if err != nil {
		return err
	}
	s, err := session.Initiate(rand.Reader, ik, bundle)
	if err != nil {
		return err
	}
	id := make([]byte, 16)
	rand.Read(id)
	now := e.clock.now()
	sentAt := uint64(now.UnixMilli())
	pt, err := wire.Marshal(&wire.Content{Version: 1, Type: wire.ContentText, MessageID: id, SentAt: sentAt, Text: &text})
	if err != nil {
		return err
	}
	_, ct, err := s.Encrypt(pt)
	if err != nil {
		return err
	}
	entry := store.Entry{Recipient: to, Sender: from, MessageID: id, Type: wire.EnvelopeChat, Priority: wire.PriorityNormal,
		Kind: wire.KindPrekey, Ciphertext: ct, SentAt: sentAt, AcceptedAt: now, ExpiresAt: now.Add(time.Hour)}
	_, _, err = e.st.Enqueue(ctx, []store.Entry{entry}, store.Quota{}, now.Add(time.Hour))
	return err
}

func (e *embedded) close() { e.kill() }

// storeFail is for the server suite, whose server is the one under test.
func (e *embedded) storeFail(bool) error { return errUnsupported }

// process is a server under test started by a command line, in which
// {addr}, {data} and {clock} are replaced by a loopback address, a data
// directory and a clock file (a duration the server's clock runs ahead by).
type process struct {
	command   string
	addr      string
	data      string
	clockFile string
	failFile  string // {store-fail}: while it exists, the server's store fails
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
	log       *limitedBuffer
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newProcess(command, dir string) (*process, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &process{command: command, addr: addr, data: filepath.Join(dir, "data"), clockFile: filepath.Join(dir, "clock"),
		failFile: filepath.Join(dir, "store-fail"), log: &limitedBuffer{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return p, os.WriteFile(p.clockFile, []byte("0s\n"), 0o600)
}

func (p *process) address() string { return p.addr }

// start starts the server and waits until it listens. The port was free
// when it was chosen, but another process may take it before the server
// does, and then a connection to it reaches that process: so the server
// must also still run a moment after the first connection, and a server
// that exits while it starts is started again on another port (up to three
// times).
func (p *process) start() error {
	if p.cmd != nil {
		return nil
	}
	var err error
	for attempt := 1; ; attempt++ {
		var exited bool
		if exited, err = p.startOnce(); err == nil || !exited || attempt == 3 {
			return err
		}
		if p.addr, err = freePort(); err != nil {
			return err
		}
	}
}

// startOnce starts the server once; exited reports that it failed because
// the server exited.
func (p *process) startOnce() (exited bool, err error) {
	line := strings.NewReplacer("{addr}", p.addr, "{data}", p.data, "{clock}", p.clockFile, "{store-fail}", p.failFile).Replace(p.command)
	words, err := splitCommand(line)
	if err != nil {
		return false, err
	}
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// The server may be a wrapper's child (go run, a script): signals go
	// to the group, and the output of a child left behind is not waited
	// for beyond waitDelay.
	ownGroup(cmd)
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("starting the server: %w", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(p.exited)
	gone := func() error {
		p.cmd = nil
		return fmt.Errorf("the server exited while it started: %v\n%s", cmd.ProcessState, p.log.String())
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			return true, gone()
		default:
		}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			select {
			case <-p.exited:
				return true, gone()
			case <-time.After(200 * time.Millisecond):
				return false, nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return false, fmt.Errorf("the server did not listen on %s: %v\n%s", p.addr, err, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *process) wait(timeout time.Duration) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		signalGroup(p.cmd, os.Kill)
		<-p.exited
	}
	signalGroup(p.cmd, os.Kill) // what the server started, if anything is left
	p.cmd = nil
}

func (p *process) stop() error {
	if p.cmd == nil {
		return nil
	}
	signalGroup(p.cmd, os.Interrupt)
	p.wait(15 * time.Second)
	return nil
}

func (p *process) kill() error {
	if p.cmd == nil {
		return nil
	}
	signalGroup(p.cmd, os.Kill)
	p.wait(5 * time.Second)
	return nil
}

// moveClock moves the server's clock first (its file, which it reads
// within a second), then the devices'.
func (p *process) moveClock(c *clock, d time.Duration) error {
	if err := p.clockMoved(c.offsetAfter(d)); err != nil {
		return err
	}
	c.advance(d)
	return nil
}

func (p *process) clockMoved(offset time.Duration) error {
	// Whole days as the README shows them ("31d"), else Go's syntax.
	text := offset.String()
	if offset%(24*time.Hour) == 0 {
		text = fmt.Sprintf("%dd", offset/(24*time.Hour))
	}
	if err := os.WriteFile(p.clockFile, []byte(text+"\n"), 0o600); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // the server reads the file and sweeps every second
	return nil
}

func (p *process) duplicate(bool) error             { return errUnsupported }
func (p *process) forget(bool) error                { return errUnsupported }
func (p *process) rekey(bool) error                 { return errUnsupported }
func (p *process) queue(store.Address) (int, error) { return 0, errUnsupported }
func (p *process) quota(int) error                  { return errUnsupported }

// storeFail creates or removes the file of {store-fail}; a command without
// it cannot make its store fail.
func (p *process) storeFail(on bool) error {
	if !strings.Contains(p.command, "{store-fail}") {
		return fmt.Errorf("%w: the -server-cmd has no {store-fail}", errUnsupported)
	}
	if on {
		return os.WriteFile(p.failFile, nil, 0o600)
	}
	if err := os.Remove(p.failFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
func (p *process) forge(store.Address, store.Address, string) error {
	return errUnsupported
}
func (p *process) close() { p.kill() }
