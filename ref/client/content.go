package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/history"
	"github.com/missive-protocol/missive/ref/media"
	"github.com/missive-protocol/missive/ref/wire"
)

// Buckets for the message lifecycle (spec chapter 18).
var (
	bucketLifePending = []byte("life-pending") // u64be sequence -> keptChange (CBOR): an edit or delete of an unknown message
	bucketExpired     = []byte("expired")      // conversation key || 0 || message id -> u64be ms when it disappeared (LIF-008), a mark (forgetMarks)
	bucketTimers      = []byte("timers")       // conversation key -> history.Register
)

func init() {
	allBuckets = append(allBuckets, bucketLifePending, bucketTimers, bucketExpired, bucketLifeTarget)
}

// bucketLifeTarget indexes the kept changes by their conversation and
// target: uvarint(len(conversation key)) || conversation key || target id
// || u64be sequence -> nothing. A message that arrives looks up its own
// (applyKept), instead of decoding every kept change (up to
// MAX_PENDING_RECEIPTS of up to MAX_TEXT each) for each message.
var bucketLifeTarget = []byte("life-target")

// lifeTargetPrefix is the prefix in bucketLifeTarget of the kept changes
// of a conversation's message.
func lifeTargetPrefix(conv, target []byte) []byte {
	k := binary.AppendUvarint(nil, uint64(len(conv)))
	return append(append(k, conv...), target...)
}

// indexKept adds or removes the index entry of the kept change stored
// under seq, whose value is v; a value that does not decode has none.
func indexKept(tx *bolt.Tx, seq, v []byte, add bool) error {
	var kc keptChange
	if cborDec.Unmarshal(v, &kc) != nil || kc.Content == nil || kc.Content.Target == nil {
		return nil
	}
	k := append(lifeTargetPrefix(kc.Conv, *kc.Content.Target), seq...)
	if add {
		return tx.Bucket(bucketLifeTarget).Put(k, nil)
	}
	return tx.Bucket(bucketLifeTarget).Delete(k)
}

// Conv names a conversation: an account, or a group.
type Conv struct {
	Peer  string
	Group []byte
}

func (c Conv) key() []byte {
	if c.Group != nil {
		return append([]byte{'#'}, c.Group...)
	}
	return append([]byte{'@'}, c.Peer...)
}

func (c Conv) String() string {
	if c.Group != nil {
		return fmt.Sprintf("group %x", c.Group)
	}
	return c.Peer
}

// conv returns the conversation of a message.
func (m *Message) conv() Conv {
	if m.Group != nil {
		return Conv{Group: m.Group}
	}
	return Conv{Peer: m.Peer}
}

// Timer returns a conversation's disappearing-message timer, in seconds.
func (d *Device) Timer(conv Conv) uint64 {
	var r history.Register
	d.db.View(func(tx *bolt.Tx) error {
		r = getTimer(tx, conv)
		return nil
	})
	return r.Value
}

func getTimer(tx *bolt.Tx, conv Conv) history.Register {
	var r history.Register
	if v := tx.Bucket(bucketTimers).Get(conv.key()); v != nil {
		cborDec.Unmarshal(v, &r)
	}
	return r
}

// setTimer applies timer content (LIF-006).
func setTimer(tx *bolt.Tx, conv Conv, r history.Register) error {
	cur := getTimer(tx, conv)
	if !cur.Set(r) {
		return nil
	}
	enc, err := cborEnc.Marshal(cur)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketTimers).Put(conv.key(), enc)
}

