package yjs

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// syncDocs exchanges full diffs both ways.
func syncDocs(t *testing.T, a, b *Doc) {
	t.Helper()
	if err := b.ApplyUpdate(a.EncodeStateAsUpdate(b.StateVector()), nil); err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyUpdate(b.EncodeStateAsUpdate(a.StateVector()), nil); err != nil {
		t.Fatal(err)
	}
}

func TestArrayOps(t *testing.T) {
	cases := []struct {
		name string
		ops  func(a *Array) error
		want string
	}{
		{"push", func(a *Array) error { return a.Push(1, "x", nil, true) }, `[1,"x",null,true]`},
		{"insert middle", func(a *Array) error {
			if err := a.Push(1, 2, 3); err != nil {
				return err
			}
			return a.Insert(1, "a", "b")
		}, `[1,"a","b",2,3]`},
		{"delete across items", func(a *Array) error {
			a.Push(1, 2, 3)
			a.Push(4, 5)
			return a.Delete(1, 3)
		}, `[1,5]`},
		{"nested types", func(a *Array) error {
			return a.Insert(0, MapPrelim{"source": TextPrelim("x=1"), "outputs": ArrayPrelim{MapPrelim{"text": TextPrelim("out")}}, "n": nil})
		}, `[{"n":null,"outputs":[{"text":"out"}],"source":"x=1"}]`},
		{"bytes and objects", func(a *Array) error {
			return a.Push([]byte{1}, map[string]any{"k": []any{1.5}})
		}, `["AQ==",{"k":[1.5]}]`},
		{"out of range", func(a *Array) error {
			if err := a.Insert(1, 1); err == nil {
				return nil
			}
			return a.Push("ok")
		}, `["ok"]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDoc()
			a := d.GetArray("a")
			if err := c.ops(a); err != nil {
				t.Fatal(err)
			}
			if got := js(a.ToJSON()); got != c.want {
				t.Fatalf("got %s want %s", got, c.want)
			}
			// A peer decoding the full state sees the same.
			p := NewDoc()
			if err := p.ApplyUpdate(d.EncodeStateAsUpdate(nil), nil); err != nil {
				t.Fatal(err)
			}
			if got := js(p.GetArray("a").ToJSON()); got != c.want {
				t.Fatalf("peer got %s want %s", got, c.want)
			}
		})
	}
}

func TestMapOps(t *testing.T) {
	d := NewDoc()
	m := d.GetMap("m")
	m.Set("a", 1)
	m.Set("b", "two")
	m.Set("a", 3)
	m.Set("t", TextPrelim("hi"))
	m.Delete("b")
	m.Delete("missing")
	if got, want := js(m.ToJSON()), `{"a":3,"t":"hi"}`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if !reflect.DeepEqual(m.Keys(), []string{"a", "t"}) || m.Has("b") || !m.Has("a") || m.Len() != 2 {
		t.Fatalf("keys %v", m.Keys())
	}
	tx, ok := m.GetText("t")
	if !ok || tx.String() != "hi" {
		t.Fatal("GetText")
	}
	if err := m.Set("bad", struct{}{}); err == nil {
		t.Fatal("unencodable value accepted")
	}
}

// Concurrent writes to one key: the higher client ID wins on both peers.
func TestMapConcurrentSet(t *testing.T) {
	a, b := NewDocWithClientID(1), NewDocWithClientID(2)
	a.GetMap("m").Set("k", "from 1")
	b.GetMap("m").Set("k", "from 2")
	syncDocs(t, a, b)
	for _, d := range []*Doc{a, b} {
		if v, _ := d.GetMap("m").Get("k"); v != "from 2" {
			t.Fatalf("client %d sees %v", d.ClientID(), v)
		}
	}
}

func TestTextUTF16(t *testing.T) {
	d := NewDoc()
	x := d.GetText("t")
	x.Insert(0, "a😀b")
	if x.Len() != 4 {
		t.Fatalf("len %d", x.Len())
	}
	x.Insert(3, "中") // after the emoji (UTF-16 index 3)
	if got := x.String(); got != "a😀中b" {
		t.Fatalf("got %q", got)
	}
	x.Insert(2, "X") // inside the surrogate pair: moved before it
	if got := x.String(); got != "aX😀中b" {
		t.Fatalf("got %q", got)
	}
	x.Delete(3, 1) // half of the emoji: the whole character goes
	if got := x.String(); got != "aX中b" {
		t.Fatalf("got %q", got)
	}
	if err := x.Delete(3, 5); err == nil {
		t.Fatal("delete past the end accepted")
	}
}

// A remote item splitting a surrogate pair turns both halves into U+FFFD (as Yjs).
func TestTextSplitSurrogateRemote(t *testing.T) {
	a := NewDocWithClientID(1)
	a.GetText("t").Insert(0, "😀")
	b := NewDocWithClientID(2)
	syncDocs(t, a, b)
	// Build b's insert at UTF-16 index 1 by hand: origin = (1,0).
	b.Transact(func(txn *Transaction) {
		tb := b.GetText("t").b
		left := b.store.cleanEnd(txn, ID{1, 0})
		tb.newItem(txn, left, left.right, "", false, &ContentString{utf16FromString("x")})
	})
	syncDocs(t, a, b)
	for _, d := range []*Doc{a, b} {
		if got := d.GetText("t").String(); got != "\uFFFDx\uFFFD" {
			t.Fatalf("client %d: %q", d.ClientID(), got)
		}
	}
}

func TestTransactionEmitsOneUpdate(t *testing.T) {
	d := NewDoc()
	var updates [][]byte
	d.OnUpdate(func(u []byte, txn *Transaction) { updates = append(updates, u) })
	cells := d.GetArray("cells")
	d.Transact(func(*Transaction) {
		cells.Push(MapPrelim{"id": "c1", "source": TextPrelim("print(1)"), "metadata": MapPrelim{}, "outputs": ArrayPrelim{}})
		cells.Push(MapPrelim{"id": "c2", "source": TextPrelim("")})
	})
	if len(updates) != 1 {
		t.Fatalf("%d updates", len(updates))
	}
	p := NewDoc()
	if err := p.ApplyUpdate(updates[0], nil); err != nil {
		t.Fatal(err)
	}
	if got, want := js(p.GetArray("cells").ToJSON()), js(cells.ToJSON()); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	// A transaction that changes nothing emits nothing.
	d.Transact(func(*Transaction) {})
	if len(updates) != 1 {
		t.Fatal("empty transaction emitted an update")
	}
}

func TestObserveChanges(t *testing.T) {
	a := NewDoc()
	cells := a.GetArray("cells")
	cells.Push(MapPrelim{"source": TextPrelim("x"), "execution_count": nil})
	b := NewDoc()
	var changes []Change
	b.OnAfterTransaction(func(txn *Transaction) { changes = txn.Changes() })
	syncDocs(t, a, b)
	if got := js(changes); got != `[{"Path":["cells"],"Keys":null,"List":true}]` {
		t.Fatalf("changes of the first sync %s", got)
	}
	cell, _ := cells.Get(0)
	var upd []byte
	a.OnUpdate(func(u []byte, _ *Transaction) { upd = u })
	a.Transact(func(*Transaction) {
		src, _ := cell.(*Map).GetText("source")
		src.Insert(1, "y")
		cell.(*Map).Set("execution_count", 3)
	})
	if err := b.ApplyUpdate(upd, "remote"); err != nil {
		t.Fatal(err)
	}
	got := js(changes)
	if want := `[{"Path":["cells",0],"Keys":["execution_count"],"List":false},{"Path":["cells",0,"source"],"Keys":null,"List":true}]`; got != want {
		t.Fatalf("changes %s\nwant    %s", got, want)
	}
}

// Updates delivered in reverse wait as pending and integrate when the
// dependencies arrive; applying them again changes nothing.
func TestPendingAndDuplicates(t *testing.T) {
	a := NewDoc()
	var ups [][]byte
	a.OnUpdate(func(u []byte, _ *Transaction) { ups = append(ups, u) })
	x := a.GetText("t")
	x.Insert(0, "hello")
	x.Insert(5, " world")
	x.Delete(0, 1)
	a.GetMap("m").Set("k", ArrayPrelim{1, 2})

	b := NewDoc()
	for i := len(ups) - 1; i >= 0; i-- {
		if err := b.ApplyUpdate(ups[i], nil); err != nil {
			t.Fatal(err)
		}
		if i > 0 && !b.HasPending() && i < 3 {
			t.Fatalf("no pending after update %d", i)
		}
	}
	for _, u := range ups {
		b.ApplyUpdate(u, nil)
	}
	if b.HasPending() {
		t.Fatal("still pending")
	}
	if got, want := js(b.ToJSON()), js(a.ToJSON()); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

// A Skip struct marks a gap: what follows it waits until the gap is filled.
func TestSkipStruct(t *testing.T) {
	a := NewDocWithClientID(7)
	var ups [][]byte
	a.OnUpdate(func(u []byte, _ *Transaction) { ups = append(ups, u) })
	x := a.GetText("t")
	x.Insert(0, "ab")
	x.Insert(2, "cd")
	x.Insert(4, "ef")
	// Hand-built update: client 7, structs "ab" (clock 0), Skip(2), "ef" (clock 4).
	e := NewEncoder()
	e.WriteVarUint(1)
	e.WriteVarUint(3)
	e.WriteVarUint(7)
	e.WriteVarUint(0)
	e.WriteUint8(refString)
	e.WriteVarUint(1)
	e.WriteVarString("t")
	e.WriteVarString("ab")
	e.WriteUint8(refSkip)
	e.WriteVarUint(2)
	e.WriteUint8(refString | 0x80)
	e.WriteVarUint(7)
	e.WriteVarUint(3)
	e.WriteVarString("ef")
	e.WriteVarUint(0)
	b := NewDoc()
	if err := b.ApplyUpdate(e.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	if got := b.GetText("t").String(); got != "ab" || !b.HasPending() {
		t.Fatalf("got %q pending %v", got, b.HasPending())
	}
	if err := b.ApplyUpdate(ups[1], nil); err != nil {
		t.Fatal(err)
	}
	if got := b.GetText("t").String(); got != "abcdef" || b.HasPending() {
		t.Fatalf("got %q pending %v", got, b.HasPending())
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string][]byte{
		"truncated":        {1, 1},
		"unknown content":  {1, 1, 1, 0, 0x0b},
		"unknown type ref": {1, 1, 1, 0, refType, 1, 1, 'a', 9, 0},
		"zero-length GC":   {1, 1, 1, 0, 0, 0, 0},
		"empty Any item":   {1, 1, 1, 0, refAny, 1, 1, 'a', 0, 0},
	}
	for name, b := range cases {
		if _, err := DecodeUpdate(b); err == nil {
			t.Errorf("%s: no error", name)
		}
		d := NewDoc()
		if err := d.ApplyUpdate(b, nil); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	if err := NewDoc().ApplyUpdate(EmptyUpdate, nil); err != nil {
		t.Fatal(err)
	}
}

// Every content kind survives decode → encode → decode.
func TestAllContentKindsRoundTrip(t *testing.T) {
	e := NewEncoder()
	contents := []Content{
		&ContentDeleted{2}, &ContentJSON{[]any{int64(1), "x", Undefined{}}}, &ContentBinary{[]byte{1, 2}},
		&ContentString{utf16FromString("hé")}, &ContentEmbed{map[string]any{"img": "x"}}, &ContentFormat{"bold", true},
		&ContentType{&Branch{typeRef: TypeXmlElement, name: "p"}}, &ContentAny{[]any{int64(1), nil}}, &ContentDoc{"guid", map[string]any{}},
	}
	e.WriteVarUint(1)
	e.WriteVarUint(uint64(len(contents)) + 2)
	e.WriteVarUint(3)
	e.WriteVarUint(0)
	for _, c := range contents {
		e.WriteUint8(c.ref())
		e.WriteVarUint(1)
		e.WriteVarString("x")
		c.write(e, 0)
	}
	e.WriteUint8(refGC)
	e.WriteVarUint(3)
	e.WriteUint8(refSkip)
	e.WriteVarUint(1)
	e.WriteVarUint(1)
	e.WriteVarUint(3)
	e.WriteVarUint(1)
	e.WriteVarUint(0)
	e.WriteVarUint(1)
	u, err := DecodeUpdate(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	items := u.Structs[3]
	if len(items) != len(contents)+2 {
		t.Fatalf("%d structs", len(items))
	}
	for i, c := range contents {
		if !reflect.DeepEqual(items[i].content, c) {
			t.Errorf("content %d: %#v want %#v", i, items[i].content, c)
		}
	}
	d := NewDocWithClientID(1)
	if err := d.ApplyUpdate(e.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	// Re-encode what was integrated and decode again.
	p := NewDoc()
	if err := p.ApplyUpdate(d.EncodeStateAsUpdate(nil), nil); err != nil {
		t.Fatal(err)
	}
	if got, want := js(p.ToJSON()), js(d.ToJSON()); got != want || !strings.Contains(got, "hé") {
		t.Fatalf("re-encoded: %s want %s", got, want)
	}
	if a, b := d.EncodeStateAsUpdate(nil), p.EncodeStateAsUpdate(nil); !reflect.DeepEqual(a, b) {
		t.Fatalf("re-encoding differs:\n%x\n%x", a, b)
	}
}

func TestClientIDRegeneratedOnConflict(t *testing.T) {
	a := NewDocWithClientID(42)
	a.GetText("t").Insert(0, "x")
	b := NewDocWithClientID(42)
	if err := b.ApplyUpdate(a.EncodeStateAsUpdate(nil), nil); err != nil {
		t.Fatal(err)
	}
	if b.ClientID() == 42 {
		t.Fatal("client ID not regenerated after a remote update with our ID")
	}
}

// yrs writes a block holding a lone surrogate as an empty string; it still
// spans one clock unit.
func TestEmptyStringItemFromYrs(t *testing.T) {
	e := NewEncoder()
	e.WriteVarUint(1)
	e.WriteVarUint(2)
	e.WriteVarUint(5)
	e.WriteVarUint(0)
	e.WriteUint8(refString)
	e.WriteVarUint(1)
	e.WriteVarString("t")
	e.WriteVarString("")
	e.WriteUint8(refString | 0x80)
	e.WriteVarUint(5)
	e.WriteVarUint(0)
	e.WriteVarString("x")
	e.WriteVarUint(0)
	d := NewDoc()
	if err := d.ApplyUpdate(e.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	if got := d.GetText("t").String(); got != "\uFFFDx" || d.StateVector()[5] != 2 {
		t.Fatalf("got %q, state %v", got, d.StateVector())
	}
}

// A struct after a Skip whose own dependencies are present is integrated
// right away (hole tolerance, as in yrs); the state vector stops at the hole
// and the document's own encoding carries the hole as a Skip.
func TestHoleTolerance(t *testing.T) {
	e := NewEncoder()
	e.WriteVarUint(1)
	e.WriteVarUint(3)
	e.WriteVarUint(7)
	e.WriteVarUint(0)
	e.WriteUint8(refAny | 0x20) // m["a"] = 1 at clock 0
	e.WriteVarUint(1)
	e.WriteVarString("m")
	e.WriteVarString("a")
	e.WriteVarUint(1)
	e.WriteAny(1)
	e.WriteUint8(refSkip) // clocks 1..3 missing
	e.WriteVarUint(3)
	e.WriteUint8(refAny | 0x20) // m["b"] = 2 at clock 4
	e.WriteVarUint(1)
	e.WriteVarString("m")
	e.WriteVarString("b")
	e.WriteVarUint(1)
	e.WriteAny(2)
	e.WriteVarUint(1) // delete set: clock 2 (in the hole) is deleted
	e.WriteVarUint(7)
	e.WriteVarUint(1)
	e.WriteVarUint(2)
	e.WriteVarUint(1)
	d := NewDoc()
	if err := d.ApplyUpdate(e.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	if got := js(d.GetMap("m").ToJSON()); got != `{"a":1,"b":2}` {
		t.Fatalf("got %s", got)
	}
	if sv := d.StateVector(); sv[7] != 1 {
		t.Fatalf("state vector %v, want the hole start 1", sv)
	}
	if !d.HasPending() { // the deletion of clock 2 waits
		t.Fatal("deletion in the hole not kept")
	}
	u, err := DecodeUpdate(d.EncodeStateAsUpdate(nil))
	if err != nil {
		t.Fatal(err)
	}
	if list := u.Structs[7]; len(list) != 3 || !IsSkip(list[1]) || list[1].length != 3 {
		t.Fatalf("re-encoding lost the hole: %d structs", len(list))
	}
	// Filling the hole: m["c"] = 3 at clocks 1..3 via three Any values is
	// not possible for a map key, so fill with a text insert of 3 units.
	f := NewEncoder()
	f.WriteVarUint(1)
	f.WriteVarUint(1)
	f.WriteVarUint(7)
	f.WriteVarUint(1)
	f.WriteUint8(refString)
	f.WriteVarUint(1)
	f.WriteVarString("t")
	f.WriteVarString("xyz")
	f.WriteVarUint(0)
	if err := d.ApplyUpdate(f.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	if got := d.GetText("t").String(); got != "xz" || d.HasPending() || d.StateVector()[7] != 5 {
		t.Fatalf("after filling: %q pending %v sv %v", got, d.HasPending(), d.StateVector())
	}
}

func TestMergeUpdatesUnit(t *testing.T) {
	ups := seedUpdates()
	incremental := ups[:len(ups)-1]
	var rev [][]byte
	for i := len(incremental) - 1; i >= 0; i-- {
		rev = append(rev, incremental[i], incremental[i]) // reversed and duplicated
	}
	merged, err := MergeUpdates(rev...)
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewDoc(), NewDoc()
	if err := a.ApplyUpdate(merged, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.ApplyUpdate(ups[len(ups)-1], nil); err != nil {
		t.Fatal(err)
	}
	if js(a.ToJSON()) != js(b.ToJSON()) || a.HasPending() {
		t.Fatalf("merged %s\nwant   %s", js(a.ToJSON()), js(b.ToJSON()))
	}
	// A gap becomes a Skip.
	gap, err := MergeUpdates(incremental[0], incremental[len(incremental)-1])
	if err != nil {
		t.Fatal(err)
	}
	u, err := DecodeUpdate(gap)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range u.Structs[11] {
		found = found || IsSkip(it)
	}
	if !found {
		t.Fatal("no Skip for the gap")
	}
	if _, err := MergeUpdates([]byte{1}); err == nil {
		t.Fatal("bad input merged")
	}
}

// NaN and ±Inf read as null in ToJSON, as JSON.stringify writes them (a
// notebook written by Python can hold NaN), at any depth, while the
// document keeps the numbers: a peer receiving its state reads them too.
func TestToJSONNonFiniteNumbers(t *testing.T) {
	d := NewDocWithClientID(1)
	m := d.GetMap("m")
	for k, v := range map[string]any{
		"nan":    math.NaN(),
		"inf":    math.Inf(-1),
		"nested": map[string]any{"list": []any{1.5, math.Inf(1)}, "ok": "x"},
		"plain":  2.5,
	} {
		if err := m.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	want := `{"inf":null,"nan":null,"nested":{"list":[1.5,null],"ok":"x"},"plain":2.5}`
	for _, doc := range []*Doc{d, func() *Doc {
		p := NewDoc()
		p.GetMap("m")
		if err := p.ApplyUpdate(d.EncodeStateAsUpdate(nil), nil); err != nil {
			t.Fatal(err)
		}
		return p
	}()} {
		got, err := json.Marshal(doc.GetMap("m").ToJSON())
		if err != nil || string(got) != want {
			t.Fatalf("ToJSON = %s (%v), want %s", got, err, want)
		}
	}
	if v, _ := m.Get("nan"); v == nil || !math.IsNaN(v.(float64)) {
		t.Fatalf("the document's own value changed: %v", v)
	}
}
