package wire

import "encoding/binary"

// Fast paths for the structures on the hot path of every message: the
// frame that carries everything on a connection, the ratchet message and
// its header. Each fast decoder accepts only the exact
// canonical layout that the general decoder accepts, fills the structure as
// the general decoder would, and otherwise reports false so that the
// general decoder runs and reports the precise error. FuzzFastPaths checks
// both properties against the general path.

// appendUint appends the shortest head of major type major with argument v.
func appendHead(b []byte, major byte, v uint64) []byte {
	m := major << 5
	switch {
	case v < 24:
		return append(b, m|byte(v))
	case v <= 0xFF:
		return append(b, m|24, byte(v))
	case v <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(v))
	case v <= 0xFFFFFFFF:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), v)
}

// readHead reads a head of the given major type in shortest form, with an
// argument of at most 32 bits.
func readHead(b []byte, major byte) (v uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0]>>5 != major {
		return 0, nil, false
	}
	ai := b[0] & 0x1f
	switch {
	case ai < 24:
		return uint64(ai), b[1:], true
	case ai == 24 && len(b) >= 2 && b[1] >= 24:
		return uint64(b[1]), b[2:], true
	case ai == 25 && len(b) >= 3:
		v = uint64(binary.BigEndian.Uint16(b[1:]))
		return v, b[3:], v > 0xFF
	case ai == 26 && len(b) >= 5:
		v = uint64(binary.BigEndian.Uint32(b[1:]))
		return v, b[5:], v > 0xFFFF
	}
	return 0, nil, false
}

// readUint reads an unsigned integer in shortest form, of any size.
func readUint(b []byte) (v uint64, rest []byte, ok bool) {
	if len(b) >= 9 && b[0] == majorUint<<5|27 {
		v = binary.BigEndian.Uint64(b[1:])
		return v, b[9:], v > 0xFFFFFFFF
	}
	return readHead(b, majorUint)
}

// cursor reads a canonical encoding item by item: after the first item
// that is not the one expected, every read fails and ok stays false, so a
// decoder reads its whole layout and looks at ok once.
type cursor struct {
	b  []byte
	ok bool
}

func newCursor(b []byte) cursor { return cursor{b: b, ok: true} }

// key reads the one-byte item k (a map head or a map key).
func (c *cursor) key(k byte) {
	if c.peek(k) {
		c.b = c.b[1:]
	} else {
		c.ok = false
	}
}

// peek reports whether the next byte is k.
func (c *cursor) peek(k byte) bool { return c.ok && len(c.b) > 0 && c.b[0] == k }

// head reads a head of the major type, as readHead does.
func (c *cursor) head(major byte) (v uint64) {
	if c.ok {
		v, c.b, c.ok = readHead(c.b, major)
	}
	return v
}

// uint reads an unsigned integer of any size, as readUint does.
func (c *cursor) uint() (v uint64) {
	if c.ok {
		v, c.b, c.ok = readUint(c.b)
	}
	return v
}

// uints reads the consecutive unsigned fields keyed first, first+1, ...
// into dst.
func (c *cursor) uints(first byte, dst ...*uint64) {
	for i, p := range dst {
		c.key(first + byte(i))
		*p = c.uint()
	}
}

// bytes reads a byte string, which shares the input's memory.
func (c *cursor) bytes() (v []byte) {
	if c.ok {
		v, c.b, c.ok = readBytes(c.b)
	}
	return v
}

// text reads a text string; the caller checks its characters (every text
// on the hot path is an account name, which is ASCII).
func (c *cursor) text() string {
	n := c.head(majorText)
	if !c.ok || uint64(len(c.b)) < n {
		c.ok = false
		return ""
	}
	t := string(c.b[:n])
	c.b = c.b[n:]
	return t
}

// address reads an address: [account, device].
func (c *cursor) address() Address {
	c.key(0x82)
	account := c.text()
	return Address{Account: account, Device: c.head(majorUint)}
}

