package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
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
