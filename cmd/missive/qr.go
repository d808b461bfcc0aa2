package main

import (
	"fmt"
	"io"

	"rsc.io/qr"
)

// drawQR draws text as a QR code with Unicode half blocks, two rows of modules
// per line, with a quiet zone, so that a phone can scan it off a terminal.
func drawQR(w io.Writer, text string) {
	code, err := qrEncode(text)
	if err != nil {
		return
	}
	const quiet = 2
	n := code.Size
	black := func(x, y int) bool {
		return x >= 0 && y >= 0 && x < n && y < n && code.Black(x, y)
	}
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := black(x, y), black(x, y+1)
			// Light modules are full blocks and dark ones spaces, which
			// scans on the usual dark terminal background.
			switch {
			case !top && !bottom:
				fmt.Fprint(w, "█")
			case !top && bottom:
				fmt.Fprint(w, "▀")
			case top && !bottom:
				fmt.Fprint(w, "▄")
			default:
				fmt.Fprint(w, " ")
			}
		}
		fmt.Fprintln(w)
	}
}

func qrEncode(text string) (*qr.Code, error) { return qr.Encode(text, qr.M) }
