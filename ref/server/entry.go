package server

import "fmt"

// entryState is the state of a queue entry (spec section 13.5).
type entryState uint8

const (
	entryNone     entryState = iota // not stored: before acceptance, after deletion
	entryQueued                     // stored, not delivered on the current connection
	entryInFlight                   // delivered, waiting for an ack
)

func (s entryState) String() string {
	switch s {
	case entryQueued:
		return "Queued"
	case entryInFlight:
		return "InFlight"
	}
	return "[*]"
}

// entryTransitions is the transition table of the queue entry, the
// diagram of spec section 13.5, which a test checks against it.
var entryTransitions = map[[2]entryState]string{
	{entryNone, entryQueued}:       "send accepted",
	{entryQueued, entryInFlight}:   "delivered",
	{entryInFlight, entryInFlight}: "delivered again",
	{entryInFlight, entryQueued}:   "connection ends",
	{entryInFlight, entryNone}:     "ack, or expiry",
	{entryQueued, entryNone}:       "expiry",
}

// move changes a flight's state along the table.
func (f *flight) move(to entryState) error {
	if _, ok := entryTransitions[[2]entryState{f.state, to}]; !ok {
		return fmt.Errorf("server: queue entry %d: no transition from %v to %v", f.entry.QueueID, f.state, to)
	}
	f.state = to
	return nil
}
