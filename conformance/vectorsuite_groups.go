package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/ref/errcode"
)

// The vector families of groups, media and the message lifecycle (spec
// chapters 16 to 18, vectors section 9.2).

type groupStateCase struct {
	common
	Checker       string   `json:"checker"`
	GroupID       hexb     `json:"group_id"`
	Connection    string   `json:"connection"`
	Accounts      []string `json:"accounts"`
	AcceptedLists []hexb   `json:"accepted_lists"`
	Accepted      []hexb   `json:"accepted"`
	AuthorPrivate hexb     `json:"author_private"`
	Z             hexb     `json:"z"`
	State         hexb     `json:"state"`
}

func byteSlices(hs []hexb) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out
}

func runGroupStates(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[groupStateCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		duplicate := c.Expect == "duplicate"
		var want errcode.Code
		if duplicate {
			if c.Error != "" {
				return fmt.Errorf("%s: a duplicate with error %q", c.ID, c.Error)
			}
		} else if want, err = c.want(); err != nil {
			return fmt.Errorf("%s: %w", c.ID, err)
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			resp, err := v.call(ctx, &pb.Request{Method: "group.check_state", Params: &pb.Request_GroupCheckState{GroupCheckState: &pb.GroupCheckStateParams{
				Checker: c.Checker, GroupId: c.GroupID, Connection: c.Connection, Accounts: c.Accounts,
				AcceptedLists: byteSlices(c.AcceptedLists), Accepted: byteSlices(c.Accepted), State: c.State}}})
			if err != nil {
				return err
			}
			if !check(r, resp, want) || want != 0 {
				return nil
			}
			switch got := resp.GetGroupCheckState().GetDuplicate(); {
			case duplicate && !got:
				r.failf(WrongOutput, "accepted as a new state; want a duplicate, ignored")
			case !duplicate && got:
				r.failf(WrongOutput, "ignored as a duplicate; want it accepted")
			}
			return nil
		})
	}
	return nil
}

type senderKeyJSON struct {
	Sender     string `json:"sender"`
	KeyID      uint32 `json:"key_id"`
	Epoch      uint32 `json:"epoch"`
	Iteration  uint32 `json:"iteration"`
	ChainKey   hexb   `json:"chain_key"`
	SigningKey hexb   `json:"signing_key"`
	Skipped    []struct {
		Iteration  uint32 `json:"iteration"`
		MessageKey hexb   `json:"message_key"`
	} `json:"skipped"`
}

type senderKeyStep struct {
	Op           string           `json:"op"`
	From         string           `json:"from"`
	Iteration    uint32           `json:"iteration"`
	GroupVersion uint32           `json:"group_version"`
	MessageID    hexb             `json:"message_id"`
	SentAt       uint64           `json:"sent_at"`
	Distribution hexb             `json:"distribution"`
	Content      hexb             `json:"content"`
	Z            hexb             `json:"z"`
	Message      hexb             `json:"message"`
	Keys         *[]senderKeyJSON `json:"keys"`
	Expect       string           `json:"expect"`
	Error        string           `json:"error"`
}

type senderKeysCase struct {
	common
	GroupID        hexb            `json:"group_id"`
	States         []hexb          `json:"states"`
	Sender         string          `json:"sender"`
	Epoch          uint32          `json:"epoch"`
	KeyID          uint32          `json:"key_id"`
	Iteration      uint32          `json:"iteration"`
	ChainKey       hexb            `json:"chain_key"`
	SigningPrivate hexb            `json:"signing_private"`
	Distribution   hexb            `json:"distribution"`
	Keys           []senderKeyJSON `json:"keys"`
	Steps          []senderKeyStep `json:"steps"`
}

func toReceivedKeys(ks []senderKeyJSON) []*pb.ReceivedSenderKey {
	var out []*pb.ReceivedSenderKey
	for _, k := range ks {
		rk := &pb.ReceivedSenderKey{Sender: k.Sender, KeyId: k.KeyID, Epoch: k.Epoch, Iteration: k.Iteration,
			ChainKey: k.ChainKey, SigningKey: k.SigningKey}
		for _, s := range k.Skipped {
			rk.Skipped = append(rk.Skipped, &pb.SkippedMessageKey{Iteration: s.Iteration, MessageKey: s.MessageKey})
		}
		out = append(out, rk)
	}
	return out
}

