package prim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// This file runs the primitives over Project Wycheproof test vectors
// (github.com/C2SP/wycheproof, testvectors_v1). The files are read in place
// from the shared corpus beside the repository; they are never copied into
// it. Without the corpus the tests skip, except under CI, where they fail.

// wycheproofRel is where the corpus lies relative to the repository root
// (the directory holding go.mod).
var wycheproofRel = filepath.Join("..", "shared", "testdata", "wycheproof")

// wycheproofCorpus returns the corpus directory, skipping the test when it
// is missing (failing instead when the CI environment variable is set).
func wycheproofCorpus(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(repoRoot(tb), wycheproofRel)
	requireCorpus(tb, dir)
	return dir
}

// repoRoot returns the nearest directory at or above the working directory
// (the package directory under go test) that holds go.mod.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("working directory: %v", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod in %s or any directory above it", wd)
		}
		dir = parent
	}
}

// requireCorpus returns if dir is a directory. If it does not exist, it
// skips the test, or fails it when the environment variable CI is non-empty,
// since CI always has the corpus and a run that checked nothing must not pass.
// Any other problem with dir fails the test.
func requireCorpus(tb testing.TB, dir string) {
	tb.Helper()
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if os.Getenv("CI") != "" {
			tb.Fatalf("Wycheproof corpus not found at %s, and CI is set", dir)
		}
		tb.Skipf("Wycheproof corpus not found at %s; skipping (with CI set this fails)", dir)
	case err != nil:
		tb.Fatalf("Wycheproof corpus at %s: %v", dir, err)
	case !fi.IsDir():
		tb.Fatalf("Wycheproof corpus at %s: got a file, want a directory", dir)
	}
}

// hexBytes is a byte string written in JSON as lower- or upper-case hex.
type hexBytes []byte

func (h *hexBytes) UnmarshalText(text []byte) error {
	b := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(b, text); err != nil {
		return fmt.Errorf("hex field: %w", err)
	}
	*h = b
	return nil
}

// wpFile is the outer layout shared by every Wycheproof file
// (doc/formats.md); G is the schema's test group type.
type wpFile[G any] struct {
	Algorithm     string            `json:"algorithm"`
	Schema        string            `json:"schema"`
	NumberOfTests int               `json:"numberOfTests"`
	Header        []string          `json:"header"`
	Notes         map[string]wpNote `json:"notes"`
	TestGroups    []G               `json:"testGroups"`
}

type wpNote struct {
	BugType     string   `json:"bugType"`
	Description string   `json:"description"`
	Effect      string   `json:"effect"`
	Links       []string `json:"links"`
}

type wpSource struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// wpCase holds the fields every test case has.
type wpCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
}

func (c wpCase) String() string {
	if c.Comment == "" {
		return fmt.Sprintf("tcId %d %v", c.TcID, c.Flags)
	}
	return fmt.Sprintf("tcId %d (%s) %v", c.TcID, c.Comment, c.Flags)
}

func (c wpCase) hasFlag(f string) bool { return slices.Contains(c.Flags, f) }

// Wycheproof results.
const (
	resultValid      = "valid"
	resultAcceptable = "acceptable"
	resultInvalid    = "invalid"
)

// loadWycheproof decodes the corpus file name strictly: unknown fields,
// trailing data, an unexpected schema or algorithm, and flags the file does
// not define all fail the test, so that a change of format is noticed.
func loadWycheproof[G any](tb testing.TB, dir, name, schema, algorithm string) *wpFile[G] {
	tb.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		// The directory is there, so a missing file is a broken corpus.
		tb.Fatalf("Wycheproof file: %v", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	var v wpFile[G]
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		tb.Fatalf("%s: got data after the JSON object, want end of file", path)
	}
	if v.Schema != schema {
		tb.Fatalf("%s: got schema %q, want %q", path, v.Schema, schema)
	}
	if v.Algorithm != algorithm {
		tb.Fatalf("%s: got algorithm %q, want %q", path, v.Algorithm, algorithm)
	}
	return &v
}

// wpTally counts the cases of one file by how they were checked.
type wpTally struct {
	file  string
	notes map[string]wpNote
	total int
	kinds map[string]int
}

