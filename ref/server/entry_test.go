package server

import (
	"testing"

	"github.com/missive-protocol/missive/spec"
)

// TestEntryDiagram checks the transition table against the diagram of
// spec section 13.5, both ways.
func TestEntryDiagram(t *testing.T) {
	ds, err := spec.StateDiagrams("13-server.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || len(ds[0]) == 0 {
		t.Fatalf("got %d diagrams in 13-server.md, want 1 with transitions", len(ds))
	}
	byName := map[string]entryState{}
	for _, s := range []entryState{entryNone, entryQueued, entryInFlight} {
		byName[s.String()] = s
	}
	inDiagram := map[[2]entryState]bool{}
	for _, tr := range ds[0] {
		from, ok1 := byName[tr.From]
		to, ok2 := byName[tr.To]
		if !ok1 || !ok2 {
			t.Fatalf("diagram names an unknown state: %s --> %s", tr.From, tr.To)
		}
		inDiagram[[2]entryState{from, to}] = true
		if _, ok := entryTransitions[[2]entryState{from, to}]; !ok {
			t.Errorf("diagram has %s --> %s, the code does not", tr.From, tr.To)
		}
	}
	for tr := range entryTransitions {
		if !inDiagram[tr] {
			t.Errorf("code has %v --> %v, the diagram does not", tr[0], tr[1])
		}
	}
}

func TestMoveRejectsIllegal(t *testing.T) {
	f := &flight{state: entryNone}
	if err := f.move(entryInFlight); err == nil {
		t.Error("an entry went from [*] to InFlight without being queued")
	}
	f.state = entryQueued
	if err := f.move(entryInFlight); err != nil || f.state != entryInFlight {
		t.Errorf("Queued to InFlight: got %v, %v", f.state, err)
	}
}
