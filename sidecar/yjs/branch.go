package yjs

import (
	"maps"
	"math"
	"slices"
	"sort"
)

// TypeRef is the kind of a shared type, as numbered on the wire.
type TypeRef int

// Type refs of ContentType. TypeUnknown is a root that arrived in an update
// before the application asked for it by kind (Yjs roots are typed lazily).
const (
	TypeArray       TypeRef = 0
	TypeMap         TypeRef = 1
	TypeText        TypeRef = 2
	TypeXmlElement  TypeRef = 3
	TypeXmlFragment TypeRef = 4
	TypeXmlHook     TypeRef = 5
	TypeXmlText     TypeRef = 6
	TypeUnknown     TypeRef = -1
)

// Branch is the state every shared type has (AbstractType in Yjs): a linked
// list of items for sequence content and a map from key to the last item of
// that key's list for map content. Array, Map and Text are views of a Branch.
type Branch struct {
	doc     *Doc
	item    *Item // the item holding this type; nil for a root type
	typeRef TypeRef
	name    string // root name, or the node name of XmlElement / XmlHook

	start   *Item
	mapping map[string]*Item
	length  int // countable, non-deleted length of the sequence part
}

func newBranch(doc *Doc, ref TypeRef) *Branch {
	return &Branch{doc: doc, typeRef: ref}
}

// setMapping makes it the current item of key (mapping is allocated on
// first use: most types are never maps).
func (b *Branch) setMapping(key string, it *Item) {
	if b.mapping == nil {
		b.mapping = map[string]*Item{}
	}
	b.mapping[key] = it
}

// TypeRef returns the kind of the type.
func (b *Branch) TypeRef() TypeRef { return b.typeRef }

// integrate binds a decoded or newly created nested type to its item.
func (b *Branch) integrate(doc *Doc, it *Item) {
	b.doc = doc
	b.item = it
}

// deleteChildren deletes everything inside a type that is being deleted.
func (b *Branch) deleteChildren(txn *Transaction) {
	for it := b.start; it != nil; it = it.right {
		if !it.deleted {
			it.delete(txn)
		}
	}
	for _, it := range b.mapping {
		if !it.deleted {
			it.delete(txn)
		}
	}
	delete(txn.changed, b)
}

// Deleted reports whether this nested type has been deleted (roots never are).
func (b *Branch) Deleted() bool { return b.item != nil && b.item.deleted }

// mapValue returns the current value of key.
func (b *Branch) mapValue(key string) (any, bool) {
	it := b.mapping[key]
	if it == nil || it.deleted {
		return nil, false
	}
	vs := it.content.values()
	if len(vs) == 0 {
		return nil, false
	}
	return wrapValue(vs[len(vs)-1]), true
}

// sortedKeys lists the live keys of the map part.
func (b *Branch) sortedKeys() []string {
	keys := make([]string, 0, len(b.mapping))
	for k, it := range b.mapping {
		if !it.deleted {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// listValues returns the visible elements of the sequence part.
func (b *Branch) listValues() []any {
	out := make([]any, 0, max(b.length, 0))
	for it := b.start; it != nil; it = it.right {
		if !it.deleted && it.countable() {
			for _, v := range it.content.values() {
				out = append(out, wrapValue(v))
			}
		}
	}
	return out
}

// textString concatenates the visible string content.
func (b *Branch) textString() string {
	var u []uint16
	for it := b.start; it != nil; it = it.right {
		if !it.deleted && it.kind == kindItem {
			if s, ok := it.content.(*ContentString); ok {
				u = append(u, s.Str...)
			}
		}
	}
	return stringFromUTF16(u)
}

// wrapValue turns a stored nested *Branch into its typed view.
func wrapValue(v any) any {
	if b, ok := v.(*Branch); ok {
		switch b.typeRef {
		case TypeArray:
			return &Array{b}
		case TypeMap:
			return &Map{b}
		case TypeText:
			return &Text{b}
		}
		return &XmlNode{b}
	}
	return v
}

// ToJSON converts the type to plain Go values the way Yjs's toJSON() does:
// arrays to []any, maps to map[string]any, text to string. A root of unknown
// kind is shown as a map if it has map entries, as a string if it holds
// text, otherwise as an array.
func (b *Branch) ToJSON() any {
	switch b.typeRef {
	case TypeArray:
		return valuesToJSON(b.listValues())
	case TypeMap:
		return b.mapJSON()
	case TypeText:
		return b.textString()
	case TypeUnknown:
		// Yjs leaves such roots untyped; guess from the content.
		if len(b.sortedKeys()) > 0 {
			return b.mapJSON()
		}
		for it := b.start; it != nil; it = it.right {
			if _, ok := it.content.(*ContentString); ok {
				return b.textString()
			}
		}
		return valuesToJSON(b.listValues())
	}
	return b.textString()
}

func (b *Branch) mapJSON() map[string]any {
	m := map[string]any{}
	for _, k := range b.sortedKeys() {
		v, _ := b.mapValue(k)
		m[k] = valueToJSON(v)
	}
	return m
}

func valuesToJSON(vs []any) []any {
	for i, v := range vs {
		vs[i] = valueToJSON(v)
	}
	return vs
}

func valueToJSON(v any) any {
	switch x := v.(type) {
	case *Array:
		return x.b.ToJSON()
	case *Map:
		return x.b.ToJSON()
	case *Text:
		return x.b.ToJSON()
	case *XmlNode:
		return x.b.ToJSON()
	case *ContentDoc:
		return map[string]any{"guid": x.GUID}
	}
	safe, _ := jsonSafe(v)
	return safe
}

// jsonSafe returns v with NaN and ±Inf as nil, which JSON.stringify writes
// as null: JSON has no such numbers, yet a document can hold them (Python
// writes NaN into notebooks). v is the document's own content and is not
// changed: what holds such a number is copied. ok says whether anything
// was replaced.
func jsonSafe(v any) (_ any, ok bool) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if safe, ok := jsonSafe(e); ok {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = safe
			}
		}
		if out != nil {
			return out, true
		}
	case []any:
		var out []any
		for i, e := range x {
			if safe, ok := jsonSafe(e); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = safe
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}

// path returns the location of the type from its root: the root name, then
// map keys (string) and array indexes (int).
func (b *Branch) path() []any {
	var rev []any
	for cur := b; cur != nil; {
		if cur.item == nil {
			rev = append(rev, cur.name)
			break
		}
		it := cur.item
		p := it.parent
		if p == nil {
			break
		}
		if key, ok := it.key(); ok {
			rev = append(rev, key)
		} else {
			i := 0
			for n := p.start; n != nil && n != it; n = n.right {
				if !n.deleted && n.countable() {
					i += n.length
				}
			}
			rev = append(rev, i)
		}
		cur = p
	}
	out := make([]any, len(rev))
	for i := range rev {
		out[i] = rev[len(rev)-1-i]
	}
	return out
}

// XmlNode is a read-only view of an Xml type received from a peer; the
// sidecar never creates Xml types but must carry them.
type XmlNode struct{ b *Branch }

// Branch returns the underlying type state.
func (x *XmlNode) Branch() *Branch { return x.b }
