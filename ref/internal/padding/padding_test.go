package padding

import (
	"bytes"
	"errors"
	"testing"

	"github.com/missive-protocol/missive/ref/errcode"
)

func TestLen(t *testing.T) {
	// Values computed by hand from the Padmé definition in spec section 5.5.
	tests := []struct{ in, want int }{
		{1, 32}, {32, 32}, {33, 36}, {34, 36}, {37, 40}, {100, 104}, {257, 272},
		{1000, 1024}, {65537, 67584},
	}
	for _, tt := range tests {
		if got := Len(tt.in); got != tt.want {
			t.Errorf("Len(%d): got %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestOverhead checks Padmé's bound: at most 12% over the input length.
func TestOverhead(t *testing.T) {
	for l := Min + 1; l <= 1<<17; l++ {
		n := Len(l)
		if n < l || float64(n-l) > 0.12*float64(l) {
			t.Fatalf("Len(%d) = %d: overhead out of bounds", l, n)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for l := 0; l <= 600; l++ {
		m := bytes.Repeat([]byte{0}, l) // zeros are the hardest plaintext
		p := Pad(nil, m)
		if len(p) != Len(l+1) {
			t.Fatalf("len(Pad(%d bytes)): got %d, want %d", l, len(p), Len(l+1))
		}
		got, err := Unpad(p)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("Unpad(Pad(%d bytes)): got %d bytes, %v", l, len(got), err)
		}
	}
}

func TestUnpadRejects(t *testing.T) {
	good := Pad(nil, []byte("hello"))
	tests := map[string][]byte{
		"empty":          {},
		"all zero":       make([]byte, 32),
		"no delimiter":   append([]byte("hello"), make([]byte, 27)...),
		"wrong delim":    append(append([]byte("hello"), 0x81), make([]byte, 26)...),
		"too long":       append(append([]byte(nil), good...), 0),
		"too short":      good[:31],
		"extra block":    Pad(nil, append([]byte("hello"), make([]byte, 0)...))[:0],
		"non-zero after": append(append([]byte("hello"), 0x80), append(make([]byte, 25), 1)...),
	}
	for name, in := range tests {
		if _, err := Unpad(in); !errors.Is(err, errcode.DecodeBadPadding) {
			t.Errorf("%s: got %v, want %v", name, err, errcode.DecodeBadPadding)
		}
	}
}
