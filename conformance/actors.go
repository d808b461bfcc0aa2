package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/wire"
)

// received is a message an actor's user was shown.
type received struct {
	from     string // account
	id       []byte
	text     string // the text, or the caption of media
	group    []byte // a group message: its group
	outgoing bool   // sent by another device of the actor's account
	media    bool
	viewOnce bool
	expire   uint64 // expire-after, seconds
}

func (r received) String() string {
	s := fmt.Sprintf("%q from %s", r.text, r.from)
	if r.group != nil {
		s += fmt.Sprintf(" in group %x", r.group[:min(4, len(r.group))])
	}
	return s
}

// conv is a conversation: an account, or a group.
type conv struct {
	account string
	group   []byte
}

// sentStatus is the status of a sent message: as a whole and, for a group
// message, per member account.
type sentStatus struct {
	overall string
	members map[string]string
}

// shown is what a device shows of a message (message.get).
type shown struct {
	present, deleted, edited, media, viewOnce, opened bool
	text                                              string
	expire                                            uint64
	group                                             []byte
}

// actor is a device in a scenario, played by a reference client or by the
// implementation under test.
type actor interface {
	kind() string
	send(ctx context.Context, to conv, text string) ([]byte, error)
	receive(ctx context.Context, wait time.Duration) ([]received, error)
	read(ctx context.Context, from conv) error
	status(ctx context.Context, id []byte) (sentStatus, error)
	offline() error
	online(ctx context.Context) error
	presence(ctx context.Context, account string) (string, error)
	privacy(ctx context.Context, lastSeen, online string, contacts []string) error
	linkOpen(ctx context.Context) (string, error)
	linkComplete(ctx context.Context) (uint32, error)
	unlink(ctx context.Context, id uint32) error
	deviceID() uint32
	close()

	// Groups, media and the lifecycle (spec chapters 16 to 18).
	groupCreate(ctx context.Context, name string, members []string) ([]byte, error)
	groupUpdate(ctx context.Context, group []byte, add, remove, admins []string) error
	sendMedia(ctx context.Context, to conv, data []byte, mime, caption string, viewOnce bool) ([]byte, error)
	download(ctx context.Context, id []byte) ([]byte, error)
	openOnce(ctx context.Context, id []byte) ([]byte, error)
	edit(ctx context.Context, id []byte, text string) error
	unsend(ctx context.Context, id []byte) error
	deleteHere(ctx context.Context, peer string, id []byte) error
	setTimer(ctx context.Context, to conv, seconds uint32) error
	get(ctx context.Context, from string, id []byte) (shown, error)
}

// refActor is a device of the reference client.
type refActor struct {
	d        *client.Device
	c        *client.Conn
	mu       sync.Mutex
	inbox    []received
	failures []error              // deliveries the device could not process
	typing   []*wire.TypingNotice // typing notices not yet looked at (typing-seen)
	complete func(context.Context) (uint32, error)
	now      func() time.Time // the device's clock
	deaf     atomic.Bool      // the device drops deliveries unread (client.Config.OnDelivery)
	dmu      sync.Mutex
	count    map[string]int // message id -> deliveries of it that came
	order    map[string]int // message id -> the place of its first delivery among the messages' first (0, 1, ...)
}

// delivered counts a delivery as it comes, and drops it unread while the
// actor is deaf (client.Config.OnDelivery).
func (a *refActor) delivered(d *wire.Delivery) bool {
	a.dmu.Lock()
	if a.count == nil {
		a.count, a.order = map[string]int{}, map[string]int{}
	}
	if a.count[string(d.MessageID)] == 0 {
		a.order[string(d.MessageID)] = len(a.order)
	}
	a.count[string(d.MessageID)]++
	a.dmu.Unlock()
	return !a.deaf.Load()
}

// firstDelivered returns the place of a message's first delivery among
// the first deliveries of all, and whether it came.
func (a *refActor) firstDelivered(id []byte) (int, bool) {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	n, ok := a.order[string(id)]
	return n, ok
}

// takeTyping removes and returns the typing notices that came so far.
func (a *refActor) takeTyping() []*wire.TypingNotice {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.typing
	a.typing = nil
	return t
}

// deliveries returns how many deliveries of a message came.
func (a *refActor) deliveries(id []byte) int {
	a.dmu.Lock()
	defer a.dmu.Unlock()
	return a.count[string(id)]
}

