package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/missive-protocol/missive/ref/store"
)

// Blob records: the account, size, digest, bytes received, creation and
// expiry times, and the hash state.

func encodeBlob(b *store.Blob) []byte {
	v := appendBytes(nil, []byte(b.Account))
	v = binary.BigEndian.AppendUint64(v, b.Size)
	v = appendBytes(v, b.Digest)
	v = binary.BigEndian.AppendUint64(v, b.Received)
	v = appendTime(v, b.Created)
	v = appendTime(v, b.ExpiresAt)
	return appendBytes(v, b.HashState)
}

func decodeBlob(id string, v []byte) (*store.Blob, error) {
	r := reader{b: v}
	b := &store.Blob{ID: id, Account: r.str(), Size: r.u64(), Digest: r.bytes(), Received: r.u64()}
	b.Created = r.time()
	b.ExpiresAt = r.time()
	b.HashState = r.bytes()
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", id, err)
	}
	return b, nil
}

// readBlob returns a blob's record, or ErrNotFound.
func readBlob(tx *bbolt.Tx, id string) (*store.Blob, error) {
	v := tx.Bucket(bucketBlobs).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("blob %q: %w", id, store.ErrNotFound)
	}
	return decodeBlob(id, v)
}

// blobKey is the blobkeys key of an account's blob of a size and digest.
func blobKey(account string, size uint64, digest []byte) []byte {
	return append(binary.BigEndian.AppendUint64(appendBytes(nil, []byte(account)), size), digest...)
}

// chunkPrefix is the prefix of a blob's chunk keys.
func chunkPrefix(id string) []byte { return appendBytes(nil, []byte(id)) }

// usage returns the sum of the charges (store.Blob.Charge) of an account's
// blobs.
func usage(tx *bbolt.Tx, account string) (uint64, error) {
	return getUint64(tx.Bucket(bucketBlobUse), []byte(account), 0)
}

func setUsage(tx *bbolt.Tx, account string, n uint64) error {
	if n == 0 {
		return tx.Bucket(bucketBlobUse).Delete([]byte(account))
	}
	return tx.Bucket(bucketBlobUse).Put([]byte(account), binary.BigEndian.AppendUint64(nil, n))
}

// deleteBlob deletes a blob's record, chunks and index keys, and gives its
// charge back to its account.
func deleteBlob(tx *bbolt.Tx, b *store.Blob) error {
	if err := deletePrefix(tx.Bucket(bucketChunks), chunkPrefix(b.ID)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketBlobExp).Delete(key(appendTime(nil, b.ExpiresAt), []byte(b.ID))); err != nil {
		return err
	}
	if err := tx.Bucket(bucketBlobKeys).Delete(blobKey(b.Account, b.Size, b.Digest)); err != nil {
		return err
	}
	used, err := usage(tx, b.Account)
	if err != nil {
		return err
	}
	if used < b.Charge() {
		return fmt.Errorf("blob usage of %q below a blob's charge: %w", b.Account, errCorrupt)
	}
	if err := setUsage(tx, b.Account, used-b.Charge()); err != nil {
		return err
	}
	return tx.Bucket(bucketBlobs).Delete([]byte(b.ID))
}

// expireBlobs deletes the blobs that expire at or before now.
func expireBlobs(tx *bbolt.Tx, now time.Time) (int, int64, error) {
	nowEnc := appendTime(nil, now)
	var ids []string
	c := tx.Bucket(bucketBlobExp).Cursor()
	for k, _ := c.First(); k != nil && keyDue(k, nowEnc); k, _ = c.Next() {
		if len(k) <= timeSize {
			return 0, 0, errCorrupt
		}
		ids = append(ids, string(k[timeSize:]))
	}
	var size int64
	for _, id := range ids {
		b, err := readBlob(tx, id)
		if err != nil {
			return 0, 0, fmt.Errorf("blob expiry index: %w", err)
		}
		if err := deleteBlob(tx, b); err != nil {
			return 0, 0, err
		}
		size += int64(b.Received)
	}
	return len(ids), size, nil
}