// renderReceivedKeys writes a receiver's keys in one order whatever the
// order given: by sender, then key id.
func renderReceivedKeys(ks []*pb.ReceivedSenderKey) []string {
	var lines []string
	for _, k := range ks {
		var b strings.Builder
		fmt.Fprintf(&b, "%s key %d epoch %d iteration %d chain %x signing %x, %d skipped", k.GetSender(), k.GetKeyId(),
			k.GetEpoch(), k.GetIteration(), k.GetChainKey(), k.GetSigningKey(), len(k.GetSkipped()))
		for _, s := range k.GetSkipped() {
			fmt.Fprintf(&b, " %d:%x", s.GetIteration(), s.GetMessageKey())
		}
		lines = append(lines, b.String())
	}
	slices.Sort(lines)
	return lines
}

// diffKeys describes the first difference between two renderings of keys,
// or returns "" when they are the same.
func diffKeys(got, want []string) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return fmt.Sprintf("%d keys, want %d: missing %.200s", len(got), len(want), want[i])
		case i >= len(want):
			return fmt.Sprintf("%d keys, want %d: extra %.200s", len(got), len(want), got[i])
		case got[i] != want[i]:
			return fmt.Sprintf("got %.200s..., want %.200s...", got[i], want[i])
		}
	}
	return ""
}

// codeName is an error code's name, or "" for none.
func codeName(c errcode.Code) string {
	if c == 0 {
		return ""
	}
	return c.String()
}

func runSenderKeys(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[senderKeysCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if _, err := c.want(); err != nil {
			return fmt.Errorf("%s: %w", c.ID, err)
		}
		for i, s := range c.Steps {
			if _, err := (&common{Expect: s.Expect, Error: s.Error}).want(); err != nil {
				return fmt.Errorf("%s step %d: %w", c.ID, i, err)
			}
			if s.Op != "encrypt" && s.Keys == nil {
				return fmt.Errorf("%s step %d: no keys after the step", c.ID, i)
			}
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			// The sender's key and its distribution.
			resp, err := v.call(ctx, &pb.Request{Method: "sender_key.create", Params: &pb.Request_SenderKeyCreate{SenderKeyCreate: &pb.SenderKeyCreateParams{
				GroupId: c.GroupID, Epoch: c.Epoch, KeyId: c.KeyID, Iteration: c.Iteration,
				Random: slices.Concat(c.ChainKey, c.SigningPrivate)}}})
			if err != nil {
				return err
			}
			if !check(r, resp, 0) {
				r.Detail = "sender_key.create: " + r.Detail
				return nil
			}
			if got := resp.GetSenderKeyCreate().GetDistribution(); !bytes.Equal(got, c.Distribution) {
				r.failf(WrongOutput, "sender_key.create: distribution %x, want %x", got, []byte(c.Distribution))
				return nil
			}
			own := &pb.OwnSenderKey{GroupId: c.GroupID, Epoch: c.Epoch, KeyId: c.KeyID, Iteration: c.Iteration,
				ChainKey: c.ChainKey, SigningPrivate: c.SigningPrivate}
			keys := toReceivedKeys(c.Keys)
			for i, s := range c.Steps {
				want, _ := (&common{Expect: s.Expect, Error: s.Error}).want()
				fail := func(kind FailKind, format string, args ...any) {
					r.failf(kind, "step %d (%s): %s", i, s.Op, fmt.Sprintf(format, args...))
				}
				receiver := &pb.SenderKeyReceiver{GroupId: c.GroupID, States: byteSlices(c.States), Keys: keys}
				var gotKeys []*pb.ReceivedSenderKey
				switch s.Op {
				case "encrypt":
					resp, err := v.call(ctx, &pb.Request{Method: "sender_key.encrypt", Params: &pb.Request_SenderKeyEncrypt{SenderKeyEncrypt: &pb.SenderKeyEncryptParams{
						Key: own, Iteration: s.Iteration, GroupVersion: s.GroupVersion, Content: s.Content, Z: s.Z}}})
					if err != nil {
						return err
					}
					if !check(r, resp, 0) {
						r.Detail = fmt.Sprintf("step %d (encrypt): %s", i, r.Detail)
						return nil
					}
					if got := resp.GetSenderKeyEncrypt().GetMessage(); !bytes.Equal(got, s.Message) {
						fail(WrongOutput, "the group message differs: %x", got)
						return nil
					}
					continue
				case "distribute":
					resp, err = v.call(ctx, &pb.Request{Method: "sender_key.distribute", Params: &pb.Request_SenderKeyDistribute{SenderKeyDistribute: &pb.SenderKeyDistributeParams{
						Receiver: receiver, From: s.From, Distribution: s.Distribution}}})
					if err != nil {
						return err
					}
					gotKeys = resp.GetSenderKeyDistribute().GetKeys()
				case "decrypt":
					resp, err = v.call(ctx, &pb.Request{Method: "sender_key.decrypt", Params: &pb.Request_SenderKeyDecrypt{SenderKeyDecrypt: &pb.SenderKeyDecryptParams{
						Receiver: receiver, From: s.From, MessageId: s.MessageID, SentAt: s.SentAt, Message: s.Message}}})
					if err != nil {
						return err
					}
					gotKeys = resp.GetSenderKeyDecrypt().GetKeys()
				default:
					return fmt.Errorf("step %d: unknown op %q", i, s.Op)
				}
				if !check(r, resp, want) && r.Outcome == Fail {
					r.Detail = fmt.Sprintf("step %d (%s): %s", i, s.Op, r.Detail)
					return nil
				}
				if want == 0 && s.Op == "decrypt" && !bytes.Equal(resp.GetSenderKeyDecrypt().GetContent(), s.Content) {
					fail(WrongOutput, "content %x, want %x", resp.GetSenderKeyDecrypt().GetContent(), []byte(s.Content))
					return nil
				}
				// The keys after the step, failed or not (GRP-008).
				wantKeys := toReceivedKeys(*s.Keys)
				if d := diffKeys(renderReceivedKeys(gotKeys), renderReceivedKeys(wantKeys)); d != "" {
					fail(WrongOutput, "the receiver's keys after the step: %s", d)
					return nil
				}
				keys = wantKeys
			}
			return nil
		})
	}
	return nil
}

