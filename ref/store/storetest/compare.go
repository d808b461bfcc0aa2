package storetest

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/missive-protocol/missive/ref/store"
)

// entryDiff describes how got differs from want, or returns "". Times are
// compared with Equal, byte strings with bytes.Equal (nil equals empty).
func entryDiff(got, want store.Entry) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s: got %v, want %v", field, g, w)) }
	if got.QueueID != want.QueueID {
		add("QueueID", got.QueueID, want.QueueID)
	}
	if got.Recipient != want.Recipient {
		add("Recipient", got.Recipient, want.Recipient)
	}
	if !bytes.Equal(got.MessageID, want.MessageID) {
		add("MessageID", got.MessageID, want.MessageID)
	}
	if got.Sender != want.Sender {
		add("Sender", got.Sender, want.Sender)
	}
	if got.Type != want.Type {
		add("Type", got.Type, want.Type)
	}
	if got.Priority != want.Priority {
		add("Priority", got.Priority, want.Priority)
	}
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if !bytes.Equal(got.Ciphertext, want.Ciphertext) {
		add("Ciphertext", got.Ciphertext, want.Ciphertext)
	}
	if got.SentAt != want.SentAt {
		add("SentAt", got.SentAt, want.SentAt)
	}
	if !got.AcceptedAt.Equal(want.AcceptedAt) {
		add("AcceptedAt", got.AcceptedAt, want.AcceptedAt)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		add("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	}
	if got.Attempt != want.Attempt {
		add("Attempt", got.Attempt, want.Attempt)
	}
	return strings.Join(d, "; ")
}

// wantEntries fails the test unless got and want hold equal entries in the
// same order.
func (h *harness) wantEntries(what string, got, want []store.Entry) {
	h.Helper()
	if len(got) != len(want) {
		h.Fatalf("%s: got %d entries (queue ids %v), want %d (%v)", what, len(got), queueIDs(got), len(want), queueIDs(want))
	}
	for i := range got {
		if d := entryDiff(got[i], want[i]); d != "" {
			h.Errorf("%s: entry %d: %s", what, i, d)
		}
	}
}

// queueIDs lists the queue ids of entries.
func queueIDs(es []store.Entry) []uint64 {
	ids := make([]uint64, len(es))
	for i, e := range es {
		ids[i] = e.QueueID
	}
	return ids
}

// prekeyEqual reports whether two prekeys are equal (nil bytes equal empty).
func prekeyEqual(a, b store.Prekey) bool {
	return a.ID == b.ID && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Signature, b.Signature)
}

// wantPrekey fails the test unless got equals want.
func (h *harness) wantPrekey(what string, got, want store.Prekey) {
	h.Helper()
	if !prekeyEqual(got, want) {
		h.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

// wantDevices fails the test unless got lists the devices of want.
func (h *harness) wantDevices(what string, got, want []store.Device) {
	h.Helper()
	if len(got) != len(want) {
		h.Fatalf("%s: got %d devices, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Removed != w.Removed || !bytes.Equal(g.IdentityKey, w.IdentityKey) || !g.Created.Equal(w.Created) {
			h.Errorf("%s: device %d: got {ID:%d Removed:%t Created:%v Key:%x}, want {ID:%d Removed:%t Created:%v Key:%x}",
				what, i, g.ID, g.Removed, g.Created, g.IdentityKey, w.ID, w.Removed, w.Created, w.IdentityKey)
		}
	}
}