func newTally[G any](file string, f *wpFile[G]) *wpTally {
	return &wpTally{file: file, notes: f.Notes, kinds: map[string]int{}}
}

// start begins a case: it checks the case's flags are defined by the file's
// notes and its result is one of want, and reports whether to go on.
func (w *wpTally) start(tb testing.TB, c wpCase, want ...string) bool {
	tb.Helper()
	for _, f := range c.Flags {
		if _, ok := w.notes[f]; !ok {
			tb.Errorf("%s %v: got flag %q, want one of the file's notes %v", w.file, c, f, slices.Sorted(maps.Keys(w.notes)))
		}
	}
	if !slices.Contains(want, c.Result) {
		tb.Errorf("%s %v: got result %q, want one of %q", w.file, c, c.Result, want)
		return false
	}
	return true
}

// add counts a checked case under kind.
func (w *wpTally) add(kind string) {
	w.total++
	w.kinds[kind]++
}

// finish logs the counts and fails the test when nothing was checked or
// when the count differs from the file's numberOfTests.
func (w *wpTally) finish(tb testing.TB, declared int) {
	tb.Helper()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w.kinds)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, w.kinds[k]))
	}
	tb.Logf("%s: %d cases checked (%s)", w.file, w.total, strings.Join(parts, "; "))
	if w.total == 0 {
		tb.Errorf("%s: got 0 cases checked, want at least 1 (the corpus matched nothing)", w.file)
	}
	if w.total != declared {
		tb.Errorf("%s: got %d cases checked, want numberOfTests %d", w.file, w.total, declared)
	}
}

// X25519, schema xdh_comp_schema_v1.

type x25519Group struct {
	Type   string       `json:"type"`
	Source wpSource     `json:"source"`
	Curve  string       `json:"curve"`
	Tests  []x25519Case `json:"tests"`
}

type x25519Case struct {
	wpCase
	Public  hexBytes `json:"public"`
	Private hexBytes `json:"private"`
	Shared  hexBytes `json:"shared"`
}

