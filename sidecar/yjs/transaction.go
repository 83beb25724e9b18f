package yjs

import (
	"fmt"
	"sort"
	"strings"
)

// Transaction groups changes. Local edits made inside one Transact call
// become one v1 update; a remote update is applied in one transaction too.
// When it ends, observers learn which types changed (ChangedPaths) and update
// listeners receive the encoded update.
type Transaction struct {
	doc *Doc
	// Origin is the value passed to TransactWithOrigin or ApplyUpdate.
	Origin any
	// Local is true for edits made through this Doc's API.
	Local bool

	deleteSet    DeleteSet
	beforeState  StateVector // state vectors (up to the first hole)
	afterState   StateVector
	beforeEnd    StateVector // end clocks (past holes)
	afterEnd     StateVector
	filledHoles  map[uint64]bool // clients that got structs inside holes
	changed      map[*Branch]map[changeKey]struct{}
	mergeStructs []*Item
}

// changeKey is a map key that changed, or the sequence part (isKey false).
type changeKey struct {
	key   string
	isKey bool
}

// Doc returns the transaction's document.
func (t *Transaction) Doc() *Doc { return t.doc }

// addChanged records that type b changed (at map key key if hasKey). Types
// created in this transaction are not reported: their creation is a change
// of their parent.
func (t *Transaction) addChanged(b *Branch, key string, hasKey bool) {
	if b == nil {
		return
	}
	if it := b.item; it != nil && (it.id.Clock >= t.beforeEnd[it.id.Client] || it.deleted) {
		return
	}
	m := t.changed[b]
	if m == nil {
		m = map[changeKey]struct{}{}
		t.changed[b] = m
	}
	m[changeKey{key, hasKey}] = struct{}{}
}

// Change describes one changed type: where it is and which of its map keys
// changed (List is true when its sequence part changed).
type Change struct {
	// Path from the root: the root name, then map keys (string) and array
	// indexes (int) as of the end of the transaction.
	Path []any
	Keys []string
	List bool
}

// Changes lists the types changed by the transaction, sorted by path. Types
// that are no longer reachable (deleted) are left out.
func (t *Transaction) Changes() []Change {
	var out []Change
	for b, keys := range t.changed {
		if isUnreachable(b) {
			continue
		}
		c := Change{Path: b.path()}
		for k := range keys {
			if k.isKey {
				c.Keys = append(c.Keys, k.key)
			} else {
				c.List = true
			}
		}
		sort.Strings(c.Keys)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return pathString(out[i].Path) < pathString(out[j].Path) })
	return out
}

func isUnreachable(b *Branch) bool {
	for cur := b; cur.item != nil; cur = cur.item.parent {
		if cur.item.deleted || cur.item.parent == nil {
			return true
		}
	}
	return false
}

func pathString(p []any) string {
	parts := make([]string, len(p))
	for i, x := range p {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, "\x00")
}

// Transact runs fn in a local transaction. Nested calls join the outer
// transaction.
func (d *Doc) Transact(fn func(txn *Transaction)) { d.transact(nil, true, fn) }

// TransactWithOrigin is Transact with an origin visible to observers.
func (d *Doc) TransactWithOrigin(origin any, fn func(txn *Transaction)) {
	d.transact(origin, true, fn)
}

func (d *Doc) transact(origin any, local bool, fn func(txn *Transaction)) {
	if d.txn != nil {
		fn(d.txn)
		return
	}
	txn := &Transaction{
		doc:         d,
		Origin:      origin,
		Local:       local,
		deleteSet:   DeleteSet{},
		beforeState: d.store.stateVector(),
		beforeEnd:   d.store.endVector(),
		changed:     map[*Branch]map[changeKey]struct{}{},
	}
	d.txn = txn
	defer func() {
		d.txn = nil
		d.commit(txn)
	}()
	fn(txn)
}

