package gen

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// This file writes media.json (section 9.2): attachments encrypted with a
// media key (MED-001), and blobs that a receiver checks and opens (MED-002).

// mediaCase is one case of media.json.
type mediaCase struct {
	caseHead
	MediaKey      hexBytes     `json:"media_key"`
	Key           hexBytes     `json:"key"`
	PlaintextSize int          `json:"plaintext_size"`
	Chunks        []mediaPiece `json:"chunks"`
	Truncate      *int         `json:"truncate,omitempty"`
	Flip          *int         `json:"flip,omitempty"`
	Blob          *hexBytes    `json:"blob,omitempty"`
	BlobSize      int          `json:"blob_size"`
	BlobSHA256    hexBytes     `json:"blob_sha256"`
	Size          int          `json:"size"`
	Digest        hexBytes     `json:"digest"`
	Expect        string       `json:"expect"`
	Error         string       `json:"error,omitempty"`
}

// mediaBlobHexLimit is the largest blob that a case gives in full.
const mediaBlobHexLimit = 1024

var mediaNotes = notes{
	{"chunk_boundary", "the plaintext's size is at or next to a multiple of MEDIA_CHUNK (65536)"},
	{"multi_chunk", "the blob has more than one chunk"},
	{"content", "the size or the digest of the media content is not the blob's (checked before decryption)"},
	{"altered", "the blob is not the encryption of section 17.2 of the plaintext: the chunks are sealed otherwise, or " +
		"the blob is cut or changed after sealing, and the media content's size and digest are those of the blob the " +
		"receiver gets, so only decryption can find the fault"},
	{"check_order", "several checks of MED-002 fail; the error is that of the first"},
}

const mediaDescription = "Attachments encrypted with a media key (section 17.2, MED-001) and blobs that a receiver checks " +
	"(MED-002). The plaintext of every case is plaintext_size bytes, byte j of which is j mod 251. media_key is the 32 " +
	"bytes drawn (section 2.2); key is HKDF(salt = zeros(32), ikm = media_key, info = LABEL_MEDIA_KEYS, n = 32). The " +
	"blob is the concatenation, in order, of AEAD-Seal(key, nonce, plaintext[offset : offset + length], \"\") for each " +
	"entry of chunks, where nonce is the 11-byte big-endian encoding of index followed by 0x01 when last is true, else " +
	"0x00; then, when truncate is present, only its first truncate bytes are kept; then, when flip is present, the low " +
	"bit of byte flip is flipped. blob_size and blob_sha256 are the resulting blob's length and SHA-256, and blob is " +
	"the blob itself when it is at most 1024 bytes. In a valid case, chunks is exactly the cutting of section 17.2 " +
	"(pieces of MEDIA_CHUNK bytes, the last one shorter or equal and not empty, or one empty piece for an empty " +
	"plaintext, with index i and last true for the last piece only), neither truncate nor flip is present, and size " +
	"and digest equal blob_size and blob_sha256: a sender that draws media_key produces this blob, and the media " +
	"content that names it carries size and digest (fields 5 and 4). A receiver holding media content with media_key, " +
	"size and digest checks the blob it downloaded as MED-002 says: its size is size, and its SHA-256 is digest, else " +
	"auth.digest_mismatch; it cuts into chunks of MEDIA_CHUNK + 16 bytes, the last one the rest, its size is at least " +
	"16 and its last chunk more than 16 bytes unless the blob is exactly 16 bytes, else auth.decrypt_failed; every " +
	"chunk opens with the nonce of its place (the last chunk with the flag 0x01), else auth.decrypt_failed. A valid " +
	"case opens to the plaintext; an invalid case fails with error."