type mediaCase struct {
	common
	MediaKey      hexb `json:"media_key"`
	Key           hexb `json:"key"`
	PlaintextSize int  `json:"plaintext_size"`
	Chunks        []struct {
		Offset int  `json:"offset"`
		Length int  `json:"length"`
		Index  int  `json:"index"`
		Last   bool `json:"last"`
	} `json:"chunks"`
	Truncate   *int   `json:"truncate"`
	Flip       *int   `json:"flip"`
	Blob       hexb   `json:"blob"`
	BlobSize   int    `json:"blob_size"`
	BlobSHA256 hexb   `json:"blob_sha256"`
	Size       uint64 `json:"size"`
	Digest     hexb   `json:"digest"`
}

// mediaPlaintext is the plaintext of a media case: byte j is j mod 251.
func mediaPlaintext(n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(j % 251)
	}
	return p
}

// blob makes the blob a media case describes (its chunks sealed under its
// key, then cut and changed), and checks it against the case.
func (c *mediaCase) blob() ([]byte, error) {
	if c.Blob != nil {
		return c.Blob, nil
	}
	a, err := chacha20poly1305.New(c.Key)
	if err != nil {
		return nil, err
	}
	p := mediaPlaintext(c.PlaintextSize)
	var blob []byte
	for _, ch := range c.Chunks {
		if ch.Offset < 0 || ch.Length < 0 || ch.Offset+ch.Length > len(p) {
			return nil, fmt.Errorf("%s: a chunk outside the plaintext", c.ID)
		}
		n := make([]byte, chacha20poly1305.NonceSize)
		for i, x := 0, ch.Index; i < 11; i, x = i+1, x>>8 {
			n[10-i] = byte(x)
		}
		if ch.Last {
			n[11] = 1
		}
		blob = a.Seal(blob, n, p[ch.Offset:ch.Offset+ch.Length], nil)
	}
	if c.Truncate != nil {
		if *c.Truncate > len(blob) {
			return nil, fmt.Errorf("%s: truncate beyond the blob", c.ID)
		}
		blob = blob[:*c.Truncate]
	}
	if c.Flip != nil {
		if *c.Flip >= len(blob) {
			return nil, fmt.Errorf("%s: flip beyond the blob", c.ID)
		}
		blob[*c.Flip] ^= 1
	}
	if sum := sha256.Sum256(blob); len(blob) != c.BlobSize || !bytes.Equal(sum[:], c.BlobSHA256) {
		return nil, fmt.Errorf("%s: the blob made from the case is not blob_size and blob_sha256", c.ID)
	}
	return blob, nil
}

