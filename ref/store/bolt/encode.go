package bolt

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// errCorrupt reports a record that does not decode.
var errCorrupt = errors.New("corrupt record")

// timeSize is the size of an encoded time.
const timeSize = 12

// appendTime appends t as 8 bytes of Unix seconds with the sign bit flipped
// and 4 bytes of nanoseconds, both big-endian, so that encoded times sort as
// the times do. The zero time.Time encodes and decodes like any other.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^1<<63)
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// appendAddr appends the key form of an address: the account name's length
// as a uvarint, the name, and the device id as 4 big-endian bytes. No
// address's encoding is a prefix of another's.
func appendAddr(b []byte, a store.Address) []byte {
	b = binary.AppendUvarint(b, uint64(len(a.Account)))
	b = append(b, a.Account...)
	return binary.BigEndian.AppendUint32(b, a.Device)
}

// addrSize is the length of a's key form.
func addrSize(a store.Address) int {
	n := 1
	for v := len(a.Account); v >= 0x80; v >>= 7 {
		n++
	}
	return n + len(a.Account) + 4
}

// appendBytes appends p with its length as a uvarint.
func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// reader decodes a record; the first failure sticks in err and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err, r.b = errCorrupt, nil }

func (r *reader) u8() uint8 {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) time() time.Time {
	sec := r.u64()
	nsec := r.u32()
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(int64(sec^1<<63), int64(nsec)).UTC()
}

// bytes reads a length-prefixed byte string and copies it out of the
// transaction's memory.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := make([]byte, n)
	copy(v, r.b)
	r.b = r.b[n:]
	return v
}

// str reads a length-prefixed string.
func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	v := string(r.b[:n])
	r.b = r.b[n:]
	return v
}

func (r *reader) addr() store.Address {
	name := r.str()
	return store.Address{Account: name, Device: r.u32()}
}

// rest copies what is left.
func (r *reader) rest() []byte {
	if r.err != nil {
		return nil
	}
	v := make([]byte, len(r.b))
	copy(v, r.b)
	r.b = nil
	return v
}

// done returns the decoding error, or errCorrupt when bytes are left over.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = errCorrupt
	}
	return r.err
}

// Accounts: the devices in increasing id order, each as its id, a flags
// byte (1: removed), its creation time and its identity key.

func encodeAccount(devices []store.Device) []byte {
	b := binary.AppendUvarint(nil, uint64(len(devices)))
	for _, d := range devices {
		b = binary.BigEndian.AppendUint32(b, d.ID)
		var flags byte
		if d.Removed {
			flags = 1
		}
		b = append(b, flags)
		b = appendTime(b, d.Created)
		b = appendBytes(b, d.IdentityKey)
	}
	return b
}

func decodeAccount(v []byte) ([]store.Device, error) {
	r := reader{b: v}
	n := r.uvarint()
	if n > uint64(len(v)) {
		return nil, errCorrupt
	}
	devices := make([]store.Device, 0, n)
	for range n {
		d := store.Device{ID: r.u32()}
		flags := r.u8()
		d.Removed = flags&1 != 0
		d.Created = r.time()
		d.IdentityKey = r.bytes()
		devices = append(devices, d)
	}
	return devices, r.done()
}

// Device records: the state of a device that exists and is not removed.

// deviceRec is a live device's identity key and prekey state.
type deviceRec struct {
	identityKey        []byte
	signed, lastResort *store.Prekey
	ec, kem            uint32 // one-time prekeys held
	nextSeq            uint64 // upload sequence number of the next one-time prekey
}

func appendPrekey(b []byte, k *store.Prekey) []byte {
	if k == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.BigEndian.AppendUint32(b, k.ID)
	b = appendBytes(b, k.Key)
	return appendBytes(b, k.Signature)
}

func (r *reader) prekey() *store.Prekey {
	if r.u8() == 0 {
		return nil
	}
	return &store.Prekey{ID: r.u32(), Key: r.bytes(), Signature: r.bytes()}
}

func (d *deviceRec) encode() []byte {
	b := appendBytes(nil, d.identityKey)
	b = appendPrekey(b, d.signed)
	b = appendPrekey(b, d.lastResort)
	b = binary.BigEndian.AppendUint32(b, d.ec)
	b = binary.BigEndian.AppendUint32(b, d.kem)
	return binary.BigEndian.AppendUint64(b, d.nextSeq)
}

