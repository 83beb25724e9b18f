package yjs

import (
	"errors"
	"fmt"
	"sort"
)

// Prelim values create nested shared types when inserted into an Array or
// set in a Map. The new type and its initial content are written in the same
// transaction (so they travel in one update), as a YNotebook cell requires.
type (
	// ArrayPrelim creates a YArray holding these values.
	ArrayPrelim []any
	// MapPrelim creates a YMap holding these entries.
	MapPrelim map[string]any
	// TextPrelim creates a YText holding this string.
	TextPrelim string
)

// ErrIndexOutOfRange is returned for an index or length past the end of a type.
var ErrIndexOutOfRange = errors.New("yjs: index out of range")

var errNotAttached = errors.New("yjs: type is not attached to a document")

// Array is a YArray: an ordered list of values and nested types.
type Array struct{ b *Branch }

// Branch returns the underlying type state.
func (a *Array) Branch() *Branch { return a.b }

// Len returns the number of elements.
func (a *Array) Len() int { return a.b.length }

// Get returns the element at index. Nested types come back as *Array, *Map
// or *Text.
func (a *Array) Get(index int) (any, bool) {
	if index < 0 {
		return nil, false
	}
	for it := a.b.start; it != nil; it = it.right {
		if it.deleted || !it.countable() {
			continue
		}
		if index < it.length {
			return wrapValue(it.content.values()[index]), true
		}
		index -= it.length
	}
	return nil, false
}

// Values returns all elements.
func (a *Array) Values() []any { return a.b.listValues() }

// ToJSON returns the elements converted to plain values.
func (a *Array) ToJSON() []any { return valuesToJSON(a.b.listValues()) }

// Insert inserts values at index (0 ≤ index ≤ Len). Plain values must be
// encodable as lib0 Any; []byte becomes binary content; ArrayPrelim,
// MapPrelim and TextPrelim create nested types.
func (a *Array) Insert(index int, values ...any) error {
	if a.b.doc == nil {
		return errNotAttached
	}
	if err := validateValues(values); err != nil {
		return err
	}
	if index < 0 || index > a.b.length {
		return fmt.Errorf("%w: insert at %d, length %d", ErrIndexOutOfRange, index, a.b.length)
	}
	var err error
	a.b.doc.transact(nil, true, func(txn *Transaction) {
		err = a.b.listInsert(txn, index, values)
	})
	return err
}

// Push appends values after the last element.
func (a *Array) Push(values ...any) error {
	if a.b.doc == nil {
		return errNotAttached
	}
	if err := validateValues(values); err != nil {
		return err
	}
	var err error
	a.b.doc.transact(nil, true, func(txn *Transaction) {
		var last *Item
		for it := a.b.start; it != nil; it = it.right {
			last = it
		}
		err = a.b.insertValuesAfter(txn, last, values)
	})
	return err
}

// Delete removes length elements starting at index.
func (a *Array) Delete(index, length int) error {
	if a.b.doc == nil {
		return errNotAttached
	}
	if index < 0 || length < 0 || index+length > a.b.length {
		return fmt.Errorf("%w: delete %d+%d, length %d", ErrIndexOutOfRange, index, length, a.b.length)
	}
	if length == 0 {
		return nil
	}
	a.b.doc.transact(nil, true, func(txn *Transaction) {
		a.b.listDelete(txn, index, length)
	})
	return nil
}

// listInsert inserts after the element before index, splitting an item if
// index falls inside it.
func (b *Branch) listInsert(txn *Transaction, index int, values []any) error {
	if index == 0 {
		return b.insertValuesAfter(txn, nil, values)
	}
	n := b.start
	for ; n != nil; n = n.right {
		if !n.deleted && n.countable() {
			if index <= n.length {
				if index < n.length {
					b.doc.store.cleanStart(txn, ID{n.id.Client, n.id.Clock + uint64(index)})
				}
				break
			}
			index -= n.length
		}
	}
	return b.insertValuesAfter(txn, n, values)
}

