package yjs

import (
	"fmt"
	"sort"
)

// ID identifies one clock unit of one client: every inserted element (a
// UTF-16 code unit of text, an array element, a map value) gets its own ID.
// Client IDs are uint64 because yrs generates them up to 2^53.
type ID struct {
	Client uint64
	Clock  uint64
}

func (id ID) String() string { return fmt.Sprintf("%d:%d", id.Client, id.Clock) }

// StateVector maps each client to the number of its clock units a document
// holds contiguously from 0 ("the next expected clock").
type StateVector map[uint64]uint64

// EncodeStateVector encodes sv in the v1 format: a count, then (client,
// clock) pairs, clients in descending order as Yjs writes them.
func EncodeStateVector(sv StateVector) []byte {
	e := NewEncoder()
	writeStateVector(e, sv)
	return e.Bytes()
}

func writeStateVector(e *Encoder, sv StateVector) {
	clients := sortedClientsDesc(sv)
	e.WriteVarUint(uint64(len(clients)))
	for _, c := range clients {
		e.WriteVarUint(c)
		e.WriteVarUint(sv[c])
	}
}

// DecodeStateVector decodes a v1 state vector.
func DecodeStateVector(b []byte) (StateVector, error) {
	d := NewDecoder(b)
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	if n > uint64(d.Remaining()) {
		return nil, ErrUnexpectedEOF
	}
	sv := make(StateVector, n)
	for i := uint64(0); i < n; i++ {
		c, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		clock, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		sv[c] = clock
	}
	return sv, nil
}

func sortedClientsDesc[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] > out[j] })
	return out
}

// ---- delete sets ----

// deleteRange is a run of deleted clock units of one client.
type deleteRange struct {
	Clock, Len uint64
}

// DeleteSet records deleted ranges per client. Deletions are not part of the
// struct stream of an update; every update ends with one of these.
type DeleteSet map[uint64][]deleteRange

func (ds DeleteSet) add(client, clock, length uint64) {
	if length == 0 {
		return
	}
	ds[client] = append(ds[client], deleteRange{clock, length})
}

// sortAndMerge orders each client's ranges and joins overlapping or
// adjacent ones.
func (ds DeleteSet) sortAndMerge() {
	for c, rs := range ds {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Clock < rs[j].Clock })
		out := rs[:0]
		for _, r := range rs {
			if n := len(out); n > 0 && out[n-1].Clock+out[n-1].Len >= r.Clock {
				if end := r.Clock + r.Len; end > out[n-1].Clock+out[n-1].Len {
					out[n-1].Len = end - out[n-1].Clock
				}
				continue
			}
			out = append(out, r)
		}
		ds[c] = out
	}
}

func (ds DeleteSet) merge(other DeleteSet) {
	for c, rs := range other {
		ds[c] = append(ds[c], rs...)
	}
}

func writeDeleteSet(e *Encoder, ds DeleteSet) {
	clients := make([]uint64, 0, len(ds))
	for c, rs := range ds {
		if len(rs) > 0 {
			clients = append(clients, c)
		}
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i] > clients[j] })
	e.WriteVarUint(uint64(len(clients)))
	for _, c := range clients {
		rs := ds[c]
		e.WriteVarUint(c)
		e.WriteVarUint(uint64(len(rs)))
		for _, r := range rs {
			e.WriteVarUint(r.Clock)
			e.WriteVarUint(r.Len)
		}
	}
}

func readDeleteSet(d *Decoder) (DeleteSet, error) {
	ds := DeleteSet{}
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < n; i++ {
		client, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		k, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if k > uint64(d.Remaining()) {
			return nil, ErrUnexpectedEOF
		}
		for j := uint64(0); j < k; j++ {
			clock, err := d.ReadVarUint()
			if err != nil {
				return nil, err
			}
			l, err := d.ReadVarUint()
			if err != nil {
				return nil, err
			}
			if clock+l > maxSafeInteger {
				return nil, fmt.Errorf("yjs: delete range %d+%d out of bounds", clock, l)
			}
			ds.add(client, clock, l)
		}
	}
	return ds, nil
}
