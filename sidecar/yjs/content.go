package yjs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Content is what an Item carries. Its length is measured in clock units:
// UTF-16 code units for strings, elements for Any/JSON, 1 for everything else.
// The ref numbers are the low 5 bits of an item's info byte on the wire.
type Content interface {
	ref() byte
	// length in clock units.
	length() int
	// countable items count towards a type's length / indexes (Format and
	// Deleted do not).
	countable() bool
	// splice cuts the content at offset: the receiver keeps [0,offset) and
	// the returned content holds the rest.
	splice(offset int) Content
	// mergeWith appends right to the receiver if both are the same kind.
	mergeWith(right Content) bool
	// write encodes the content from offset onward.
	write(e *Encoder, offset int)
	// values are the elements an array or map sees (getContent in Yjs).
	values() []any
}

const (
	refGC      = 0
	refDeleted = 1
	refJSON    = 2
	refBinary  = 3
	refString  = 4
	refEmbed   = 5
	refFormat  = 6
	refType    = 7
	refAny     = 8
	refDoc     = 9
	refSkip    = 10
)

// ContentDeleted stands in for content that was deleted and collected.
type ContentDeleted struct{ Len int }

func (c *ContentDeleted) ref() byte       { return refDeleted }
func (c *ContentDeleted) length() int     { return c.Len }
func (c *ContentDeleted) countable() bool { return false }
func (c *ContentDeleted) splice(off int) Content {
	r := &ContentDeleted{c.Len - off}
	c.Len = off
	return r
}
func (c *ContentDeleted) mergeWith(r Content) bool {
	if x, ok := r.(*ContentDeleted); ok {
		c.Len += x.Len
		return true
	}
	return false
}
func (c *ContentDeleted) write(e *Encoder, off int) { e.WriteVarUint(uint64(c.Len - off)) }
func (c *ContentDeleted) values() []any             { return nil }

// ContentJSON is the legacy element list, each element a JSON string on the
// wire ("undefined" for undefined).
type ContentJSON struct{ Arr []any }

func (c *ContentJSON) ref() byte       { return refJSON }
func (c *ContentJSON) length() int     { return len(c.Arr) }
func (c *ContentJSON) countable() bool { return true }
func (c *ContentJSON) splice(off int) Content {
	r := &ContentJSON{append([]any{}, c.Arr[off:]...)}
	c.Arr = c.Arr[:off:off]
	return r
}
func (c *ContentJSON) mergeWith(r Content) bool {
	if x, ok := r.(*ContentJSON); ok {
		c.Arr = append(c.Arr, x.Arr...)
		return true
	}
	return false
}
func (c *ContentJSON) write(e *Encoder, off int) {
	e.WriteVarUint(uint64(len(c.Arr) - off))
	for _, v := range c.Arr[off:] {
		if _, ok := v.(Undefined); ok {
			e.WriteVarString("undefined")
			continue
		}
		e.WriteVarString(marshalJSON(v))
	}
}
func (c *ContentJSON) values() []any { return c.Arr }

// ContentBinary is a Uint8Array element.
type ContentBinary struct{ Data []byte }

func (c *ContentBinary) ref() byte                 { return refBinary }
func (c *ContentBinary) length() int               { return 1 }
func (c *ContentBinary) countable() bool           { return true }
func (c *ContentBinary) splice(int) Content        { panic("yjs: ContentBinary cannot be split") }
func (c *ContentBinary) mergeWith(Content) bool    { return false }
func (c *ContentBinary) write(e *Encoder, off int) { e.WriteVarUint8Array(c.Data) }
func (c *ContentBinary) values() []any             { return []any{c.Data} }

// ContentString is a run of text, kept as UTF-16 code units because Yjs
// counts lengths and offsets in them.
type ContentString struct{ Str []uint16 }

func (c *ContentString) ref() byte       { return refString }
func (c *ContentString) length() int     { return len(c.Str) }
func (c *ContentString) countable() bool { return true }

