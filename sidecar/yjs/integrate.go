package yjs

import (
	"errors"
	"fmt"
	"sort"
)

// ErrInternal reports a broken invariant while applying an update.
var ErrInternal = errors.New("yjs: internal error applying update (discard the Doc and resync)")

// ApplyUpdate decodes a v1 update and integrates it in one remote
// transaction. The update is fully decoded first, so a malformed update
// changes nothing. Structs whose dependencies are missing, and deletions of
// structs not yet received, are kept and retried with later updates; applying
// the same update twice is a no-op.
//
// An internal error (a bug, never expected) is returned as ErrInternal
// instead of crashing the process; the Doc must then be discarded and the
// document synced afresh.
func (d *Doc) ApplyUpdate(update []byte, origin any) (err error) {
	u, err := DecodeUpdate(update)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrInternal, r)
		}
	}()
	d.transact(origin, false, func(txn *Transaction) {
		d.integrateAll(txn, u.Structs)
		ds := d.store.pendingDs
		ds.merge(u.Deletes)
		ds.sortAndMerge()
		d.store.pendingDs = d.applyDeleteSet(txn, ds)
	})
	return nil
}

// integrateAll integrates the new structs, then retries the pending ones
// (as one batch) for as long as that makes progress. Like yrs, the new update
// is integrated on its own first, so structs waiting in pending do not hold
// up a new update's structs of the same client.
func (d *Doc) integrateAll(txn *Transaction, refs map[uint64][]*Item) {
	s := d.store
	progress := false
	if len(refs) > 0 {
		rest, n := d.integrateStructs(txn, refs)
		progress = n > 0
		for c, list := range rest {
			if prev := s.pending[c]; len(prev) > 0 {
				list = append(append([]*Item{}, prev...), list...)
				sort.SliceStable(list, func(i, j int) bool { return list[i].id.Clock < list[j].id.Clock })
			}
			s.pending[c] = list
		}
	}
	for progress && len(s.pending) > 0 {
		all := s.pending
		s.pending = map[uint64][]*Item{}
		var n int
		s.pending, n = d.integrateStructs(txn, all)
		progress = n > 0
	}
}

// refCursor walks one client's structs in clock order.
type refCursor struct {
	i    int
	refs []*Item
}

// integrateStructs integrates structs in dependency order. It follows one
// client's structs in clock order; when a struct depends on a struct of
// another client that is still to come in this batch, it descends into that
// client (keeping a stack) and resumes afterwards. A struct is integrated as
// soon as its own dependencies are present, even past a hole in its client's
// clocks. Structs that wait for something not in this batch are returned,
// with the number of structs integrated.
func (d *Doc) integrateStructs(txn *Transaction, all map[uint64][]*Item) (rest map[uint64][]*Item, integrated int) {
	s := d.store
	cursors := make(map[uint64]*refCursor, len(all))
	ids := make([]uint64, 0, len(all))
	for c, refs := range all {
		if len(refs) > 0 {
			cursors[c] = &refCursor{refs: refs}
			ids = append(ids, c)
		}
	}
	// Highest client first, like Yjs (the order only affects speed).
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	rest = map[uint64][]*Item{}
	var stack []*Item
	stacked := map[uint64]int{} // clients with a struct on the stack

	nextCursor := func() *refCursor {
		for len(ids) > 0 {
			c := cursors[ids[len(ids)-1]]
			if c != nil && c.i < len(c.refs) {
				return c
			}
			ids = ids[:len(ids)-1]
		}
		return nil
	}
	// requeue schedules the not yet examined tail of a struct that was cut.
	requeue := func(it *Item) {
		if cur := cursors[it.id.Client]; cur != nil {
			cur.refs = append(cur.refs[:cur.i], append([]*Item{it}, cur.refs[cur.i:]...)...)
		} else {
			rest[it.id.Client] = append(rest[it.id.Client], it)
		}
	}
	push := func(it *Item) {
		stack = append(stack, it)
		stacked[it.id.Client]++
	}
	// parkStack moves every client on the stack to rest: its stacked structs
	// and all its structs not yet examined. Like yrs, a client's structs
	// after one that waits for a missing dependency wait too; only gaps in
	// its clocks are skipped over.
	parkStack := func() {
		for _, it := range stack {
			c := it.id.Client
			rest[c] = append(rest[c], it)
			if cur := cursors[c]; cur != nil {
				rest[c] = append(rest[c], cur.refs[cur.i:]...)
				cur.refs, cur.i = nil, 0
				delete(cursors, c)
			}
		}
		stack = stack[:0]
		clear(stacked)
	}

	cur := nextCursor()
	if cur == nil {
		return rest, 0
	}
	head := cur.refs[cur.i]
	cur.i++
	for {
		if head.kind != kindSkip { // a Skip in an update only says "not included"
			start := head.id.Clock
			p, q, absent := s.firstAbsent(head.id.Client, start, start+uint64(head.length))
			switch {
			case !absent:
				// Already integrated (duplicate delivery).
			case stacked[head.id.Client] > 0:
				// An earlier struct of this client is still waiting.
				push(head)
				parkStack()
			default:
				if q < start+uint64(head.length) {
					// Only [p, q) is missing here; the tail is examined separately.
					requeue(cutRef(head, int(q-start)))
				}
				if missing, ok := d.getMissing(txn, head); ok {
					push(head)
					if mc := cursors[missing.Client]; mc != nil && mc.i < len(mc.refs) {
						// The dependency may come later in this batch: integrate it first.
						head = mc.refs[mc.i]
						mc.i++
						continue
					}
					parkStack()
				} else {
					d.integrateItem(txn, head, int(p-start))
					integrated++
				}
			}
		}
		switch {
		case len(stack) > 0:
			head = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			stacked[head.id.Client]--
		case cur != nil && cur.i < len(cur.refs):
			head = cur.refs[cur.i]
			cur.i++
		default:
			if cur = nextCursor(); cur == nil {
				for c, list := range rest {
					kept := list[:0]
					for _, it := range list {
						if it.kind != kindSkip { // a gap needs no waiting
							kept = append(kept, it)
						}
					}
					sort.SliceStable(kept, func(i, j int) bool { return kept[i].id.Clock < kept[j].id.Clock })
					if len(kept) == 0 {
						delete(rest, c)
					} else {
						rest[c] = kept
					}
				}
				return rest, integrated
			}
			head = cur.refs[cur.i]
			cur.i++
		}
	}
}

