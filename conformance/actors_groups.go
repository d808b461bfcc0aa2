package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"slices"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/client"
	"github.com/missive-protocol/missive/ref/media"
	"github.com/missive-protocol/missive/ref/wire"
)

// The actors' side of groups, media and the message lifecycle (spec
// chapters 16 to 18).

// ref returns the reference client's name of a conversation.
func (c conv) ref() client.Conv {
	if c.group != nil {
		return client.Conv{Group: c.group}
	}
	return client.Conv{Peer: c.account}
}

func (a *refActor) groupCreate(ctx context.Context, name string, members []string) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	return c.CreateGroup(ctx, name, members...)
}

// changeMembers applies a group update to a member list.
func changeMembers(ms []wire.GroupMember, add, remove, admins []string) ([]wire.GroupMember, error) {
	for _, acct := range add {
		if !slices.ContainsFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct }) {
			ms = append(ms, wire.GroupMember{Account: acct, Role: wire.RoleMember})
		}
	}
	for _, acct := range remove {
		n := len(ms)
		if ms = slices.DeleteFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct }); len(ms) == n {
			return nil, fmt.Errorf("%s is not a member", acct)
		}
	}
	for _, acct := range admins {
		i := slices.IndexFunc(ms, func(m wire.GroupMember) bool { return m.Account == acct })
		if i < 0 {
			return nil, fmt.Errorf("%s is not a member", acct)
		}
		ms[i].Role = wire.RoleAdmin
	}
	return ms, nil
}

func (a *refActor) groupUpdate(ctx context.Context, group []byte, add, remove, admins []string) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	return c.ChangeGroup(ctx, group, func(ms []wire.GroupMember) ([]wire.GroupMember, error) {
		return changeMembers(ms, add, remove, admins)
	})
}

func (a *refActor) sendMedia(ctx context.Context, to conv, data []byte, mime, caption string, viewOnce bool) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	m, err := c.SendMedia(ctx, to.ref(), data, client.MediaOptions{MIME: mime, Caption: caption, ViewOnce: viewOnce})
	if err != nil {
		return nil, err
	}
	return m.ID, nil
}

// message returns a message of the device's history.
func (a *refActor) message(id []byte) (*client.Conn, *client.Message, error) {
	c, err := a.conn()
	if err != nil {
		return nil, nil, err
	}
	m, err := a.d.MessageByID(id)
	return c, m, err
}

func (a *refActor) download(ctx context.Context, id []byte) ([]byte, error) {
	c, m, err := a.message(id)
	if err != nil {
		return nil, err
	}
	return c.Download(ctx, m, nil)
}

func (a *refActor) openOnce(ctx context.Context, id []byte) ([]byte, error) {
	c, m, err := a.message(id)
	if err != nil {
		return nil, err
	}
	return c.OpenViewOnce(ctx, m)
}

// msgConv returns the conversation a message of the history is in.
func msgConv(m *client.Message) client.Conv {
	if m.Group != nil {
		return client.Conv{Group: m.Group}
	}
	return client.Conv{Peer: m.Peer}
}

func (a *refActor) edit(ctx context.Context, id []byte, text string) error {
	c, m, err := a.message(id)
	if err != nil {
		return err
	}
	return c.Edit(ctx, msgConv(m), m.ID, text)
}

func (a *refActor) unsend(ctx context.Context, id []byte) error {
	c, m, err := a.message(id)
	if err != nil {
		return err
	}
	return c.DeleteForEveryone(ctx, msgConv(m), m.ID)
}

func (a *refActor) deleteHere(ctx context.Context, peer string, id []byte) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	return c.Delete(ctx, peer, id)
}

func (a *refActor) setTimer(ctx context.Context, to conv, seconds uint32) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	return c.SetTimer(ctx, to.ref(), uint64(seconds))
}

func (a *refActor) get(ctx context.Context, from string, id []byte) (shown, error) {
	all, err := a.d.AllMessages() // sweeps the expired ones first
	if err != nil {
		return shown{}, err
	}
	for _, m := range all {
		if !bytes.Equal(m.ID, id) || (from != "" && m.Author(a.d.Account) != from) {
			continue
		}
		return shown{present: true, text: m.Shown(), deleted: m.Deleted, edited: m.Edit.ID != nil,
			media: m.Type == wire.ContentMedia, viewOnce: m.Media != nil && m.Media.ViewOnce != nil,
			opened: m.Opened, expire: m.Expire, group: m.Group}, nil
	}
	return shown{}, nil
}

