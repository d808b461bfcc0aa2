package ratchet

// skipID names a skipped message key: the ratchet public key (its 32-byte
// body) and the message number.
type skipID struct {
	dh key32
	n  uint32
}

type skippedEntry struct {
	id skipID
	mk key32
}

// skippedKeys is MKSKIPPED: a map in insertion order with eviction of the
// oldest entries beyond MaxStoredSkipped (RAT-012). Storing an id that is
// already stored replaces its key, and the entry then counts as the newest
// (section 5.8): a peer that reuses a ratchet key stores the same ids again.
type skippedKeys struct {
	keys  map[skipID]stored
	order []placed // insertion order; may hold entries since removed or replaced
	seq   uint64   // the sequence number of the last insertion
}

// stored is a key and the sequence number of its insertion; placed is an
// id in the insertion order, live while its sequence number is its key's.
type (
	stored struct {
		mk  key32
		seq uint64
	}
	placed struct {
		id  skipID
		seq uint64
	}
)

func (s *skippedKeys) get(id skipID) (key32, bool) {
	st, ok := s.keys[id]
	return st.mk, ok
}

func (s *skippedKeys) remove(id skipID) {
	delete(s.keys, id)
	if len(s.keys) == 0 {
		s.order = s.order[:0]
	}
}

// add stores entries in order, evicting the oldest while more than
// MaxStoredSkipped keys are stored.
func (s *skippedKeys) add(entries []skippedEntry) {
	if len(entries) == 0 {
		return
	}
	if s.keys == nil {
		s.keys = make(map[skipID]stored)
	}
	for _, e := range entries {
		s.seq++
		s.keys[e.id] = stored{e.mk, s.seq}
		s.order = append(s.order, placed{e.id, s.seq})
	}
	for len(s.keys) > MaxStoredSkipped {
		p := s.order[0]
		s.order = s.order[1:]
		if s.keys[p.id].seq == p.seq {
			delete(s.keys, p.id)
		}
	}
	if len(s.order) > 2*MaxStoredSkipped {
		s.order = s.livePlaced()
	}
}

// livePlaced returns the live entries of the insertion order, oldest first.
func (s *skippedKeys) livePlaced() []placed {
	out := make([]placed, 0, len(s.keys))
	for _, p := range s.order {
		if st, ok := s.keys[p.id]; ok && st.seq == p.seq {
			out = append(out, p)
		}
	}
	return out
}

// live returns the stored ids, oldest first, each once.
func (s *skippedKeys) live() []skipID {
	ps := s.livePlaced()
	out := make([]skipID, len(ps))
	for i, p := range ps {
		out[i] = p.id
	}
	return out
}

// len returns the number of stored keys.
func (s *skippedKeys) len() int { return len(s.keys) }
