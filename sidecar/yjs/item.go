package yjs

// structKind tells the three struct kinds of the update format apart. They
// share one Go type so that the per-client store is a plain slice.
type structKind uint8

const (
	kindItem structKind = iota // an Item with content
	kindGC                     // a garbage-collected range (only id and length survive)
	kindSkip                   // a gap in an update (never stored)
)

// parentKind says how an item names its parent before integration resolves
// it to a *Branch.
type parentKind uint8

const (
	parentNone   parentKind = iota // inferred from origin / rightOrigin
	parentRoot                     // a root type by name (see Item.parent)
	parentByID                     // the item holding a nested type (see Item.origin)
	parentBranch                   // resolved
)

// Item is one struct of the CRDT: an Item (content in a parent type), a GC
// range or a Skip. Items form a doubly linked list per parent type (and per
// map key); origin/rightOrigin are the neighbours at creation time, which is
// what YATA conflict resolution uses.
//
// The layout is kept small (112 bytes) because a document holds one Item per
// struct. What a decoded item says about its parent before integration
// lives in fields it does not otherwise use: with parentKind parentRoot,
// parent is a placeholder Branch carrying only the root's name (item nil);
// with parentByID, origin holds the ID of the item holding the parent type
// (such an item has no origin: the parent is written only when both origins
// are absent). Integration replaces both with the resolved parent.
type Item struct {
	id ID

	left, right *Item

	origin, rightOrigin ID

	parent  *Branch
	content Content

	// sub is the map key (parentSub in Yjs), nil for sequence items. Items of
	// one key share the pointer.
	sub *string

	length int

	kind                      structKind
	parentKind                parentKind
	hasOrigin, hasRightOrigin bool
	deleted                   bool
	keep                      bool
}

// key returns the item's map key (parentSub) and whether it has one.
func (it *Item) key() (string, bool) {
	if it.sub == nil {
		return "", false
	}
	return *it.sub, true
}

// parentRefID is the ID of the item holding the parent type of a decoded
// item with parentKind parentByID.
func (it *Item) parentRefID() ID { return it.origin }

// lastID is the ID of the item's last clock unit.
func (it *Item) lastID() ID { return ID{it.id.Client, it.id.Clock + uint64(it.length) - 1} }

func (it *Item) countable() bool { return it.kind == kindItem && it.content.countable() }

func compareOptIDs(a ID, hasA bool, b ID, hasB bool) bool {
	return hasA == hasB && (!hasA || a == b)
}

// splitItem cuts it at diff clock units and returns the new right half, which
// the caller must insert into the client's struct list.
func splitItem(txn *Transaction, it *Item, diff int) *Item {
	if it.kind == kindGC {
		r := &Item{id: ID{it.id.Client, it.id.Clock + uint64(diff)}, length: it.length - diff, kind: kindGC, deleted: true}
		it.length = diff
		return r
	}
	r := &Item{
		id:             ID{it.id.Client, it.id.Clock + uint64(diff)},
		length:         it.length - diff,
		left:           it,
		origin:         ID{it.id.Client, it.id.Clock + uint64(diff) - 1},
		hasOrigin:      true,
		right:          it.right,
		rightOrigin:    it.rightOrigin,
		hasRightOrigin: it.hasRightOrigin,
		parent:         it.parent,
		parentKind:     it.parentKind,
		sub:            it.sub,
		content:        it.content.splice(diff),
		deleted:        it.deleted,
		keep:           it.keep,
	}
	it.right = r
	if r.right != nil {
		r.right.left = r
	}
	if txn != nil {
		txn.mergeStructs = append(txn.mergeStructs, r)
	}
	// The right half becomes the current map value if it is the last one.
	if r.sub != nil && r.right == nil && r.parent != nil {
		r.parent.setMapping(*r.sub, r)
	}
	it.length = diff
	return r
}

// tryMerge appends right to it when they are the continuation of one insert
// (same client, adjacent clocks and neighbours), to keep the store compact.
func (it *Item) tryMerge(right *Item) bool {
	if it.kind != right.kind || it.id.Client != right.id.Client ||
		it.id.Clock+uint64(it.length) != right.id.Clock || it.deleted != right.deleted {
		return false
	}
	if it.kind == kindGC {
		it.length += right.length
		return true
	}
	if it.kind != kindItem || !right.hasOrigin || right.origin != it.lastID() || it.right != right ||
		!compareOptIDs(it.rightOrigin, it.hasRightOrigin, right.rightOrigin, right.hasRightOrigin) {
		return false
	}
	if !it.content.mergeWith(right.content) {
		return false
	}
	if right.keep {
		it.keep = true
	}
	it.right = right.right
	if it.right != nil {
		it.right.left = it
	}
	it.length += right.length
	return true
}

// delete marks the item deleted and records it in the transaction.
func (it *Item) delete(txn *Transaction) {
	if it.deleted || it.kind != kindItem {
		return
	}
	p := it.parent
	if it.countable() && it.sub == nil {
		p.length -= it.length
	}
	it.deleted = true
	txn.deleteSet.add(it.id.Client, it.id.Clock, uint64(it.length))
	key, hasKey := it.key()
	txn.addChanged(p, key, hasKey)
	if ct, ok := it.content.(*ContentType); ok {
		ct.Type.deleteChildren(txn)
	}
}

// write encodes the struct from offset onward (v1 format).
func (it *Item) write(e *Encoder, offset int) {
	switch it.kind {
	case kindGC:
		e.WriteUint8(refGC)
		e.WriteVarUint(uint64(it.length - offset))
		return
	case kindSkip:
		e.WriteUint8(refSkip)
		e.WriteVarUint(uint64(it.length - offset))
		return
	}
	origin, hasOrigin := it.origin, it.hasOrigin
	if offset > 0 {
		origin, hasOrigin = ID{it.id.Client, it.id.Clock + uint64(offset) - 1}, true
	}
	info := it.content.ref() & 0x1f
	if hasOrigin {
		info |= 0x80
	}
	if it.hasRightOrigin {
		info |= 0x40
	}
	if it.sub != nil {
		info |= 0x20
	}
	e.WriteUint8(info)
	if hasOrigin {
		e.WriteVarUint(origin.Client)
		e.WriteVarUint(origin.Clock)
	}
	if it.hasRightOrigin {
		e.WriteVarUint(it.rightOrigin.Client)
		e.WriteVarUint(it.rightOrigin.Clock)
	}
	if !hasOrigin && !it.hasRightOrigin {
		switch {
		case it.parent != nil && it.parent.item == nil:
			// A root type, or the root placeholder of a decoded item.
			e.WriteVarUint(1)
			e.WriteVarString(it.parent.name)
		case it.parent != nil:
			e.WriteVarUint(0)
			e.WriteVarUint(it.parent.item.id.Client)
			e.WriteVarUint(it.parent.item.id.Clock)
		default:
			id := it.parentRefID()
			e.WriteVarUint(0)
			e.WriteVarUint(id.Client)
			e.WriteVarUint(id.Clock)
		}
		if it.sub != nil {
			e.WriteVarString(*it.sub)
		}
	}
	it.content.write(e, offset)
}

// ID returns the ID of the struct's first clock unit.
func (it *Item) ID() ID { return it.id }

// Len returns the number of clock units the struct spans.
func (it *Item) Len() int { return it.length }

// Content returns the item's content (nil for GC and Skip structs).
func (it *Item) Content() Content { return it.content }