// end reports whether every item was the one expected and nothing is left.
func (c *cursor) end() bool { return c.ok && len(c.b) == 0 }

func readBytes(b []byte) (v, rest []byte, ok bool) {
	n, b, ok := readHead(b, majorBytes)
	if !ok || uint64(len(b)) < n {
		return nil, nil, false
	}
	return b[:n:n], b[n:], true
}

func (h *RatchetHeader) fastAppend(b []byte) []byte {
	b = append(b, 0xA3, 0x01)
	b = appendHead(b, majorBytes, uint64(len(h.RatchetKey)))
	b = append(b, h.RatchetKey...)
	b = appendHead(append(b, 0x02), majorUint, h.PN)
	return appendHead(append(b, 0x03), majorUint, h.N)
}

func (h *RatchetHeader) fastDecode(b []byte) bool {
	if len(b) < 3 || b[0] != 0xA3 || b[1] != 0x01 {
		return false
	}
	key, b, ok := readBytes(b[2:])
	if !ok || len(key) != X25519PublicSize || len(b) < 1 || b[0] != 0x02 {
		return false
	}
	pn, b, ok := readHead(b[1:], majorUint)
	if !ok || len(b) < 1 || b[0] != 0x03 {
		return false
	}
	n, b, ok := readHead(b[1:], majorUint)
	if !ok || len(b) != 0 {
		return false
	}
	*h = RatchetHeader{RatchetKey: key, PN: pn, N: n}
	return true
}

func (m *RatchetMessage) fastAppend(b []byte) []byte {
	b = appendHead(append(b, 0xA3, 0x01), majorUint, m.Version)
	b = appendHead(append(b, 0x02), majorBytes, uint64(len(m.Header)))
	b = append(b, m.Header...)
	b = appendHead(append(b, 0x03), majorBytes, uint64(len(m.Ciphertext)))
	return append(b, m.Ciphertext...)
}

func (m *RatchetMessage) fastDecode(b []byte) bool {
	if len(b) < 4 || b[0] != 0xA3 || b[1] != 0x01 || b[2] != ProtocolVersion || b[3] != 0x02 {
		return false
	}
	header, b, ok := readBytes(b[4:])
	if !ok || len(b) < 1 || b[0] != 0x03 {
		return false
	}
	ct, b, ok := readBytes(b[1:])
	if !ok || len(b) != 0 || len(ct) < MinCiphertext || len(ct) > MaxCiphertext {
		return false
	}
	*m = RatchetMessage{Version: ProtocolVersion, Header: header, Ciphertext: ct}
	return true
}

func (f *Frame) fastAppend(b []byte) []byte {
	b = f.appendHead(b)
	if f.Body != nil {
		b = append(b, *f.Body...)
	}
	return b
}

// frameHeadMax is the most bytes a frame's encoding takes before its
// body's bytes: the map's head, three keys with their integers, the body's
// key and its byte string's head.
const frameHeadMax = 1 + 3*(1+9) + 1 + 9

// appendHead appends the frame's encoding up to its body's bytes.
func (f *Frame) appendHead(b []byte) []byte {
	n := byte(2)
	if f.RequestID != nil {
		n++
	}
	if f.Body != nil {
		n++
	}
	b = appendHead(append(b, 0xA0+n, 0x01), majorUint, f.Version)
	b = appendHead(append(b, 0x02), majorUint, f.Type)
	if f.RequestID != nil {
		b = appendHead(append(b, 0x03), majorUint, *f.RequestID)
	}
	if f.Body != nil {
		b = appendHead(append(b, 0x04), majorBytes, uint64(len(*f.Body)))
	}
	return b
}

// fastDecode decodes a frame of the current version; its body shares
// b's memory, as the ratchet message's fields do.
func (f *Frame) fastDecode(b []byte) bool { return f.fastDecodeIn(b, nil, nil) }