// sendContent sends content to a conversation: to the account's devices
// with a sent transcript to this account's others, or to the group. It
// returns the message record, its status raised to sent.
func (c *Conn) sendContent(ctx context.Context, conv Conv, content *wire.Content, m *Message) error {
	if m != nil {
		if err := c.d.db.Update(func(tx *bolt.Tx) error { return putMessage(tx, m) }); err != nil {
			return err
		}
	}
	if conv.Group != nil {
		accepted, devs, version, err := c.sendGroup(ctx, conv.Group, content, DefaultTTL)
		if err != nil || m == nil {
			return err
		}
		return c.d.db.Update(func(tx *bolt.Tx) error {
			cur, err := getMessage(tx, m.Seq)
			if err != nil || cur == nil {
				return err
			}
			cur.Accepted, cur.GroupVersion = accepted, version
			if cur.Members == nil {
				cur.Members = map[string]map[uint32]Status{}
			}
			for _, ad := range devs {
				if ad.Account == c.d.Account {
					continue // the own devices are not recipients (section 16.6)
				}
				if cur.Members[ad.Account] == nil {
					cur.Members[ad.Account] = map[uint32]Status{}
				}
				for _, dev := range ad.Devices {
					cur.Members[ad.Account][uint32(dev)] = raise(cur.Members[ad.Account][uint32(dev)], StatusSent)
				}
			}
			*m = *cur
			return putMessage(tx, cur)
		})
	}
	accepted, devs, err := c.deliverContent(ctx, conv.Peer, wire.EnvelopeChat, content, DefaultTTL)
	if err != nil {
		return err
	}
	return c.acceptedSent(ctx, m, conv.Peer, content, accepted, devs)
}

// newContent returns content of a type with a fresh message id and the
// time now, and the record of the message it is, with the conversation's
// timer (LIF-007).
func (c *Conn) newContent(conv Conv, typ uint64) (*wire.Content, *Message, error) {
	id, err := c.newID()
	if err != nil {
		return nil, nil, err
	}
	now := uint64(c.d.now().UnixMilli())
	content := &wire.Content{Version: wire.ProtocolVersion, Type: typ, MessageID: id, SentAt: now}
	m := &Message{ID: id, Outgoing: true, Peer: conv.Peer, Group: conv.Group, SentAt: now, TTL: DefaultTTL,
		Statuses: map[uint32]Status{}, Type: typ}
	if conv.Group != nil {
		// The version it goes out at, so that receipts that overtake the
		// server's answer are checked against it (GRP-013).
		if s, err := c.d.Group(conv.Group); err == nil {
			m.GroupVersion = s.Serial
		}
	}
	if typ == wire.ContentText || typ == wire.ContentMedia {
		if t := c.d.Timer(conv); t > 0 {
			content.Expire, m.Expire = &t, t
		}
	}
	return content, m, nil
}

// SendTo sends a text message to a conversation and returns it once the
// server has accepted it.
func (c *Conn) SendTo(ctx context.Context, conv Conv, text string) (*Message, error) {
	content, m, err := c.newContent(conv, wire.ContentText)
	if err != nil {
		return nil, err
	}
	content.Text, m.Text = &text, text
	return m, c.sendContent(ctx, conv, content, m)
}

// MediaOptions describe an attachment.
type MediaOptions struct {
	Kind     uint64 // wire.MediaImage, ...; 0 means wire.MediaFile
	MIME     string // "" means application/octet-stream
	Caption  string
	ViewOnce bool
	// Progress, if set, is called as the upload or download goes, with
	// the bytes done and the total.
	Progress func(done, total int)
}

// SendMedia encrypts an attachment (section 17.2), uploads it to the
// server's blob store, and sends the media content that names it.
func (c *Conn) SendMedia(ctx context.Context, conv Conv, data []byte, o MediaOptions) (*Message, error) {
	sealed, err := media.Encrypt(data, c.d.rand)
	if err != nil {
		return nil, err
	}
	blobID, err := c.upload(ctx, sealed.Blob, sealed.Digest, o.Progress)
	if err != nil {
		return nil, err
	}
	content, m, err := c.newContent(conv, wire.ContentMedia)
	if err != nil {
		return nil, err
	}
	md := &wire.Media{Kind: o.Kind, BlobID: blobID, Key: sealed.Key, Digest: sealed.Digest,
		Size: uint64(len(sealed.Blob)), MIME: o.MIME}
	if md.Kind == 0 {
		md.Kind = wire.MediaFile
	}
	if md.MIME == "" {
		md.MIME = "application/octet-stream"
	}
	if o.Caption != "" {
		md.Caption = &o.Caption
		m.Text = o.Caption
	}
	if o.ViewOnce {
		t := true
		md.ViewOnce = &t
	}
	content.Media, m.Media = md, md
	return m, c.sendContent(ctx, conv, content, m)
}

