package yjs

import (
	"errors"
	"fmt"
	"sort"
)

// Update format v1:
//
//	varUint #clients
//	per client: varUint #structs, varUint client, varUint first clock, structs...
//	delete set
//
// Each struct starts with an info byte: the low 5 bits are the content ref
// (0 GC, 10 Skip, else an Item's content kind), 0x80 = origin follows,
// 0x40 = right origin follows, 0x20 = the item has a map key (parentSub).
// Without either origin the parent is written instead (1 + root name, or
// 0 + the ID of the item holding the parent type), followed by the key.

// DecodedUpdate is the content of an update, for inspection and tests.
type DecodedUpdate struct {
	// Structs per client, sorted by clock.
	Structs map[uint64][]*Item
	Deletes DeleteSet
}

// DecodeUpdate parses a v1 update without applying it. It never panics on
// malformed input.
func DecodeUpdate(update []byte) (*DecodedUpdate, error) {
	d := NewDecoder(update)
	refs, err := readStructs(d)
	if err != nil {
		return nil, err
	}
	ds, err := readDeleteSet(d)
	if err != nil {
		return nil, err
	}
	return &DecodedUpdate{Structs: refs, Deletes: ds}, nil
}

// maxClock bounds clocks so that clock arithmetic cannot overflow.
const maxClock = maxSafeInteger

func readStructs(d *Decoder) (map[uint64][]*Item, error) {
	refs := map[uint64][]*Item{}
	nClients, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < nClients; i++ {
		nStructs, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		client, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		clock, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if nStructs > uint64(d.Remaining()) {
			return nil, ErrUnexpectedEOF
		}
		list := refs[client]
		for j := uint64(0); j < nStructs; j++ {
			it, err := readStruct(d, client, clock)
			if err != nil {
				return nil, err
			}
			clock += uint64(it.length)
			if clock > maxClock {
				return nil, errors.New("yjs: clock out of range")
			}
			list = append(list, it)
		}
		refs[client] = list
	}
	for c, list := range refs {
		sort.SliceStable(list, func(i, j int) bool { return list[i].id.Clock < list[j].id.Clock })
		if len(list) == 0 {
			delete(refs, c)
		}
	}
	return refs, nil
}

func readStruct(d *Decoder, client, clock uint64) (*Item, error) {
	info, err := d.ReadUint8()
	if err != nil {
		return nil, err
	}
	id := ID{client, clock}
	switch info & 0x1f {
	case refGC, refSkip:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if n == 0 || n > maxClock {
			return nil, fmt.Errorf("yjs: invalid struct length %d", n)
		}
		if info&0x1f == refGC {
			return &Item{id: id, length: int(n), kind: kindGC, deleted: true}, nil
		}
		return &Item{id: id, length: int(n), kind: kindSkip}, nil
	}
	it := &Item{id: id, kind: kindItem}
	if info&0x80 != 0 {
		if it.origin, err = readID(d); err != nil {
			return nil, err
		}
		it.hasOrigin = true
	}
	if info&0x40 != 0 {
		if it.rightOrigin, err = readID(d); err != nil {
			return nil, err
		}
		it.hasRightOrigin = true
	}
	if info&0xc0 == 0 {
		isRoot, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if isRoot == 1 {
			name, err := d.ReadVarString()
			if err != nil {
				return nil, err
			}
			// A placeholder holding the name until integration resolves it.
			it.parent = &Branch{typeRef: TypeUnknown, name: name}
			it.parentKind = parentRoot
		} else {
			// Stored in origin, which this item does not have.
			if it.origin, err = readID(d); err != nil {
				return nil, err
			}
			it.parentKind = parentByID
		}
		if info&0x20 != 0 {
			key, err := d.ReadVarString()
			if err != nil {
				return nil, err
			}
			it.sub = &key
		}
	}
	if it.content, err = readContent(d, info); err != nil {
		return nil, err
	}
	it.length = it.content.length()
	if it.length <= 0 || uint64(it.length) > maxClock {
		return nil, fmt.Errorf("yjs: invalid item length %d (%T)", it.length, it.content)
	}
	return it, nil
}

func readID(d *Decoder) (ID, error) {
	c, err := d.ReadVarUint()
	if err != nil {
		return ID{}, err
	}
	k, err := d.ReadVarUint()
	return ID{c, k}, err
}

// writeStructs writes one client's structs from clock onward.
func writeStructs(e *Encoder, structs []*Item, client, clock uint64) {
	if len(structs) == 0 {
		return
	}
	if clock < structs[0].id.Clock {
		clock = structs[0].id.Clock
	}
	start := findIndex(structs, clock)
	e.WriteVarUint(uint64(len(structs) - start))
	e.WriteVarUint(client)
	e.WriteVarUint(clock)
	first := structs[start]
	first.write(e, int(clock-first.id.Clock))
	for _, it := range structs[start+1:] {
		it.write(e, 0)
	}
}

// writeStructsSince writes, for every client whose state exceeds sv, the
// structs the holder of sv is missing.
func writeStructsSince(e *Encoder, s *structStore, sv StateVector) {
	from := map[uint64]uint64{}
	for c := range s.clients {
		if clock := sv[c]; s.end(c) > clock {
			from[c] = clock
		}
	}
	clients := sortedClientsDesc(from)
	e.WriteVarUint(uint64(len(clients)))
	for _, c := range clients {
		writeStructs(e, s.clients[c], c, from[c])
	}
}

// EncodeStateAsUpdate returns a v1 update with everything d holds that a
// peer with state vector sv lacks (all of it when sv is nil), plus the
// complete delete set. Holes are written as Skip structs; pending structs
// are not included (as yrs does).
func (d *Doc) EncodeStateAsUpdate(sv StateVector) []byte {
	e := NewEncoder()
	writeStructsSince(e, d.store, sv)
	writeDeleteSet(e, d.store.deleteSet())
	return e.Bytes()
}

// EncodeStateAsUpdateFromEncoded is EncodeStateAsUpdate with an encoded
// state vector (as received in SyncStep1).
func (d *Doc) EncodeStateAsUpdateFromEncoded(sv []byte) ([]byte, error) {
	var v StateVector
	if len(sv) > 0 {
		var err error
		if v, err = DecodeStateVector(sv); err != nil {
			return nil, err
		}
	}
	return d.EncodeStateAsUpdate(v), nil
}

// EmptyUpdate is the update with no structs and no deletions.
var EmptyUpdate = []byte{0, 0}

// IsSkip reports whether a decoded struct is a Skip (a gap in an update).
func IsSkip(it *Item) bool { return it.kind == kindSkip }
