package server

import (
	"context"
	"sync"

	"github.com/missive-protocol/missive/ref/store"
)

// recipient is what the send path needs of an account (section 13.4,
// checks 5 and 6; section 16.4): the account with its devices, its current
// signed device list and version, and its reachable devices.
type recipient struct {
	acct      *store.Account
	list      []byte
	version   uint64
	reachable []uint32 // in increasing order
}

// maxCached is the most accounts the recipient cache holds; past it, it
// starts afresh.
const maxCached = 1 << 16

// recipients caches recipient records, so that a send reads the store only
// to queue its entries: an account's record changes only through the
// requests that change its devices (set-device-list, a link, a prekey
// upload), which drop it from the cache after their store write. Records
// are shared and never modified.
type recipients struct {
	mu    sync.Mutex
	m     map[string]*recipient
	epoch uint64 // counts the drops: a record read across one is not kept
}

// drop forgets the record of account; the caller has changed it in the
// store.
func (r *recipients) drop(account string) {
	r.mu.Lock()
	delete(r.m, account)
	r.epoch++
	r.mu.Unlock()
}

// recipient returns the record of an account, from the cache or read from
// the store; store.ErrNotFound when there is no such account.
func (s *Server) recipient(ctx context.Context, account string) (*recipient, error) {
	r := &s.recipients
	r.mu.Lock()
	if rec := r.m[account]; rec != nil {
		r.mu.Unlock()
		return rec, nil
	}
	epoch := r.epoch
	r.mu.Unlock()
	acct, err := s.cfg.Store.Account(ctx, account)
	if err != nil {
		return nil, err
	}
	list, version, err := s.cfg.Store.DeviceList(ctx, account)
	if err != nil {
		return nil, err
	}
	reach, err := s.reachable(ctx, acct, version)
	if err != nil {
		return nil, err
	}
	rec := &recipient{acct: acct, list: list, version: version, reachable: reach}
	r.mu.Lock()
	if r.epoch == epoch {
		if r.m == nil || len(r.m) >= maxCached {
			r.m = map[string]*recipient{}
		}
		r.m[account] = rec
	}
	r.mu.Unlock()
	return rec, nil
}
