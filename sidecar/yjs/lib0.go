package yjs

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"unicode/utf8"
)

// lib0 is the binary encoding library Yjs and y-protocols are written on.
// This file implements the subset they use: LEB128-style variable-length
// integers, length-prefixed strings and byte arrays, big-endian floats and
// the tagged "Any" value encoding.

// ErrUnexpectedEOF is returned when an encoded buffer ends in the middle of a value.
var ErrUnexpectedEOF = errors.New("yjs: unexpected end of data")

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1). lib0
// refuses varUints above it, and so do we, so that values stay exact in JS.
const maxSafeInteger = 1<<53 - 1

// Encoder appends lib0-encoded values to a byte slice.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an empty Encoder.
func NewEncoder() *Encoder { return &Encoder{} }

// Bytes returns the encoded data. The slice aliases the encoder's buffer.
func (e *Encoder) Bytes() []byte { return e.buf }

// WriteUint8 appends one raw byte.
func (e *Encoder) WriteUint8(b byte) { e.buf = append(e.buf, b) }

// WriteVarUint appends an unsigned LEB128 integer (7 bits per byte, high bit = continue).
func (e *Encoder) WriteVarUint(n uint64) {
	for n >= 0x80 {
		e.buf = append(e.buf, byte(n)|0x80)
		n >>= 7
	}
	e.buf = append(e.buf, byte(n))
}

// WriteVarInt appends a signed integer in lib0's format: the first byte holds
// a continue bit (0x80), a sign bit (0x40) and 6 value bits; later bytes
// carry 7 value bits each.
func (e *Encoder) WriteVarInt(n int64) {
	e.writeVarIntSign(n < 0, absUint(n))
}

// writeVarIntSign writes a magnitude with an explicit sign so that -0 can be
// represented (lib0 keeps it).
func (e *Encoder) writeVarIntSign(neg bool, mag uint64) {
	b := byte(mag & 0x3f)
	if neg {
		b |= 0x40
	}
	mag >>= 6
	if mag > 0 {
		b |= 0x80
	}
	e.buf = append(e.buf, b)
	for mag > 0 {
		b = byte(mag & 0x7f)
		mag >>= 7
		if mag > 0 {
			b |= 0x80
		}
		e.buf = append(e.buf, b)
	}
}

func absUint(n int64) uint64 {
	if n < 0 {
		return uint64(-(n + 1)) + 1 // safe for MinInt64
	}
	return uint64(n)
}

// WriteVarString appends a UTF-8 string prefixed with its byte length.
func (e *Encoder) WriteVarString(s string) {
	e.WriteVarUint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// WriteVarUint8Array appends a byte slice prefixed with its length.
func (e *Encoder) WriteVarUint8Array(b []byte) {
	e.WriteVarUint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// WriteFloat32 appends a big-endian IEEE 754 float32.
func (e *Encoder) WriteFloat32(f float32) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, math.Float32bits(f))
}

// WriteFloat64 appends a big-endian IEEE 754 float64.
func (e *Encoder) WriteFloat64(f float64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

// WriteBigInt64 appends a big-endian int64 (lib0's BigInt encoding).
func (e *Encoder) WriteBigInt64(n int64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(n))
}

// Decoder reads lib0-encoded values from a byte slice. Every read is bounds
// checked and reports an error instead of panicking.
type Decoder struct {
	buf []byte
	pos int
}

// NewDecoder returns a Decoder reading from b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Remaining returns the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.buf) - d.pos }

// ReadUint8 reads one raw byte.
func (d *Decoder) ReadUint8() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, ErrUnexpectedEOF
	}
	b := d.buf[d.pos]
	d.pos++
	return b, nil
}