// failed returns the deliveries the device could not process so far.
func (a *refActor) failed() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.failures)
}

// The misbehaving peer: content a correct sender never sends, which the
// receiver must drop or refuse.

// forgeChange sends an edit (or, with del, a delete) of the message id to
// the conversation that message is in, without the sender's own checks
// (LIF-002): after its window, or of another account's message.
func (a *refActor) forgeChange(ctx context.Context, id []byte, del bool, text string) error {
	c, m, err := a.message(id)
	if err != nil {
		return err
	}
	content := &wire.Content{Type: wire.ContentEdit, Target: &m.ID}
	if del {
		content.Type = wire.ContentDelete
	} else {
		content.Text = &text
	}
	_, err = c.SendContentUnchecked(ctx, msgConv(m), content)
	return err
}

// forgeChangeFirst sends a text message to an account after a change of
// it, so that the change arrives first: the change, sent at the message's
// sent-at plus a second, names the id the message then goes out with. It
// returns that id.
func (a *refActor) forgeChangeFirst(ctx context.Context, to, text string, del bool, edit string) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	id := make([]byte, wire.MessageIDSize)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	sentAt := uint64(a.now().UnixMilli())
	change := &wire.Content{Type: wire.ContentEdit, Target: &id, SentAt: sentAt + 1000}
	if del {
		change.Type = wire.ContentDelete
	} else {
		change.Text = &edit
	}
	if _, err := c.SendContentUnchecked(ctx, client.Conv{Peer: to}, change); err != nil {
		return nil, err
	}
	msg := &wire.Content{Type: wire.ContentText, MessageID: id, SentAt: sentAt, Text: &text}
	return c.SendContentUnchecked(ctx, client.Conv{Peer: to}, msg)
}

// forgeMedia sends media content whose digest is not its blob's: the blob,
// a correct encryption of data, is uploaded with its true digest (the
// server checks it, MED-004), and the content names another.
func (a *refActor) forgeMedia(ctx context.Context, to conv, data []byte, caption string) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	sealed, err := media.Encrypt(data, rand.Reader)
	if err != nil {
		return nil, err
	}
	id, err := c.UploadBlob(ctx, sealed.Blob, sealed.Digest)
	if err != nil {
		return nil, err
	}
	digest := bytes.Clone(sealed.Digest)
	digest[0] ^= 1
	md := &wire.Media{Kind: wire.MediaFile, BlobID: id, Key: sealed.Key, Digest: digest,
		Size: uint64(len(sealed.Blob)), MIME: "application/octet-stream", Caption: &caption}
	return c.SendContentUnchecked(ctx, to.ref(), &wire.Content{Type: wire.ContentMedia, Media: md})
}

// forgeReceipt sends a receipt of a kind for a message to an account, as
// a device that never received it would, in a receipt envelope as a
// receipt comes (MSG-021).
func (a *refActor) forgeReceipt(ctx context.Context, to string, kind uint64, id []byte) error {
	c, err := a.conn()
	if err != nil {
		return err
	}
	_, err = c.SendContentIn(ctx, to, wire.EnvelopeReceipt,
		&wire.Content{Type: wire.ContentReceipt, Receipt: &wire.Receipt{Kind: kind, MessageIDs: [][]byte{id}}})
	return err
}

// blob is an attachment uploaded by hand, outside a message (server suite).
type blob struct {
	data   []byte // the plaintext
	sealed *media.Sealed
	digest []byte // the digest the upload names
	id     string
}

// uploadPart uploads a blob until the server holds n bytes of it; it
// returns the bytes the server held when it began.
func (a *refActor) uploadPart(ctx context.Context, b *blob, n int) (uint64, error) {
	c, err := a.conn()
	if err != nil {
		return 0, err
	}
	id, held, err := c.UploadBlobPart(ctx, b.sealed.Blob, b.digest, n)
	if held > 0 && b.id != "" && id != b.id {
		return held, fmt.Errorf("the upload was resumed as blob %s, not %s", id, b.id)
	}
	if id != "" {
		b.id = id
	}
	return held, err
}

// getBlob downloads and opens a blob by its id, as a recipient of media
// naming it would.
func (a *refActor) getBlob(ctx context.Context, b *blob) ([]byte, error) {
	c, err := a.conn()
	if err != nil {
		return nil, err
	}
	m := &client.Message{Type: wire.ContentMedia, Media: &wire.Media{Kind: wire.MediaFile, BlobID: b.id, Key: b.sealed.Key,
		Digest: b.sealed.Digest, Size: uint64(len(b.sealed.Blob)), MIME: "application/octet-stream"}}
	return c.Download(ctx, m, nil)
}