// CreateBlob implements store.Store. A refusal commits the deletion of
// expired blobs all the same.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, quota int64) (*store.Blob, bool, error) {
	var (
		out      *store.Blob
		existing bool
		refusal  error
	)
	b.Received = 0
	err := s.update(ctx, "create blob", func(tx *bbolt.Tx) error {
		out, existing, refusal = nil, false, nil
		if _, _, err := expireBlobs(tx, b.Created); err != nil {
			return err
		}
		keys := tx.Bucket(bucketBlobKeys)
		bk := blobKey(b.Account, b.Size, b.Digest)
		if id := keys.Get(bk); id != nil {
			o, err := readBlob(tx, string(id))
			if err != nil {
				return fmt.Errorf("blob key index: %w", err)
			}
			out, existing = o, true
			return nil
		}
		used, err := usage(tx, b.Account)
		if err != nil {
			return err
		}
		if quota > 0 && used+b.Charge() > uint64(quota) {
			refusal = fmt.Errorf("bolt: create blob for %q: %w", b.Account, store.ErrQuota)
			return nil
		}
		blobs := tx.Bucket(bucketBlobs)
		if blobs.Get([]byte(b.ID)) != nil {
			refusal = fmt.Errorf("bolt: create blob %q: %w", b.ID, store.ErrExists)
			return nil
		}
		if err := blobs.Put([]byte(b.ID), encodeBlob(&b)); err != nil {
			return err
		}
		if err := keys.Put(bk, []byte(b.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketBlobExp).Put(key(appendTime(nil, b.ExpiresAt), []byte(b.ID)), marker); err != nil {
			return err
		}
		if err := setUsage(tx, b.Account, used+b.Charge()); err != nil {
			return err
		}
		out, err = decodeBlob(b.ID, encodeBlob(&b))
		return err
	})
	switch {
	case err != nil:
		return nil, false, err
	case refusal != nil:
		return nil, false, refusal
	}
	return out, existing, nil
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, id string) (*store.Blob, error) {
	var b *store.Blob
	err := s.view(ctx, "blob", func(tx *bbolt.Tx) error {
		var err error
		b, err = readBlob(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendBlob implements store.Store: the chunk goes in under its offset,
// and the record is rewritten, in one transaction of its own.
func (s *Store) AppendBlob(ctx context.Context, id string, a store.BlobAppend) (*store.Blob, error) {
	var out *store.Blob
	nowEnc := appendTime(nil, a.Now)
	err := s.update(ctx, "append blob", func(tx *bbolt.Tx) error {
		out = nil
		b, err := readBlob(tx, id)
		if err != nil {
			return err
		}
		if b.Complete() || bytes.Compare(appendTime(nil, b.ExpiresAt), nowEnc) <= 0 {
			return fmt.Errorf("blob %q: complete or expired: %w", id, store.ErrNotFound)
		}
		if a.Offset != b.Received || uint64(len(a.Data)) > b.Size-b.Received {
			return fmt.Errorf("blob %q: %d bytes at %d: %w", id, len(a.Data), a.Offset, store.ErrConflict)
		}
		if len(a.Data) > 0 {
			ck := binary.BigEndian.AppendUint64(chunkPrefix(id), a.Offset)
			if err := tx.Bucket(bucketChunks).Put(ck, a.Data); err != nil {
				return err
			}
		}
		b.Received += uint64(len(a.Data))
		b.HashState = a.HashState
		if b.Complete() {
			exp := tx.Bucket(bucketBlobExp)
			if err := exp.Delete(key(appendTime(nil, b.ExpiresAt), []byte(id))); err != nil {
				return err
			}
			b.ExpiresAt = a.Expires
			if err := exp.Put(key(appendTime(nil, b.ExpiresAt), []byte(id)), marker); err != nil {
				return err
			}
		}
		enc := encodeBlob(b)
		if err := tx.Bucket(bucketBlobs).Put([]byte(id), enc); err != nil {
			return err
		}
		out, err = decodeBlob(id, enc)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadBlob implements store.Store. It finds the chunk that holds offset
// (the last one whose offset is not above it) and reads on from there.
func (s *Store) ReadBlob(ctx context.Context, id string, offset uint64, n int) (*store.Blob, []byte, error) {
	var (
		b    *store.Blob
		data []byte
	)
	err := s.view(ctx, "read blob", func(tx *bbolt.Tx) error {
		data = nil
		var err error
		if b, err = readBlob(tx, id); err != nil {
			return err
		}
		if offset >= b.Received || n <= 0 {
			return nil
		}
		want := min(uint64(n), b.Received-offset)
		data = make([]byte, 0, want)
		prefix := chunkPrefix(id)
		c := tx.Bucket(bucketChunks).Cursor()
		k, v := c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), offset))
		if k != nil && bytes.HasPrefix(k, prefix) && len(k) != len(prefix)+8 {
			return fmt.Errorf("blob %q: a chunk key of %d bytes: %w", id, len(k), errCorrupt)
		}
		if k == nil || !bytes.HasPrefix(k, prefix) || binary.BigEndian.Uint64(k[len(prefix):]) > offset {
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && uint64(len(data)) < want; k, v = c.Next() {
			if len(k) != len(prefix)+8 {
				return errCorrupt
			}
			start := binary.BigEndian.Uint64(k[len(prefix):])
			end := start + uint64(len(v))
			if end <= offset {
				continue
			}
			if start > offset+uint64(len(data)) {
				return fmt.Errorf("blob %q: no chunk at %d: %w", id, offset+uint64(len(data)), errCorrupt)
			}
			from := offset + uint64(len(data)) - start
			take := min(end-start-from, want-uint64(len(data)))
			data = append(data, v[from:from+take]...)
		}
		if uint64(len(data)) != want {
			return fmt.Errorf("blob %q: chunks hold %d bytes from %d, want %d: %w", id, len(data), offset, want, errCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return b, data, nil
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, id string) error {
	return s.update(ctx, "delete blob", func(tx *bbolt.Tx) error {
		b, err := readBlob(tx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
		return deleteBlob(tx, b)
	})
}

// ExpireBlobs implements store.Store.
func (s *Store) ExpireBlobs(ctx context.Context, now time.Time) (int, int64, error) {
	var (
		n    int
		size int64
	)
	err := s.update(ctx, "expire blobs", func(tx *bbolt.Tx) error {
		var err error
		n, size, err = expireBlobs(tx, now)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return n, size, nil
}
