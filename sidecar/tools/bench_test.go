package tools

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// fixedDocs serves one notebook that never changes, so a benchmark measures
// the tool's own work and none of the backend's.
type fixedDocs struct{ nb *notebook.Notebook }

func (d fixedDocs) Load(context.Context, string) (*notebook.Notebook, error) { return d.nb, nil }
func (d fixedDocs) Update(context.Context, string, func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return nil, fmt.Errorf("read-only")
}
func (d fixedDocs) Live() bool { return true }
func (d fixedDocs) Progress(ctx context.Context, p string, e func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return d.Update(ctx, p, e)
}

// BenchmarkReadNotebook reads the 200 cells of tests/bench's notebook: the
// handler alone, and through an MCP session in process (go-sdk's encoding
// of the result, both ways, included).
func BenchmarkReadNotebook(b *testing.B) {
	cs := make([]string, 200)
	for i := range cs {
		cs[i] = fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"execution_count":%d,"outputs":[{"output_type":"stream","name":"stdout","text":"line %d\n"}],"source":"x%d = %d\nprint(x%d)"}`, i, i+1, i, i, i, i)
	}
	nb, err := notebook.Parse([]byte(`{"cells":[` + strings.Join(cs, ",") + `],"metadata":{},"nbformat":4,"nbformat_minor":5}`))
	if err != nil {
		b.Fatal(err)
	}
	tools := &Tools{Docs: fixedDocs{nb}, Sessions: NewSessions()}
	in := ReadNotebookIn{Path: "n.ipynb", Limit: len(cs)}
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
