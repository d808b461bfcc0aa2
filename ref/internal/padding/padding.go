// Package padding implements the plaintext padding of spec/05-ratchet.md
// section 5.5: Padmé lengths, a 0x80 delimiter and zero bytes.
package padding

import (
	"math/bits"

	"github.com/missive-protocol/missive/ref/errcode"
)

// Min is PAD_MIN, the smallest padded length.
const Min = 32

// delimiter ends the plaintext inside the padded block.
const delimiter = 0x80

// padme returns the Padmé length of l, for l >= 2.
func padme(l int) int {
	e := bits.Len(uint(l)) - 1 // floor(log2(l))
	s := bits.Len(uint(e))     // floor(log2(e)) + 1
	mask := 1<<(e-s) - 1
	return (l + mask) &^ mask
}

// Len returns pad_len(l): the padded length of l bytes, the delimiter
// included.
func Len(l int) int {
	if l <= Min {
		return Min
	}
	return padme(l)
}

// Pad appends the padded form of m to dst.
func Pad(dst, m []byte) []byte {
	n := Len(len(m) + 1)
	dst = append(dst, m...)
	dst = append(dst, delimiter)
	for range n - len(m) - 1 {
		dst = append(dst, 0)
	}
	return dst
}

// Unpad returns the plaintext inside x, or errcode.DecodeBadPadding when
// the padding is not exactly what Pad produces.
func Unpad(x []byte) ([]byte, error) {
	i := len(x) - 1
	for i >= 0 && x[i] == 0 {
		i--
	}
	if i < 0 || x[i] != delimiter || len(x) != Len(i+1) {
		return nil, errcode.DecodeBadPadding
	}
	return x[:i], nil
}