// TestWycheproofX25519 checks every case of x25519_test.json. The file marks
// twist points, non-canonical encodings (u >= p) and public keys with the top
// bit set "acceptable": RFC 7748 section 5 defines their result (mask the top
// bit, reduce mod p) and crypto/ecdh follows it, so they must give `shared`.
// The low-order points that make the result all zero (flag ZeroSharedSecret)
// must instead fail with ErrLowOrder, as spec/02-primitives.md [PRIM-001]
// requires.
func TestWycheproofX25519(t *testing.T) {
	const name = "x25519_test.json"
	f := loadWycheproof[x25519Group](t, wycheproofCorpus(t), name, "xdh_comp_schema_v1.json", "XDH")
	w := newTally(name, f)
	zero := make([]byte, X25519KeySize)
	for _, g := range f.TestGroups {
		if g.Type != "XdhComp" || g.Curve != "curve25519" {
			t.Errorf("%s: got group type %q curve %q, want XdhComp curve25519", name, g.Type, g.Curve)
			continue
		}
		for _, c := range g.Tests {
			if !w.start(t, c.wpCase, resultValid, resultAcceptable) {
				continue
			}
			// Every case's private key also gives, by the fixed-base
			// path, the public key of the ladder on the base point.
			if pub, err := X25519Public(c.Private); err != nil {
				t.Errorf("%s %v: X25519Public: %v", name, c, err)
			} else if want, err := X25519(c.Private, x25519Base); err != nil || !bytes.Equal(pub, want) {
				t.Errorf("%s %v: X25519Public %x, want X25519(private, 9) %x (%v)", name, c, pub, want, err)
			}
			got, err := X25519(c.Private, c.Public)
			if c.hasFlag("ZeroSharedSecret") || bytes.Equal(c.Shared, zero) {
				w.add("low order, ErrLowOrder")
				if !errors.Is(err, ErrLowOrder) || got != nil {
					t.Errorf("%s %v: got (%x, %v), want ErrLowOrder", name, c, got, err)
				}
				continue
			}
			w.add(c.Result + ", shared secret")
			if err != nil {
				t.Errorf("%s %v: got error %v, want shared secret %x", name, c, err, c.Shared)
			} else if !bytes.Equal(got, c.Shared) {
				t.Errorf("%s %v: got %x, want %x", name, c, got, c.Shared)
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// ChaCha20-Poly1305, schema aead_test_schema_v1.

type aeadGroup struct {
	Type    string     `json:"type"`
	Source  wpSource   `json:"source"`
	IVSize  int        `json:"ivSize"`
	KeySize int        `json:"keySize"`
	TagSize int        `json:"tagSize"`
	Tests   []aeadCase `json:"tests"`
}

type aeadCase struct {
	wpCase
	Key hexBytes `json:"key"`
	IV  hexBytes `json:"iv"`
	AAD hexBytes `json:"aad"`
	Msg hexBytes `json:"msg"`
	CT  hexBytes `json:"ct"`
	Tag hexBytes `json:"tag"`
}

// TestWycheproofChaCha20Poly1305 checks chacha20_poly1305_test.json. Groups
// with a nonce other than 96 bits (or a key other than 256 bits) must be
// refused by both Seal and Open with ErrKeySize; in the 96-bit group valid
// cases must seal to ct||tag and open to msg, and invalid ones (modified
// tags) must fail Open with exactly ErrOpen [PRIM-004].
func TestWycheproofChaCha20Poly1305(t *testing.T) {
	const name = "chacha20_poly1305_test.json"
	f := loadWycheproof[aeadGroup](t, wycheproofCorpus(t), name, "aead_test_schema_v1.json", "CHACHA20-POLY1305")
	w := newTally(name, f)
	for _, g := range f.TestGroups {
		if g.Type != "AeadTest" || g.TagSize != 8*AEADTagSize {
			t.Errorf("%s: got group type %q tagSize %d, want AeadTest %d", name, g.Type, g.TagSize, 8*AEADTagSize)
			continue
		}
		wrongSize := g.IVSize != 8*AEADNonceSize || g.KeySize != 8*AEADKeySize
		for _, c := range g.Tests {
			// Cases of the wrong-size groups carry no ct or tag.
			if len(c.IV)*8 != g.IVSize || len(c.Key)*8 != g.KeySize || (!wrongSize && len(c.Tag)*8 != g.TagSize) {
				t.Errorf("%s %v: got iv %d key %d tag %d bits, want the group's %d, %d, %d",
					name, c, len(c.IV)*8, len(c.Key)*8, len(c.Tag)*8, g.IVSize, g.KeySize, g.TagSize)
				continue
			}
			sealed := append(bytes.Clone(c.CT), c.Tag...)
			if wrongSize {
				if !w.start(t, c.wpCase, resultInvalid) {
					continue
				}
				w.add("invalid, nonce size, ErrKeySize")
				if out, err := Seal(nil, c.Key, c.IV, c.Msg, c.AAD); !errors.Is(err, ErrKeySize) || out != nil {
					t.Errorf("%s %v: Seal: got (%x, %v), want ErrKeySize", name, c, out, err)
				}
				if out, err := Open(nil, c.Key, c.IV, sealed, c.AAD); !errors.Is(err, ErrKeySize) || out != nil {
					t.Errorf("%s %v: Open: got (%x, %v), want ErrKeySize", name, c, out, err)
				}
				continue
			}
			if !w.start(t, c.wpCase, resultValid, resultInvalid) {
				continue
			}
			if c.Result == resultInvalid {
				w.add("invalid, ErrOpen")
				if out, err := Open(nil, c.Key, c.IV, sealed, c.AAD); err != ErrOpen || out != nil {
					t.Errorf("%s %v: Open: got (%x, %v), want ErrOpen", name, c, out, err)
				}
				continue
			}
			w.add("valid, Seal and Open")
			out, err := Seal(nil, c.Key, c.IV, c.Msg, c.AAD)
			if err != nil {
				t.Errorf("%s %v: Seal: got error %v, want %x", name, c, err, sealed)
			} else if !bytes.Equal(out, sealed) {
				t.Errorf("%s %v: Seal: got %x, want %x", name, c, out, sealed)
			}
			out, err = Open(nil, c.Key, c.IV, sealed, c.AAD)
			if err != nil {
				t.Errorf("%s %v: Open: got error %v, want %x", name, c, err, c.Msg)
			} else if !bytes.Equal(out, c.Msg) {
				t.Errorf("%s %v: Open: got %x, want %x", name, c, out, c.Msg)
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// HKDF-SHA-256, schema hkdf_test_schema_v1.

type hkdfGroup struct {
	Type    string     `json:"type"`
	Source  wpSource   `json:"source"`
	KeySize int        `json:"keySize"`
	Tests   []hkdfCase `json:"tests"`
}

type hkdfCase struct {
	wpCase
	IKM  hexBytes `json:"ikm"`
	Salt hexBytes `json:"salt"`
	Info hexBytes `json:"info"`
	Size int      `json:"size"`
	OKM  hexBytes `json:"okm"`
}

// TestWycheproofHKDF checks hkdf_sha256_test.json: valid cases must give
// okm; the invalid ones ask for more than 255*32 bytes and must fail.
func TestWycheproofHKDF(t *testing.T) {
	const name = "hkdf_sha256_test.json"
	f := loadWycheproof[hkdfGroup](t, wycheproofCorpus(t), name, "hkdf_test_schema_v1.json", "HKDF-SHA-256")
	w := newTally(name, f)
	for _, g := range f.TestGroups {
		if g.Type != "HkdfTest" {
			t.Errorf("%s: got group type %q, want HkdfTest", name, g.Type)
			continue
		}
		for _, c := range g.Tests {
			if !w.start(t, c.wpCase, resultValid, resultInvalid) {
				continue
			}
			out, err := HKDF(c.Salt, c.IKM, c.Info, c.Size)
			if c.Result == resultInvalid {
				w.add("invalid, error")
				if err == nil {
					t.Errorf("%s %v: HKDF(size %d): got %d bytes and no error, want an error", name, c, c.Size, len(out))
				}
				continue
			}
			w.add("valid, okm")
			if err != nil {
				t.Errorf("%s %v: HKDF(size %d): got error %v, want %x", name, c, c.Size, err, c.OKM)
			} else if !bytes.Equal(out, c.OKM) {
				t.Errorf("%s %v: HKDF(size %d): got %x, want %x", name, c, c.Size, out, c.OKM)
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// HMAC-SHA-256, schema mac_test_schema_v1.

type macGroup struct {
	Type    string    `json:"type"`
	Source  wpSource  `json:"source"`
	KeySize int       `json:"keySize"`
	TagSize int       `json:"tagSize"`
	Tests   []macCase `json:"tests"`
}

type macCase struct {
	wpCase
	Key hexBytes `json:"key"`
	Msg hexBytes `json:"msg"`
	Tag hexBytes `json:"tag"`
}

// TestWycheproofHMAC checks hmac_sha256_test.json. Groups with a tagSize
// below 256 bits compare the first tagSize/8 bytes of the MAC; valid cases
// must match, invalid ones (modified tags) must not.
func TestWycheproofHMAC(t *testing.T) {
	const name = "hmac_sha256_test.json"
	f := loadWycheproof[macGroup](t, wycheproofCorpus(t), name, "mac_test_schema_v1.json", "HMACSHA256")
	w := newTally(name, f)
	for _, g := range f.TestGroups {
		n := g.TagSize / 8
		if g.Type != "MacTest" || g.TagSize%8 != 0 || n < 1 || n > HashSize {
			t.Errorf("%s: got group type %q tagSize %d, want MacTest with 8 to %d bits", name, g.Type, g.TagSize, 8*HashSize)
			continue
		}
		for _, c := range g.Tests {
			if !w.start(t, c.wpCase, resultValid, resultInvalid) {
				continue
			}
			if len(c.Tag) != n || len(c.Key)*8 != g.KeySize {
				t.Errorf("%s %v: got tag %d key %d bits, want the group's %d, %d", name, c, len(c.Tag)*8, len(c.Key)*8, g.TagSize, g.KeySize)
				continue
			}
			got := HMAC(c.Key, c.Msg)[:n]
			if c.Result == resultInvalid {
				w.add("invalid, mismatch")
				if bytes.Equal(got, c.Tag) {
					t.Errorf("%s %v: got MAC equal to the modified tag %x, want a mismatch", name, c, c.Tag)
				}
				continue
			}
			w.add(fmt.Sprintf("valid, %d-bit match", g.TagSize))
			if !bytes.Equal(got, c.Tag) {
				t.Errorf("%s %v: got %x, want %x", name, c, got, c.Tag)
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// ML-KEM-1024, schemas mlkem_test_schema and mlkem_encaps_test_schema.

type mlkemGroup struct {
	Type         string      `json:"type"`
	Source       wpSource    `json:"source"`
	ParameterSet string      `json:"parameterSet"`
	Tests        []mlkemCase `json:"tests"`
}

// mlkemCase is a key generation and decapsulation case: the seed d || z,
// the encapsulation key it expands to (absent when the seed is malformed),
// a ciphertext and the shared key decapsulation must give (empty when the
// case is invalid).
type mlkemCase struct {
	wpCase
	Seed hexBytes `json:"seed"`
	EK   hexBytes `json:"ek"`
	C    hexBytes `json:"c"`
	K    hexBytes `json:"K"`
}

// TestWycheproofMLKEM checks mlkem_1024_test.json (groups MLKEMTest): the
// seed must expand to ek via KEMPublic, and decapsulating c must give K,
// including the implicit-rejection cases (flag Strcmp), which are valid and
// give the pseudorandom rejection key. Invalid cases have a seed or
// ciphertext of the wrong length, and both functions must refuse them with
// ErrKeySize.
func TestWycheproofMLKEM(t *testing.T) {
	const name = "mlkem_1024_test.json"
	f := loadWycheproof[mlkemGroup](t, wycheproofCorpus(t), name, "mlkem_test_schema.json", "ML-KEM")
	w := newTally(name, f)
	for _, g := range f.TestGroups {
		if g.Type != "MLKEMTest" || g.ParameterSet != "ML-KEM-1024" {
			t.Errorf("%s: got group type %q parameterSet %q, want MLKEMTest ML-KEM-1024", name, g.Type, g.ParameterSet)
			continue
		}
		for _, c := range g.Tests {
			if !w.start(t, c.wpCase, resultValid, resultInvalid) {
				continue
			}
			badSeed := len(c.Seed) != KEMSeedSize
			badCT := len(c.C) != KEMCiphertextSize
			switch {
			case c.Result == resultInvalid && badSeed:
				w.add("invalid, seed length, ErrKeySize")
				if ek, err := KEMPublic(c.Seed); !errors.Is(err, ErrKeySize) || ek != nil {
					t.Errorf("%s %v: KEMPublic(%d-byte seed): got (%d bytes, %v), want ErrKeySize", name, c, len(c.Seed), len(ek), err)
				}
				if k, err := KEMDecapsulate(c.Seed, c.C); !errors.Is(err, ErrKeySize) || k != nil {
					t.Errorf("%s %v: KEMDecapsulate(%d-byte seed): got (%x, %v), want ErrKeySize", name, c, len(c.Seed), k, err)
				}
			case c.Result == resultInvalid && badCT:
				w.add("invalid, ciphertext length, ErrKeySize")
				checkKEMPublic(t, name, c)
				if k, err := KEMDecapsulate(c.Seed, c.C); !errors.Is(err, ErrKeySize) || k != nil {
					t.Errorf("%s %v: KEMDecapsulate(%d-byte ciphertext): got (%x, %v), want ErrKeySize", name, c, len(c.C), k, err)
				}
			case c.Result == resultValid && !badSeed && !badCT:
				if c.hasFlag("Strcmp") {
					w.add("valid, implicit rejection")
				} else {
					w.add("valid, keygen and decapsulation")
				}
				checkKEMPublic(t, name, c)
				k, err := KEMDecapsulate(c.Seed, c.C)
				if err != nil {
					t.Errorf("%s %v: KEMDecapsulate: got error %v, want %x", name, c, err, c.K)
				} else if !bytes.Equal(k, c.K) {
					t.Errorf("%s %v: KEMDecapsulate: got %x, want %x", name, c, k, c.K)
				}
			default:
				t.Errorf("%s %v: got a %s case with a %d-byte seed and %d-byte ciphertext, which this test cannot classify",
					name, c, c.Result, len(c.Seed), len(c.C))
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// checkKEMPublic checks that a well-formed seed expands to the case's ek.
func checkKEMPublic(t *testing.T, name string, c mlkemCase) {
	t.Helper()
	if len(c.EK) == 0 {
		t.Errorf("%s %v: got no ek for a %d-byte seed, want %d bytes", name, c, len(c.Seed), KEMEncapsKeySize)
		return
	}
	ek, err := KEMPublic(c.Seed)
	if err != nil {
		t.Errorf("%s %v: KEMPublic: got error %v, want %x...", name, c, err, c.EK[:16])
	} else if !bytes.Equal(ek, c.EK) {
		t.Errorf("%s %v: KEMPublic: got %x..., want %x...", name, c, ek[:16], c.EK[:16])
	}
}

type mlkemEncapsGroup struct {
	Type         string            `json:"type"`
	Source       wpSource          `json:"source"`
	ParameterSet string            `json:"parameterSet"`
	Tests        []mlkemEncapsCase `json:"tests"`
}

// mlkemEncapsCase is a deterministic encapsulation case: the 32 bytes m of
// ML-KEM.Encaps_internal, the encapsulation key, and the expected ciphertext
// and shared key (both empty when the case is invalid).
type mlkemEncapsCase struct {
	wpCase
	M  hexBytes `json:"m"`
	EK hexBytes `json:"ek"`
	C  hexBytes `json:"c"`
	K  hexBytes `json:"K"`
}

// TestWycheproofMLKEMEncaps checks mlkem_1024_encaps_test.json (groups
// MLKEMEncapsTest): valid cases must encapsulate to (K, c); invalid ones have
// an encapsulation key of the wrong length or one that fails the modulus
// check of FIPS 203 section 7.2 (flag ModulusOverflow, or "Public key not
// reduced"), and must fail with ErrKeySize [PRIM-003].
func TestWycheproofMLKEMEncaps(t *testing.T) {
	const name = "mlkem_1024_encaps_test.json"
	f := loadWycheproof[mlkemEncapsGroup](t, wycheproofCorpus(t), name, "mlkem_encaps_test_schema.json", "ML-KEM")
	w := newTally(name, f)
	for _, g := range f.TestGroups {
		if g.Type != "MLKEMEncapsTest" || g.ParameterSet != "ML-KEM-1024" {
			t.Errorf("%s: got group type %q parameterSet %q, want MLKEMEncapsTest ML-KEM-1024", name, g.Type, g.ParameterSet)
			continue
		}
		for _, c := range g.Tests {
			if !w.start(t, c.wpCase, resultValid, resultInvalid) {
				continue
			}
			if len(c.M) != KEMEncapsRandomSize {
				t.Errorf("%s %v: got %d-byte m, want %d", name, c, len(c.M), KEMEncapsRandomSize)
				continue
			}
			k, ct, err := KEMEncapsulate(c.EK, c.M)
			if c.Result == resultInvalid {
				if len(c.EK) != KEMEncapsKeySize {
					w.add("invalid, ek length, ErrKeySize")
				} else {
					w.add("invalid, ek not reduced, ErrKeySize")
				}
				if !errors.Is(err, ErrKeySize) || k != nil || ct != nil {
					t.Errorf("%s %v: KEMEncapsulate(%d-byte ek): got (%x, %d-byte c, %v), want ErrKeySize", name, c, len(c.EK), k, len(ct), err)
				}
				continue
			}
			w.add("valid, K and c")
			if err != nil {
				t.Errorf("%s %v: KEMEncapsulate: got error %v, want K %x", name, c, err, c.K)
				continue
			}
			if !bytes.Equal(k, c.K) {
				t.Errorf("%s %v: KEMEncapsulate: got K %x, want %x", name, c, k, c.K)
			}
			if !bytes.Equal(ct, c.C) {
				t.Errorf("%s %v: KEMEncapsulate: got c %x..., want %x...", name, c, ct[:min(16, len(ct))], c.C[:min(16, len(c.C))])
			}
		}
	}
	w.finish(t, f.NumberOfTests)
}

// The tests below check the harness itself: a missing corpus must skip, or
// fail under CI; a corpus that yields no case, or has a field this file does
// not know, must fail.

// fakeTB records the first Skip or Fatal of a helper under test and stops
// its goroutine as the real ones do. Anything else goes to the real test.
type fakeTB struct {
	testing.TB
	skipped, fatal, failed bool
	msg                    string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal, f.failed, f.msg = true, true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func (f *fakeTB) Skip(args ...any)    { f.Skipf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) SkipNow()            { f.Skipf("SkipNow") }
func (f *fakeTB) Fatal(args ...any)   { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) FailNow()            { f.Fatalf("FailNow") }
func (f *fakeTB) Error(args ...any)   { f.Errorf("%s", fmt.Sprint(args...)) }
func (f *fakeTB) Fail()               { f.failed = true }
func (f *fakeTB) Log(...any)          {}
func (f *fakeTB) Logf(string, ...any) {}

// runFake runs fn with a fakeTB in its own goroutine, so that Skipf and
// Fatalf can end it, and returns what fn reported.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestWycheproofHarness(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-corpus")

	t.Run("missing corpus skips", func(t *testing.T) {
		t.Setenv("CI", "")
		f := runFake(t, func(tb testing.TB) { requireCorpus(tb, missing) })
		if !f.skipped || f.failed {
			t.Errorf("got skipped %v failed %v, want a skip", f.skipped, f.failed)
		}
		if !strings.Contains(f.msg, missing) {
			t.Errorf("skip message: got %q, want it to name %s", f.msg, missing)
		}
	})

	t.Run("missing corpus fails under CI", func(t *testing.T) {
		t.Setenv("CI", "true")
		f := runFake(t, func(tb testing.TB) { requireCorpus(tb, missing) })
		if !f.fatal || f.skipped {
			t.Errorf("got fatal %v skipped %v, want a fatal failure", f.fatal, f.skipped)
		}
		if !strings.Contains(f.msg, missing) {
			t.Errorf("failure message: got %q, want it to name %s", f.msg, missing)
		}
	})

	t.Run("corpus present", func(t *testing.T) {
		t.Setenv("CI", "true")
		dir := t.TempDir()
		f := runFake(t, func(tb testing.TB) { requireCorpus(tb, dir) })
		if f.skipped || f.failed {
			t.Errorf("got skipped %v failed %v (%s), want neither", f.skipped, f.failed, f.msg)
		}
	})

	dir := t.TempDir()
	write := func(t *testing.T, name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("empty file fails", func(t *testing.T) {
		write(t, "empty.json", `{"algorithm":"XDH","schema":"xdh_comp_schema_v1.json","numberOfTests":0,"header":[],"notes":{},"testGroups":[]}`)
		f := runFake(t, func(tb testing.TB) {
			v := loadWycheproof[x25519Group](tb, dir, "empty.json", "xdh_comp_schema_v1.json", "XDH")
			newTally("empty.json", v).finish(tb, v.NumberOfTests)
		})
		if !f.failed || f.skipped {
			t.Errorf("got failed %v skipped %v, want a failure for a file with no cases", f.failed, f.skipped)
		}
	})

	t.Run("unknown field fails", func(t *testing.T) {
		write(t, "extra.json", `{"algorithm":"XDH","schema":"xdh_comp_schema_v1.json","numberOfTests":0,"header":[],"notes":{},"testGroups":[],"surprise":1}`)
		f := runFake(t, func(tb testing.TB) {
			loadWycheproof[x25519Group](tb, dir, "extra.json", "xdh_comp_schema_v1.json", "XDH")
		})
		if !f.fatal || !strings.Contains(f.msg, "surprise") {
			t.Errorf("got fatal %v (%q), want a failure naming the unknown field", f.fatal, f.msg)
		}
	})

	t.Run("wrong schema fails", func(t *testing.T) {
		write(t, "schema.json", `{"algorithm":"XDH","schema":"xdh_comp_schema_v2.json","numberOfTests":0,"header":[],"notes":{},"testGroups":[]}`)
		f := runFake(t, func(tb testing.TB) {
			loadWycheproof[x25519Group](tb, dir, "schema.json", "xdh_comp_schema_v1.json", "XDH")
		})
		if !f.fatal {
			t.Errorf("got fatal %v, want a failure for an unexpected schema", f.fatal)
		}
	})

	t.Run("missing file fails", func(t *testing.T) {
		f := runFake(t, func(tb testing.TB) {
			loadWycheproof[x25519Group](tb, dir, "absent.json", "xdh_comp_schema_v1.json", "XDH")
		})
		if !f.fatal {
			t.Errorf("got fatal %v, want a failure for a file missing from a present corpus", f.fatal)
		}
	})
}
