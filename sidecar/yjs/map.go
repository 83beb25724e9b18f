package yjs

// Map is a YMap: string keys to values or nested types. Concurrent writes to
// one key resolve to the same winner on every peer (the rightmost item of the
// key's list in YATA order).
type Map struct{ b *Branch }

// Branch returns the underlying type state.
func (m *Map) Branch() *Branch { return m.b }

// Get returns the value of key. Nested types come back as *Array, *Map or *Text.
func (m *Map) Get(key string) (any, bool) { return m.b.mapValue(key) }

// Has reports whether key is set.
func (m *Map) Has(key string) bool {
	it := m.b.mapping[key]
	return it != nil && !it.deleted
}

// Keys returns the keys that are set, sorted.
func (m *Map) Keys() []string { return m.b.sortedKeys() }

// Len returns the number of keys set.
func (m *Map) Len() int { return len(m.b.sortedKeys()) }

// GetText returns the YText stored at key.
func (m *Map) GetText(key string) (*Text, bool) {
	v, _ := m.Get(key)
	t, ok := v.(*Text)
	return t, ok
}

// GetMap returns the YMap stored at key.
func (m *Map) GetMap(key string) (*Map, bool) {
	v, _ := m.Get(key)
	t, ok := v.(*Map)
	return t, ok
}

// GetArray returns the YArray stored at key.
func (m *Map) GetArray(key string) (*Array, bool) {
	v, _ := m.Get(key)
	t, ok := v.(*Array)
	return t, ok
}

// ToJSON returns the entries converted to plain values.
func (m *Map) ToJSON() map[string]any { return m.b.mapJSON() }

// Set sets key to value: a lib0 Any value, []byte, or an ArrayPrelim,
// MapPrelim or TextPrelim to create a nested type.
func (m *Map) Set(key string, value any) error {
	if m.b.doc == nil {
		return errNotAttached
	}
	if err := validateValues([]any{value}); err != nil {
		return err
	}
	var err error
	m.b.doc.transact(nil, true, func(txn *Transaction) {
		err = m.b.mapSet(txn, key, value)
	})
	return err
}

// Delete removes key (a no-op if it is not set).
func (m *Map) Delete(key string) {
	if m.b.doc == nil {
		return
	}
	it := m.b.mapping[key]
	if it == nil || it.deleted {
		return
	}
	m.b.doc.transact(nil, true, func(txn *Transaction) { it.delete(txn) })
}

// mapSet writes a new item for key after the key's current item.
func (b *Branch) mapSet(txn *Transaction, key string, value any) error {
	left := b.mapping[key]
	switch x := value.(type) {
	case []byte:
		b.newItem(txn, left, nil, key, true, &ContentBinary{append([]byte{}, x...)})
	case ArrayPrelim, MapPrelim, TextPrelim:
		_, nb := b.newTypeItem(txn, left, nil, key, true, x)
		return nb.fillPrelim(txn, x)
	default:
		nv, err := normalizeAny(x)
		if err != nil {
			return err
		}
		b.newItem(txn, left, nil, key, true, &ContentAny{[]any{nv}})
	}
	return nil
}
