// Package refadapter is the reference implementation's adapter for the
// conformance runner (conformance/adapterpb): it answers every request of
// the adapter protocol with the packages of ref/. It can also play a
// mutant, a realistic buggy implementation, to show that the suite catches
// it.
package refadapter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/missive-protocol/missive/conformance/adapterpb"
	"github.com/missive-protocol/missive/internal/faults"
	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/spec"
)

// Adapter answers adapter-protocol requests.
type Adapter struct {
	mutant string

	mu       sync.Mutex
	next     int
	sessions map[string]any // ratchet and session handles
	clients  *clients
}

// New returns an adapter; mutant is "" for the correct implementation, or
// one of Mutants, which it switches on for the whole process.
func New(mutant string) (*Adapter, error) {
	if mutant != "" {
		if err := faults.Enable(faults.Fault(mutant)); err != nil {
			return nil, fmt.Errorf("refadapter: unknown mutant %q", mutant)
		}
	}
	return &Adapter{mutant: mutant, sessions: map[string]any{}, clients: newClients()}, nil
}

// Close releases what the adapter's devices hold.
func (a *Adapter) Close() { a.clients.close() }

func (a *Adapter) handle(v any) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	h := "h" + strconv.Itoa(a.next)
	a.sessions[h] = v
	return h
}

func (a *Adapter) lookup(h string) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[h]
}