func runMedia(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[mediaCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		want, err := c.want()
		if err != nil {
			return fmt.Errorf("%s: %w", c.ID, err)
		}
		blob, err := c.blob()
		if err != nil {
			return err
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			plaintext := mediaPlaintext(c.PlaintextSize)
			if want == 0 {
				resp, err := v.call(ctx, &pb.Request{Method: "media.encrypt", Params: &pb.Request_MediaEncrypt{MediaEncrypt: &pb.MediaEncryptParams{
					MediaKey: c.MediaKey, Plaintext: plaintext}}})
				if err != nil {
					return err
				}
				if !check(r, resp, 0) {
					r.Detail = "media.encrypt: " + r.Detail
					return nil
				}
				res := resp.GetMediaEncrypt()
				sum := sha256.Sum256(res.GetBlob())
				switch {
				case len(res.GetKey()) > 0 && !bytes.Equal(res.GetKey(), c.Key):
					r.failf(WrongOutput, "media.encrypt: key %x, want %x", res.GetKey(), []byte(c.Key))
				case !bytes.Equal(res.GetBlob(), blob):
					r.failf(WrongOutput, "media.encrypt: the blob differs (%d bytes, SHA-256 %x; want %d bytes, %x)",
						len(res.GetBlob()), sum, c.BlobSize, []byte(c.BlobSHA256))
				case !bytes.Equal(res.GetDigest(), c.Digest) || res.GetSize() != c.Size:
					r.failf(WrongOutput, "media.encrypt: digest %x and size %d, want %x and %d", res.GetDigest(), res.GetSize(), []byte(c.Digest), c.Size)
				}
				if r.Outcome == Fail {
					return nil
				}
			}
			resp, err := v.call(ctx, &pb.Request{Method: "media.decrypt", Params: &pb.Request_MediaDecrypt{MediaDecrypt: &pb.MediaDecryptParams{
				MediaKey: c.MediaKey, Size: c.Size, Digest: c.Digest, Blob: blob}}})
			if err != nil {
				return err
			}
			if check(r, resp, want) && !bytes.Equal(resp.GetMediaDecrypt().GetPlaintext(), plaintext) {
				r.failf(WrongOutput, "media.decrypt: %d bytes, not the plaintext", len(resp.GetMediaDecrypt().GetPlaintext()))
			}
			return nil
		})
	}
	return nil
}

type lifecycleEventJSON struct {
	Op       string  `json:"op"`
	From     string  `json:"from"`
	Type     string  `json:"type"`
	ID       hexb    `json:"id"`
	SentAt   uint64  `json:"sent_at"`
	Text     *string `json:"text"`
	ViewOnce bool    `json:"view_once"`
	Expire   uint64  `json:"expire_after"`
	Target   hexb    `json:"target"`
	Timer    uint64  `json:"timer"`
	Messages []struct {
		Account string `json:"account"`
		ID      hexb   `json:"id"`
	} `json:"messages"`
	Now    uint64 `json:"now"`
	Result string `json:"result"`
	Error  string `json:"error"`
}

type lifecycleCase struct {
	common
	Device string               `json:"device"`
	Clock  uint64               `json:"clock"`
	Events []lifecycleEventJSON `json:"events"`
	Final  struct {
		Messages []struct {
			From     string  `json:"from"`
			ID       hexb    `json:"id"`
			Text     *string `json:"text"`
			EditedBy hexb    `json:"edited_by"`
			Deleted  bool    `json:"deleted"`
			Expired  bool    `json:"expired"`
			Opened   *bool   `json:"opened"`
		} `json:"messages"`
		Pending []hexb `json:"pending"`
		Timer   uint64 `json:"timer"`
		TimerID hexb   `json:"timer_id"`
	} `json:"final"`
	Orders [][]int `json:"orders"`
}

// event returns the request form of an event: what the device is given,
// without what it must answer.
func (e *lifecycleEventJSON) event() *pb.LifecycleEvent {
	pe := &pb.LifecycleEvent{Op: e.Op, From: e.From, Type: e.Type, Id: e.ID, SentAt: e.SentAt, Text: e.Text,
		ViewOnce: e.ViewOnce, Target: e.Target, Timer: e.Timer, Now: e.Now}
	if e.Op == "receive" {
		pe.ExpireAfter = e.Expire
	}
	for _, m := range e.Messages {
		pe.Messages = append(pe.Messages, &pb.LifecycleMessageRef{Account: m.Account, Id: m.ID})
	}
	return pe
}

