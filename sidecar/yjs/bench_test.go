package yjs

import (
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
)

// benchFixture is a large notebook-shaped document (300 cells of ~1.5 KB)
// plus 20,000 single-character edits made by a second peer, each recorded as
// its own update, as a server would broadcast them.
var benchFixture = sync.OnceValue(func() (f struct {
	base        []byte
	incremental [][]byte
	full        []byte
	midSV       StateVector
}) {
	a := NewDocWithClientID(1)
	cells := a.GetArray("cells")
	a.Transact(func(*Transaction) {
		for i := 0; i < 300; i++ {
			cells.Push(MapPrelim{
				"id": fmt.Sprintf("cell-%d", i), "cell_type": "code", "execution_count": nil,
				"source": TextPrelim(strings.Repeat("x = 1 # 😀 some code\n", 70)), "metadata": MapPrelim{}, "outputs": ArrayPrelim{},
			})
		}
	})
	f.base = a.EncodeStateAsUpdate(nil)
	b := NewDocWithClientID(2)
	if err := b.ApplyUpdate(f.base, nil); err != nil {
		panic(err)
	}
	b.OnUpdate(func(u []byte, _ *Transaction) { f.incremental = append(f.incremental, u) })
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		c, _ := b.GetArray("cells").Get(r.Intn(300))
		src, _ := c.(*Map).GetText("source")
		if i%5 == 4 {
			src.Delete(r.Intn(src.Len()-2), 1)
		} else {
			src.Insert(r.Intn(src.Len()+1), "y")
		}
		if i == 10000 {
			f.midSV = b.StateVector()
		}
	}
	f.full = b.EncodeStateAsUpdate(nil)
	return f
})

// BenchmarkLoadLargeDocument applies a ~1 MB full-state update.
func BenchmarkLoadLargeDocument(b *testing.B) {
	f := benchFixture()
	b.SetBytes(int64(len(f.full)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := NewDoc()
		if err := d.ApplyUpdate(f.full, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyIncremental applies 20,000 single-edit updates one by one.
func BenchmarkApplyIncremental(b *testing.B) {
	f := benchFixture()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d := NewDoc()
		if err := d.ApplyUpdate(f.base, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, u := range f.incremental {
			if err := d.ApplyUpdate(u, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(f.incremental)), "ns/update")
}

// BenchmarkEncodeDiff encodes what a peer half-way through the edits lacks.
func BenchmarkEncodeDiff(b *testing.B) {
	f := benchFixture()
	d := NewDoc()
	if err := d.ApplyUpdate(f.full, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = d.EncodeStateAsUpdate(f.midSV)
	}
}

// BenchmarkLocalEdit measures one local text insert with its update.
func BenchmarkLocalEdit(b *testing.B) {
	f := benchFixture()
	d := NewDoc()
	if err := d.ApplyUpdate(f.full, nil); err != nil {
		b.Fatal(err)
	}
	n := 0
	d.OnUpdate(func(u []byte, _ *Transaction) { n += len(u) })
	c, _ := d.GetArray("cells").Get(150)
	src, _ := c.(*Map).GetText("source")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src.Insert(src.Len()/2, "z")
	}
}