func decodeDevice(v []byte) (*deviceRec, error) {
	r := reader{b: v}
	d := &deviceRec{identityKey: r.bytes(), signed: r.prekey(), lastResort: r.prekey()}
	d.ec, d.kem, d.nextSeq = r.u32(), r.u32(), r.u64()
	return d, r.done()
}

// One-time prekeys: the id, then the key and the signature.

func encodeOneTime(k store.Prekey) []byte {
	b := binary.BigEndian.AppendUint32(nil, k.ID)
	b = appendBytes(b, k.Key)
	return appendBytes(b, k.Signature)
}

func decodeOneTime(v []byte) (store.Prekey, error) {
	r := reader{b: v}
	k := store.Prekey{ID: r.u32(), Key: r.bytes(), Signature: r.bytes()}
	return k, r.done()
}

// Queue records of versions 1 to 3 (v3Queue, migrateV3): a live device's
// next queue id and its queue's size.

type queueRec struct {
	next           uint64
	entries, bytes uint64
}

const queueRecSize = 24

func (q queueRec) encode() []byte {
	b := make([]byte, 0, queueRecSize)
	b = binary.BigEndian.AppendUint64(b, q.next)
	b = binary.BigEndian.AppendUint64(b, q.entries)
	return binary.BigEndian.AppendUint64(b, q.bytes)
}

func decodeQueue(v []byte) (queueRec, error) {
	if len(v) != queueRecSize {
		return queueRec{}, errCorrupt
	}
	return queueRec{
		next:    binary.BigEndian.Uint64(v),
		entries: binary.BigEndian.Uint64(v[8:]),
		bytes:   binary.BigEndian.Uint64(v[16:]),
	}, nil
}

// Entries: the attempt count, then the priority, type, kind, sent-at,
// acceptance and expiry times, sender, message id, and the ciphertext as
// the rest. The recipient and queue id are in the key.

// entryAttemptSize is the size of the attempt count that starts an entry.
const entryAttemptSize = 4

func encodeEntry(e *store.Entry, attempt uint32) []byte {
	b := make([]byte, 0, entryAttemptSize+3+binary.MaxVarintLen64+2*timeSize+len(e.Sender.Account)+20+len(e.MessageID)+len(e.Ciphertext))
	b = binary.BigEndian.AppendUint32(b, attempt)
	b = append(b, e.Priority, e.Type, e.Kind)
	b = binary.AppendUvarint(b, e.SentAt)
	b = appendTime(b, e.AcceptedAt)
	b = appendTime(b, e.ExpiresAt)
	b = appendAddr(b, e.Sender)
	b = appendBytes(b, e.MessageID)
	return append(b, e.Ciphertext...)
}

// entryHeader is what deleting an entry needs to know.
type entryHeader struct {
	prio          uint8
	expires       []byte // the encoded expiry time
	ciphertextLen int
}

func decodeEntryHeader(v []byte) (entryHeader, error) {
	r := reader{b: v}
	var h entryHeader
	r.u32()
	h.prio = r.u8()
	r.u8()
	r.u8()
	r.uvarint()
	r.time()
	if r.err != nil || len(r.b) < timeSize {
		return h, errCorrupt
	}
	h.expires = r.b[:timeSize]
	r.b = r.b[timeSize:]
	r.addr()
	r.bytes()
	if r.err != nil {
		return h, errCorrupt
	}
	h.ciphertextLen = len(r.b)
	return h, nil
}

func decodeEntry(v []byte, e *store.Entry) error {
	r := reader{b: v}
	e.Attempt = r.u32()
	e.Priority, e.Type, e.Kind = r.u8(), r.u8(), r.u8()
	e.SentAt = r.uvarint()
	e.AcceptedAt = r.time()
	e.ExpiresAt = r.time()
	e.Sender = r.addr()
	e.MessageID = r.bytes()
	e.Ciphertext = r.rest()
	return r.err
}

// withAttempt returns a copy of the entry v with its attempt count set.
func withAttempt(v []byte, attempt uint32) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, len(v)), attempt)
	return append(b, v[entryAttemptSize:]...)
}

// Accepted pairs: the acceptance and the forget times.

func encodePair(accepted, forget time.Time) []byte {
	return appendTime(appendTime(make([]byte, 0, 2*timeSize), accepted), forget)
}

// Contacts: the count, then each name with its length.

func encodeContacts(names []string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(names)))
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	return b
}

func decodeContacts(v []byte) ([]string, error) {
	r := reader{b: v}
	n := r.uvarint()
	if n > uint64(len(v)) {
		return nil, errCorrupt
	}
	names := make([]string, 0, n)
	for range n {
		names = append(names, r.str())
	}
	return names, r.done()
}
