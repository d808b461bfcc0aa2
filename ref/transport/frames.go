package transport

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/keys"
	"github.com/missive-protocol/missive/ref/wire"
)

// BindingMessage returns the message an identity key signs to bind a
// transport key (spec section 12.4).
func BindingMessage(transportKey []byte, device uint32, account string) []byte {
	m := make([]byte, 0, len(LabelBinding)+keys.X25519EncodedSize+4+len(account))
	m = append(m, LabelBinding...)
	m = append(m, keys.TypeX25519Public)
	m = append(m, transportKey...)
	m = binary.BigEndian.AppendUint32(m, device)
	return append(m, account...)
}

// Bind returns the binding of transportKey (a 32-byte X25519 public key)
// by the identity key ik, drawing 64 bytes from rand.
func Bind(ik *keys.PrivateKey, transportKey []byte, device uint32, account string, rand io.Reader) ([]byte, error) {
	return ik.Sign(BindingMessage(transportKey, device, account), rand)
}

// VerifyBinding checks a binding; it returns nil or errcode.AuthBadSignature.
// A binding verified lately is not verified again (see verified).
func VerifyBinding(ik keys.PublicKey, transportKey, sig []byte, device uint32, account string) error {
	if len(transportKey) != keys.X25519Size {
		return errcode.AuthBadSignature
	}
	msg := BindingMessage(transportKey, device, account)
	h := sha256.New()
	for _, b := range [][]byte{ik.Encode(), msg, sig} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	var id [sha256.Size]byte
	h.Sum(id[:0])
	if verified.has(id) {
		return nil
	}
	if err := ik.Verify(msg, sig); err != nil {
		return err
	}
	verified.add(id)
	return nil
}

// maxVerified is the most bindings verified is holding (about 4 MiB).
const maxVerified = 1 << 16

// verified holds the bindings verified lately, by the SHA-256 of every
// input of the verification (identity key, signed message, signature), so
// that a device reconnecting with the same keys costs no second XEdDSA
// verification: two to three X25519 operations, a quarter of a handshake
// (appendix on performance). Only successes are held; a full set starts
// afresh.
var verified verifiedSet

type verifiedSet struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

func (v *verifiedSet) has(id [sha256.Size]byte) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.m[id]
	return ok
}

func (v *verifiedSet) add(id [sha256.Size]byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[sha256.Size]byte]struct{})
	}
	v.m[id] = struct{}{}
}

// Send writes a frame of the given type, request id (0 for none) and body
// (nil for none).
func (c *Conn) Send(typ, requestID uint64, body wire.Message) error {
	// The encoding is written (sealed into a buffer of its own) before
	// Send returns: it is made in a pooled buffer.
	buf := getBuf(smallBuf)
	defer putBuf(buf)
	enc, err := wire.MarshalFrameIn(buf[:0], typ, requestID, body)
	if err != nil {
		return err
	}
	return c.WriteFrame(enc)
}

// EncodeFrame returns the encoding of a frame of the given type, request id
// (0 for none) and body (nil for none), for WriteFrames.
func EncodeFrame(typ, requestID uint64, body wire.Message) ([]byte, error) {
	return wire.MarshalFrame(typ, requestID, body)
}

// SendError writes an error frame for err, whose registered code it
// carries, answering requestID when it is not 0.
func (c *Conn) SendError(requestID uint64, err error) error {
	return c.Send(wire.FrameError, requestID, ErrorBody(err))
}

// ErrorBody returns the error body for err: its registered code, with the
// fan-out lists of a *FanoutError and the retry time of a *RetryError.
func ErrorBody(err error) *wire.ErrorBody {
	code := errcode.Of(err)
	if code == 0 {
		code = errcode.PolicyShuttingDown // the only code for "not now" without detail
	}
	b := &wire.ErrorBody{Code: uint64(code)}
	var fe *FanoutError
	if errors.As(err, &fe) {
		b.Fanout = &wire.FanoutMismatch{Missing: nonNil(fe.Missing), Extra: nonNil(fe.Extra), Stale: nonNil(fe.Stale)}
		if fe.DeviceList != nil {
			b.DeviceList = &fe.DeviceList
		}
	}
	var re *RetryError
	if errors.As(err, &re) {
		ms := uint64(re.After.Milliseconds())
		b.RetryAfter = &ms
	}
	return b
}

func nonNil(l []uint64) []uint64 {
	if l == nil {
		return []uint64{}
	}
	return l
}

