package yjs

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// Expected bytes were produced with lib0's encoding module (the one Yjs uses).
func TestWriteAnyBytes(t *testing.T) {
	cases := []struct {
		name string
		v    any
		hex  string
	}{
		{"null", nil, "7e"},
		{"undefined", Undefined{}, "7f"},
		{"true", true, "78"},
		{"false", false, "79"},
		{"int", 5, "7d05"},
		{"negative int", -5, "7d45"},
		{"negative zero", math.Copysign(0, -1), "7d40"},
		{"float32 exact", 1.5, "7c3fc00000"},
		{"float64", 0.1, "7b3fb999999999999a"},
		{"2^31 as float32", int64(1 << 31), "7c4f000000"},
		{"2^40+1 as float64", int64(1<<40 + 1), "7b4270000000001000"},
		{"max 31-bit int", 1<<31 - 1, "7dbfffffff0f"},
		{"string", "a", "770161"},
		{"array", []any{1, "a"}, "75027d01770161"},
		{"object", map[string]any{"a": 1}, "760101617d01"},
		{"bytes", []byte{1, 2}, "74020102"},
		{"bigint", BigInt(5), "7a0000000000000005"},
		{"nested", map[string]any{"x": []any{nil, map[string]any{"y": true}}}, "7601017875027e7601017978"},
		{"[]string", []string{"a"}, "7501770161"},
		{"map[string]int", map[string]int{"a": 1}, "760101617d01"},
		{"json.Number", json.Number("5"), "7d05"},
		{"pointer", &[]int{1}, "75017d01"},
		{"nil slice", []string(nil), "7e"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := NewEncoder()
			if err := e.WriteAny(c.v); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(e.Bytes()); got != c.hex {
				t.Fatalf("got %s want %s", got, c.hex)
			}
		})
	}
}

