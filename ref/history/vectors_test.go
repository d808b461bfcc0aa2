package history

import (
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/missive-protocol/missive/ref/internal/vectest"
)

type foldMessage struct {
	ID   vectest.Hex `json:"id"`
	From string      `json:"from"`
	To   string      `json:"to"`
}

type foldEvent struct {
	To       string        `json:"to"`
	Kind     string        `json:"kind"`
	Message  vectest.Hex   `json:"message"`
	From     string        `json:"from"`
	Receipt  string        `json:"receipt"`
	Messages []vectest.Hex `json:"messages"`
}

type sentState struct {
	Statuses map[string]string `json:"statuses"`
	Overall  string            `json:"overall"`
}

type deviceState struct {
	Sent map[string]sentState `json:"sent"`
	Read []vectest.Hex        `json:"read"`
}

type receiptsCase struct {
	vectest.Common
	Devices  map[string][]uint32    `json:"devices"`
	Messages []foldMessage          `json:"messages"`
	Events   []foldEvent            `json:"events"`
	Final    map[string]deviceState `json:"final"`
}

func parseAddress(t *testing.T, s string) Address {
	t.Helper()
	acct, dev, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(dev, 10, 32)
	if !ok || err != nil {
		t.Fatalf("bad address %q", s)
	}
	return Address{acct, uint32(n)}
}

func toID(t *testing.T, b []byte) ID {
	t.Helper()
	if len(b) != 16 {
		t.Fatalf("message id of %d bytes", len(b))
	}
	return ID(b)
}

// TestReceiptVectors runs vectors/v1/receipts.json through the joins of
// this package and compares every device's final state.
func TestReceiptVectors(t *testing.T) {
	f := vectest.Load[receiptsCase](t, "receipts")
	for _, c := range f.Cases {
		t.Run(c.ID, func(t *testing.T) {
			if want := c.Want(t); want != 0 {
				t.Fatalf("a receipts case expects %v; every receipts case is valid", want)
			}
			msgs := map[ID]foldMessage{}
			for _, m := range c.Messages {
				msgs[toID(t, m.ID)] = m
			}
			states := map[Address]*State{}
			for acct, ids := range c.Devices {
				for _, id := range ids {
					states[Address{acct, id}] = New()
				}
			}
			for i, e := range c.Events {
				s := states[parseAddress(t, e.To)]
				if s == nil {
					t.Fatalf("event %d to an unknown device %s", i, e.To)
				}
				switch e.Kind {
				case "sent":
					id := toID(t, e.Message)
					s.LearnSent(id, msgs[id].To, c.Devices[msgs[id].To])
				case "message":
					id := toID(t, e.Message)
					s.Receive(parseAddress(t, msgs[id].From).Account, id)
				case "receipt":
					from := parseAddress(t, e.From)
					kind, ok := ParseStatus(e.Receipt)
					if !ok {
						t.Fatalf("event %d: unknown receipt %q", i, e.Receipt)
					}
					r := Receipt{From: from, Kind: kind}
					for _, m := range e.Messages {
						r.IDs = append(r.IDs, toID(t, m))
					}
					s.ApplyReceipt(r, slices.Contains(c.Devices[from.Account], from.Device))
				case "read":
					var keys []Key
					for _, m := range e.Messages {
						id := toID(t, m)
						var from string
						if fm, ok := msgs[id]; ok {
							from = parseAddress(t, fm.From).Account
						}
						keys = append(keys, Key{from, id})
					}
					s.ApplyRead(keys)
				default:
					t.Fatalf("event %d: unknown kind %q", i, e.Kind)
				}
			}
			if len(c.Final) == 0 {
				t.Fatal("case has no final state")
			}
			for addr, want := range c.Final {
				s := states[parseAddress(t, addr)]
				got := deviceState{Sent: map[string]sentState{}}
				for id, m := range s.Sent {
					st := sentState{Statuses: map[string]string{}, Overall: Overall(m.Statuses).String()}
					for d, v := range m.Statuses {
						st.Statuses[strconv.Itoa(int(d))] = v.String()
					}
					got.Sent[hex.EncodeToString(id[:])] = st
				}
				for _, k := range slices.SortedFunc(maps.Keys(s.Received), func(a, b Key) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) }) {
					if s.IsRead(k) {
						got.Read = append(got.Read, k.ID[:])
					}
				}
				if g, w := render(got), render(want); g != w {
					t.Errorf("%s: got\n%s\nwant\n%s", addr, g, w)
				}
			}
		})
	}
}

func render(s deviceState) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(s.Sent)) {
		st := s.Sent[id]
		b.WriteString(id + " " + st.Overall + ":")
		for _, d := range slices.Sorted(maps.Keys(st.Statuses)) {
			b.WriteString(" " + d + "=" + st.Statuses[d])
		}
		b.WriteString("\n")
	}
	for _, r := range s.Read {
		b.WriteString("read " + hex.EncodeToString(r) + "\n")
	}
	return b.String()
}
