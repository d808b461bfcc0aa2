package storetest

import (
	"slices"

	"github.com/missive-protocol/missive/ref/store"
)

var presenceTests = []test{
	{"PrivacyDefault", testPrivacyDefault},
	{"PrivacyRoundTrip", testPrivacyRoundTrip},
	{"Contacts", testContacts},
	{"LastSeen", testLastSeen},
	{"PresenceUnknownAccount", testPresenceUnknown},
}

// Visibilities of spec section 11.4.
const (
	everyone = 0
	contacts = 1
	nobody   = 2
)

func testPrivacyDefault(h *harness) {
	h.account("alice")
	p, err := h.s.Privacy(h.ctx, "alice")
	h.wantErr("Privacy", err, nil)
	if want := (store.Privacy{LastSeen: contacts, Online: contacts}); p != want {
		h.Errorf("Privacy of a new account: got %+v, want %+v", p, want)
	}
}

func testPrivacyRoundTrip(h *harness) {
	h.account("alice")
	h.account("bob")
	for _, ls := range []uint8{everyone, contacts, nobody} {
		for _, on := range []uint8{everyone, contacts, nobody} {
			want := store.Privacy{LastSeen: ls, Online: on}
			h.wantErr("SetPrivacy", h.s.SetPrivacy(h.ctx, "alice", want), nil)
			got, err := h.s.Privacy(h.ctx, "alice")
			h.wantErr("Privacy", err, nil)
			if got != want {
				h.Errorf("Privacy: got %+v, want %+v", got, want)
			}
		}
	}
	// Another account keeps the default.
	if got, _ := h.s.Privacy(h.ctx, "bob"); got != (store.Privacy{LastSeen: contacts, Online: contacts}) {
		h.Errorf("Privacy(bob): got %+v, want the default", got)
	}
}

func testContacts(h *harness) {
	h.account("alice")
	h.account("bob")
	got, err := h.s.Contacts(h.ctx, "alice")
	if err != nil || len(got) != 0 {
		h.Errorf("Contacts of a new account: got %q, %v, want none, nil", got, err)
	}
	lists := [][]string{
		{"bob"},
		{"bob", "carol", "dave"},
		{"carol"},
		nil,
		{},
		{"a", "b\x00c", "zed"},
	}
	for _, want := range lists {
		h.wantErr("SetContacts", h.s.SetContacts(h.ctx, "alice", want), nil)
		got, err := h.s.Contacts(h.ctx, "alice")
		h.wantErr("Contacts", err, nil)
		if !slices.Equal(got, want) {
			h.Errorf("Contacts: got %q, want %q", got, want)
		}
	}
	if got, _ := h.s.Contacts(h.ctx, "bob"); len(got) != 0 {
		h.Errorf("Contacts(bob): got %q, want none", got)
	}
}

func testLastSeen(h *harness) {
	h.account("alice")
	h.account("bob")
	got, err := h.s.LastSeen(h.ctx, "alice")
	if err != nil || !got.IsZero() {
		h.Errorf("LastSeen of a new account: got %v, %v, want zero, nil", got, err)
	}
	for _, ms := range []int64{5, 123456789, 7} {
		h.wantErr("SetLastSeen", h.s.SetLastSeen(h.ctx, "alice", at(ms)), nil)
		got, err := h.s.LastSeen(h.ctx, "alice")
		h.wantErr("LastSeen", err, nil)
		if !got.Equal(at(ms)) {
			h.Errorf("LastSeen: got %v, want %v", got, at(ms))
		}
	}
	if got, _ := h.s.LastSeen(h.ctx, "bob"); !got.IsZero() {
		h.Errorf("LastSeen(bob): got %v, want zero", got)
	}
}

func testPresenceUnknown(h *harness) {
	h.account("alice")
	const name = "nobody"
	h.wantErr("SetPrivacy", h.s.SetPrivacy(h.ctx, name, store.Privacy{}), store.ErrNotFound)
	_, err := h.s.Privacy(h.ctx, name)
	h.wantErr("Privacy", err, store.ErrNotFound)
	h.wantErr("SetContacts", h.s.SetContacts(h.ctx, name, []string{"alice"}), store.ErrNotFound)
	_, err = h.s.Contacts(h.ctx, name)
	h.wantErr("Contacts", err, store.ErrNotFound)
	h.wantErr("SetLastSeen", h.s.SetLastSeen(h.ctx, name, at(1)), store.ErrNotFound)
	_, err = h.s.LastSeen(h.ctx, name)
	h.wantErr("LastSeen", err, store.ErrNotFound)
	// A refused set does not create the account.
	_, err = h.s.Account(h.ctx, name)
	h.wantErr("Account", err, store.ErrNotFound)
}