// splice follows Yjs: cutting a surrogate pair turns both halves into U+FFFD.
func (c *ContentString) splice(off int) Content {
	r := &ContentString{append([]uint16{}, c.Str[off:]...)}
	c.Str = c.Str[:off:off]
	if off > 0 && c.Str[off-1] >= 0xD800 && c.Str[off-1] <= 0xDBFF {
		c.Str[off-1] = 0xFFFD
		if len(r.Str) > 0 {
			r.Str[0] = 0xFFFD
		}
	}
	return r
}
func (c *ContentString) mergeWith(r Content) bool {
	if x, ok := r.(*ContentString); ok {
		c.Str = append(c.Str, x.Str...)
		return true
	}
	return false
}
func (c *ContentString) write(e *Encoder, off int) { e.WriteVarString(stringFromUTF16(c.Str[off:])) }
func (c *ContentString) values() []any {
	// Each code unit is an element (as JS str.split('') would give).
	out := make([]any, len(c.Str))
	for i := range c.Str {
		out[i] = stringFromUTF16(c.Str[i : i+1])
	}
	return out
}

// ContentEmbed is an embedded JSON object in rich text.
type ContentEmbed struct{ Embed any }

func (c *ContentEmbed) ref() byte                 { return refEmbed }
func (c *ContentEmbed) length() int               { return 1 }
func (c *ContentEmbed) countable() bool           { return true }
func (c *ContentEmbed) splice(int) Content        { panic("yjs: ContentEmbed cannot be split") }
func (c *ContentEmbed) mergeWith(Content) bool    { return false }
func (c *ContentEmbed) write(e *Encoder, off int) { e.WriteVarString(marshalJSON(c.Embed)) }
func (c *ContentEmbed) values() []any             { return []any{c.Embed} }

// ContentFormat is a rich-text formatting marker. It is not countable, so it
// never shifts text positions.
type ContentFormat struct {
	Key   string
	Value any
}

func (c *ContentFormat) ref() byte              { return refFormat }
func (c *ContentFormat) length() int            { return 1 }
func (c *ContentFormat) countable() bool        { return false }
func (c *ContentFormat) splice(int) Content     { panic("yjs: ContentFormat cannot be split") }
func (c *ContentFormat) mergeWith(Content) bool { return false }
func (c *ContentFormat) write(e *Encoder, off int) {
	e.WriteVarString(c.Key)
	e.WriteVarString(marshalJSON(c.Value))
}
func (c *ContentFormat) values() []any { return nil }

// ContentType holds a nested shared type (YArray, YMap, YText, Xml...).
type ContentType struct{ Type *Branch }

func (c *ContentType) ref() byte              { return refType }
func (c *ContentType) length() int            { return 1 }
func (c *ContentType) countable() bool        { return true }
func (c *ContentType) splice(int) Content     { panic("yjs: ContentType cannot be split") }
func (c *ContentType) mergeWith(Content) bool { return false }
func (c *ContentType) write(e *Encoder, off int) {
	e.WriteVarUint(uint64(c.Type.typeRef))
	if c.Type.typeRef == TypeXmlElement || c.Type.typeRef == TypeXmlHook {
		e.WriteVarString(c.Type.name)
	}
}
func (c *ContentType) values() []any { return []any{c.Type} }

// ContentAny is a run of lib0 Any values (how Yjs stores plain JSON-like values).
type ContentAny struct{ Arr []any }

func (c *ContentAny) ref() byte       { return refAny }
func (c *ContentAny) length() int     { return len(c.Arr) }
func (c *ContentAny) countable() bool { return true }
func (c *ContentAny) splice(off int) Content {
	r := &ContentAny{append([]any{}, c.Arr[off:]...)}
	c.Arr = c.Arr[:off:off]
	return r
}
func (c *ContentAny) mergeWith(r Content) bool {
	if x, ok := r.(*ContentAny); ok {
		c.Arr = append(c.Arr, x.Arr...)
		return true
	}
	return false
}
func (c *ContentAny) write(e *Encoder, off int) {
	e.WriteVarUint(uint64(len(c.Arr) - off))
	for _, v := range c.Arr[off:] {
		if err := e.WriteAny(v); err != nil {
			e.WriteUint8(anyNull) // values are validated on insert; keep the stream aligned regardless
		}
	}
}
func (c *ContentAny) values() []any { return c.Arr }