// fastDecodeIn is fastDecode keeping the request id and the body's slice in
// id and body, or in new memory when they are nil.
func (f *Frame) fastDecodeIn(b []byte, id *uint64, body *[]byte) bool {
	if len(b) == 0 || b[0] < 0xA2 || b[0] > 0xA4 {
		return false
	}
	left := int(b[0]-0xA0) - 2 // keys after version and type
	c := newCursor(b[1:])
	var out Frame
	c.uints(0x01, &out.Version, &out.Type)
	if left > 0 && c.peek(0x03) {
		c.key(0x03)
		if id == nil {
			id = new(uint64)
		}
		*id = c.uint()
		out.RequestID = id
		left--
	}
	if left > 0 {
		c.key(0x04)
		if body == nil {
			body = new([]byte)
		}
		*body = c.bytes()
		out.Body = body
		left--
	}
	if left != 0 || !c.end() || out.Version != ProtocolVersion || out.presence() != nil || out.check() != nil {
		return false
	}
	*f = out
	return true
}

func (f *Frame) sizeHint() int {
	if f.Body == nil {
		return 16
	}
	return 16 + len(*f.Body)
}

func appendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendBytes(b, v []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(v))), v...)
}

func (a *Address) appendTo(b []byte) []byte {
	return appendHead(appendText(append(b, 0x82), a.Account), majorUint, a.Device)
}

func (e *Envelope) fastAppend(b []byte) []byte {
	b = appendHead(append(b, 0xA9, 0x01), majorUint, e.Version)
	b = appendBytes(append(b, 0x02), e.MessageID)
	b = e.Sender.appendTo(append(b, 0x03))
	b = appendText(append(b, 0x04), e.Recipient)
	b = appendHead(append(b, 0x05), majorArray, uint64(len(e.Messages)))
	for i := range e.Messages {
		m := &e.Messages[i]
		b = appendHead(append(b, 0xA3, 0x01), majorUint, m.Device)
		b = appendHead(append(b, 0x02), majorUint, m.Kind)
		b = appendBytes(append(b, 0x03), m.Ciphertext)
	}
	b = appendHead(append(b, 0x06), majorUint, e.Type)
	b = appendHead(append(b, 0x07), majorUint, e.Priority)
	b = appendHead(append(b, 0x08), majorUint, e.TTL)
	return appendHead(append(b, 0x09), majorUint, e.SentAt)
}

// fastDecode decodes an envelope (the body of every send); its byte
// strings share b's memory.
func (e *Envelope) fastDecode(b []byte) bool {
	if len(b) > MaxEnvelopeSize {
		return false
	}
	c := newCursor(b)
	var out Envelope
	c.key(0xA9)
	c.uints(0x01, &out.Version)
	c.key(0x02)
	out.MessageID = c.bytes()
	c.key(0x03)
	out.Sender = c.address()
	c.key(0x04)
	out.Recipient = c.text()
	c.key(0x05)
	n := c.head(majorArray)
	if !c.ok || n == 0 || n > MaxFanout || n > uint64(len(c.b)) {
		return false
	}
	out.Messages = make([]DeviceMessage, n)
	for i := range out.Messages {
		m := &out.Messages[i]
		c.key(0xA3)
		c.uints(0x01, &m.Device, &m.Kind)
		c.key(0x03)
		m.Ciphertext = c.bytes()
	}
	c.uints(0x06, &out.Type, &out.Priority, &out.TTL, &out.SentAt)
	if !c.end() || out.Version != ProtocolVersion || out.check() != nil {
		return false
	}
	*e = out
	return true
}