// insertValuesAfter inserts values after left (nil: at the start). Runs of
// plain values share one ContentAny item; each nested type or binary gets
// its own item.
func (b *Branch) insertValuesAfter(txn *Transaction, left *Item, values []any) error {
	right := b.start
	if left != nil {
		right = left.right
	}
	var run []any
	flush := func() {
		if len(run) > 0 {
			left = b.newItem(txn, left, right, "", false, &ContentAny{run})
			run = nil
		}
	}
	for _, v := range values {
		switch x := v.(type) {
		case []byte:
			flush()
			left = b.newItem(txn, left, right, "", false, &ContentBinary{append([]byte{}, x...)})
		case ArrayPrelim, MapPrelim, TextPrelim:
			flush()
			var nb *Branch
			left, nb = b.newTypeItem(txn, left, right, "", false, x)
			if err := nb.fillPrelim(txn, x); err != nil {
				return err
			}
		default:
			nv, err := normalizeAny(x)
			if err != nil {
				return err
			}
			run = append(run, nv)
		}
	}
	flush()
	return nil
}

func (b *Branch) newTypeItem(txn *Transaction, left, right *Item, key string, hasKey bool, p any) (*Item, *Branch) {
	ref := TypeArray
	switch p.(type) {
	case MapPrelim:
		ref = TypeMap
	case TextPrelim:
		ref = TypeText
	}
	nb := newBranch(b.doc, ref)
	return b.newItem(txn, left, right, key, hasKey, &ContentType{nb}), nb
}

// fillPrelim writes the initial content of a type just created from p.
func (b *Branch) fillPrelim(txn *Transaction, p any) error {
	switch x := p.(type) {
	case ArrayPrelim:
		return b.insertValuesAfter(txn, nil, x)
	case MapPrelim:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := b.mapSet(txn, k, x[k]); err != nil {
				return err
			}
		}
	case TextPrelim:
		if x != "" {
			b.newItem(txn, nil, nil, "", false, &ContentString{utf16FromString(string(x))})
		}
	}
	return nil
}

// newItem creates a local item between left and right and integrates it.
func (b *Branch) newItem(txn *Transaction, left, right *Item, key string, hasKey bool, c Content) *Item {
	d := b.doc
	it := &Item{
		id:         ID{d.clientID, d.store.end(d.clientID)},
		length:     c.length(),
		kind:       kindItem,
		left:       left,
		right:      right,
		parent:     b,
		parentKind: parentBranch,
		content:    c,
	}
	if hasKey {
		if left != nil && left.sub != nil && *left.sub == key {
			it.sub = left.sub
		} else {
			k := key // allocated only for map entries
			it.sub = &k
		}
	}
	if left != nil {
		it.origin, it.hasOrigin = left.lastID(), true
	}
	if right != nil {
		it.rightOrigin, it.hasRightOrigin = right.id, true
	}
	d.integrateItem(txn, it, 0)
	return it
}

// listDelete deletes length countable units from index.
func (b *Branch) listDelete(txn *Transaction, index, length int) {
	s := b.doc.store
	n := b.start
	for ; n != nil && index > 0; n = n.right {
		if !n.deleted && n.countable() {
			if index < n.length {
				s.cleanStart(txn, ID{n.id.Client, n.id.Clock + uint64(index)})
			}
			index -= n.length
		}
	}
	for ; length > 0 && n != nil; n = n.right {
		if !n.deleted && n.countable() {
			if length < n.length {
				s.cleanStart(txn, ID{n.id.Client, n.id.Clock + uint64(length)})
			}
			n.delete(txn)
			length -= n.length
		}
	}
}

// validateValues checks that values can be stored before anything changes.
func validateValues(values []any) error {
	for _, v := range values {
		switch x := v.(type) {
		case []byte, TextPrelim:
		case ArrayPrelim:
			if err := validateValues(x); err != nil {
				return err
			}
		case MapPrelim:
			for _, e := range x {
				if err := validateValues([]any{e}); err != nil {
					return err
				}
			}
		default:
			if _, err := normalizeAny(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalizeAny returns v as a peer will decode it (integers as int64, other
// numbers as float64, ...), so local and remote views agree.
func normalizeAny(v any) (any, error) {
	switch v.(type) {
	case nil, bool, string:
		return v, nil
	}
	e := NewEncoder()
	if err := e.WriteAny(v); err != nil {
		return nil, err
	}
	return NewDecoder(e.Bytes()).ReadAny()
}
