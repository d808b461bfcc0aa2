package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/store"
)

// TestRandomIDs checks the runner's test of MSG-002 on ids of each kind.
func TestRandomIDs(t *testing.T) {
	// Ids from a hash stand in for random ones: their bytes are as
	// independent, and the test is the same at every run.
	hashed := func(n int) [][]byte {
		var ids [][]byte
		for i := range n {
			h := sha256.Sum256(binary.BigEndian.AppendUint32([]byte("id"), uint32(i)))
			ids = append(ids, h[:16])
		}
		return ids
	}
	counter := func(prefix []byte, n int) [][]byte {
		var ids [][]byte
		for i := range n {
			ids = append(ids, binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(i)))
		}
		return ids
	}
	agreeing := func(k int) [][]byte { // two ids agreeing in their first k bytes
		a, b := hashed(2)[0], bytes.Clone(hashed(2)[1])
		copy(b, a[:k])
		for i := k; i < 16; i++ {
			if b[i] == a[i] {
				b[i]++
			}
		}
		return [][]byte{a, b}
	}
	tests := []struct {
		name string
		ids  [][]byte
		want string // a part of the error; empty: no error
	}{
		{"hashed", hashed(200), ""},
		{"agreeing in 4", agreeing(4), ""},
		{"agreeing in 5", agreeing(5), "agree in 5 of their 16 bytes"},
		{"counter", counter(make([]byte, 8), 3), "agree in 15"},
		{"fixed prefix", counter([]byte("prefix!!"), 2), "agree in 15"},
		{"the same twice", [][]byte{hashed(1)[0], hashed(1)[0]}, "agree in 16"},
		{"short", [][]byte{hashed(1)[0][:15]}, "has 15 bytes, want 16"},
		{"long", [][]byte{append(hashed(1)[0], 0)}, "has 17 bytes, want 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := randomIDs(tt.ids)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestUploadedIDs checks the runner's record of prekey ids (PQX-002): an id
// given a second key of its kind is reported, in another upload or the
// same one; the same key again (a retry), and equal ids of two kinds, are
// not.
func TestUploadedIDs(t *testing.T) {
	a := store.Address{Account: "bob", Device: 1}
	key := func(id uint32, b byte) store.Prekey { return store.Prekey{ID: id, Key: []byte{b}} }
	first := store.PrekeyUpdate{SignedPrekey: &store.Prekey{ID: 1, Key: []byte{1}}, LastResort: &store.Prekey{ID: 1, Key: []byte{2}},
		OneTimeEC: []store.Prekey{key(1, 3), key(2, 4)}, OneTimeKEM: []store.Prekey{key(2, 5)}}
	tests := []struct {
		name string
		next store.PrekeyUpdate
		want []reusedKey
	}{
		{"new ids", store.PrekeyUpdate{OneTimeEC: []store.Prekey{key(3, 6)}, OneTimeKEM: []store.Prekey{key(3, 7)}}, nil},
		{"a retry", first, nil},
		{"an EC id again", store.PrekeyUpdate{OneTimeEC: []store.Prekey{key(3, 6), key(2, 9)}},
			[]reusedKey{{a, keyID{"one-time EC prekey", 2}, 1, 2}}},
		{"the last-resort id for a one-time KEM prekey", store.PrekeyUpdate{OneTimeKEM: []store.Prekey{key(1, 9)}},
			[]reusedKey{{a, keyID{"KEM prekey", 1}, 1, 2}}},
		{"a new signed prekey under the old id", store.PrekeyUpdate{SignedPrekey: &store.Prekey{ID: 1, Key: []byte{9}}},
			[]reusedKey{{a, keyID{"signed prekey", 1}, 1, 2}}},
		{"one id twice in an upload", store.PrekeyUpdate{OneTimeEC: []store.Prekey{key(7, 9), key(7, 10)}},
			[]reusedKey{{a, keyID{"one-time EC prekey", 7}, 2, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &embedded{}
			e.uploaded(a, first)
			if got := e.reusedPrekeyIDs(); len(got) != 0 {
				t.Fatalf("first upload: got %v, want nothing", got)
			}
			e.uploaded(a, tt.next)
			if got := e.reusedPrekeyIDs(); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := e.reusedPrekeyIDs(); len(got) != 0 {
				t.Errorf("a second call: got %v, want nothing (reported once)", got)
			}
		})
	}
}
