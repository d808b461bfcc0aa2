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
// oldest entries beyond MaxStoredSkipped (RAT-012).
type skippedKeys struct {
	keys  map[skipID]key32
	order []skipID // insertion order; may hold ids already removed
}

func (s *skippedKeys) get(id skipID) (key32, bool) {
	mk, ok := s.keys[id]
	return mk, ok
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
		s.keys = make(map[skipID]key32)
	}
	for _, e := range entries {
		s.keys[e.id] = e.mk
		s.order = append(s.order, e.id)
	}
	for len(s.keys) > MaxStoredSkipped {
		delete(s.keys, s.order[0])
		s.order = s.order[1:]
	}
	if len(s.order) > 2*MaxStoredSkipped {
		s.order = s.live()
	}
}

// live returns the stored ids, oldest first.
func (s *skippedKeys) live() []skipID {
	out := make([]skipID, 0, len(s.keys))
	for _, id := range s.order {
		if _, ok := s.keys[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// len returns the number of stored keys.
func (s *skippedKeys) len() int { return len(s.keys) }