// upload stores a blob in the server's blob store, resuming what the
// server holds of it, and returns its id.
func (c *Conn) upload(ctx context.Context, blob, digest []byte, progress func(int, int)) (string, error) {
	id, _, err := c.uploadPart(ctx, blob, digest, len(blob), progress)
	if err != nil {
		return "", err
	}
	return id, nil
}

// uploadPart uploads a blob until the server holds at least limit bytes
// of it. It returns the blob's id, also after a failed put-blob, and the
// bytes the server held when it began.
func (c *Conn) uploadPart(ctx context.Context, blob, digest []byte, limit int, progress func(int, int)) (string, uint64, error) {
	var created wire.BlobCreated
	if err := c.call(ctx, wire.FrameCreateBlob, &wire.BlobCreate{Size: uint64(len(blob)), Digest: digest}, &created); err != nil {
		return "", 0, err
	}
	done, stop := created.Received, uint64(min(limit, len(blob)))
	if done > uint64(len(blob)) {
		return "", 0, fmt.Errorf("client: blob %s: the server holds %d bytes of %d", created.BlobID, done, len(blob))
	}
	// Each put is one chunk; a server that does not take them cannot keep
	// the device sending: it gets a few puts beyond one per chunk.
	puts := (stop-min(done, stop)+wire.MaxBlobChunk-1)/wire.MaxBlobChunk + maxUploadRetries
	for done < stop {
		if puts == 0 {
			return created.BlobID, created.Received, fmt.Errorf("client: blob %s: the server took %d of %d bytes and no more", created.BlobID, done, len(blob))
		}
		puts--
		if progress != nil {
			progress(int(done), len(blob))
		}
		end := min(done+wire.MaxBlobChunk, uint64(len(blob)))
		var p wire.BlobProgress
		if err := c.call(ctx, wire.FramePutBlob, &wire.BlobPut{BlobID: created.BlobID, Offset: done, Data: blob[done:end]}, &p); err != nil {
			return created.BlobID, created.Received, err
		}
		if p.Received > end {
			return created.BlobID, created.Received, fmt.Errorf("client: blob %s: the server says it holds %d bytes, %d sent", created.BlobID, p.Received, end)
		}
		done = p.Received
	}
	if progress != nil {
		progress(int(done), len(blob))
	}
	return created.BlobID, created.Received, nil
}

// maxUploadRetries is how many puts an upload may make beyond one per
// chunk, for a server that took less than a chunk.
const maxUploadRetries = 8