// cutRef cuts a decoded, not yet integrated struct at diff and returns the
// right part.
func cutRef(it *Item, diff int) *Item {
	r := &Item{id: ID{it.id.Client, it.id.Clock + uint64(diff)}, length: it.length - diff, kind: it.kind, deleted: it.deleted}
	if it.kind == kindItem {
		r.origin, r.hasOrigin = ID{it.id.Client, r.id.Clock - 1}, true
		r.rightOrigin, r.hasRightOrigin = it.rightOrigin, it.hasRightOrigin
		// The right part's parent and key are those of its left neighbour.
		r.parentKind = parentNone
		r.content = it.content.splice(diff)
	}
	it.length = diff
	return r
}

// getMissing returns a dependency (origin, right origin or parent) the
// store does not hold yet. When everything is present it resolves
// the item's neighbours and parent, splitting items so that the item's
// origin ends and its right origin starts a struct.
func (d *Doc) getMissing(txn *Transaction, it *Item) (ID, bool) {
	if it.kind != kindItem {
		return ID{}, false
	}
	s := d.store
	if it.hasOrigin && !s.has(it.origin) {
		return it.origin, true
	}
	if it.hasRightOrigin && !s.has(it.rightOrigin) {
		return it.rightOrigin, true
	}
	if it.parentKind == parentByID && !s.has(it.parentRefID()) {
		return it.parentRefID(), true
	}
	if it.hasOrigin {
		it.left = s.cleanEnd(txn, it.origin)
		it.origin = it.left.lastID()
	}
	if it.hasRightOrigin {
		it.right = s.cleanStart(txn, it.rightOrigin)
		it.rightOrigin = it.right.id
	}
	var parentID ID
	if it.parentKind == parentByID {
		parentID = it.parentRefID()
		it.origin = ID{} // it was only holding the parent's ID
	}
	switch {
	case (it.left != nil && it.left.kind == kindGC) || (it.right != nil && it.right.kind == kindGC):
		// A neighbour was garbage collected, so the parent was deleted: this becomes GC.
		it.parent = nil
	case it.parentKind == parentNone || it.parentKind == parentBranch:
		// The parent (and map key) are those of a neighbour.
		if it.left != nil {
			it.parent, it.sub = it.left.parent, it.left.sub
		} else if it.right != nil {
			it.parent, it.sub = it.right.parent, it.right.sub
		}
	case it.parentKind == parentRoot:
		it.parent = d.get(it.parent.name) // replaces the placeholder
	case it.parentKind == parentByID:
		it.parent = nil
		if p := s.find(parentID); p != nil && p.kind == kindItem {
			if ct, ok := p.content.(*ContentType); ok {
				it.parent = ct.Type
			}
		}
	}
	it.parentKind = parentBranch
	return ID{}, false
}

