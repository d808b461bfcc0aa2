package refadapter

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/wire"
)

// The methods of groups, media and the message lifecycle (spec chapters 16
// to 18).
func init() {
	for name, m := range map[string]method{
		"group.create":        groupCreate,
		"group.update":        groupUpdate,
		"media.send":          mediaSend,
		"media.download":      mediaDownload,
		"media.open":          mediaOpen,
		"message.edit":        messageEdit,
		"message.delete":      messageDelete,
		"message.delete_here": messageDeleteHere,
		"timer.set":           timerSet,
		"message.get":         messageGet,
	} {
		methods[name] = m
	}
}

// conv is the conversation of a request: a group when its id is set, else
// an account.
func conv(to string, group []byte) client.Conv {
	if len(group) > 0 {
		return client.Conv{Group: group}
	}
	return client.Conv{Peer: to}
}

// convOf is the conversation a message of the device's history is in.
func convOf(m *client.Message) client.Conv {
	return conv(m.Peer, m.Group)
}

func groupCreate(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetGroupCreate()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		gid, err := c.CreateGroup(ctx, p.GetName(), p.GetMembers()...)
		if err != nil {
			return nil, err
		}
		return &pb.GroupCreateResult{GroupId: gid}, nil
	})
}

// groupUpdate makes one new state with every change of the request.
func groupUpdate(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetGroupUpdate()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		return nil, c.ChangeGroup(ctx, p.GetGroupId(), func(ms []wire.GroupMember) ([]wire.GroupMember, error) {
			for _, acct := range p.GetAdd() {
				if !slices.ContainsFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct }) {
					ms = append(ms, wire.GroupMember{Account: acct, Role: wire.RoleMember})
				}
			}
			for _, acct := range p.GetRemove() {
				n := len(ms)
				ms = slices.DeleteFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct })
				if len(ms) == n {
					return nil, fmt.Errorf("refadapter: %s is not a member", acct)
				}
			}
			for _, acct := range p.GetAdmins() {
				i := slices.IndexFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct })
				if i < 0 {
					return nil, fmt.Errorf("refadapter: %s is not a member", acct)
				}
				ms[i].Role = wire.RoleAdmin
			}
			return ms, nil
		})
	})
}

func mediaSend(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMediaSend()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		m, err := c.SendMedia(ctx, conv(p.GetTo(), p.GetGroupId()), p.GetData(),
			client.MediaOptions{MIME: p.GetMime(), Caption: p.GetCaption(), ViewOnce: p.GetViewOnce()})
		if err != nil {
			return nil, err
		}
		return &pb.MediaSendResult{MessageId: m.ID, AcceptedAt: m.Accepted}, nil
	})
}

func mediaDownload(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMediaDownload()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		m, err := d.d.MessageByID(p.GetMessageId())
		if err != nil {
			return nil, err
		}
		if m.Media != nil && m.Media.ViewOnce != nil {
			return nil, fmt.Errorf("refadapter: view-once media is opened with media.open")
		}
		data, err := c.Download(ctx, m, nil)
		if err != nil {
			return nil, err
		}
		return &pb.MediaDownloadResult{Data: data}, nil
	})
}

func mediaOpen(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMediaOpen()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		m, err := d.d.MessageByID(p.GetMessageId())
		if err != nil {
			return nil, err
		}
		data, err := c.OpenViewOnce(ctx, m)
		if err != nil {
			return nil, err
		}
		return &pb.MediaOpenResult{Data: data}, nil
	})
}

// change edits or deletes a message of the device's history, in its
// conversation; the client refuses what LIF-002 refuses.
func change(a *Adapter, device string, id []byte, del bool, text string) (any, error) {
	return withDevice(a, device, func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		m, err := d.d.MessageByID(id)
		if err != nil {
			return nil, err
		}
		if del {
			return nil, c.DeleteForEveryone(ctx, convOf(m), m.ID)
		}
		return nil, c.Edit(ctx, convOf(m), m.ID, text)
	})
}

func messageEdit(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageEdit()
	return change(a, p.GetDevice(), p.GetMessageId(), false, p.GetText())
}

func messageDelete(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageDelete()
	return change(a, p.GetDevice(), p.GetMessageId(), true, "")
}

// messageDeleteHere deletes a message of the conversation with peer on
// the device and its account's other devices (DEV-023).
func messageDeleteHere(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageDeleteHere()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		return nil, c.Delete(ctx, p.GetPeer(), p.GetMessageId())
	})
}

func timerSet(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetTimerSet()
	return withDevice(a, p.GetDevice(), func(ctx context.Context, d *dev, c *client.Conn) (any, error) {
		return nil, c.SetTimer(ctx, conv(p.GetTo(), p.GetGroupId()), uint64(p.GetSeconds()))
	})
}

// messageGet reports what the device shows of a message; the history is
// swept of expired messages first (LIF-008).
func messageGet(a *Adapter, req *pb.Request) (any, error) {
	p := req.GetMessageGet()
	d, err := a.clients.get(p.GetDevice())
	if err != nil {
		return nil, err
	}
	all, err := d.d.AllMessages()
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if !bytes.Equal(m.ID, p.GetMessageId()) || (p.GetFrom() != "" && m.Author(d.d.Account) != p.GetFrom()) {
			continue
		}
		return &pb.MessageGetResult{Present: true, Text: m.Shown(), Deleted: m.Deleted, Edited: m.Edit.ID != nil,
			Media: m.Type == wire.ContentMedia, ViewOnce: m.Media != nil && m.Media.ViewOnce != nil, Opened: m.Opened,
			ExpireAfter: m.Expire, GroupId: m.Group}, nil
	}
	return &pb.MessageGetResult{}, nil
}