// Download fetches and decrypts the media of a message (MED-002). It asks
// for the bytes the media content names and no more: a server that
// claims another size, or sends more or fewer bytes than asked, ends it.
func (c *Conn) Download(ctx context.Context, m *Message, progress func(int, int)) ([]byte, error) {
	if m.Media == nil || m.Deleted {
		return nil, errors.New("client: the message has no media")
	}
	if m.Opened || len(m.Media.Key) == 0 {
		return nil, errors.New("client: view-once media already opened")
	}
	size := m.Media.Size
	if size > wire.MaxBlobSize {
		return nil, fmt.Errorf("client: media of %d bytes: %w", size, errcode.AuthDigestMismatch)
	}
	var blob []byte
	for uint64(len(blob)) < size {
		n := min(wire.MaxBlobChunk, size-uint64(len(blob)))
		var ch wire.BlobChunk
		err := c.call(ctx, wire.FrameGetBlob, &wire.BlobGet{BlobID: m.Media.BlobID, Offset: uint64(len(blob)), Length: n}, &ch)
		if err != nil {
			return nil, err
		}
		if ch.Size != size {
			return nil, fmt.Errorf("client: blob of %d bytes, the media names %d: %w", ch.Size, size, errcode.AuthDigestMismatch)
		}
		// Never past the blob's end, so a chunk of all the bytes asked:
		// one of fewer would keep the device asking (MED-002).
		if uint64(len(ch.Data)) != n {
			return nil, fmt.Errorf("client: %d bytes of the blob at %d, %d asked: %w", len(ch.Data), len(blob), n, errcode.AuthDigestMismatch)
		}
		blob = append(blob, ch.Data...)
		if progress != nil {
			progress(len(blob), int(size))
		}
	}
	return media.Decrypt(m.Media.Key, m.Media.Digest, m.Media.Size, blob)
}

// OpenViewOnce downloads and decrypts view-once media, then erases its key
// here, tells this account's other devices to erase theirs, and sends the
// sender a played receipt (MED-007). It can be opened once.
func (c *Conn) OpenViewOnce(ctx context.Context, m *Message) ([]byte, error) {
	if m.Media == nil || m.Media.ViewOnce == nil {
		return nil, errors.New("client: not view-once media")
	}
	data, err := c.Download(ctx, m, nil)
	if err != nil {
		return nil, err
	}
	// The opened content and the played receipt are owed from the moment
	// the key is erased (MED-007, DEV-022).
	opened := wire.OpenedSync{{Account: m.Peer, MessageID: m.ID}}
	owed, err := c.stampedOwn(&wire.Content{Type: wire.ContentOpened, Opened: &opened})
	if err != nil {
		return nil, err
	}
	for _, content := range receipts(wire.ReceiptPlayed, [][]byte{m.ID}) {
		e, err := c.d.stamped(m.Peer, wire.EnvelopeReceipt, content)
		if err != nil {
			return nil, err
		}
		owed = append(owed, e)
	}
	err = c.recordOwing(ctx, owed, func(tx *bolt.Tx) error { return markOpened(tx, m.Peer, m.ID, c.d.now()) })
	if err != nil {
		return nil, err
	}
	return data, nil
}

// markOpened erases the key of received view-once media.
func markOpened(tx *bolt.Tx, account string, id []byte, now time.Time) error {
	// Kept for a message not here yet, as read marks are: opened content
	// is a join, whatever the order of arrival (LIF-009, MED-007).
	if err := putMark(tx, bucketOpened, account, id, now); err != nil {
		return err
	}
	m, err := incoming(tx, account, id)
	if err != nil || m == nil || m.Media == nil || m.Media.ViewOnce == nil {
		return err
	}
	m.Opened, m.Media.Key = true, nil
	return putMessage(tx, m)
}

// Edit edits a text this account sent (LIF-001, LIF-002).
func (c *Conn) Edit(ctx context.Context, conv Conv, target []byte, text string) error {
	return c.change(ctx, conv, target, false, text)
}

// DeleteForEveryone deletes a message this account sent, on every device
// of both sides (spec section 18.2).
func (c *Conn) DeleteForEveryone(ctx context.Context, conv Conv, target []byte) error {
	return c.change(ctx, conv, target, true, "")
}

