package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate fails when codes_gen.go or 07-errors.md differ from
// what spec/errors.json renders to: run go generate ./ref/errcode.
func TestGeneratedUpToDate(t *testing.T) {
	out, err := outputs()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("generator produced no files")
	}
	for name, want := range out {
		got, err := os.ReadFile(filepath.Join("../../../..", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./ref/errcode", name)
		}
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{
		"decode.key_type":     "DecodeKeyType",
		"auth.bad_signature":  "AuthBadSignature",
		"decode.float":        "DecodeFloat",
		"decode.invalid_utf8": "DecodeInvalidUTF8",
	} {
		if got := goName(in); got != want {
			t.Errorf("goName(%q): got %q, want %q", in, got, want)
		}
	}
}