// renderLifecycle writes a final state in one form for both sides.
func renderLifecycle(s *pb.LifecycleState) string {
	var b strings.Builder
	for _, m := range s.GetMessages() {
		fmt.Fprintf(&b, "%s/%x", m.GetFrom(), m.GetId())
		if m.Text != nil {
			fmt.Fprintf(&b, " text %q", m.GetText())
		}
		if len(m.GetEditedBy()) > 0 {
			fmt.Fprintf(&b, " edited-by %x", m.GetEditedBy())
		}
		fmt.Fprintf(&b, " deleted %v expired %v", m.GetDeleted(), m.GetExpired())
		if m.Opened != nil {
			fmt.Fprintf(&b, " opened %v", m.GetOpened())
		}
		b.WriteString("; ")
	}
	fmt.Fprintf(&b, "pending [")
	for _, p := range s.GetPending() {
		fmt.Fprintf(&b, " %x", p)
	}
	fmt.Fprintf(&b, " ] timer %d %x", s.GetTimer(), s.GetTimerId())
	return b.String()
}

func runLifecycle(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[lifecycleCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if want, err := c.want(); err != nil || want != 0 {
			return fmt.Errorf("%s: a lifecycle case is valid (%v)", c.ID, err)
		}
		wantFinal := &pb.LifecycleState{Timer: c.Final.Timer, TimerId: c.Final.TimerID}
		for _, m := range c.Final.Messages {
			wantFinal.Messages = append(wantFinal.Messages, &pb.LifecycleMessage{From: m.From, Id: m.ID, Text: m.Text,
				EditedBy: m.EditedBy, Deleted: m.Deleted, Expired: m.Expired, Opened: m.Opened})
		}
		wantFinal.Pending = byteSlices(c.Final.Pending)
		wantCodes := make([]errcode.Code, len(c.Events))
		for i, e := range c.Events {
			if e.Error != "" {
				code, ok := errcode.Parse(e.Error)
				if !ok {
					return fmt.Errorf("%s event %d: unknown error %q", c.ID, i, e.Error)
				}
				wantCodes[i] = code
			}
		}
		for n, order := range c.Orders {
			for _, i := range order {
				if i < 0 || i >= len(c.Events) {
					return fmt.Errorf("%s: order %d names no event %d", c.ID, n, i)
				}
			}
		}
		v.record(c.common, time.Now(), func(r *Result) error {
			run := func(order []int) (*pb.LifecycleRunResult, bool, error) {
				p := &pb.LifecycleRunParams{Device: c.Device, Clock: c.Clock}
				for _, i := range order {
					p.Events = append(p.Events, c.Events[i].event())
				}
				resp, err := v.call(ctx, &pb.Request{Method: "lifecycle.run", Params: &pb.Request_LifecycleRun{LifecycleRun: p}})
				if err != nil {
					return nil, false, err
				}
				if !check(r, resp, 0) {
					return nil, false, nil
				}
				return resp.GetLifecycleRun(), true, nil
			}
			all := make([]int, len(c.Events))
			for i := range all {
				all[i] = i
			}
			res, ok, err := run(all)
			if !ok || err != nil {
				return err
			}
			if len(res.GetResults()) != len(c.Events) {
				r.failf(WrongOutput, "%d event results, want %d", len(res.GetResults()), len(c.Events))
				return nil
			}
			for i, e := range c.Events {
				got := res.GetResults()[i]
				if got.GetResult() != e.Result || errcode.Code(got.GetErrorCode()) != wantCodes[i] {
					r.failf(WrongOutput, "event %d (%s %s): got %s %s, want %s %s", i, e.Op, e.Type, got.GetResult(),
						codeName(errcode.Code(got.GetErrorCode())), e.Result, e.Error)
					return nil
				}
				if e.Op == "send" && (e.Type == "text" || e.Type == "media") && e.Result == "applied" && got.GetExpireAfter() != e.Expire {
					r.failf(WrongOutput, "event %d (send %s): expire-after %d, want %d (LIF-007)", i, e.Type, got.GetExpireAfter(), e.Expire)
					return nil
				}
			}
			want := renderLifecycle(wantFinal)
			if g := renderLifecycle(res.GetFinal()); g != want {
				r.failf(WrongOutput, "final state: got %s; want %s", g, want)
				return nil
			}
			// Other orders reach the same state (LIF-009).
			for n, order := range c.Orders {
				res, ok, err := run(order)
				if !ok || err != nil {
					if r.Outcome == Fail {
						r.Detail = fmt.Sprintf("order %d: %s", n, r.Detail)
					}
					return err
				}
				if g := renderLifecycle(res.GetFinal()); g != want {
					r.failf(WrongOutput, "order %d %v: final state: got %s; want %s", n, order, g, want)
					return nil
				}
			}
			return nil
		})
	}
	return nil
}