// Serve reads requests from r, one JSON object per line, and writes the
// responses to w, until r ends.
func (a *Adapter) Serve(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 64<<20)
	bw := bufio.NewWriter(w)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var req pb.Request
		resp := &pb.Response{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(line, &req); err != nil {
			resp.Status, resp.Detail = pb.Status_ERROR, "refadapter: bad request: "+err.Error()
		} else {
			resp = a.Handle(&req)
		}
		out, err := protojson.Marshal(resp)
		if err != nil {
			return err
		}
		bw.Write(out)
		bw.WriteByte('\n')
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Handle answers one request.
func (a *Adapter) Handle(req *pb.Request) (resp *pb.Response) {
	resp = &pb.Response{Id: req.Id}
	defer func() {
		if r := recover(); r != nil {
			resp.Status, resp.Detail = pb.Status_ERROR, fmt.Sprintf("refadapter: panic: %v", r)
		}
	}()
	h, ok := methods[req.Method]
	if !ok {
		resp.Status = pb.Status_UNIMPLEMENTED
		return resp
	}
	result, err := h(a, req)
	if errors.Is(err, errUnimplemented) {
		resp.Status = pb.Status_UNIMPLEMENTED
		return resp
	}
	if err != nil {
		resp.Status = pb.Status_ERROR
		code := errcode.Of(err)
		resp.ErrorCode, resp.ErrorName, resp.Detail = uint32(code), code.String(), err.Error()
		if code == 0 {
			resp.ErrorName = ""
		}
		var f failure
		if errors.As(err, &f) {
			setResult(resp, f.result)
		}
		return resp
	}
	resp.Status = pb.Status_OK
	setResult(resp, result)
	return resp
}

var errUnimplemented = errors.New("refadapter: unimplemented")

type method func(a *Adapter, req *pb.Request) (any, error)

var methods = map[string]method{}

func hello(a *Adapter, req *pb.Request) (any, error) {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	name := "missive-ref"
	if a.mutant != "" {
		name += " (mutant " + a.mutant + ")"
	}
	features := make([]string, 0, len(methods))
	for m := range methods {
		features = append(features, m)
	}
	features = append(features, "client", "multi-device")
	sort.Strings(features)
	return &pb.HelloResult{Name: name, Version: v, SpecVersions: []string{spec.Version},
		ProtocolVersions: []uint32{spec.ProtocolVersion}, Features: features}, nil
}

// setResult puts a result message into the response's oneof.
func setResult(resp *pb.Response, r any) {
	switch v := r.(type) {
	case nil:
	case *pb.HelloResult:
		resp.Result = &pb.Response_Hello{Hello: v}
	case *pb.XEdDSASignResult:
		resp.Result = &pb.Response_XeddsaSign{XeddsaSign: v}
	case *pb.PQXDHInitiateResult:
		resp.Result = &pb.Response_PqxdhInitiate{PqxdhInitiate: v}
	case *pb.PQXDHRespondResult:
		resp.Result = &pb.Response_PqxdhRespond{PqxdhRespond: v}
	case *pb.RatchetInitResult:
		resp.Result = &pb.Response_RatchetInit{RatchetInit: v}
	case *pb.RatchetEncryptResult:
		resp.Result = &pb.Response_RatchetEncrypt{RatchetEncrypt: v}
	case *pb.RatchetDecryptResult:
		resp.Result = &pb.Response_RatchetDecrypt{RatchetDecrypt: v}
	case *pb.WireDecodeResult:
		resp.Result = &pb.Response_WireDecode{WireDecode: v}
	case *pb.ReceiptsFoldResult:
		resp.Result = &pb.Response_ReceiptsFold{ReceiptsFold: v}
	case *pb.TransportRunResult:
		resp.Result = &pb.Response_TransportRun{TransportRun: v}
	case *pb.DeviceCreateResult:
		resp.Result = &pb.Response_DeviceCreate{DeviceCreate: v}
	case *pb.MessageSendResult:
		resp.Result = &pb.Response_MessageSend{MessageSend: v}
	case *pb.MessagesReceiveResult:
		resp.Result = &pb.Response_MessagesReceive{MessagesReceive: v}
	case *pb.MessageStatusResult:
		resp.Result = &pb.Response_MessageStatus{MessageStatus: v}
	case *pb.PresenceGetResult:
		resp.Result = &pb.Response_PresenceGet{PresenceGet: v}
	case *pb.LinkOpenResult:
		resp.Result = &pb.Response_LinkOpen{LinkOpen: v}
	case *pb.LinkCompleteResult:
		resp.Result = &pb.Response_LinkComplete{LinkComplete: v}
	case *pb.LinkJoinResult:
		resp.Result = &pb.Response_LinkJoin{LinkJoin: v}
	case *pb.GroupCreateResult:
		resp.Result = &pb.Response_GroupCreate{GroupCreate: v}
	case *pb.MediaSendResult:
		resp.Result = &pb.Response_MediaSend{MediaSend: v}
	case *pb.MediaDownloadResult:
		resp.Result = &pb.Response_MediaDownload{MediaDownload: v}
	case *pb.MediaOpenResult:
		resp.Result = &pb.Response_MediaOpen{MediaOpen: v}
	case *pb.MessageGetResult:
		resp.Result = &pb.Response_MessageGet{MessageGet: v}
	case *pb.GroupCheckStateResult:
		resp.Result = &pb.Response_GroupCheckState{GroupCheckState: v}
	case *pb.SenderKeyCreateResult:
		resp.Result = &pb.Response_SenderKeyCreate{SenderKeyCreate: v}
	case *pb.SenderKeyEncryptResult:
		resp.Result = &pb.Response_SenderKeyEncrypt{SenderKeyEncrypt: v}
	case *pb.SenderKeyDistributeResult:
		resp.Result = &pb.Response_SenderKeyDistribute{SenderKeyDistribute: v}
	case *pb.SenderKeyDecryptResult:
		resp.Result = &pb.Response_SenderKeyDecrypt{SenderKeyDecrypt: v}
	case *pb.MediaEncryptResult:
		resp.Result = &pb.Response_MediaEncrypt{MediaEncrypt: v}
	case *pb.MediaDecryptResult:
		resp.Result = &pb.Response_MediaDecrypt{MediaDecrypt: v}
	case *pb.LifecycleRunResult:
		resp.Result = &pb.Response_LifecycleRun{LifecycleRun: v}
	case *pb.GroupReceiptsFoldResult:
		resp.Result = &pb.Response_GroupReceiptsFold{GroupReceiptsFold: v}
	default:
		panic(fmt.Sprintf("refadapter: no result field for %T", r))
	}
}