// Receive reads and decodes the next frame. When the frame does not decode
// it sends an error frame with the failure's code, and the frame's request
// id when that was decoded (TRN-009), and returns the error; the caller
// then closes the connection.
func (c *Conn) Receive() (*wire.Frame, error) {
	enc, err := c.ReadFrame()
	if err != nil {
		return nil, err
	}
	f, err := wire.DecodeFrame(enc)
	if err != nil {
		var id uint64
		if f != nil {
			id = RequestID(f)
		}
		c.SendError(id, err)
		return nil, fmt.Errorf("transport: frame: %w", err)
	}
	return f, nil
}

// DecodeBody decodes the body of f into m. It fails with
// decode.missing_field when f has no body.
func DecodeBody(f *wire.Frame, m wire.Message) error {
	if f.Body == nil {
		return errcode.DecodeMissingField
	}
	return wire.Unmarshal(*f.Body, m)
}

// RequestID returns f's request id, or 0.
func RequestID(f *wire.Frame) uint64 {
	if f.RequestID == nil {
		return 0
	}
	return *f.RequestID
}

// FanoutError is state.fanout_mismatch with its device lists and the
// recipient's signed device list.
type FanoutError struct {
	Missing, Extra, Stale []uint64
	DeviceList            []byte
}

func (e *FanoutError) Error() string {
	return fmt.Sprintf("missive: state.fanout_mismatch: missing %v, extra %v, stale %v", e.Missing, e.Extra, e.Stale)
}

// Unwrap returns the registered code.
func (e *FanoutError) Unwrap() error { return errcode.StateFanoutMismatch }

// RetryError carries a registered code and a time after which to retry.
type RetryError struct {
	Code  errcode.Code
	After interface{ Milliseconds() int64 }
}

func (e *RetryError) Error() string { return e.Code.Error() }

// Unwrap returns the registered code.
func (e *RetryError) Unwrap() error { return e.Code }

// ReadHello runs checks 1 to 3 of spec section 12.4 on the first frame of a
// server connection: a hello request, a common version (the highest of
// versions that the hello lists), and a binding of the connection's
// transport key. On failure it answers with an error frame and returns the
// error; the caller closes the connection. On success the caller runs
// checks 4 and 5 and answers.
func ReadHello(c *Conn, versions []uint64) (requestID uint64, h *wire.Hello, version uint64, err error) {
	f, err := c.Receive()
	if err != nil {
		return 0, nil, 0, err
	}
	return CheckHello(c, f, versions)
}

// CheckHello is ReadHello for a first frame already read.
func CheckHello(c *Conn, f *wire.Frame, versions []uint64) (requestID uint64, h *wire.Hello, version uint64, err error) {
	requestID = RequestID(f)
	fail := func(err error) (uint64, *wire.Hello, uint64, error) {
		c.SendError(requestID, err)
		return requestID, nil, 0, err
	}
	if f.Type != wire.FrameHello {
		return fail(errcode.StateNotAuthenticated)
	}
	h = new(wire.Hello)
	if err := DecodeBody(f, h); err != nil {
		return fail(err)
	}
	for _, v := range h.Versions {
		if slices.Contains(versions, v) && v > version {
			version = v
		}
	}
	if version == 0 {
		return fail(errcode.PolicyNoCommonVersion)
	}
	ik, err := keys.DecodePublicKey(h.IdentityKey)
	if err != nil {
		return fail(err)
	}
	if err := VerifyBinding(ik, c.remote, h.Binding, uint32(h.Device), h.Account); err != nil {
		return fail(err)
	}
	c.deadline = time.Time{}
	return requestID, h, version, nil
}

// RemoteError is an error frame received from the peer.
type RemoteError struct {
	Body *wire.ErrorBody
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("transport: peer reported %v", errcode.Code(e.Body.Code))
}

// Unwrap returns the registered code.
func (e *RemoteError) Unwrap() error { return errcode.Code(e.Body.Code) }

// Call sends a request and waits for its result, decoding it into result.
// It is for simple, one-request-at-a-time use (a device's hello, tests); it
// fails if any other frame arrives first.
func (c *Conn) Call(typ, requestID uint64, body, result wire.Message) error {
	if err := c.Send(typ, requestID, body); err != nil {
		return err
	}
	f, err := c.Receive()
	if err != nil {
		return err
	}
	if RequestID(f) != requestID {
		return fmt.Errorf("transport: answer to request %d while waiting for %d: %w", RequestID(f), requestID, errcode.PolicyUnexpectedFrame)
	}
	switch f.Type {
	case wire.FrameResult:
		return DecodeBody(f, result)
	case wire.FrameError:
		var b wire.ErrorBody
		if err := DecodeBody(f, &b); err != nil {
			return err
		}
		return &RemoteError{&b}
	}
	return fmt.Errorf("transport: frame type %d in answer to a request: %w", f.Type, errcode.PolicyUnexpectedFrame)
}