func TestReadAny(t *testing.T) {
	cases := []struct {
		hex  string
		want any
	}{
		{"7e", nil},
		{"7f", Undefined{}},
		{"78", true},
		{"79", false},
		{"7d05", int64(5)},
		{"7d45", int64(-5)},
		{"7c3fc00000", 1.5},
		{"7b3fb999999999999a", 0.1},
		{"770161", "a"},
		{"75027d01770161", []any{int64(1), "a"}},
		{"760101617d01", map[string]any{"a": int64(1)}},
		{"74020102", []byte{1, 2}},
		{"7a0000000000000005", BigInt(5)},
	}
	for _, c := range cases {
		b, _ := hex.DecodeString(c.hex)
		d := NewDecoder(b)
		got, err := d.ReadAny()
		if err != nil {
			t.Fatalf("%s: %v", c.hex, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: got %#v want %#v", c.hex, got, c.want)
		}
		if d.Remaining() != 0 {
			t.Fatalf("%s: %d bytes left", c.hex, d.Remaining())
		}
	}
	// -0 keeps its sign.
	v, err := NewDecoder([]byte{0x7d, 0x40}).ReadAny()
	if f, ok := v.(float64); err != nil || !ok || f != 0 || !math.Signbit(f) {
		t.Fatalf("negative zero decoded as %#v, %v", v, err)
	}
}

func TestVarInts(t *testing.T) {
	uints := []struct {
		n   uint64
		hex string
	}{{0, "00"}, {127, "7f"}, {128, "8001"}, {300, "ac02"}, {1<<53 - 1, "ffffffffffffff0f"}}
	for _, c := range uints {
		e := NewEncoder()
		e.WriteVarUint(c.n)
		if got := hex.EncodeToString(e.Bytes()); got != c.hex {
			t.Errorf("varUint %d: got %s want %s", c.n, got, c.hex)
		}
		n, err := NewDecoder(e.Bytes()).ReadVarUint()
		if err != nil || n != c.n {
			t.Errorf("varUint %d: read %d, %v", c.n, n, err)
		}
	}
	ints := []struct {
		n   int64
		hex string
	}{{0, "00"}, {63, "3f"}, {64, "8001"}, {-1, "41"}, {-64, "c001"}, {-65, "c101"}, {1 << 31, "8080808010"}, {-(1 << 31), "c080808010"}}
	for _, c := range ints {
		e := NewEncoder()
		e.WriteVarInt(c.n)
		if got := hex.EncodeToString(e.Bytes()); got != c.hex {
			t.Errorf("varInt %d: got %s want %s", c.n, got, c.hex)
		}
		n, err := NewDecoder(e.Bytes()).ReadVarInt()
		if err != nil || n != c.n {
			t.Errorf("varInt %d: read %d, %v", c.n, n, err)
		}
	}
	for _, n := range []int64{math.MinInt64, math.MaxInt64, math.MinInt64 + 1} {
		e := NewEncoder()
		e.WriteVarInt(n)
		got, err := NewDecoder(e.Bytes()).ReadVarInt()
		if err != nil || got != n {
			t.Errorf("varInt %d round trip: %d, %v", n, got, err)
		}
	}
}

func TestVarStringAndBytes(t *testing.T) {
	e := NewEncoder()
	e.WriteVarString("hé😀")
	if got := hex.EncodeToString(e.Bytes()); got != "0768c3a9f09f9880" {
		t.Fatalf("got %s", got)
	}
	e.WriteVarUint8Array([]byte{9, 8})
	d := NewDecoder(e.Bytes())
	if s, err := d.ReadVarString(); err != nil || s != "hé😀" {
		t.Fatalf("%q %v", s, err)
	}
	if b, err := d.ReadVarUint8Array(); err != nil || !reflect.DeepEqual(b, []byte{9, 8}) {
		t.Fatalf("%v %v", b, err)
	}
}

func TestDecoderErrors(t *testing.T) {
	readAny := func(d *Decoder) error { _, err := d.ReadAny(); return err }
	readUint := func(d *Decoder) error { _, err := d.ReadVarUint(); return err }
	readInt := func(d *Decoder) error { _, err := d.ReadVarInt(); return err }
	readString := func(d *Decoder) error { _, err := d.ReadVarString(); return err }
	cases := []struct {
		name string
		hex  string
		read func(*Decoder) error
	}{
		{"empty varUint", "", readUint},
		{"unterminated varUint", "80", readUint},
		{"varUint over 53 bits", "ffffffffffffffff7f", readUint},
		{"unterminated varInt", "8080", readInt},
		{"varInt over 64 bits", "bfffffffffffffffffff7f", readInt},
		{"short string", "05616263", readString},
		{"truncated float64", "7b3fb9", readAny},
		{"object with huge count", "76ffffffff0f", readAny},
		{"array with huge count", "75ffffffff0f", readAny},
		{"unknown Any tag", "60", readAny},
		{"empty Any", "", readAny},
	}
	for _, c := range cases {
		b, _ := hex.DecodeString(c.hex)
		if err := c.read(NewDecoder(b)); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func TestUTF16(t *testing.T) {
	cases := []struct {
		s string
		n int
	}{{"", 0}, {"abc", 3}, {"é", 1}, {"中", 1}, {"😀", 2}, {"👍🏽", 4}}
	for _, c := range cases {
		u := utf16FromString(c.s)
		if len(u) != c.n || UTF16Len(c.s) != c.n {
			t.Errorf("%q: %d units, UTF16Len %d, want %d", c.s, len(u), UTF16Len(c.s), c.n)
		}
		if back := stringFromUTF16(u); back != c.s {
			t.Errorf("%q: round trip %q", c.s, back)
		}
	}
	// A lone surrogate becomes U+FFFD, keeping the UTF-16 length.
	u := utf16FromString("😀")
	if s := stringFromUTF16(u[:1]); s != "\uFFFD" {
		t.Errorf("lone high surrogate: %q", s)
	}
}