// fastDecode decodes a delivery (every message a device receives); its
// byte strings share b's memory.
func (d *Delivery) fastDecode(b []byte) bool {
	c := newCursor(b)
	var out Delivery
	c.key(0xAC)
	c.uints(0x01, &out.Version, &out.QueueID)
	c.key(0x03)
	out.MessageID = c.bytes()
	c.key(0x04)
	out.Sender = c.address()
	c.uints(0x05, &out.Type, &out.Priority, &out.Kind)
	c.key(0x08)
	out.Ciphertext = c.bytes()
	c.uints(0x09, &out.SentAt, &out.AcceptedAt, &out.ExpiresAt, &out.Attempt)
	if !c.end() || out.Version != ProtocolVersion || out.check() != nil {
		return false
	}
	*d = out
	return true
}

func (r *SendResult) fastAppend(b []byte) []byte {
	return appendHead(append(b, 0xA1, 0x01), majorUint, r.AcceptedAt)
}

// fastDecode decodes the answer to every send.
func (r *SendResult) fastDecode(b []byte) bool {
	c := newCursor(b)
	var out SendResult
	c.key(0xA1)
	c.uints(0x01, &out.AcceptedAt)
	if !c.end() {
		return false
	}
	*r = out
	return true
}

func (a *Ack) fastAppend(b []byte) []byte {
	b = appendHead(append(b, 0xA1, 0x01), majorArray, uint64(len(a.QueueIDs)))
	for _, id := range a.QueueIDs {
		b = appendHead(b, majorUint, id)
	}
	return b
}

// fastDecode decodes an acknowledgement (one or more for every burst of
// deliveries).
func (a *Ack) fastDecode(b []byte) bool {
	c := newCursor(b)
	c.key(0xA1)
	c.key(0x01)
	n := c.head(majorArray)
	if !c.ok || n == 0 || n > MaxReceiptIDs || n > uint64(len(c.b)) {
		return false
	}
	out := Ack{QueueIDs: make([]uint64, n)}
	for i := range out.QueueIDs {
		out.QueueIDs[i] = c.uint()
	}
	if !c.end() || out.check() != nil {
		return false
	}
	*a = out
	return true
}

func (a *Ack) sizeHint() int { return 4 + 9*len(a.QueueIDs) }

func (d *Delivery) fastAppend(b []byte) []byte {
	b = appendHead(append(b, 0xAC, 0x01), majorUint, d.Version)
	b = appendHead(append(b, 0x02), majorUint, d.QueueID)
	b = appendBytes(append(b, 0x03), d.MessageID)
	b = d.Sender.appendTo(append(b, 0x04))
	b = appendHead(append(b, 0x05), majorUint, d.Type)
	b = appendHead(append(b, 0x06), majorUint, d.Priority)
	b = appendHead(append(b, 0x07), majorUint, d.Kind)
	b = appendBytes(append(b, 0x08), d.Ciphertext)
	b = appendHead(append(b, 0x09), majorUint, d.SentAt)
	b = appendHead(append(b, 0x0A), majorUint, d.AcceptedAt)
	b = appendHead(append(b, 0x0B), majorUint, d.ExpiresAt)
	return appendHead(append(b, 0x0C), majorUint, d.Attempt)
}

// fastEncoder is implemented by the structures with a hand-written
// encoder, which appends the encoding to b; fastDecoder by those with a
// hand-written decoder.
type fastEncoder interface{ fastAppend(b []byte) []byte }
type fastDecoder interface{ fastDecode([]byte) bool }

// sizeHint returns a capacity that holds the encoding, so that the
// hand-written encoders allocate once.
func (e *Envelope) sizeHint() int {
	n := 64 + len(e.Recipient) + len(e.Sender.Account) + len(e.MessageID)
	for i := range e.Messages {
		n += 16 + len(e.Messages[i].Ciphertext)
	}
	return n
}

func (d *Delivery) sizeHint() int {
	return 96 + len(d.Sender.Account) + len(d.MessageID) + len(d.Ciphertext)
}

func (m *RatchetMessage) sizeHint() int { return 16 + len(m.Header) + len(m.Ciphertext) }

func (h *RatchetHeader) sizeHint() int { return 16 + len(h.RatchetKey) }