func newRefActor(ctx context.Context, dir, account, server string, clock func() time.Time) (*refActor, error) {
	a := &refActor{now: clock}
	d, err := client.Init(dir, account, server, client.Config{Clock: clock, OnDelivery: a.delivered})
	if err != nil {
		return nil, err
	}
	a.d = d
	return a, a.online(ctx)
}

func (a *refActor) kind() string     { return "ref" }
func (a *refActor) deviceID() uint32 { return a.d.ID }

func (a *refActor) online(ctx context.Context) error {
	if a.c != nil {
		return nil
	}
	c, err := a.d.Connect(ctx)
	if err != nil {
		return err
	}
	a.c = c
	go func() {
		for e := range c.Events {
			switch {
			case e.Kind == client.EventMessage:
				m := e.Message
				r := received{from: m.Peer, id: m.ID, text: m.Text, group: m.Group, outgoing: m.Outgoing,
					media: m.Media != nil, viewOnce: m.Media != nil && m.Media.ViewOnce != nil, expire: m.Expire}
				if m.Outgoing {
					r.from = a.d.Account
				}
				a.mu.Lock()
				a.inbox = append(a.inbox, r)
				a.mu.Unlock()
			case e.Kind == client.EventTyping:
				a.mu.Lock()
				a.typing = append(a.typing, e.Typing)
				a.mu.Unlock()
			case e.Kind == client.EventError && strings.HasPrefix(e.Err.Error(), "message "):
				a.mu.Lock()
				a.failures = append(a.failures, e.Err)
				a.mu.Unlock()
			}
		}
	}()
	return nil
}

func (a *refActor) offline() error {
	if a.c != nil {
		a.c.Close()
		a.c = nil
	}
	return nil
}

func (a *refActor) close() {
	a.offline()
	a.d.Close()
}

func (a *refActor) conn() (*client.Conn, error) {
	if a.c == nil {
		return nil, errors.New("the device is offline")
	}
	return a.c, nil
}

func (a *refActor) send(ctx context.Context, to conv, text string) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	m, err := c.SendTo(ctx, to.ref(), text)
	if err != nil {
		return nil, err
	}
	return m.ID, nil
}

func (a *refActor) receive(ctx context.Context, wait time.Duration) ([]received, error) {
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.inbox
	a.inbox = nil
	return out, nil
}

func (a *refActor) read(ctx context.Context, from conv) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	if from.group != nil {
		_, err = c.MarkReadGroup(ctx, from.group)
	} else {
		_, err = c.MarkRead(ctx, from.account)
	}
	return err
}

func (a *refActor) status(ctx context.Context, id []byte) (sentStatus, error) {
	m, err := a.d.Sent(id)
	if err != nil {
		return sentStatus{overall: "unknown"}, nil
	}
	st := sentStatus{overall: m.Overall().String()}
	if m.Group != nil {
		st.members = map[string]string{}
		for account, devs := range m.Members {
			st.members[account] = history.Overall(devs).String()
		}
	}
	return st, nil
}

func (a *refActor) presence(ctx context.Context, account string) (string, error) {
	c, err := a.conn()
	if err != nil {
		return "", err
	}
	us, err := c.Subscribe(ctx, account)
	if err != nil || len(us) != 1 {
		return "", fmt.Errorf("no presence for %s: %v", account, err)
	}
	return map[uint64]string{wire.PresenceOnline: "online", wire.PresenceOffline: "offline", wire.PresenceHidden: "hidden"}[us[0].State], nil
}

var visibilities = map[string]uint8{"everyone": wire.VisibilityEveryone, "contacts": wire.VisibilityContacts, "nobody": wire.VisibilityNobody}

func (a *refActor) privacy(ctx context.Context, lastSeen, online string, contacts []string) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	ls, ok1 := visibilities[lastSeen]
	on, ok2 := visibilities[online]
	if !ok1 || !ok2 {
		return errors.New("visibility is everyone, contacts or nobody")
	}
	if err := c.SetPrivacy(ctx, ls, on); err != nil {
		return err
	}
	return c.SetContacts(ctx, contacts...)
}

func (a *refActor) linkOpen(ctx context.Context) (string, error) {
	c, err := a.conn()
	if err != nil {
		return "", err
	}
	code, complete, err := c.Link(context.Background())
	a.complete = complete
	return code, err
}

func (a *refActor) linkComplete(ctx context.Context) (uint32, error) {
	if a.complete == nil {
		return 0, errors.New("no open link")
	}
	return a.complete(ctx)
}

