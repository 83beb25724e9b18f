package yjs

import "sort"

// MergeUpdates combines v1 updates into one update that has the effect of
// applying all of them, without a document. Overlapping structs (the same
// clocks delivered twice) are written once; gaps between a client's structs
// are written as Skip structs; delete sets are merged.
func MergeUpdates(updates ...[]byte) ([]byte, error) {
	structs := map[uint64][]*Item{}
	ds := DeleteSet{}
	for _, u := range updates {
		d, err := DecodeUpdate(u)
		if err != nil {
			return nil, err
		}
		for c, list := range d.Structs {
			for _, it := range list {
				if it.kind != kindSkip { // gaps are recomputed below
					structs[c] = append(structs[c], it)
				}
			}
		}
		ds.merge(d.Deletes)
	}
	ds.sortAndMerge()
	e := NewEncoder()
	clients := sortedClientsDesc(structs)
	e.WriteVarUint(uint64(len(clients)))
	for _, c := range clients {
		list := structs[c]
		// Earlier clock first; for equal clocks the longer struct first so
		// the shorter duplicate is dropped.
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].id.Clock != list[j].id.Clock {
				return list[i].id.Clock < list[j].id.Clock
			}
			return list[i].length > list[j].length
		})
		var out []*Item
		next := list[0].id.Clock
		for _, it := range list {
			end := it.id.Clock + uint64(it.length)
			switch {
			case end <= next:
				continue // already covered
			case it.id.Clock < next:
				it = cutRef(it, int(next-it.id.Clock))
			case it.id.Clock > next:
				out = append(out, &Item{id: ID{c, next}, length: int(it.id.Clock - next), kind: kindSkip})
			}
			out = append(out, it)
			next = end
		}
		e.WriteVarUint(uint64(len(out)))
		e.WriteVarUint(c)
		e.WriteVarUint(out[0].id.Clock)
		for _, it := range out {
			it.write(e, 0)
		}
	}
	writeDeleteSet(e, ds)
	return e.Bytes(), nil
}
