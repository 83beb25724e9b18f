package yjs

import "fmt"

// Text is a YText. Indexes and lengths are in UTF-16 code units, as in Yjs
// and the JupyterLab frontends; use UTF16Len to convert from Go strings.
// Formatting attributes and embeds received from peers are kept (formats do
// not count towards positions) but cannot be created here.
type Text struct{ b *Branch }

// Branch returns the underlying type state.
func (t *Text) Branch() *Branch { return t.b }

// String returns the text.
func (t *Text) String() string { return t.b.textString() }

// Len returns the length in UTF-16 code units.
func (t *Text) Len() int { return t.b.length }

// ToJSON returns the text (YText.toJSON is its string).
func (t *Text) ToJSON() string { return t.b.textString() }

// Insert inserts s at UTF-16 index. An index inside a surrogate pair is
// moved before the pair: splitting it would turn both halves into U+FFFD.
func (t *Text) Insert(index int, s string) error {
	if t.b.doc == nil {
		return errNotAttached
	}
	if index < 0 || index > t.b.length {
		return fmt.Errorf("%w: insert at %d, length %d", ErrIndexOutOfRange, index, t.b.length)
	}
	if s == "" {
		return nil
	}
	if t.b.midSurrogate(index) {
		index-- // never split a character: insert before it
	}
	t.b.doc.transact(nil, true, func(txn *Transaction) {
		left, right := t.b.textPosition(txn, index)
		// Like Yjs, insert after deleted items that follow the position.
		for right != nil && right.deleted {
			left, right = right, right.right
		}
		t.b.newItem(txn, left, right, "", false, &ContentString{utf16FromString(s)})
	})
	return nil
}

// Append inserts s at the end.
func (t *Text) Append(s string) error { return t.Insert(t.b.length, s) }

// Delete removes length UTF-16 code units from index.
func (t *Text) Delete(index, length int) error {
	if t.b.doc == nil {
		return errNotAttached
	}
	if index < 0 || length < 0 || index+length > t.b.length {
		return fmt.Errorf("%w: delete %d+%d, length %d", ErrIndexOutOfRange, index, length, t.b.length)
	}
	if length == 0 {
		return nil
	}
	// Never split a character: widen the range to whole surrogate pairs.
	if t.b.midSurrogate(index) {
		index--
		length++
	}
	if t.b.midSurrogate(index + length) {
		length++
	}
	t.b.doc.transact(nil, true, func(txn *Transaction) { t.b.listDelete(txn, index, length) })
	return nil
}

// textPosition returns the neighbours of UTF-16 position index, splitting
// the item that contains it.
func (b *Branch) textPosition(txn *Transaction, index int) (left, right *Item) {
	right = b.start
	for right != nil && index > 0 {
		if !right.deleted && right.countable() {
			if index < right.length {
				b.doc.store.cleanStart(txn, ID{right.id.Client, right.id.Clock + uint64(index)})
			}
			index -= right.length
		}
		left, right = right, right.right
	}
	return left, right
}

// midSurrogate reports whether UTF-16 position index falls between the two
// halves of a surrogate pair.
func (b *Branch) midSurrogate(index int) bool {
	if index <= 0 || index >= b.length {
		return false
	}
	hi, ok1 := b.unitAt(index - 1)
	lo, ok2 := b.unitAt(index)
	return ok1 && ok2 && hi >= 0xD800 && hi <= 0xDBFF && lo >= 0xDC00 && lo <= 0xDFFF
}

// unitAt returns the visible UTF-16 code unit at index.
func (b *Branch) unitAt(index int) (uint16, bool) {
	for it := b.start; it != nil; it = it.right {
		if it.deleted || !it.countable() {
			continue
		}
		if index < it.length {
			if s, ok := it.content.(*ContentString); ok {
				return s.Str[index], true
			}
			return 0, false
		}
		index -= it.length
	}
	return 0, false
}