func (a *refActor) unlink(ctx context.Context, id uint32) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	return c.Unlink(ctx, id)
}

// implActor is a device of the implementation under test.
type implActor struct {
	a      *Adapter
	handle string
	id     uint32
}

func (i *implActor) kind() string     { return "impl" }
func (i *implActor) deviceID() uint32 { return i.id }
func (i *implActor) close()           {}

// do makes a request and turns anything but OK into an error carrying the
// registered code.
func (i *implActor) do(ctx context.Context, req *pb.Request) (*pb.Response, error) {
	resp, err := i.a.Call(ctx, req)
	if err != nil {
		return nil, err
	}
	code := errcode.Code(resp.ErrorCode)
	switch {
	case resp.Status == pb.Status_OK:
		return resp, nil
	case resp.Status == pb.Status_UNIMPLEMENTED:
		return nil, unimplemented{req.Method}
	case resp.Status != pb.Status_ERROR || code != 0 && !code.Registered():
		return nil, badRefusal{req.Method, resp.Status, code, resp.Detail}
	}
	return nil, fmt.Errorf("%s: %w (%s)", req.Method, code, resp.Detail)
}

// badRefusal is an answer that is neither OK, UNIMPLEMENTED nor a refusal
// as the adapter protocol has it (status ERROR with a registered code, or
// with none for a refusal the specification names no code for, such as
// opening view-once media twice): a step that must fail fails with it as
// wrong-error, whatever code it carries, as a vector's refusal does
// (check).
type badRefusal struct {
	method string
	status pb.Status
	code   errcode.Code
	detail string
}

func (b badRefusal) Error() string {
	return fmt.Sprintf("%s: answered with status %v and code %v (%s); a refusal is status ERROR with a registered code or none", b.method, b.status, b.code, b.detail)
}

func (i *implActor) send(ctx context.Context, to conv, text string) ([]byte, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "message.send", Params: &pb.Request_MessageSend{MessageSend: &pb.MessageSendParams{
		Device: i.handle, To: to.account, GroupId: to.group, Text: text}}})
	if err != nil {
		return nil, err
	}
	return resp.GetMessageSend().GetMessageId(), nil
}

// sendCrash sends a message with message.send_crash: the device crashes
// once the message has left it, and is open again, unconnected, when it
// returns.
func (i *implActor) sendCrash(ctx context.Context, to conv, text string) error {
	_, err := i.do(ctx, &pb.Request{Method: "message.send_crash", Params: &pb.Request_MessageSendCrash{MessageSendCrash: &pb.MessageSendCrashParams{
		Device: i.handle, To: to.account, Text: text}}})
	return err
}

// restart stops the device and opens it again from its storage
// (device.restart); it is then unconnected.
func (i *implActor) restart(ctx context.Context) error {
	_, err := i.do(ctx, &pb.Request{Method: "device.restart", Params: &pb.Request_DeviceRestart{DeviceRestart: &pb.DeviceRestartParams{Device: i.handle}}})
	return err
}

func (i *implActor) receive(ctx context.Context, wait time.Duration) ([]received, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "messages.receive", Params: &pb.Request_MessagesReceive{MessagesReceive: &pb.MessagesReceiveParams{
		Device: i.handle, MinCount: 1 << 30, WaitMs: uint32(wait.Milliseconds())}}})
	if err != nil {
		return nil, err
	}
	var out []received
	for _, m := range resp.GetMessagesReceive().GetMessages() {
		acct, _, _ := strings.Cut(m.GetFrom(), "/")
		out = append(out, received{from: acct, id: m.GetMessageId(), text: m.GetText(), group: m.GetGroupId(),
			outgoing: m.GetOutgoing(), media: m.GetMedia(), viewOnce: m.GetViewOnce(), expire: m.GetExpireAfter()})
	}
	return out, nil
}

func (i *implActor) read(ctx context.Context, from conv) error {
	_, err := i.do(ctx, &pb.Request{Method: "messages.read", Params: &pb.Request_MessagesRead{MessagesRead: &pb.MessagesReadParams{
		Device: i.handle, From: from.account, GroupId: from.group}}})
	return err
}