// ReadVarUint reads an unsigned LEB128 integer of at most 53 bits.
func (d *Decoder) ReadVarUint() (uint64, error) {
	var n uint64
	var shift uint
	for {
		if d.pos >= len(d.buf) {
			return 0, ErrUnexpectedEOF
		}
		b := d.buf[d.pos]
		d.pos++
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
		shift += 7
		if shift > 53 {
			return 0, errors.New("yjs: varUint exceeds 53 bits")
		}
	}
	if n > maxSafeInteger {
		return 0, errors.New("yjs: varUint exceeds 53 bits")
	}
	return n, nil
}

// ReadVarInt reads a lib0 signed integer. It returns the value and whether
// it was negative (to tell -0 from 0).
func (d *Decoder) ReadVarInt() (int64, error) {
	n, _, err := d.readVarIntSign()
	return n, err
}

func (d *Decoder) readVarIntSign() (int64, bool, error) {
	b, err := d.ReadUint8()
	if err != nil {
		return 0, false, err
	}
	mag := uint64(b & 0x3f)
	neg := b&0x40 != 0
	shift := uint(6)
	for b&0x80 != 0 {
		if b, err = d.ReadUint8(); err != nil {
			return 0, false, err
		}
		if shift > 63 {
			return 0, false, errors.New("yjs: varInt too long")
		}
		mag |= uint64(b&0x7f) << shift
		shift += 7
	}
	if neg {
		if mag > 1<<63 {
			return 0, false, errors.New("yjs: varInt overflows int64")
		}
		return -int64(mag-1) - 1, true, nil
	}
	if mag > math.MaxInt64 {
		return 0, false, errors.New("yjs: varInt overflows int64")
	}
	return int64(mag), false, nil
}