func (c *Conn) change(ctx context.Context, conv Conv, target []byte, del bool, text string) error {
	typ := uint64(wire.ContentEdit)
	if del {
		typ = wire.ContentDelete
	}
	content, _, err := c.newContent(conv, typ)
	if err != nil {
		return err
	}
	t := bytes.Clone(target)
	content.Target = &t
	if !del {
		content.Text = &text
	}
	// LIF-002: refuse what the recipients would drop, and apply it here.
	err = c.d.db.Update(func(tx *bolt.Tx) error {
		orig, err := sentMessage(tx, target)
		if err != nil {
			return err
		}
		if orig == nil {
			if m, _ := c.d.findTarget(tx, conv, "", target); m != nil {
				return fmt.Errorf("client: message %x is %s's: %w", target, m.Author(c.d.Account), errcode.PolicyNotAuthor)
			}
			return fmt.Errorf("client: no sent message %x", target)
		}
		_, err = c.d.applyChange(tx, orig.conv(), c.d.Account, content)
		return err
	})
	if err != nil {
		return err
	}
	return c.sendContent(ctx, conv, content, nil)
}

// SetTimer sets a conversation's disappearing-message timer (section
// 18.3), 0 to turn it off.
func (c *Conn) SetTimer(ctx context.Context, conv Conv, seconds uint64) error {
	if seconds > wire.MaxTimer {
		return fmt.Errorf("client: timer of %d s: %w", seconds, errcode.PolicyTooLarge)
	}
	content, _, err := c.newContent(conv, wire.ContentTimer)
	if err != nil {
		return err
	}
	content.Timer = &seconds
	err = c.d.db.Update(func(tx *bolt.Tx) error {
		return setTimer(tx, conv, history.Register{SentAt: content.SentAt, ID: content.MessageID, Value: seconds})
	})
	if err != nil {
		return err
	}
	return c.sendContent(ctx, conv, content, nil)
}

// keptChange is an edit or delete whose target is not known yet (LIF-005).
type keptChange struct {
	Conv    []byte        `cbor:"1,keyasint"`
	From    string        `cbor:"2,keyasint"`
	Content *wire.Content `cbor:"3,keyasint"`
}

// findTarget returns the message of a conversation that a change names.
func (d *Device) findTarget(tx *bolt.Tx, conv Conv, from string, id []byte) (*Message, error) {
	if from == d.Account {
		m, err := sentMessage(tx, id)
		if m != nil && !bytes.Equal(m.conv().key(), conv.key()) {
			return nil, nil
		}
		return m, err
	}
	// The author's own message first: message ids are chosen by their
	// senders, and another member's message with the same id must not
	// take a change meant for the author's (the model's find).
	if m, err := incoming(tx, from, id); err != nil || m != nil && bytes.Equal(m.conv().key(), conv.key()) {
		return m, err
	}
	// Then any message of the conversation with that id, whoever sent it
	// (section 18.2: LIF-001 then refuses another author's), a former
	// member's too: looked up in the index of the conversation's messages.
	// Reading every message instead let a peer make each change of an
	// unknown target cost the device its whole history (300 ms for 100,000
	// messages), under its lock.
	return convMessage(tx, d.Account, conv, id, from)
}

// expiredKey is the key of a message that disappeared in bucketExpired.
func expiredKey(conv Conv, id []byte) []byte {
	return append(append(conv.key(), 0), id...)
}

