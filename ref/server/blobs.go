package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/missive-protocol/missive/ref/errcode"
	"github.com/missive-protocol/missive/ref/store"
	"github.com/missive-protocol/missive/ref/wire"
)

// Constants of spec section 17.1.
const (
	MaxBlobSize   = wire.MaxBlobSize
	BlobChunk     = wire.MaxBlobChunk
	BlobQuota     = wire.BlobQuota
	BlobTTL       = wire.BlobTTL * time.Second
	BlobUploadTTL = wire.BlobUploadTTL * time.Second
	blobIDBytes   = 16 // random bytes of a blob id (MED-003)
)

// newBlobID draws a blob id: 16 bytes of the server's randomness, in
// base64url without padding (22 characters).
func (s *Server) newBlobID() (string, error) {
	var b [blobIDBytes]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("server: blob id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashState returns the state of h, to be stored with a blob's bytes.
func hashState(h interface{ Write([]byte) (int, error) }) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, errors.New("server: SHA-256 state cannot be saved")
	}
	return m.MarshalBinary()
}

// createBlob is create-blob (MED-003).
func (c *conn) createBlob(ctx context.Context, b *wire.BlobCreate) (wire.Message, error) {
	state, err := hashState(sha256.New())
	if err != nil {
		return nil, err
	}
	now := c.s.now()
	for range 3 { // a new id is taken only by a broken random source
		id, err := c.s.newBlobID()
		if err != nil {
			return nil, err
		}
		blob := store.Blob{ID: id, Account: c.addr.Account, Size: b.Size, Digest: b.Digest, HashState: state,
			Created: now, ExpiresAt: now.Add(BlobUploadTTL)}
		got, existing, err := c.s.cfg.Store.CreateBlob(ctx, blob, BlobQuota)
		switch {
		case errors.Is(err, store.ErrExists):
			continue
		case errors.Is(err, store.ErrQuota):
			return nil, errcode.PolicyQuotaExceeded
		case err != nil:
			return nil, err
		}
		if !existing {
			c.s.log.Info("blob created", "account", c.addr.Account, "blob", got.ID, "size", got.Size)
		}
		return &wire.BlobCreated{BlobID: got.ID, Received: got.Received}, nil
	}
	return nil, errors.New("server: blob ids keep colliding")
}

// putBlob is put-blob (MED-004). The chunk is hashed on from the stored
// hash state, so that completion does not read the blob again.
func (c *conn) putBlob(ctx context.Context, p *wire.BlobPut) (wire.Message, error) {
	st := c.s.cfg.Store
	now := c.s.now()
	b, err := st.Blob(ctx, p.BlobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownBlob
	}
	if err != nil {
		return nil, err
	}
	if b.Account != c.addr.Account || b.Complete() || !b.ExpiresAt.After(now) {
		return nil, errcode.StateUnknownBlob
	}
	if p.Offset != b.Received || uint64(len(p.Data)) > b.Size-b.Received {
		return nil, fmt.Errorf("server: blob %s holds %d of %d bytes, got %d at %d: %w",
			b.ID, b.Received, b.Size, len(p.Data), p.Offset, errcode.StateBlobOffset)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(b.HashState); err != nil {
		return nil, fmt.Errorf("server: blob %s: hash state: %w", b.ID, err)
	}
	h.Write(p.Data)
	state, err := hashState(h)
	if err != nil {
		return nil, err
	}
	if p.Offset+uint64(len(p.Data)) == b.Size && !bytes.Equal(h.Sum(nil), b.Digest) {
		if err := st.DeleteBlob(ctx, b.ID); err != nil {
			return nil, err
		}
		c.s.log.Info("blob refused", "account", c.addr.Account, "blob", b.ID, "reason", "digest")
		return nil, errcode.AuthDigestMismatch
	}
	got, err := st.AppendBlob(ctx, b.ID, store.BlobAppend{Offset: p.Offset, Data: p.Data, HashState: state,
		Now: now, Expires: now.Add(BlobTTL)})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errcode.StateUnknownBlob
	case errors.Is(err, store.ErrConflict):
		return nil, errcode.StateBlobOffset // another connection put the same bytes first
	case err != nil:
		return nil, err
	}
	c.s.metrics.blobBytesIn.Add(uint64(len(p.Data)))
	if got.Complete() {
		c.s.metrics.blobsCompleted.Add(1)
		c.s.log.Info("blob complete", "account", c.addr.Account, "blob", got.ID, "size", got.Size)
	}
	return &wire.BlobProgress{Received: got.Received}, nil
}

// getBlob is get-blob (MED-005): any device may read a complete,
// unexpired blob whose id it knows.
func (c *conn) getBlob(ctx context.Context, g *wire.BlobGet) (wire.Message, error) {
	b, data, err := c.s.cfg.Store.ReadBlob(ctx, g.BlobID, g.Offset, int(g.Length))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errcode.StateUnknownBlob
	}
	if err != nil {
		return nil, err
	}
	if !b.Complete() || !b.ExpiresAt.After(c.s.now()) {
		return nil, errcode.StateUnknownBlob
	}
	if g.Offset >= b.Size {
		return nil, errcode.StateBlobOffset
	}
	c.s.metrics.blobBytesOut.Add(uint64(len(data)))
	return &wire.BlobChunk{Size: b.Size, Data: data}, nil
}