func genMedia() (any, error) {
	type spec struct {
		id, comment string
		flags       []string
		n           int                                    // plaintext size
		chunks      func(n int) []mediaPiece               // nil: section 17.2
		truncate    func(blob []byte) int                  // nil: none
		flip        int                                    // -1: none
		claim       func(whole, blob []byte) (int, []byte) // nil: the blob's
		err         *codeError
	}
	canonical := mediaPieces
	blobClaim := func(b []byte) (int, []byte) { d := sha256.Sum256(b); return len(b), d[:] }
	// wholeClaim is the size and digest of the blob before it was cut or
	// changed.
	wholeClaim := func(whole, _ []byte) (int, []byte) { return blobClaim(whole) }
	const full = mediaChunk + mediaTag
	specs := []spec{
		{"media_empty", "An empty attachment: one empty piece, a blob of 16 bytes (a tag alone).", nil, 0, nil, nil, -1,
			nil, nil},
		{"media_one_byte", "A plaintext of 1 byte.", nil, 1, nil, nil, -1, nil, nil},
		{"media_small", "A plaintext of 1000 bytes, one chunk.", nil, 1000, nil, nil, -1, nil, nil},
		{"media_one_below_chunk", "A plaintext of 65535 bytes: one chunk of MEDIA_CHUNK - 1 bytes.",
			[]string{"chunk_boundary"}, 65535, nil, nil, -1, nil, nil},
		{"media_one_full_chunk", "A plaintext of 65536 bytes: one full chunk, which is the last.",
			[]string{"chunk_boundary"}, 65536, nil, nil, -1, nil, nil},
		{"media_one_above_chunk", "A plaintext of 65537 bytes: a full chunk, then a last chunk of 1 byte.",
			[]string{"chunk_boundary", "multi_chunk"}, 65537, nil, nil, -1, nil, nil},
		{"media_two_full_chunks", "A plaintext of 131072 bytes: two full chunks, the second last.",
			[]string{"chunk_boundary", "multi_chunk"}, 131072, nil, nil, -1, nil, nil},
		{"media_large", "A plaintext of 200000 bytes: three full chunks and a last one of 3392 bytes.",
			[]string{"multi_chunk"}, 200000, nil, nil, -1, nil, nil},
		// The media content does not match the blob.
		{"media_size_larger", "The media content's size is one more than the blob's.", []string{"content"}, 1000, nil,
			nil, -1, func(_, b []byte) (int, []byte) { n, d := blobClaim(b); return n + 1, d }, errDigestMismatch},
		{"media_size_smaller", "The media content's size is one less than the blob's (a blob with one byte too " +
			"many).", []string{"content", "multi_chunk"}, 65537, nil, nil, -1,
			func(_, b []byte) (int, []byte) { n, d := blobClaim(b); return n - 1, d }, errDigestMismatch},
		{"media_digest_mismatch", "The media content's digest is the blob's SHA-256 with its last bit flipped.",
			[]string{"content"}, 1000, nil, nil, -1, func(_, b []byte) (int, []byte) {
				n, d := blobClaim(b)
				d[31] ^= 0x01
				return n, d
			}, errDigestMismatch},
		{"media_blob_changed", "A bit of the blob's second chunk changed after the media content was made: the size " +
			"matches, the digest does not.", []string{"content", "multi_chunk"}, 200000, nil, nil, full + 100,
			wholeClaim, errDigestMismatch},
		{"media_size_and_truncated", "The blob cut at a chunk boundary, and the media content's size and digest " +
			"those of the whole blob: the size is checked first.", []string{"content", "altered", "multi_chunk",
			"check_order"}, 131073, nil, func(b []byte) int { return 2 * full }, -1, wholeClaim, errDigestMismatch},
		// The blob is not the encryption of section 17.2; the media content
		// matches it.
		{"media_truncated_at_chunk_boundary", "A plaintext of 131073 bytes (three chunks) with its last chunk " +
			"dropped: the blob of two full chunks cuts as a valid blob would, and its second chunk, sealed as not the " +
			"last, fails to open as the last.", []string{"altered", "multi_chunk", "chunk_boundary"}, 131073, nil,
			func(b []byte) int { return 2 * full }, -1, nil, errDecryptFailed},
		{"media_truncated_mid_chunk", "The blob of a 65537-byte plaintext without its last byte: its last chunk is " +
			"16 bytes, a tag alone, which only the blob of an empty plaintext may end with.",
			[]string{"altered", "multi_chunk"}, 65537, nil, func(b []byte) int { return len(b) - 1 }, -1, nil,
			errDecryptFailed},
		{"media_last_chunk_shorter_than_tag", "The blob of a 65537-byte plaintext cut 10 bytes into its last chunk.",
			[]string{"altered", "multi_chunk"}, 65537, nil, func(b []byte) int { return full + 10 }, -1, nil,
			errDecryptFailed},
		{"media_truncated_in_first_chunk", "The blob of a 1000-byte plaintext without its last byte: its only chunk " +
			"fails to open.", []string{"altered"}, 1000, nil, func(b []byte) int { return len(b) - 1 }, -1, nil,
			errDecryptFailed},
		{"media_blob_15_bytes", "The 16-byte blob of an empty plaintext without its last byte: fewer than 16 bytes.",
			[]string{"altered"}, 0, nil, func(b []byte) int { return 15 }, -1, nil, errDecryptFailed},
		{"media_blob_empty", "An empty blob (the blob of an empty plaintext cut to 0 bytes), with size 0 and the " +
			"SHA-256 of the empty string.", []string{"altered"}, 0, nil, func(b []byte) int { return 0 }, -1, nil,
			errDecryptFailed},
		{"media_tampered_chunk", "A bit of the second chunk changed after sealing, the media content's digest that " +
			"of the changed blob: that chunk fails to open.", []string{"altered", "multi_chunk"}, 200000, nil, nil,
			full + 100, nil, errDecryptFailed},
		{"media_swapped_chunks", "A plaintext of 200000 bytes whose first two chunks are in each other's place (the " +
			"chunk of index 1 first): the first chunk fails to open with the nonce of index 0.",
			[]string{"altered", "multi_chunk"}, 200000, func(n int) []mediaPiece {
				p := canonical(n)
				p[0], p[1] = p[1], p[0]
				return p
			}, nil, -1, nil, errDecryptFailed},
		{"media_last_flag_missing", "A plaintext of 65537 bytes whose last chunk is sealed with the flag 0x00.",
			[]string{"altered", "multi_chunk", "chunk_boundary"}, 65537, func(n int) []mediaPiece {
				p := canonical(n)
				p[len(p)-1].Last = false
				return p
			}, nil, -1, nil, errDecryptFailed},
		{"media_last_flag_early", "A plaintext of 65537 bytes whose first chunk is sealed with the flag 0x01 as " +
			"well.", []string{"altered", "multi_chunk", "chunk_boundary"}, 65537, func(n int) []mediaPiece {
			p := canonical(n)
			p[0].Last = true
			return p
		}, nil, -1, nil, errDecryptFailed},
		{"media_single_chunk_not_last", "A plaintext of 1000 bytes in one chunk sealed with the flag 0x00.",
			[]string{"altered"}, 1000, func(n int) []mediaPiece {
				p := canonical(n)
				p[0].Last = false
				return p
			}, nil, -1, nil, errDecryptFailed},
		{"media_final_empty_chunk", "A plaintext of 65536 bytes sealed as a full chunk (flag 0x00) followed by an " +
			"empty last chunk (flag 0x01): the blob ends with a chunk of 16 bytes and is not 16 bytes long.",
			[]string{"altered", "multi_chunk", "chunk_boundary"}, 65536, func(n int) []mediaPiece {
				return []mediaPiece{{0, n, 0, false}, {n, 0, 1, true}}
			}, nil, -1, nil, errDecryptFailed},
		{"media_final_empty_chunk_after_two", "A plaintext of 131072 bytes sealed as two full chunks and an empty last " +
			"chunk.", []string{"altered", "multi_chunk", "chunk_boundary"}, 131072, func(n int) []mediaPiece {
			return []mediaPiece{{0, mediaChunk, 0, false}, {mediaChunk, mediaChunk, 1, false}, {n, 0, 2, true}}
		}, nil, -1, nil, errDecryptFailed},
		{"media_short_chunks", "A plaintext of 2000 bytes sealed as two chunks of 1000 bytes (index 0, then index 1 " +
			"with the flag 0x01): the receiver cuts the blob as one chunk.", []string{"altered", "multi_chunk"}, 2000,
			func(n int) []mediaPiece { return []mediaPiece{{0, 1000, 0, false}, {1000, 1000, 1, true}} }, nil, -1, nil,
			errDecryptFailed},
	}
	var cases []mediaCase
	for _, s := range specs {
		v := newVB("Missive v1 test vectors: media: " + s.id)
		K := v.read(32)
		key, err := mediaKeyOf(K)
		if err != nil {
			return nil, err
		}
		chunks := canonical(s.n)
		if s.chunks != nil {
			chunks = s.chunks(s.n)
		}
		pt := mediaPlaintext(s.n)
		blob, err := sealMedia(key, pt, chunks)
		if err != nil {
			return nil, err
		}
		c := mediaCase{caseHead: caseHead{ID: s.id, Comment: s.comment, Flags: s.flags,
			Requirements: []string{"MED-001", "MED-002"}}, MediaKey: K, Key: key, PlaintextSize: s.n, Chunks: chunks,
			Expect: "valid"}
		if c.Flags == nil {
			c.Flags = []string{}
		}
		whole := blob
		if s.truncate != nil {
			t := s.truncate(blob)
			c.Truncate = &t
			blob = blob[:t]
		}
		if s.flip >= 0 {
			f := s.flip
			c.Flip = &f
			blob = cloneBytes(blob)
			blob[f] ^= 0x01
		}
		if s.claim != nil {
			c.Size, c.Digest = s.claim(whole, blob)
		} else {
			c.Size, c.Digest = blobClaim(blob)
		}
		d := sha256.Sum256(blob)
		c.BlobSize, c.BlobSHA256 = len(blob), d[:]
		if len(blob) <= mediaBlobHexLimit {
			h := hexBytes(cloneBytes(blob))
			if h == nil {
				h = hexBytes{}
			}
			c.Blob = &h
		}
		if s.err != nil {
			c.Expect, c.Error = "invalid", s.err.name
			c.Requirements = withErr001([]string{"MED-002"})
			if s.err == errDecryptFailed {
				c.Requirements = append(c.Requirements, "PRIM-004")
			}
		}
		if err := checkMediaCase(&c, blob); err != nil {
			return nil, fmt.Errorf("%s: %v", s.id, err)
		}
		cases = append(cases, c)
	}
	heads := make([]caseHead, len(cases))
	for i, c := range cases {
		heads[i] = c.caseHead
	}
	if err := checkHeads("media", mediaNotes, heads); err != nil {
		return nil, err
	}
	return newFile("media", mediaDescription, mediaNotes, cases), nil
}