// readN returns the next n bytes without copying.
func (d *Decoder) readN(n uint64) ([]byte, error) {
	if n > uint64(len(d.buf)-d.pos) {
		return nil, ErrUnexpectedEOF
	}
	b := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

// ReadVarString reads a length-prefixed UTF-8 string.
func (d *Decoder) ReadVarString() (string, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return "", err
	}
	b, err := d.readN(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ReadVarUint8Array reads a length-prefixed byte slice. The result is a copy.
func (d *Decoder) ReadVarUint8Array() ([]byte, error) {
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	b, err := d.readN(n)
	if err != nil {
		return nil, err
	}
	return append([]byte{}, b...), nil
}

// ReadFloat32 reads a big-endian float32.
func (d *Decoder) ReadFloat32() (float32, error) {
	b, err := d.readN(4)
	if err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
}

// ReadFloat64 reads a big-endian float64.
func (d *Decoder) ReadFloat64() (float64, error) {
	b, err := d.readN(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// ReadBigInt64 reads a big-endian int64.
func (d *Decoder) ReadBigInt64() (int64, error) {
	b, err := d.readN(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// ---- Any ----

// Undefined is JavaScript's undefined, which lib0 keeps distinct from null.
type Undefined struct{}

// BigInt is a JavaScript BigInt value (Any tag 122). Ordinary Go integers are
// never encoded as BigInt because Yjs would hand a BigInt to JSON.stringify,
// which throws.
type BigInt int64

// Any tags (lib0 encoding.writeAny).
const (
	anyUndefined = 127
	anyNull      = 126
	anyInteger   = 125
	anyFloat32   = 124
	anyFloat64   = 123
	anyBigInt    = 122
	anyFalse     = 121
	anyTrue      = 120
	anyString    = 119
	anyObject    = 118
	anyArray     = 117
	anyBytes     = 116
)

// maxAnyDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxAnyDepth = 1000

// WriteAny appends v in lib0's Any encoding. Supported Go values: nil (null),
// Undefined, bool, string, all integer and float kinds, json.Number, BigInt,
// []byte, []any and map[string]any (keys are written sorted for
// determinism), other slices and string-keyed maps, and pointers to these.
// Numbers follow Yjs: integers within 31 bits use varInt, other numbers
// float32 when exact, else float64.
func (e *Encoder) WriteAny(v any) error {
	return e.writeAny(v, 0)
}

func (e *Encoder) writeAny(v any, depth int) error {
	if depth > maxAnyDepth {
		return errors.New("yjs: Any value nested too deeply")
	}
	switch x := v.(type) {
	case nil:
		e.WriteUint8(anyNull)
	case Undefined:
		e.WriteUint8(anyUndefined)
	case bool:
		if x {
			e.WriteUint8(anyTrue)
		} else {
			e.WriteUint8(anyFalse)
		}
	case string:
		e.WriteUint8(anyString)
		e.WriteVarString(x)
	case int:
		e.writeNumberInt(int64(x))
	case int8:
		e.writeNumberInt(int64(x))
	case int16:
		e.writeNumberInt(int64(x))
	case int32:
		e.writeNumberInt(int64(x))
	case int64:
		e.writeNumberInt(x)
	case uint:
		e.writeNumberUint(uint64(x))
	case uint8:
		e.writeNumberInt(int64(x))
	case uint16:
		e.writeNumberInt(int64(x))
	case uint32:
		e.writeNumberInt(int64(x))
	case uint64:
		e.writeNumberUint(x)
	case float32:
		e.writeNumberFloat(float64(x))
	case float64:
		e.writeNumberFloat(x)
	case BigInt:
		e.WriteUint8(anyBigInt)
		e.WriteBigInt64(int64(x))
	case []byte:
		e.WriteUint8(anyBytes)
		e.WriteVarUint8Array(x)
	case []any:
		e.WriteUint8(anyArray)
		e.WriteVarUint(uint64(len(x)))
		for _, el := range x {
			if err := e.writeAny(el, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		e.WriteUint8(anyObject)
		e.WriteVarUint(uint64(len(x)))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			e.WriteVarString(k)
			if err := e.writeAny(x[k], depth+1); err != nil {
				return err
			}
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			e.writeNumberInt(n)
		} else if f, err := x.Float64(); err == nil {
			e.writeNumberFloat(f)
		} else {
			return fmt.Errorf("yjs: invalid number %q", x)
		}
	default:
		return e.writeAnyReflect(v, depth)
	}
	return nil
}

// writeAnyReflect handles other slice and string-keyed map types
// ([]string, map[string]string, ...) and pointers, so callers need not
// convert nbformat-like values to []any / map[string]any first.
func (e *Encoder) writeAnyReflect(v any, depth int) error {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.WriteUint8(anyNull)
			return nil
		}
		return e.writeAny(rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			e.WriteUint8(anyNull)
			return nil
		}
		e.WriteUint8(anyArray)
		e.WriteVarUint(uint64(rv.Len()))
		for i := 0; i < rv.Len(); i++ {
			if err := e.writeAny(rv.Index(i).Interface(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			e.WriteUint8(anyNull)
			return nil
		}
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		e.WriteUint8(anyObject)
		e.WriteVarUint(uint64(len(keys)))
		for _, k := range keys {
			e.WriteVarString(k)
			if err := e.writeAny(rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface(), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		e.WriteUint8(anyString)
		e.WriteVarString(rv.String())
		return nil
	case reflect.Bool:
		return e.writeAny(rv.Bool(), depth)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.writeNumberInt(rv.Int())
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.writeNumberUint(rv.Uint())
		return nil
	case reflect.Float32, reflect.Float64:
		e.writeNumberFloat(rv.Float())
		return nil
	}
	return fmt.Errorf("yjs: cannot encode %T as Any", v)
}

const bits31 = 1<<31 - 1

func (e *Encoder) writeNumberInt(n int64) {
	if n >= -bits31 && n <= bits31 {
		e.WriteUint8(anyInteger)
		e.WriteVarInt(n)
		return
	}
	e.writeNumberFloat(float64(n))
}

func (e *Encoder) writeNumberUint(n uint64) {
	if n <= bits31 {
		e.writeNumberInt(int64(n))
		return
	}
	e.writeNumberFloat(float64(n))
}

// writeNumberFloat mirrors lib0: a JS number that is an integer within 31
// bits goes out as varInt (keeping the sign of -0), else float32 when that is
// exact, else float64.
func (e *Encoder) writeNumberFloat(f float64) {
	if f == math.Trunc(f) && math.Abs(f) <= bits31 && !math.IsInf(f, 0) {
		e.WriteUint8(anyInteger)
		e.writeVarIntSign(math.Signbit(f), uint64(math.Abs(f)))
		return
	}
	if float64(float32(f)) == f || math.IsNaN(f) {
		e.WriteUint8(anyFloat32)
		e.WriteFloat32(float32(f))
		return
	}
	e.WriteUint8(anyFloat64)
	e.WriteFloat64(f)
}

// ReadAny reads one lib0 Any value. Integers (tag 125) come back as int64,
// floats as float64, BigInt as BigInt, objects as map[string]any, arrays as
// []any, Uint8Array as []byte, undefined as Undefined and null as nil.
// A negative-zero varInt decodes as float64 -0.
func (d *Decoder) ReadAny() (any, error) {
	return d.readAny(0)
}

func (d *Decoder) readAny(depth int) (any, error) {
	if depth > maxAnyDepth {
		return nil, errors.New("yjs: Any value nested too deeply")
	}
	tag, err := d.ReadUint8()
	if err != nil {
		return nil, err
	}
	switch tag {
	case anyUndefined:
		return Undefined{}, nil
	case anyNull:
		return nil, nil
	case anyInteger:
		n, neg, err := d.readVarIntSign()
		if err != nil {
			return nil, err
		}
		if n == 0 && neg {
			return math.Copysign(0, -1), nil
		}
		return n, nil
	case anyFloat32:
		f, err := d.ReadFloat32()
		return float64(f), err
	case anyFloat64:
		return d.ReadFloat64()
	case anyBigInt:
		n, err := d.ReadBigInt64()
		return BigInt(n), err
	case anyFalse:
		return false, nil
	case anyTrue:
		return true, nil
	case anyString:
		return d.ReadVarString()
	case anyObject:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if n > uint64(d.Remaining()) { // each entry needs at least 2 bytes
			return nil, ErrUnexpectedEOF
		}
		m := make(map[string]any, n)
		for i := uint64(0); i < n; i++ {
			k, err := d.ReadVarString()
			if err != nil {
				return nil, err
			}
			v, err := d.readAny(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case anyArray:
		n, err := d.ReadVarUint()
		if err != nil {
			return nil, err
		}
		if n > uint64(d.Remaining()) {
			return nil, ErrUnexpectedEOF
		}
		a := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			v, err := d.readAny(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case anyBytes:
		return d.ReadVarUint8Array()
	default:
		return nil, fmt.Errorf("yjs: unknown Any tag %d", tag)
	}
}

// utf16FromString converts a Go (UTF-8) string to UTF-16 code units, the
// unit in which Yjs measures text lengths, clocks and indexes.
func utf16FromString(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3ff)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}

// stringFromUTF16 converts UTF-16 code units to UTF-8. Lone surrogates
// become U+FFFD, exactly as TextEncoder does when Yjs writes them, so the
// UTF-16 length is preserved.
func stringFromUTF16(u []uint16) string {
	b := make([]byte, 0, len(u))
	for i := 0; i < len(u); i++ {
		c := rune(u[i])
		switch {
		case c >= 0xD800 && c < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] < 0xE000:
			c = 0x10000 + (c-0xD800)<<10 + (rune(u[i+1]) - 0xDC00)
			i++
		case c >= 0xD800 && c < 0xE000:
			c = utf8.RuneError
		}
		b = utf8.AppendRune(b, c)
	}
	return string(b)
}

// UTF16Len returns the length of s in UTF-16 code units.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
