package refadapter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/wire"
)

// clients are the adapter's devices, each in a directory of its own.
type clients struct {
	mu      sync.Mutex
	dir     string
	offset  time.Duration
	devices map[string]*dev
	next    int
	links   map[string]func(context.Context) (uint32, error)
}

type dev struct {
	d       *client.Device
	dir     string // where the device stores everything (message.send_crash opens it again)
	c       *client.Conn
	mu      sync.Mutex
	inbox   []*pb.ReceivedMessage
	arrived chan struct{}
}

func newClients() *clients {
	return &clients{devices: map[string]*dev{}, links: map[string]func(context.Context) (uint32, error){}}
}

func (cs *clients) close() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, d := range cs.devices {
		if d.c != nil {
			d.c.Close()
		}
		d.d.Close()
	}
	if cs.dir != "" {
		os.RemoveAll(cs.dir)
	}
}

func (cs *clients) now() time.Time {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return time.Now().Add(cs.offset)
}

func (cs *clients) config() client.Config { return client.Config{Clock: cs.now} }

// newDir returns a fresh directory for a device.
func (cs *clients) newDir() (string, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.dir == "" {
		d, err := os.MkdirTemp("", "missive-adapter-")
		if err != nil {
			return "", err
		}
		cs.dir = d
	}
	cs.next++
	return filepath.Join(cs.dir, "d"+strconv.Itoa(cs.next)), nil
}

func (cs *clients) add(d *client.Device, dir string) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	h := fmt.Sprintf("%s/%d#%d", d.Account, d.ID, len(cs.devices)+1)
	cs.devices[h] = &dev{d: d, dir: dir, arrived: make(chan struct{}, 1)}
	return h
}

func (cs *clients) get(h string) (*dev, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d, ok := cs.devices[h]
	if !ok {
		return nil, fmt.Errorf("refadapter: no device %q", h)
	}
	return d, nil
}

// conn returns the device's connection, connecting when needed.
func (d *dev) conn(ctx context.Context) (*client.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		select {
		case <-d.c.Done():
			d.c = nil
		default:
			return d.c, nil
		}
	}
	c, err := d.d.Connect(ctx)
	if err != nil {
		return nil, err
	}
	d.c = c
	go d.collect(c)
	return c, nil
}

// collect keeps the messages a connection receives for messages.receive.
func (d *dev) collect(c *client.Conn) {
	for e := range c.Events {
		if e.Kind != client.EventMessage {
			continue
		}
		m := e.Message
		r := &pb.ReceivedMessage{From: fmt.Sprintf("%s/%d", m.Peer, m.Device), MessageId: m.ID, Text: m.Text,
			GroupId: m.Group, Outgoing: m.Outgoing, Media: m.Media != nil, ExpireAfter: m.Expire}
		if m.Outgoing {
			// A group message sent by another device of this account.
			r.From = fmt.Sprintf("%s/%d", c.Device().Account, m.Device)
		}
		if m.Media != nil && m.Media.ViewOnce != nil {
			r.ViewOnce = true
		}
		d.mu.Lock()
		d.inbox = append(d.inbox, r)
		d.mu.Unlock()
		select {
		case d.arrived <- struct{}{}:
		default:
		}
	}
}

func init() {
	for name, m := range map[string]method{
		"clock.set":          clockSet,
		"device.create":      deviceCreate,
		"device.connect":     deviceConnect,
		"device.close":       deviceClose,
		"message.send":       messageSend,
		"message.send_crash": messageSendCrash,
		"device.restart":     deviceRestart,
		"messages.receive":   messagesReceive,
		"messages.read":      messagesRead,
		"message.status":     messageStatus,
		"presence.get":       presenceGet,
		"privacy.set":        privacySet,
		"link.open":          linkOpen,
		"link.complete":      linkComplete,
		"link.join":          linkJoin,
	} {
		methods[name] = m
	}
}

const callTimeout = 20 * time.Second