// checkMediaCase checks a case from its fields: the blob is rebuilt, the
// receiver's checks give the outcome, and a valid case is the encryption of
// section 17.2.
func checkMediaCase(c *mediaCase, blob []byte) error {
	key, err := mediaKeyOf(c.MediaKey)
	if err != nil {
		return err
	}
	if !bytes.Equal(key, c.Key) {
		return fmt.Errorf("key is not derived from media_key")
	}
	pt := mediaPlaintext(c.PlaintextSize)
	for _, p := range c.Chunks {
		if p.Offset < 0 || p.Length < 0 || p.Offset+p.Length > len(pt) {
			return fmt.Errorf("a chunk outside the plaintext")
		}
	}
	b, err := sealMedia(key, pt, c.Chunks)
	if err != nil {
		return err
	}
	if c.Truncate != nil {
		if *c.Truncate > len(b) {
			return fmt.Errorf("truncate beyond the blob")
		}
		b = b[:*c.Truncate]
	}
	if c.Flip != nil {
		b = cloneBytes(b)
		b[*c.Flip] ^= 0x01
	}
	d := sha256.Sum256(b)
	if !bytes.Equal(b, blob) || len(b) != c.BlobSize || !bytes.Equal(d[:], c.BlobSHA256) {
		return fmt.Errorf("the fields do not rebuild the blob")
	}
	if (c.Blob != nil) != (len(b) <= mediaBlobHexLimit) || (c.Blob != nil && !bytes.Equal(*c.Blob, b)) {
		return fmt.Errorf("blob is not given exactly for blobs of at most %d bytes", mediaBlobHexLimit)
	}
	got, err := openMedia(c.MediaKey, b, uint64(c.Size), c.Digest)
	name, nerr := errName(err)
	if nerr != nil {
		return nerr
	}
	if name != c.Error {
		return fmt.Errorf("MED-002: got %q, want %q", name, c.Error)
	}
	if err == nil && !bytes.Equal(got, pt) {
		return fmt.Errorf("the blob opens to another plaintext")
	}
	canonical := len(c.Chunks) == len(mediaPieces(c.PlaintextSize))
	for i, p := range mediaPieces(c.PlaintextSize) {
		canonical = canonical && c.Chunks[i] == p
	}
	if c.Expect == "valid" && (!canonical || c.Truncate != nil || c.Flip != nil || c.Size != c.BlobSize ||
		!bytes.Equal(c.Digest, c.BlobSHA256)) {
		return fmt.Errorf("a valid case that is not the encryption of section 17.2")
	}
	has := func(f string) bool {
		for _, x := range c.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	altered := !canonical || c.Truncate != nil || (c.Flip != nil && c.Size == c.BlobSize && bytes.Equal(c.Digest, c.BlobSHA256))
	if has("altered") != altered {
		return fmt.Errorf("the altered flag does not match the case")
	}
	if has("content") != (c.Size != c.BlobSize || !bytes.Equal(c.Digest, c.BlobSHA256)) {
		return fmt.Errorf("the content flag does not match the case")
	}
	if has("multi_chunk") != (len(c.Chunks) > 1) {
		return fmt.Errorf("the multi_chunk flag does not match the chunks")
	}
	return nil
}
