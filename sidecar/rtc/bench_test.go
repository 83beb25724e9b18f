package rtc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// benchNotebook is the notebook tests/bench reads: n code cells, each
// with a two-line source, an execution count and one stream output.
func benchNotebook(n int) string {
	cs := make([]string, n)
	for i := range cs {
		cs[i] = fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"execution_count":%d,"outputs":[{"output_type":"stream","name":"stdout","text":"line %d\n"}],"source":"x%d = %d\nprint(x%d)"}`, i, i+1, i, i, i, i)
	}
	return `{"cells":[` + strings.Join(cs, ",") + `],"metadata":{"kernelspec":{"name":"python3","display_name":"Python 3","language":"python"}},"nbformat":4,"nbformat_minor":5}`
}

// BenchmarkRoomNotebook is a read of an unchanged 200-cell live notebook,
// what read_notebook asks of a room.
func BenchmarkRoomNotebook(b *testing.B) {
	doc := yjs.NewDoc()
	load(b, doc, benchNotebook(200))
	r := &Room{}
	r.setDoc(doc)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Notebook(); err != nil {
			b.Fatal(err)
		}
	}
}
