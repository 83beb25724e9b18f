package tools

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// A tool added with addUncheckedOutputTool is, to a client, the tool go-sdk's
// mcp.AddTool makes: the same listing, and for every call the same error
// or the same content and structured content (go-sdk's client checks the
// latter against the output schema). The same handler is registered both
// ways on servers reading the same notebook, and the answers compared.
// (The one difference: see notObjects.)
func TestUncheckedOutputToolsMatchGoSDK(t *testing.T) {
	nb := benchNotebook(t, 7)
	nb.Cells[1].Source = strings.Repeat("line\n", 30) // shortened when brief
	nb.Cells[2].ExecutionCount, nb.Cells[2].Outputs = nil, nil
	if _, _, err := nb.Insert(notebook.Position{}, notebook.Markdown, "# notes"); err != nil {
		t.Fatal(err)
	}
	tools := &Tools{Docs: fixedDocs{"n.ipynb": nb, "empty.ipynb": notebook.New(nil)}, Sessions: NewSessions()}
	theirs := mcp.NewServer(&mcp.Implementation{Name: "go-sdk"}, nil)
	mcp.AddTool(theirs, readNotebookTool, tools.readNotebook)
	ours := mcp.NewServer(&mcp.Implementation{Name: "ours"}, nil)
	addUncheckedOutputTool(ours, readNotebookTool, tools.readNotebook)
	want, got := connect(t, theirs, nil), connect(t, ours, nil)

	var listed []*mcp.Tool
	listing := func(cs *mcp.ClientSession) string {
		res, err := cs.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		listed = res.Tools
		data, _ := json.Marshal(res.Tools)
		return string(data)
	}
	if w, g := listing(want), listing(got); w != g {
		t.Fatalf("tools/list:\n%s\nwant (go-sdk's):\n%s", g, w)
	}
	// The check go-sdk makes of each result, made here of ours.
	var schema jsonschema.Schema
	if data, err := json.Marshal(listed[0].OutputSchema); err != nil || json.Unmarshal(data, &schema) != nil {
		t.Fatalf("output schema: %v", err)
	}
	output, err := schema.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	results := 0

	calls := []any{
		map[string]any{"path": "n.ipynb"},
		map[string]any{"path": "n.ipynb", "limit": 500, "detail": "full"},
		map[string]any{"path": "n.ipynb", "start": 2, "limit": 3, "include_outputs": false},
		map[string]any{"path": "n.ipynb", "start": 7},
		map[string]any{"path": "n.ipynb", "start": 8},
		map[string]any{"path": "n.ipynb", "limit": -1},
		map[string]any{"path": "empty.ipynb"},
		map[string]any{"path": "missing.ipynb"},
		map[string]any{},
		map[string]any{"path": "n.txt"},
		map[string]any{"path": "n.ipynb", "detail": "nope"},
		map[string]any{"path": "n.ipynb", "limit": "ten"},
		map[string]any{"path": "n.ipynb", "limit": 1.5},
		map[string]any{"path": "n.ipynb", "extra": true},
		map[string]any{"path": 3},
		nil,
	}
	// Arguments that are not an object: the same error, in the words of
	// another JSON decoder (go-sdk has its own) after the colon.
	notObjects := []any{"n.ipynb", []any{1}}
	for _, args := range notObjects {
		res, err := got.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: args})
		const want = `validating "arguments": unmarshaling arguments: json: cannot unmarshal `
		if err != nil || !res.IsError || len(res.Content) != 1 || !strings.HasPrefix(res.Content[0].(*mcp.TextContent).Text, want) {
			data, _ := json.Marshal(res)
			t.Errorf("%v: %s %v, want an error result starting %q", args, data, err, want)
		}
	}
	for _, args := range calls {
		w, werr := want.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: args})
		g, gerr := got.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: args})
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Errorf("%v: error %v, want (go-sdk's) %v", args, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		if !g.IsError {
			results++
			var v any
			data, _ := json.Marshal(g.StructuredContent)
			if err := json.Unmarshal(data, &v); err != nil || output.Validate(v) != nil {
				t.Errorf("%v: the result %s does not fit the output schema: %v", args, data, output.Validate(v))
			}
		}
		if w.IsError != g.IsError || !sameJSON(t, w.Content, g.Content) || !sameJSON(t, w.StructuredContent, g.StructuredContent) {
			wd, _ := json.Marshal(w)
			gd, _ := json.Marshal(g)
			t.Errorf("%v:\n%s\nwant (go-sdk's):\n%s", args, gd, wd)
		}
	}
	if results < 5 {
		t.Errorf("only %d calls had a result to compare", results)
	}
}

// sameJSON reports whether a and b encode the same JSON value (key order
// aside).
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	var va, vb any
	for _, p := range []struct {
		v   any
		dst *any
	}{{a, &va}, {b, &vb}} {
		data, err := json.Marshal(p.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, p.dst); err != nil {
			t.Fatal(err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

// A tool added with addTool (its input schema handed over as JSON) is
// listed as mcp.AddTool lists it, and refuses bad arguments in the same
// words: go-sdk resolves the same schema from the JSON.
func TestAddToolMatchesGoSDK(t *testing.T) {
	tools := &Tools{Docs: fixedDocs{}, Sessions: NewSessions()}
	theirs := mcp.NewServer(&mcp.Implementation{Name: "go-sdk"}, nil)
	mcp.AddTool(theirs, insertCellTool, tools.insertCell) // an input schema of its own (enums)
	mcp.AddTool(theirs, getExecutionTool, tools.getExecution)
	ours := mcp.NewServer(&mcp.Implementation{Name: "ours"}, nil)
	addTool(ours, insertCellTool, tools.insertCell)
	addTool(ours, getExecutionTool, tools.getExecution)
	want, got := connect(t, theirs, nil), connect(t, ours, nil)
	list := func(cs *mcp.ClientSession) string {
		res, err := cs.ListTools(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(res.Tools)
		return string(data)
	}
	if w, g := list(want), list(got); w != g {
		t.Fatalf("tools/list:\n%s\nwant (go-sdk's):\n%s", g, w)
	}
	for _, call := range []struct {
		tool string
		args any
	}{
		{"insert_cell", map[string]any{"path": "n.ipynb", "cell_type": "sql", "source": "x"}},
		{"insert_cell", map[string]any{"path": "n.ipynb", "source": 3}},
		{"insert_cell", map[string]any{"path": "n.ipynb", "source": "x", "extra": true}},
		{"get_execution", map[string]any{}},
		{"get_execution", map[string]any{"execution_id": "x0", "timeout": "soon"}},
	} {
		w, werr := want.CallTool(t.Context(), &mcp.CallToolParams{Name: call.tool, Arguments: call.args})
		g, gerr := got.CallTool(t.Context(), &mcp.CallToolParams{Name: call.tool, Arguments: call.args})
		if werr != nil || gerr != nil || !w.IsError || !g.IsError || !sameJSON(t, w.Content, g.Content) {
			wd, _ := json.Marshal(w)
			gd, _ := json.Marshal(g)
			t.Errorf("%s %v:\n%s %v\nwant (go-sdk's):\n%s %v", call.tool, call.args, gd, gerr, wd, werr)
		}
	}
}