func clockSet(a *Adapter, req *pb.Request) (any, error) {
	t := time.UnixMilli(int64(req.GetClockSet().GetUnixMs()))
	a.clients.mu.Lock()
	a.clients.offset = time.Until(t)
	a.clients.mu.Unlock()
	return nil, nil
}

func deviceCreate(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetDeviceCreate()
	dir, err := a.clients.newDir()
	if err != nil {
		return nil, err
	}
	d, err := client.Init(dir, p.GetAccount(), p.GetServer(), a.clients.config())
	if err != nil {
		return nil, err
	}
	return &pb.DeviceCreateResult{Device: a.clients.add(d, dir), IdentityKey: d.IdentityKey().Encode()}, nil
}

func withDevice(a *Adapter, h string, fn func(ctx context.Context, d *dev, c *client.Conn) (any, error)) (any, error) {
	d, err := a.clients.get(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	return fn(ctx, d, c)
}

func deviceConnect(a *Adapter, req *pb.Request) (any, error) {
	return withDevice(a, req.GetDeviceConnect().GetDevice(), func(context.Context, *dev, *client.Conn) (any, error) { return nil, nil })
}

func deviceClose(a *Adapter, req *pb.Request) (any, error) {
	d, err := a.clients.get(req.GetDeviceClose().GetDevice())
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	c := d.c
	d.c = nil
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
	return nil, nil
}

func messageSend(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageSend()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		m, err := c.SendTo(ctx, conv(p.GetTo(), p.GetGroupId()), p.GetText())
		if err != nil {
			return nil, err
		}
		return &pb.MessageSendResult{MessageId: m.ID, AcceptedAt: m.Accepted}, nil
	})
}

// crashDelay is how long a device that crashes after sending lets its
// send frame travel to the server first: a socket closed with data unread
// may be reset, and the frame lost with it.
const crashDelay = 300 * time.Millisecond

// messageSendCrash sends a message and crashes the device once its send
// frame is written, before the answer (message.send_crash): the connection
// is dropped, so that the send fails, and the device's store is closed and
// opened again from its directory. What the device had stored before the
// frame left is all it has then; the reference client stores its advanced
// sessions before (RAT-008), the store-sessions-late mutant after the
// answer, which never comes.
func messageSendCrash(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageSendCrash()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		// The send of this message: receipts and sync content go in
		// envelopes of other types, or to the device's own account.
		written := make(chan struct{})
		var once sync.Once
		c.OnRequest(func(typ uint64, body wire.Message) {
			if e, ok := body.(*wire.Envelope); ok && typ == wire.FrameSend && e.Type == wire.EnvelopeChat && e.Recipient == p.GetTo() {
				once.Do(func() { close(written) })
			}
		})
		defer c.OnRequest(nil)
		done := make(chan error, 1)
		go func() {
			_, err := c.Send(ctx, p.GetTo(), p.GetText())
			done <- err
		}()
		select {
		case <-written:
		case err := <-done:
			return nil, fmt.Errorf("refadapter: the send ended before its frame was written: %w", err)
		}
		time.Sleep(crashDelay)
		return nil, d.reopen(a, func() { <-done }) // the send fails with the connection, unless the answer came first
	})
}

// deviceRestart stops the device and opens it again from its storage.
func deviceRestart(a *Adapter, req *pb.Request) (any, error) {
	d, err := a.clients.get(req.GetDeviceRestart().GetDevice())
	if err != nil {
		return nil, err
	}
	return nil, d.reopen(a, nil)
}

// reopen ends the device's connection, runs ended (when set) once it has
// ended, closes the device, losing what it held only in memory, and opens
// it again from its storage, unconnected.
func (d *dev) reopen(a *Adapter, ended func()) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
	if ended != nil {
		ended()
	}
	if err := d.d.Close(); err != nil {
		return err
	}
	nd, err := client.Open(d.dir, a.clients.config())
	if err != nil {
		return fmt.Errorf("refadapter: opening the device again: %w", err)
	}
	d.d = nd
	return nil
}