func (i *implActor) status(ctx context.Context, id []byte) (sentStatus, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "message.status", Params: &pb.Request_MessageStatus{MessageStatus: &pb.MessageStatusParams{Device: i.handle, MessageId: id}}})
	if err != nil {
		var un unimplemented
		if errors.As(err, &un) || errors.Is(err, ErrAdapter) {
			return sentStatus{}, err
		}
		return sentStatus{overall: "unknown"}, nil
	}
	return sentStatus{overall: resp.GetMessageStatus().GetOverall(), members: resp.GetMessageStatus().GetMembers()}, nil
}

func (i *implActor) offline() error {
	_, err := i.do(context.Background(), &pb.Request{Method: "device.close", Params: &pb.Request_DeviceClose{DeviceClose: &pb.DeviceCloseParams{Device: i.handle}}})
	return err
}

func (i *implActor) online(ctx context.Context) error {
	_, err := i.do(ctx, &pb.Request{Method: "device.connect", Params: &pb.Request_DeviceConnect{DeviceConnect: &pb.DeviceConnectParams{Device: i.handle}}})
	return err
}

func (i *implActor) presence(ctx context.Context, account string) (string, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "presence.get", Params: &pb.Request_PresenceGet{PresenceGet: &pb.PresenceGetParams{Device: i.handle, Account: account}}})
	if err != nil {
		return "", err
	}
	return resp.GetPresenceGet().GetState(), nil
}

func (i *implActor) privacy(ctx context.Context, lastSeen, online string, contacts []string) error {
	_, err := i.do(ctx, &pb.Request{Method: "privacy.set", Params: &pb.Request_PrivacySet{PrivacySet: &pb.PrivacySetParams{
		Device: i.handle, LastSeen: lastSeen, Online: online, Contacts: contacts}}})
	return err
}

func (i *implActor) linkOpen(ctx context.Context) (string, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "link.open", Params: &pb.Request_LinkOpen{LinkOpen: &pb.LinkOpenParams{Device: i.handle}}})
	if err != nil {
		return "", err
	}
	return resp.GetLinkOpen().GetCode(), nil
}

func (i *implActor) linkComplete(ctx context.Context) (uint32, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "link.complete", Params: &pb.Request_LinkComplete{LinkComplete: &pb.LinkCompleteParams{Device: i.handle, WaitMs: 15000}}})
	if err != nil {
		return 0, err
	}
	return resp.GetLinkComplete().GetDeviceId(), nil
}

func (i *implActor) unlink(ctx context.Context, id uint32) error {
	_, err := i.do(ctx, &pb.Request{Method: "link.unlink", Params: &pb.Request_LinkUnlink{LinkUnlink: &pb.LinkUnlinkParams{Device: i.handle, DeviceId: id}}})
	return err
}

// newImplActor creates a primary device of account in the implementation.
func newImplActor(ctx context.Context, a *Adapter, account, server string) (*implActor, error) {
	i := &implActor{a: a, id: 1}
	resp, err := i.do(ctx, &pb.Request{Method: "device.create", Params: &pb.Request_DeviceCreate{DeviceCreate: &pb.DeviceCreateParams{Account: account, Server: server}}})
	if err != nil {
		return nil, err
	}
	i.handle = resp.GetDeviceCreate().GetDevice()
	return i, i.online(ctx)
}

// joinImpl makes a companion device in the implementation from a code.
func joinImpl(ctx context.Context, a *Adapter, code, server string) (*implActor, error) {
	i := &implActor{a: a}
	resp, err := i.do(ctx, &pb.Request{Method: "link.join", Params: &pb.Request_LinkJoin{LinkJoin: &pb.LinkJoinParams{Code: code, Server: server}}})
	if err != nil {
		return nil, err
	}
	i.handle, i.id = resp.GetLinkJoin().GetDevice(), resp.GetLinkJoin().GetDeviceId()
	return i, i.online(ctx)
}

// joinRef makes a companion device of the reference client.
func joinRef(ctx context.Context, dir, code, server string, clock func() time.Time) (*refActor, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	a := &refActor{now: clock}
	d, err := client.LinkCompanion(ctx, dir, code, server, client.Config{Clock: clock, OnDelivery: a.delivered})
	if err != nil {
		return nil, err
	}
	a.d = d
	return a, a.online(ctx)
}

// clockSetRequest tells the adapter the time.
func clockSetRequest(t time.Time) *pb.Request {
	return &pb.Request{Method: "clock.set", Params: &pb.Request_ClockSet{ClockSet: &pb.ClockSetParams{UnixMs: uint64(t.UnixMilli())}}}
}