// The implementation's side.

func (i *implActor) groupCreate(ctx context.Context, name string, members []string) ([]byte, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "group.create", Params: &pb.Request_GroupCreate{GroupCreate: &pb.GroupCreateParams{
		Device: i.handle, Name: name, Members: members}}})
	if err != nil {
		return nil, err
	}
	gid := resp.GetGroupCreate().GetGroupId()
	if len(gid) != wire.GroupIDSize {
		return nil, fmt.Errorf("group.create: a group id of %d bytes, want %d", len(gid), wire.GroupIDSize)
	}
	return gid, nil
}

func (i *implActor) groupUpdate(ctx context.Context, group []byte, add, remove, admins []string) error {
	_, err := i.do(ctx, &pb.Request{Method: "group.update", Params: &pb.Request_GroupUpdate{GroupUpdate: &pb.GroupUpdateParams{
		Device: i.handle, GroupId: group, Add: add, Remove: remove, Admins: admins}}})
	return err
}

func (i *implActor) sendMedia(ctx context.Context, to conv, data []byte, mime, caption string, viewOnce bool) ([]byte, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "media.send", Params: &pb.Request_MediaSend{MediaSend: &pb.MediaSendParams{
		Device: i.handle, To: to.account, GroupId: to.group, Data: data, Mime: mime, Caption: caption, ViewOnce: viewOnce}}})
	if err != nil {
		return nil, err
	}
	return resp.GetMediaSend().GetMessageId(), nil
}

func (i *implActor) download(ctx context.Context, id []byte) ([]byte, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "media.download", Params: &pb.Request_MediaDownload{MediaDownload: &pb.MediaDownloadParams{
		Device: i.handle, MessageId: id}}})
	if err != nil {
		return nil, err
	}
	return resp.GetMediaDownload().GetData(), nil
}

func (i *implActor) openOnce(ctx context.Context, id []byte) ([]byte, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "media.open", Params: &pb.Request_MediaOpen{MediaOpen: &pb.MediaOpenParams{
		Device: i.handle, MessageId: id}}})
	if err != nil {
		return nil, err
	}
	return resp.GetMediaOpen().GetData(), nil
}

func (i *implActor) edit(ctx context.Context, id []byte, text string) error {
	_, err := i.do(ctx, &pb.Request{Method: "message.edit", Params: &pb.Request_MessageEdit{MessageEdit: &pb.MessageEditParams{
		Device: i.handle, MessageId: id, Text: text}}})
	return err
}

func (i *implActor) unsend(ctx context.Context, id []byte) error {
	_, err := i.do(ctx, &pb.Request{Method: "message.delete", Params: &pb.Request_MessageDelete{MessageDelete: &pb.MessageDeleteParams{
		Device: i.handle, MessageId: id}}})
	return err
}

func (i *implActor) deleteHere(ctx context.Context, peer string, id []byte) error {
	_, err := i.do(ctx, &pb.Request{Method: "message.delete_here", Params: &pb.Request_MessageDeleteHere{MessageDeleteHere: &pb.MessageDeleteHereParams{
		Device: i.handle, Peer: peer, MessageId: id}}})
	return err
}

func (i *implActor) setTimer(ctx context.Context, to conv, seconds uint32) error {
	_, err := i.do(ctx, &pb.Request{Method: "timer.set", Params: &pb.Request_TimerSet{TimerSet: &pb.TimerSetParams{
		Device: i.handle, To: to.account, GroupId: to.group, Seconds: seconds}}})
	return err
}

func (i *implActor) get(ctx context.Context, from string, id []byte) (shown, error) {
	resp, err := i.do(ctx, &pb.Request{Method: "message.get", Params: &pb.Request_MessageGet{MessageGet: &pb.MessageGetParams{
		Device: i.handle, From: from, MessageId: id}}})
	if err != nil {
		return shown{}, err
	}
	r := resp.GetMessageGet()
	return shown{present: r.GetPresent(), text: r.GetText(), deleted: r.GetDeleted(), edited: r.GetEdited(),
		media: r.GetMedia(), viewOnce: r.GetViewOnce(), opened: r.GetOpened(), expire: r.GetExpireAfter(),
		group: r.GetGroupId()}, nil
}
