package history

import (
	"testing"

	"github.com/missive-protocol/missive/spec"
)

// TestStatusDiagram checks the table against the diagram of spec section
// 14.3, both ways.
func TestStatusDiagram(t *testing.T) {
	ds, err := spec.StateDiagrams("14-client.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || len(ds[0]) == 0 {
		t.Fatalf("got %d diagrams in 14-client.md, want 1 with transitions", len(ds))
	}
	byName := map[string]Status{}
	for s := Pending; s <= Played; s++ {
		byName[s.String()] = s
	}
	inDiagram := map[[2]Status]bool{}
	for _, tr := range ds[0] {
		from, ok1 := byName[tr.From]
		to, ok2 := byName[tr.To]
		if !ok1 || !ok2 {
			t.Fatalf("diagram names an unknown status: %s --> %s", tr.From, tr.To)
		}
		inDiagram[[2]Status{from, to}] = true
		if !Transitions[[2]Status{from, to}] {
			t.Errorf("diagram has %s --> %s, the code does not", tr.From, tr.To)
		}
	}
	for tr := range Transitions {
		if !inDiagram[tr] {
			t.Errorf("code has %v --> %v, the diagram does not", tr[0], tr[1])
		}
	}
}

// TestRaiseIsMonotonic checks CLI-004 over every pair of statuses.
func TestRaiseIsMonotonic(t *testing.T) {
	for cur := Pending; cur <= Played; cur++ {
		for to := Pending; to <= Played; to++ {
			got := Raise(cur, to)
			if got < cur {
				t.Errorf("Raise(%v, %v) = %v: a status went down", cur, to, got)
			}
			if to > cur && to != Pending && got != to {
				t.Errorf("Raise(%v, %v) = %v, want %v", cur, to, got, to)
			}
		}
	}
}