func messagesReceive(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessagesReceive()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		deadline := time.After(time.Duration(p.GetWaitMs()) * time.Millisecond)
		for {
			d.mu.Lock()
			n := len(d.inbox)
			d.mu.Unlock()
			if n >= int(p.GetMinCount()) {
				break
			}
			select {
			case <-d.arrived:
			case <-deadline:
				n = -1
			}
			if n < 0 {
				break
			}
		}
		d.mu.Lock()
		out := &pb.MessagesReceiveResult{Messages: d.inbox}
		d.inbox = nil
		d.mu.Unlock()
		return out, nil
	})
}

func messagesRead(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessagesRead()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		var err error
		if p.GetGroupId() != nil {
			_, err = c.MarkReadGroup(ctx, p.GetGroupId())
		} else {
			_, err = c.MarkRead(ctx, p.GetFrom())
		}
		return nil, err
	})
}

func messageStatus(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageStatus()
	d, err := a.clients.get(p.GetDevice())
	if err != nil {
		return nil, err
	}
	m, err := d.d.Sent(p.GetMessageId())
	if err != nil {
		return nil, err
	}
	out := &pb.MessageStatusResult{Statuses: map[uint32]string{}, Overall: m.Overall().String()}
	for dev, s := range m.Statuses {
		out.Statuses[dev] = s.String()
	}
	if m.Group != nil {
		out.Members = map[string]string{}
		for account, devs := range m.Members {
			out.Members[account] = history.Overall(devs).String()
		}
	}
	return out, nil
}

func presenceGet(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetPresenceGet()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		us, err := c.Subscribe(ctx, p.GetAccount())
		if err != nil {
			return nil, err
		}
		if len(us) != 1 {
			return nil, errors.New("refadapter: no presence for the account")
		}
		out := &pb.PresenceGetResult{State: map[uint64]string{wire.PresenceOnline: "online", wire.PresenceOffline: "offline", wire.PresenceHidden: "hidden"}[us[0].State]}
		if us[0].LastSeen != nil {
			out.LastSeen = *us[0].LastSeen
		}
		return out, nil
	})
}

var visibility = map[string]uint8{"everyone": wire.VisibilityEveryone, "contacts": wire.VisibilityContacts, "nobody": wire.VisibilityNobody}

func privacySet(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetPrivacySet()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		ls, ok1 := visibility[p.GetLastSeen()]
		on, ok2 := visibility[p.GetOnline()]
		if !ok1 || !ok2 {
			return nil, errors.New("refadapter: visibility is everyone, contacts or nobody")
		}
		if err := c.SetPrivacy(ctx, ls, on); err != nil {
			return nil, err
		}
		return nil, c.SetContacts(ctx, p.GetContacts()...)
	})
}

func linkOpen(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetLinkOpen()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		code, complete, err := c.Link(context.Background())
		if err != nil {
			return nil, err
		}
		a.clients.mu.Lock()
		a.clients.links[p.GetDevice()] = complete
		a.clients.mu.Unlock()
		return &pb.LinkOpenResult{Code: code}, nil
	})
}

func linkComplete(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetLinkComplete()
	a.clients.mu.Lock()
	complete := a.clients.links[p.GetDevice()]
	delete(a.clients.links, p.GetDevice())
	a.clients.mu.Unlock()
	if complete == nil {
		return nil, errors.New("refadapter: no open link")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(max(p.GetWaitMs(), 1000))*time.Millisecond)
	defer cancel()
	id, err := complete(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.LinkCompleteResult{DeviceId: id}, nil
}

func linkJoin(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetLinkJoin()
	dir, err := a.clients.newDir()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	d, err := client.LinkCompanion(ctx, dir, p.GetCode(), p.GetServer(), a.clients.config())
	if err != nil {
		return nil, err
	}
	return &pb.LinkJoinResult{Device: a.clients.add(d, dir), DeviceId: d.ID}, nil
}

func linkUnlink(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetLinkUnlink()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		return nil, c.Unlink(ctx, p.GetDeviceId())
	})
}

func init() { methods["link.unlink"] = linkUnlink }