type groupReceiptsCase struct {
	common
	Devices  map[string][]uint32 `json:"devices"`
	Versions map[string][]string `json:"versions"`
	Device   string              `json:"device"`
	Messages []struct {
		ID           hexb   `json:"id"`
		GroupVersion uint32 `json:"group_version"`
	} `json:"messages"`
	Events []struct {
		Kind     string `json:"kind"`
		Message  hexb   `json:"message"`
		From     string `json:"from"`
		Receipt  string `json:"receipt"`
		Messages []hexb `json:"messages"`
	} `json:"events"`
	Final map[string]struct {
		Statuses map[string]string `json:"statuses"`
		Members  map[string]string `json:"members"`
		Overall  string            `json:"overall"`
	} `json:"final"`
}

func renderGroupStatus(id string, statuses, members map[string]string, overall string) string {
	var b strings.Builder
	b.WriteString(id + ":")
	for _, k := range slices.Sorted(maps.Keys(statuses)) {
		fmt.Fprintf(&b, " %s=%s", k, statuses[k])
	}
	b.WriteString(" |")
	for _, k := range slices.Sorted(maps.Keys(members)) {
		fmt.Fprintf(&b, " %s=%s", k, members[k])
	}
	return b.String() + " | " + overall
}

func runGroupReceipts(ctx context.Context, v *vectorRun, data []byte) error {
	cases, err := decodeFile[groupReceiptsCase](v.family, data)
	if err != nil {
		return err
	}
	for _, c := range cases {
		if want, err := c.want(); err != nil || want != 0 {
			return fmt.Errorf("%s: a group receipts case is valid (%v)", c.ID, err)
		}
		p := &pb.GroupReceiptsFoldParams{Devices: map[string]*pb.DeviceIDs{}, Versions: map[uint32]*pb.Accounts{}, Device: c.Device}
		for acct, ids := range c.Devices {
			p.Devices[acct] = &pb.DeviceIDs{Ids: ids}
		}
		for ver, accts := range c.Versions {
			n, err := strconv.ParseUint(ver, 10, 32)
			if err != nil {
				return fmt.Errorf("%s: group version %q", c.ID, ver)
			}
			p.Versions[uint32(n)] = &pb.Accounts{Accounts: accts}
		}
		for _, m := range c.Messages {
			p.Messages = append(p.Messages, &pb.GroupFoldMessage{Id: m.ID, GroupVersion: m.GroupVersion})
		}
		for _, e := range c.Events {
			p.Events = append(p.Events, &pb.FoldEvent{Kind: e.Kind, Message: e.Message, From: e.From, Receipt: e.Receipt,
				Messages: byteSlices(e.Messages)})
		}
		var want []string
		for id, m := range c.Final {
			want = append(want, renderGroupStatus(id, m.Statuses, m.Members, m.Overall))
		}
		slices.Sort(want)
		v.record(c.common, time.Now(), func(r *Result) error {
			resp, err := v.call(ctx, &pb.Request{Method: "group_receipts.fold", Params: &pb.Request_GroupReceiptsFold{GroupReceiptsFold: p}})
			if err != nil {
				return err
			}
			if !check(r, resp, 0) {
				return nil
			}
			var got []string
			for _, m := range resp.GetGroupReceiptsFold().GetMessages() {
				got = append(got, renderGroupStatus(fmt.Sprintf("%x", m.GetId()), m.GetStatuses(), m.GetMembers(), m.GetOverall()))
			}
			slices.Sort(got)
			if g, w := strings.Join(got, "; "), strings.Join(want, "; "); g != w {
				r.failf(WrongOutput, "got %s; want %s", g, w)
			}
			return nil
		})
	}
	return nil
}