// ContentDoc is a subdocument reference. It is decoded and re-encoded but
// subdocuments are not loaded.
type ContentDoc struct {
	GUID string
	Opts any
}

func (c *ContentDoc) ref() byte              { return refDoc }
func (c *ContentDoc) length() int            { return 1 }
func (c *ContentDoc) countable() bool        { return true }
func (c *ContentDoc) splice(int) Content     { panic("yjs: ContentDoc cannot be split") }
func (c *ContentDoc) mergeWith(Content) bool { return false }
func (c *ContentDoc) write(e *Encoder, off int) {
	e.WriteVarString(c.GUID)
	if err := e.WriteAny(c.Opts); err != nil {
		e.WriteUint8(anyNull)
	}
}
func (c *ContentDoc) values() []any { return []any{c} }

// marshalJSON renders v as JSON the way JSON.stringify would for the values
// we hold (no HTML escaping).
func marshalJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonable(v)); err != nil {
		return "null"
	}
	return string(bytes.TrimRight(b.Bytes(), "\n"))
}

// jsonable converts decoded Any values to something encoding/json renders
// like JSON.stringify (undefined → null, bigint → number).
func jsonable(v any) any {
	switch x := v.(type) {
	case Undefined:
		return nil
	case BigInt:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	}
	return v
}

// parseJSON parses a JSON text into Any-like Go values (integers as int64).
func parseJSON(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("yjs: invalid JSON content: %w", err)
	}
	if dec.More() {
		return nil, errors.New("yjs: trailing data after JSON content")
	}
	return fromJSONNumbers(v), nil
}

func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		for i := range x {
			x[i] = fromJSONNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSONNumbers(x[k])
		}
	}
	return v
}

// readContent decodes the content of an item whose info byte is info.
func readContent(d *Decoder, info byte) (Content, error) {
	switch info & 0x1f {
	case refDeleted:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		return &ContentDeleted{int(n)}, nil
	case refJSON:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if n > uint64(d.Remaining()) {
			return nil, ErrUnexpectedEOF
		}
		arr := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			s, err := d.ReadVarString()
			if err != nil {
				return nil, err
			}
			if s == "undefined" {
				arr = append(arr, Undefined{})
				continue
			}
			v, err := parseJSON(s)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return &ContentJSON{arr}, nil
	case refBinary:
		b, err := d.ReadVarUint8Array()
		if err != nil {
			return nil, err
		}
		return &ContentBinary{b}, nil
	case refString:
		s, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		if s == "" {
			// Yjs never writes an empty string item. yrs does, for a block
			// holding one lone surrogate (half of a split emoji), which its
			// UTF-8 strings cannot carry; the block still spans one clock
			// unit, and reading it as empty would shift every later clock.
			return &ContentString{[]uint16{0xFFFD}}, nil
		}
		return &ContentString{utf16FromString(s)}, nil
	case refEmbed:
		s, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		v, err := parseJSON(s)
		if err != nil {
			return nil, err
		}
		return &ContentEmbed{v}, nil
	case refFormat:
		k, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		s, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		v, err := parseJSON(s)
		if err != nil {
			return nil, err
		}
		return &ContentFormat{k, v}, nil
	case refType:
		tr, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		b := &Branch{typeRef: TypeRef(tr)}
		switch TypeRef(tr) {
		case TypeArray, TypeMap, TypeText, TypeXmlFragment, TypeXmlText:
		case TypeXmlElement, TypeXmlHook:
			if b.name, err = d.ReadVarString(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("yjs: unknown type ref %d", tr)
		}
		return &ContentType{b}, nil
	case refAny:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if n > uint64(d.Remaining()) {
			return nil, ErrUnexpectedEOF
		}
		arr := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			v, err := d.ReadAny()
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return &ContentAny{arr}, nil
	case refDoc:
		g, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		o, err := d.ReadAny()
		if err != nil {
			return nil, err
		}
		return &ContentDoc{g, o}, nil
	}
	return nil, fmt.Errorf("yjs: unknown content ref %d", info&0x1f)
}