// applyChange applies an edit or a delete from account from (LIF-001 to
// LIF-005). It returns the message it changed, if any.
func (d *Device) applyChange(tx *bolt.Tx, conv Conv, from string, c *wire.Content) (*Message, error) {
	m, err := d.findTarget(tx, conv, from, *c.Target)
	if err != nil {
		return nil, err
	}
	if m == nil {
		if tx.Bucket(bucketExpired).Get(expiredKey(conv, *c.Target)) != nil {
			return nil, nil // it disappeared: anything about it is ignored (section 18.4)
		}
		if conv.Group == nil && deleted(tx, conv.Peer, *c.Target) {
			return nil, nil // deleted here: anything about it is ignored (DEV-023)
		}
		// Kept until the target arrives, within the bound of DEV-015.
		enc, err := cborEnc.Marshal(&keptChange{Conv: conv.key(), From: from, Content: c})
		if err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketLifePending)
		seq, err := b.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := b.Put(u64(seq), enc); err != nil {
			return nil, err
		}
		if err := indexKept(tx, u64(seq), enc, true); err != nil {
			return nil, err
		}
		if b.Stats().KeyN >= MaxPendingReceipts {
			k, v := b.Cursor().First()
			if err := indexKept(tx, k, v, false); err != nil {
				return nil, err
			}
			return nil, b.Delete(k)
		}
		return nil, nil
	}
	var id history.ID
	copy(id[:], c.MessageID)
	ch := history.Change{Delete: c.Type == wire.ContentDelete, From: from, ID: id, SentAt: c.SentAt}
	if c.Text != nil {
		ch.Text = *c.Text
	}
	if err := history.CheckChange(m.target(d.Account), ch); err != nil {
		return nil, err
	}
	if m.Deleted {
		return nil, nil // final (LIF-004)
	}
	if ch.Delete {
		if m.Media != nil {
			d.eraseMedia(m)
		}
		m.Deleted, m.Text, m.Media, m.Edit = true, "", nil, history.Register{}
	} else if !m.Edit.Set(history.Register{SentAt: ch.SentAt, ID: bytes.Clone(c.MessageID), Text: ch.Text}) {
		return nil, nil
	}
	return m, putMessage(tx, m)
}

// applyKept applies the kept changes whose target is m, now known,
// found by their index.
func (d *Device) applyKept(tx *bolt.Tx, m *Message) (*Message, error) {
	b, idx := tx.Bucket(bucketLifePending), tx.Bucket(bucketLifeTarget)
	prefix := lifeTargetPrefix(m.conv().key(), m.ID)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, ik := range keys {
		if err := idx.Delete(ik); err != nil {
			return nil, err
		}
		seq := ik[len(ik)-8:]
		v := b.Get(seq)
		var kc keptChange
		if v != nil && cborDec.Unmarshal(v, &kc) == nil && kc.Content != nil && kc.Content.Target != nil &&
			bytes.Equal(*kc.Content.Target, m.ID) && bytes.Equal(kc.Conv, m.conv().key()) {
			// A dropped change (wrong author, window) changes nothing.
			changed, err := d.applyChange(tx, m.conv(), kc.From, kc.Content)
			if err != nil && !isPolicy(err) {
				return nil, err
			}
			if changed != nil {
				m = changed
			}
		}
		if v != nil {
			if err := b.Delete(seq); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func isPolicy(err error) bool {
	var code errcode.Code
	return errors.As(err, &code) && code/1000 == 4
}

// mediaPath is where a downloaded attachment would be kept.
func (d *Device) mediaPath(m *Message) string {
	return filepath.Join(d.dir, "media", fmt.Sprintf("%x", m.ID))
}

// eraseMedia removes a kept attachment file.
func (d *Device) eraseMedia(m *Message) { os.Remove(d.mediaPath(m)) }

// sweep erases the messages whose disappearing timer has run out (LIF-008).
func (d *Device) sweep(tx *bolt.Tx) error {
	now := uint64(d.now().UnixMilli())
	var drop []*Message
	err := tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
		var m Message
		if err := cborDec.Unmarshal(v, &m); err != nil {
			return err
		}
		if history.Expired(m.SentAt, m.Expire, now) {
			drop = append(drop, &m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range drop {
		d.eraseMedia(m)
		if err := dropMessage(tx, m); err != nil {
			return err
		}
		if err := tx.Bucket(bucketExpired).Put(expiredKey(m.conv(), m.ID), u64(now)); err != nil {
			return err
		}
	}
	return nil
}

// GroupMessages returns the messages of a group conversation.
func (d *Device) GroupMessages(gid []byte) ([]*Message, error) {
	if err := d.db.Update(d.sweep); err != nil {
		return nil, err
	}
	var out []*Message
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := cborDec.Unmarshal(v, &m); err != nil {
				return err
			}
			if bytes.Equal(m.Group, gid) {
				out = append(out, &m)
			}
			return nil
		})
	})
	return out, err
}

// MessageByID returns a message of this device's history by id (sent or
// received), or an error.
func (d *Device) MessageByID(id []byte) (*Message, error) {
	if err := d.db.Update(d.sweep); err != nil { // nothing that disappeared (LIF-008)
		return nil, err
	}
	var found *Message
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMessages).ForEach(func(k, v []byte) error {
			var m Message
			if err := cborDec.Unmarshal(v, &m); err != nil {
				return err
			}
			if bytes.HasPrefix(m.ID, id) && found == nil {
				found = &m
			}
			return nil
		})
	})
	if err == nil && found == nil {
		err = fmt.Errorf("client: no message %x", id)
	}
	return found, err
}

