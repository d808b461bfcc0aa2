// Package errcode holds the registered error codes of the Missive
// specification (spec/07-errors.md), generated from spec/errors.json.
//
// A Code is itself an error, so a function can return a code directly or
// wrap it with context:
//
//	return fmt.Errorf("pqxdh: signed prekey: %w", errcode.AuthBadSignature)
//
// and a caller tests for it with errors.Is, or recovers it with Of.
package errcode

//go:generate go run ./internal/generr

import (
	"errors"
	"strconv"
)

// Code is a registered error code: a stable number with a stable name.
type Code uint16

// String returns the registered name, such as "decode.key_type", or
// "code(N)" for a number the registry does not hold.
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Error implements error.
func (c Code) Error() string { return "missive: " + c.String() }

// Registered reports whether c is in the registry.
func (c Code) Registered() bool {
	_, ok := names[c]
	return ok
}

// Layer returns the layer of c: "decode", "auth", "state" or "policy", or
// "" when c is outside every layer.
func (c Code) Layer() string {
	for _, l := range layers {
		if c >= l.first && c <= l.last {
			return l.name
		}
	}
	return ""
}

// Of returns the registered code that err wraps, or 0 when it wraps none.
func Of(err error) Code {
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return 0
}

// Parse returns the code registered under name.
func Parse(name string) (Code, bool) {
	for c, n := range names {
		if n == name {
			return c, true
		}
	}
	return 0, false
}

// All returns every registered code in increasing order.
func All() []Code {
	out := make([]Code, 0, len(names))
	for c := range names {
		out = append(out, c)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