// commit finishes a transaction: notify observers, drop deleted content,
// merge adjacent structs and emit the update.
func (d *Doc) commit(txn *Transaction) {
	txn.deleteSet.sortAndMerge()
	txn.afterState = d.store.stateVector()
	txn.afterEnd = d.store.endVector()
	for _, fn := range d.afterTxnFns {
		fn(txn)
	}
	s := d.store
	if d.gcDeleted {
		for client, ranges := range txn.deleteSet {
			structs := s.clients[client]
			for _, r := range ranges {
				for i := findIndex(structs, r.Clock); i < len(structs) && structs[i].id.Clock < r.Clock+r.Len; i++ {
					it := structs[i]
					if it.kind == kindItem && it.deleted && !it.keep {
						if _, isType := it.content.(*ContentType); !isType {
							it.content = &ContentDeleted{it.length}
						}
					}
				}
			}
		}
	}
	// Merge structs touched by deletions, new structs and split points.
	for client, ranges := range txn.deleteSet {
		for ri := len(ranges) - 1; ri >= 0; ri-- {
			r := ranges[ri]
			structs := s.clients[client]
			si := min(len(structs)-1, 1+findIndex(structs, r.Clock+r.Len-1))
			for si > 0 && structs[si].id.Clock >= r.Clock {
				var merged int
				structs, merged = tryMergeWithLefts(structs, si)
				si -= 1 + merged
			}
			s.clients[client] = structs
		}
	}
	for client, after := range txn.afterEnd {
		if txn.beforeEnd[client] == after && txn.beforeState[client] == txn.afterState[client] && !txn.filledHoles[client] {
			continue
		}
		before := txn.beforeState[client]
		structs := s.clients[client]
		first := max(findIndex(structs, before), 1)
		for i := len(structs) - 1; i >= first; {
			var merged int
			structs, merged = tryMergeWithLefts(structs, i)
			i -= 1 + merged
		}
		s.clients[client] = structs
	}
	for _, it := range txn.mergeStructs {
		client := it.id.Client
		structs := s.clients[client]
		idx := findIndex(structs, it.id.Clock)
		if idx >= len(structs) {
			continue
		}
		if idx+1 < len(structs) {
			structs, _ = tryMergeWithLefts(structs, idx+1)
		}
		if idx > 0 && idx < len(structs) {
			structs, _ = tryMergeWithLefts(structs, idx)
		}
		s.clients[client] = structs
	}
	// Someone else wrote with our client ID: pick a new one so that our
	// future edits cannot collide with theirs (Yjs does the same).
	if !txn.Local && txn.afterEnd[d.clientID] != txn.beforeEnd[d.clientID] {
		d.clientID = randomClientID()
	}
	if len(d.updateFns) > 0 {
		if update, ok := txn.encodeUpdate(); ok {
			for _, fn := range d.updateFns {
				fn(update, txn)
			}
		}
	}
}

// tryMergeWithLefts merges structs[pos] into its left neighbours as far as
// possible and returns the shortened list and how many structs were merged.
func tryMergeWithLefts(structs []*Item, pos int) ([]*Item, int) {
	i := pos
	for i > 0 {
		left, right := structs[i-1], structs[i]
		if left.deleted != right.deleted || !left.tryMerge(right) {
			break
		}
		if right.sub != nil && right.parent != nil && right.parent.mapping[*right.sub] == right {
			right.parent.mapping[*right.sub] = left
		}
		i--
	}
	merged := pos - i
	if merged > 0 {
		structs = append(structs[:i+1], structs[pos+1:]...)
	}
	return structs, merged
}

// encodeUpdate writes the transaction's update: the structs added since
// beforeState and its delete set. ok is false if nothing changed. A client
// with holes is written from its first hole (a superset, which is harmless).
func (t *Transaction) encodeUpdate() ([]byte, bool) {
	changed := map[uint64]uint64{}
	for c, after := range t.afterEnd {
		if after != t.beforeEnd[c] || t.afterState[c] != t.beforeState[c] || t.filledHoles[c] {
			changed[c] = t.beforeState[c]
		}
	}
	if len(changed) == 0 && len(t.deleteSet) == 0 {
		return nil, false
	}
	e := NewEncoder()
	clients := sortedClientsDesc(changed)
	e.WriteVarUint(uint64(len(clients)))
	for _, c := range clients {
		writeStructs(e, t.doc.store.clients[c], c, changed[c])
	}
	writeDeleteSet(e, t.deleteSet)
	return e.Bytes(), true
}