// integrateItem links a struct into the document (Yjs Item.integrate). The
// first offset clock units are already present and are cut off.
func (d *Doc) integrateItem(txn *Transaction, it *Item, offset int) {
	s := d.store
	if offset > 0 {
		it.id.Clock += uint64(offset)
		it.length -= offset
		if it.kind == kindItem {
			it.left = s.cleanEnd(txn, ID{it.id.Client, it.id.Clock - 1})
			it.origin, it.hasOrigin = it.left.lastID(), true
			it.content = it.content.splice(offset)
		}
	}
	if it.id.Clock < txn.beforeEnd[it.id.Client] {
		if txn.filledHoles == nil {
			txn.filledHoles = map[uint64]bool{}
		}
		txn.filledHoles[it.id.Client] = true
	}
	if it.kind == kindGC {
		s.put(it)
		return
	}
	if it.parent == nil {
		// No live parent: keep only the clock range.
		it.kind, it.content, it.deleted = kindGC, nil, true
		it.left, it.right = nil, nil
		s.put(it)
		return
	}
	parent := it.parent
	left := it.left
	right := it.right
	var cur *Item // the key's current item
	if it.sub != nil {
		if cur = parent.mapping[*it.sub]; cur != nil {
			it.sub = cur.sub // share the key
		}
	}
	if (left == nil && (right == nil || right.left != nil)) || (left != nil && left.right != right) {
		// Concurrent inserts between left and right: order them (YATA).
		var o *Item
		switch {
		case left != nil:
			o = left.right
		case it.sub != nil:
			o = cur
			for o != nil && o.left != nil {
				o = o.left
			}
		default:
			o = parent.start
		}
		conflicting := map[*Item]bool{}
		beforeOrigin := map[*Item]bool{}
		for o != nil && o != right {
			beforeOrigin[o] = true
			conflicting[o] = true
			if compareOptIDs(it.origin, it.hasOrigin, o.origin, o.hasOrigin) {
				// Same left origin: the lower client goes first.
				if o.id.Client < it.id.Client {
					left = o
					clear(conflicting)
				} else if compareOptIDs(it.rightOrigin, it.hasRightOrigin, o.rightOrigin, o.hasRightOrigin) {
					break
				}
			} else if o.hasOrigin {
				oo := s.find(o.origin)
				if oo == nil || !beforeOrigin[oo] {
					break
				}
				if !conflicting[oo] {
					left = o
					clear(conflicting)
				}
			} else {
				break
			}
			o = o.right
		}
		it.left = left
	}
	if it.left != nil {
		it.right = it.left.right
		it.left.right = it
	} else {
		var r *Item
		if it.sub != nil {
			r = cur
			for r != nil && r.left != nil {
				r = r.left
			}
		} else {
			r = parent.start
			parent.start = it
		}
		it.right = r
	}
	if it.right != nil {
		it.right.left = it
	} else if it.sub != nil {
		// The rightmost item of a key is the map's value; the previous one dies.
		parent.setMapping(*it.sub, it)
		if it.left != nil {
			it.left.delete(txn)
		}
	}
	if it.sub == nil && it.countable() && !it.deleted {
		parent.length += it.length
	}
	s.put(it)
	if ct, ok := it.content.(*ContentType); ok {
		ct.Type.integrate(d, it)
	}
	key, hasKey := it.key()
	txn.addChanged(parent, key, hasKey)
	if (parent.item != nil && parent.item.deleted) || (hasKey && it.right != nil) {
		it.delete(txn)
	}
}

// applyDeleteSet deletes the ranges of ds that the store holds and returns
// the rest (clocks in holes or past the end) to retry later. ds must be sorted.
func (d *Doc) applyDeleteSet(txn *Transaction, ds DeleteSet) DeleteSet {
	s := d.store
	unapplied := DeleteSet{}
	for client, ranges := range ds {
		end := s.end(client)
		for _, r := range ranges {
			clock, rEnd := r.Clock, r.Clock+r.Len
			if clock >= end {
				unapplied.add(client, clock, r.Len)
				continue
			}
			if rEnd > end {
				unapplied.add(client, end, rEnd-end)
				rEnd = end
			}
			structs := s.clients[client]
			idx := findIndex(structs, clock)
			if it := structs[idx]; it.kind == kindItem && !it.deleted && it.id.Clock < clock {
				s.insertAt(client, idx+1, splitItem(txn, it, int(clock-it.id.Clock)))
				idx++
			}
			for {
				structs = s.clients[client]
				if idx >= len(structs) {
					break
				}
				it := structs[idx]
				idx++
				itEnd := it.id.Clock + uint64(it.length)
				if it.id.Clock >= rEnd {
					break
				}
				switch {
				case it.kind == kindSkip:
					from := max(it.id.Clock, clock)
					unapplied.add(client, from, min(itEnd, rEnd)-from)
				case !it.deleted:
					if rEnd < itEnd {
						s.insertAt(client, idx, splitItem(txn, it, int(rEnd-it.id.Clock)))
					}
					it.delete(txn)
				}
			}
		}
	}
	unapplied.sortAndMerge()
	return unapplied
}
