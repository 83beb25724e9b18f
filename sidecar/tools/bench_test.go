package tools

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// fixedDocs serves notebooks, by path, that never change, so a benchmark
// measures the tool's own work and none of the backend's.
type fixedDocs map[string]*notebook.Notebook

func (d fixedDocs) Load(_ context.Context, path string) (*notebook.Notebook, error) {
	if nb, ok := d[path]; ok {
		return nb, nil
	}
	return nil, fmt.Errorf("notebook %q does not exist", path)
}
func (d fixedDocs) Update(context.Context, string, func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return nil, fmt.Errorf("read-only")
}
func (d fixedDocs) Live() bool { return true }
func (d fixedDocs) Progress(ctx context.Context, p string, e func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return d.Update(ctx, p, e)
}

// benchNotebook is tests/bench's notebook: n code cells, each with a
// two-line source, an execution count and one stream output.
func benchNotebook(tb testing.TB, n int) *notebook.Notebook {
	cs := make([]string, n)
	for i := range cs {
		cs[i] = fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"execution_count":%d,"outputs":[{"output_type":"stream","name":"stdout","text":"line %d\n"}],"source":"x%d = %d\nprint(x%d)"}`, i, i+1, i, i, i, i)
	}
	nb, err := notebook.Parse([]byte(`{"cells":[` + strings.Join(cs, ",") + `],"metadata":{},"nbformat":4,"nbformat_minor":5}`))
	if err != nil {
		tb.Fatal(err)
	}
	return nb
}

// BenchmarkReadNotebook reads the 200 cells of tests/bench's notebook: the
// handler alone, and through an MCP session in process (go-sdk's encoding
// of the result, both ways, included).
func BenchmarkReadNotebook(b *testing.B) {
	tools := &Tools{Docs: fixedDocs{"n.ipynb": benchNotebook(b, 200)}, Sessions: NewSessions()}
	in := ReadNotebookIn{Path: "n.ipynb", Limit: 200}
	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := tools.readNotebook(b.Context(), nil, in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mcp", func(b *testing.B) {
		s := mcp.NewServer(&mcp.Implementation{Name: "bench"}, nil)
		tools.Register(s)
		session := connect(b, s, nil)
		args := map[string]any{"path": in.Path, "limit": in.Limit}
		b.ReportAllocs()
		for b.Loop() {
			res, err := session.CallTool(b.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: args})
			if err != nil || res.IsError {
				b.Fatal(err, res)
			}
		}
	})
}
