package yjs

import "sort"

// structStore keeps, per client, the structs it has integrated, sorted by
// clock and covering 0..end without overlap.
//
// The store is hole tolerant, like yrs and Yjs v14: a struct whose own
// dependencies (origin, right origin, parent) are present is integrated even
// if earlier clocks of its client are missing. The missing range is held by a
// placeholder struct of kind Skip, which a later struct replaces. Such holes
// appear when a yrs server sends Skip structs, or when updates of one client
// arrive out of order. The state vector reports the start of the first hole.
//
// Structs whose dependencies are missing wait in pending; deletions of
// clocks not held yet wait in pendingDs. Both are retried on every update, so
// delivery order does not matter.
type structStore struct {
	clients   map[uint64][]*Item
	holes     map[uint64]int    // number of Skip placeholders per client
	holeStart map[uint64]uint64 // cached clock of the first placeholder
	pending   map[uint64][]*Item
	pendingDs DeleteSet
}

func newStructStore() *structStore {
	return &structStore{clients: map[uint64][]*Item{}, holes: map[uint64]int{}, holeStart: map[uint64]uint64{},
		pending: map[uint64][]*Item{}, pendingDs: DeleteSet{}}
}

// end is the clock after the last struct of client (holes included).
func (s *structStore) end(client uint64) uint64 {
	structs := s.clients[client]
	if len(structs) == 0 {
		return 0
	}
	last := structs[len(structs)-1]
	return last.id.Clock + uint64(last.length)
}

// state is the clock up to which client's structs are held without a hole,
// the value state vectors carry.
func (s *structStore) state(client uint64) uint64 {
	if s.holes[client] > 0 {
		if c, ok := s.holeStart[client]; ok {
			return c
		}
		for _, it := range s.clients[client] {
			if it.kind == kindSkip {
				s.holeStart[client] = it.id.Clock
				return it.id.Clock
			}
		}
	}
	return s.end(client)
}

// endVector maps every client to its end clock.
func (s *structStore) endVector() StateVector {
	sv := make(StateVector, len(s.clients))
	for c := range s.clients {
		sv[c] = s.end(c)
	}
	return sv
}

// firstAbsent finds the first clock in [c0, c1) the store does not hold and
// returns the run [p, q) of absent clocks starting there (q ≤ c1). absent is
// false when the whole range is held.
func (s *structStore) firstAbsent(client, c0, c1 uint64) (p, q uint64, absent bool) {
	end := s.end(client)
	if c0 >= end {
		return c0, c1, true
	}
	if s.holes[client] == 0 {
		if c1 <= end {
			return 0, 0, false
		}
		return end, c1, true
	}
	structs := s.clients[client]
	for i := findIndex(structs, c0); i < len(structs); i++ {
		st := structs[i]
		if st.id.Clock >= c1 {
			return 0, 0, false
		}
		if st.kind == kindSkip {
			return max(st.id.Clock, c0), min(st.id.Clock+uint64(st.length), c1), true
		}
	}
	if c1 <= end {
		return 0, 0, false
	}
	return end, c1, true
}

// put stores a freshly integrated struct: after the end (leaving a hole
// placeholder if it does not continue the list) or inside a hole.
func (s *structStore) put(it *Item) {
	c := it.id.Client
	end := s.end(c)
	if it.id.Clock >= end {
		if it.id.Clock > end {
			delete(s.holeStart, c)
			s.clients[c] = append(s.clients[c], &Item{id: ID{c, end}, length: int(it.id.Clock - end), kind: kindSkip})
			s.holes[c]++
		}
		s.clients[c] = append(s.clients[c], it)
		return
	}
	structs := s.clients[c]
	i := findIndex(structs, it.id.Clock)
	ph := structs[i]
	phEnd := ph.id.Clock + uint64(ph.length)
	itEnd := it.id.Clock + uint64(it.length)
	if ph.kind != kindSkip || itEnd > phEnd {
		panic("yjs: internal error: struct does not fit the hole it fills")
	}
	pieces := make([]*Item, 0, 3)
	if ph.id.Clock < it.id.Clock {
		pieces = append(pieces, &Item{id: ph.id, length: int(it.id.Clock - ph.id.Clock), kind: kindSkip})
	}
	pieces = append(pieces, it)
	if itEnd < phEnd {
		pieces = append(pieces, &Item{id: ID{c, itEnd}, length: int(phEnd - itEnd), kind: kindSkip})
	}
	delete(s.holeStart, c)
	s.holes[c] += len(pieces) - 2
	if s.holes[c] == 0 {
		delete(s.holes, c)
	}
	s.clients[c] = append(structs[:i], append(pieces, structs[i+1:]...)...)
}

func (s *structStore) stateVector() StateVector {
	sv := make(StateVector, len(s.clients))
	for c := range s.clients {
		sv[c] = s.state(c)
	}
	return sv
}

// findIndex returns the index of the struct containing clock. The caller
// guarantees clock < state(client).
func findIndex(structs []*Item, clock uint64) int {
	return sort.Search(len(structs), func(i int) bool {
		s := structs[i]
		return s.id.Clock+uint64(s.length) > clock
	})
}

// find returns the struct containing id, or nil.
func (s *structStore) find(id ID) *Item {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	if i >= len(structs) || structs[i].id.Clock > id.Clock {
		return nil
	}
	return structs[i]
}

// insertAt inserts it into the client's list at index i.
func (s *structStore) insertAt(client uint64, i int, it *Item) {
	structs := s.clients[client]
	structs = append(structs, nil)
	copy(structs[i+1:], structs[i:])
	structs[i] = it
	s.clients[client] = structs
}

// cleanStart returns the item starting exactly at id, splitting if needed.
func (s *structStore) cleanStart(txn *Transaction, id ID) *Item {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	it := structs[i]
	if it.id.Clock < id.Clock && it.kind != kindGC {
		r := splitItem(txn, it, int(id.Clock-it.id.Clock))
		s.insertAt(id.Client, i+1, r)
		return r
	}
	return it
}

// cleanEnd returns the item ending exactly at id, splitting if needed.
func (s *structStore) cleanEnd(txn *Transaction, id ID) *Item {
	structs := s.clients[id.Client]
	i := findIndex(structs, id.Clock)
	it := structs[i]
	if id.Clock != it.id.Clock+uint64(it.length)-1 && it.kind != kindGC {
		s.insertAt(id.Client, i+1, splitItem(txn, it, int(id.Clock-it.id.Clock)+1))
	}
	return it
}

// has reports whether the store holds clock unit id.
func (s *structStore) has(id ID) bool {
	if id.Clock >= s.end(id.Client) {
		return false
	}
	if s.holes[id.Client] == 0 {
		return true
	}
	st := s.find(id)
	return st != nil && st.kind != kindSkip
}

// deleteSet collects every deleted range in the store (for full-state updates).
func (s *structStore) deleteSet() DeleteSet {
	ds := DeleteSet{}
	for c, structs := range s.clients {
		var rs []deleteRange
		for _, it := range structs {
			if it.deleted || it.kind == kindGC {
				if n := len(rs); n > 0 && rs[n-1].Clock+rs[n-1].Len == it.id.Clock {
					rs[n-1].Len += uint64(it.length)
				} else {
					rs = append(rs, deleteRange{it.id.Clock, uint64(it.length)})
				}
			}
		}
		if len(rs) > 0 {
			ds[c] = rs
		}
	}
	return ds
}