// MarkReadGroup sends read receipts for the unread messages of a group to
// their senders, and tells this account's other devices (DEV-012). It
// returns how many it marked.
func (c *Conn) MarkReadGroup(ctx context.Context, gid []byte) (int, error) {
	ms, err := c.d.GroupMessages(gid)
	if err != nil {
		return 0, err
	}
	ms = slices.DeleteFunc(ms, func(m *Message) bool { return m.Outgoing || m.Read || m.Deleted })
	return c.markRead(ctx, ms)
}

// SendContentUnchecked sends content to a conversation as this device
// would, without the checks a sender makes first (LIF-002), and with the
// content's own message id and sent-at when they are set. It exists for
// test harnesses such as the conformance runner, which play a misbehaving
// peer: an edit after its window, media whose digest is not its blob's. An
// application never needs it.
func (c *Conn) SendContentUnchecked(ctx context.Context, conv Conv, content *wire.Content) ([]byte, error) {
	if err := c.stamp(content); err != nil {
		return nil, err
	}
	return content.MessageID, c.sendContent(ctx, conv, content, nil)
}

// stamp gives content the protocol version, and a fresh message id and
// the time as its sent-at when they are not set.
func (c *Conn) stamp(content *wire.Content) error {
	if content.MessageID == nil {
		id, err := c.newID()
		if err != nil {
			return err
		}
		content.MessageID = id
	}
	if content.SentAt == 0 {
		content.SentAt = uint64(c.d.now().UnixMilli())
	}
	content.Version = wire.ProtocolVersion
	return nil
}

// SendContentIn sends content to an account's devices in an envelope of
// type envType, whatever its content type (MSG-021), and to no other
// device of this account, as SendContentUnchecked does, with the content's
// sent-at when it is set. It exists for test harnesses that play a peer who
// puts content in the wrong envelope, or whose clock is ahead (SRV-023).
func (c *Conn) SendContentIn(ctx context.Context, account string, envType uint64, content *wire.Content) ([]byte, error) {
	if err := c.stamp(content); err != nil {
		return nil, err
	}
	_, _, err := c.deliverContent(ctx, account, envType, content, DefaultTTL)
	return content.MessageID, err
}

// UploadBlob encrypts nothing: it stores bytes in the server's blob store
// and returns the blob's id, for harnesses that build media content by
// hand (see SendContentUnchecked).
func (c *Conn) UploadBlob(ctx context.Context, blob, digest []byte) (string, error) {
	return c.upload(ctx, blob, digest, nil)
}

// UploadBlobPart is UploadBlob cut short, as a lost connection cuts an
// upload: it stops once the server holds at least n bytes of the blob. It
// returns the blob's id, also when a put-blob failed, and the bytes the
// server held when it began: called again, it resumes (MED-003). It exists
// for test harnesses, like SendContentUnchecked.
func (c *Conn) UploadBlobPart(ctx context.Context, blob, digest []byte, n int) (string, uint64, error) {
	return c.uploadPart(ctx, blob, digest, n, nil)
}
