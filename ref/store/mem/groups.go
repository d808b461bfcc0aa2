package mem

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/missive-protocol/missive/ref/store"
)

// PutGroupState implements store.Store.
func (s *Store) PutGroupState(ctx context.Context, groupID []byte, version uint64, signed []byte, members []string, author store.Budget) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	states, ok := s.groups[string(groupID)]
	switch {
	case !ok && version > 1:
		return fmt.Errorf("mem: group %x: %w", groupID, store.ErrNotFound)
	case version != uint64(len(states))+1:
		return fmt.Errorf("mem: group %x: version %d after %d: %w", groupID, version, len(states), store.ErrConflict)
	}
	next, wait, ok := author.Take(s.groupBudgets[author.Account])
	if author.Burst > 0 {
		s.groupBudgets[author.Account] = next // kept by a refusal too (Budget.Take)
	}
	if !ok {
		return &store.SpentError{After: wait}
	}
	s.groups[string(groupID)] = append(states, bytes.Clone(signed))
	names := s.groupNames[string(groupID)]
	if names == nil {
		names = make(map[string][2]uint64)
		s.groupNames[string(groupID)] = names
	}
	for _, m := range members {
		span, ok := names[m]
		if !ok {
			span[0] = version
		}
		span[1] = version
		names[m] = span
	}
	return nil
}

// GroupSpan implements store.Store.
func (s *Store) GroupSpan(ctx context.Context, groupID []byte, account string) (first, last, current uint64, err error) {
	if err := s.lock(ctx); err != nil {
		return 0, 0, 0, err
	}
	defer s.mu.Unlock()
	states, ok := s.groups[string(groupID)]
	if !ok {
		return 0, 0, 0, fmt.Errorf("mem: group %x: %w", groupID, store.ErrNotFound)
	}
	span := s.groupNames[string(groupID)][account]
	return span[0], span[1], uint64(len(states)), nil
}

// GroupState implements store.Store.
func (s *Store) GroupState(ctx context.Context, groupID []byte) ([]byte, uint64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	states, ok := s.groups[string(groupID)]
	if !ok {
		return nil, 0, fmt.Errorf("mem: group %x: %w", groupID, store.ErrNotFound)
	}
	return bytes.Clone(states[len(states)-1]), uint64(len(states)), nil
}

// GroupStates implements store.Store.
func (s *Store) GroupStates(ctx context.Context, groupID []byte, from uint64, limit int) ([][]byte, uint64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	states, ok := s.groups[string(groupID)]
	if !ok {
		return nil, 0, fmt.Errorf("mem: group %x: %w", groupID, store.ErrNotFound)
	}
	var out [][]byte
	for v := max(from, 1); v <= uint64(len(states)) && len(out) < limit; v++ {
		out = append(out, bytes.Clone(states[v-1]))
	}
	return out, uint64(len(states)), nil
}

// blob is a blob with the bytes it holds.
type blob struct {
	rec  store.Blob
	data []byte
}

// CreateBlob implements store.Store.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, quota int64) (*store.Blob, bool, error) {
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	s.expireBlobs(b.Created)
	var used uint64
	for _, o := range s.blobs {
		if o.rec.Account != b.Account {
			continue
		}
		if o.rec.Size == b.Size && bytes.Equal(o.rec.Digest, b.Digest) {
			return copyBlob(&o.rec), true, nil
		}
		used += o.rec.Charge()
	}
	if quota > 0 && used+b.Charge() > uint64(quota) {
		return nil, false, fmt.Errorf("mem: create blob for %q: %w", b.Account, store.ErrQuota)
	}
	if _, ok := s.blobs[b.ID]; ok {
		return nil, false, fmt.Errorf("mem: create blob %q: %w", b.ID, store.ErrExists)
	}
	b.Received = 0
	n := &blob{rec: *copyBlob(&b)}
	s.blobs[b.ID] = n
	return copyBlob(&n.rec), false, nil
}

// Blob implements store.Store.
func (s *Store) Blob(ctx context.Context, id string) (*store.Blob, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	b, ok := s.blobs[id]
	if !ok {
		return nil, fmt.Errorf("mem: blob %q: %w", id, store.ErrNotFound)
	}
	return copyBlob(&b.rec), nil
}

// AppendBlob implements store.Store.
func (s *Store) AppendBlob(ctx context.Context, id string, a store.BlobAppend) (*store.Blob, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	b, ok := s.blobs[id]
	if !ok || b.rec.Complete() || !b.rec.ExpiresAt.After(a.Now) {
		return nil, fmt.Errorf("mem: append to blob %q: %w", id, store.ErrNotFound)
	}
	if a.Offset != b.rec.Received || uint64(len(a.Data)) > b.rec.Size-b.rec.Received {
		return nil, fmt.Errorf("mem: append to blob %q at %d: %w", id, a.Offset, store.ErrConflict)
	}
	b.data = append(b.data, a.Data...)
	b.rec.Received += uint64(len(a.Data))
	b.rec.HashState = bytes.Clone(a.HashState)
	if b.rec.Complete() {
		b.rec.ExpiresAt = a.Expires
	}
	return copyBlob(&b.rec), nil
}

// ReadBlob implements store.Store.
func (s *Store) ReadBlob(ctx context.Context, id string, offset uint64, n int) (*store.Blob, []byte, error) {
	if err := s.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer s.mu.Unlock()
	b, ok := s.blobs[id]
	if !ok {
		return nil, nil, fmt.Errorf("mem: blob %q: %w", id, store.ErrNotFound)
	}
	var data []byte
	if offset < uint64(len(b.data)) && n > 0 {
		end := min(uint64(len(b.data)), offset+uint64(n))
		data = bytes.Clone(b.data[offset:end])
	}
	return copyBlob(&b.rec), data, nil
}

// DeleteBlob implements store.Store.
func (s *Store) DeleteBlob(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.blobs, id)
	return nil
}

// ExpireBlobs implements store.Store.
func (s *Store) ExpireBlobs(ctx context.Context, now time.Time) (int, int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	n, size := s.expireBlobs(now)
	return n, size, nil
}

// expireBlobs deletes the blobs that expire at or before now.
func (s *Store) expireBlobs(now time.Time) (int, int64) {
	n, size := 0, int64(0)
	for id, b := range s.blobs {
		if !b.rec.ExpiresAt.After(now) {
			n++
			size += int64(b.rec.Received)
			delete(s.blobs, id)
		}
	}
	return n, size
}

func copyBlob(b *store.Blob) *store.Blob {
	c := *b
	c.Digest = bytes.Clone(b.Digest)
	c.HashState = bytes.Clone(b.HashState)
	return &c
}
