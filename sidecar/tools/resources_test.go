package tools

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
)

// The resource templates are an API like the tools: a change shows up as a
// reviewed diff of testdata/resource_templates.json (`-update` accepts it).
func TestResourceTemplateSnapshot(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "snapshot"}, nil)
	(&Tools{}).Register(s)
	cs := connect(t, s, nil)
	var templates []*mcp.ResourceTemplate
	for rt, err := range cs.ResourceTemplates(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, rt)
	}
	checkSnapshot(t, "resource_templates.json", templates)
}

func TestParseResourceURI(t *testing.T) {
	good := map[string]resourceRef{
		"notebook:///a.ipynb":                    {Path: "a.ipynb", Output: -1},
		"notebook:///dir/my%20nb.ipynb":          {Path: "dir/my nb.ipynb", Output: -1},
		"notebook:///a.ipynb?format=text":        {Path: "a.ipynb", Text: true, Output: -1},
		"notebook:///a.ipynb?cell=c-1":           {Path: "a.ipynb", Cell: "c-1", Output: -1},
		"notebook:///a.ipynb?cell=c1&output=2":   {Path: "a.ipynb", Cell: "c1", Output: 2},
		"notebook:///a.ipynb?output=0&cell=c1":   {Path: "a.ipynb", Cell: "c1", Output: 0},
		NotebookURI("x y/é.ipynb") + "?cell=abc": {Path: "x y/é.ipynb", Cell: "abc", Output: -1},
	}
	for uri, want := range good {
		got, err := parseResourceURI(uri)
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", uri, got, err, want)
		}
	}
	bad := map[string]string{
		"notebook://host/a.ipynb":                "no host",
		"notebook:a.ipynb":                       "no host",
		"notebook:///a.ipynb#cell=c1":            "fragments are not used",
		"notebook:///a.txt":                      "ending in .ipynb",
		"notebook:///../a.ipynb":                 "leaves the Jupyter root",
		"notebook:///dir//a.ipynb":               "ending in .ipynb",
		"notebook:///a.ipynb?cell=":              "with a value",
		"notebook:///a.ipynb?cell=a&cell=b":      "given once",
		"notebook:///a.ipynb?format=html":        "format \"html\" is not known",
		"notebook:///a.ipynb?format=text&cell=a": "a cell is always text",
		"notebook:///a.ipynb?output=1":           "output needs cell",
		"notebook:///a.ipynb?cell=a&output=-1":   "not a 0-based index",
		"notebook:///a.ipynb?foo=1":              "\"foo\" is not known",
		"notebook:///a.ipynb?cell=%zz":           "bad query",
	}
	for uri, want := range bad {
		_, err := parseResourceURI(uri)
		var je *jsonrpc.Error
		if !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams || !strings.Contains(je.Message, want) {
			t.Errorf("%s: got %v, want an invalid-params error saying %q", uri, err, want)
		}
	}
}

// Every notebook: URI reaches the sidecar's handler (go-sdk's {+path} match
// takes the query and fragment too), so a malformed one gets the precise
// error rather than go-sdk's bare "Resource not found".
func TestMalformedURIsReachTheHandler(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "t"}, nil)
	(&Tools{}).Register(s)
	cs := connect(t, s, nil)
	for _, uri := range []string{"notebook:///a.ipynb?foo=1", "notebook:///a.ipynb#x", "notebook:///a.txt"} {
		_, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri})
		if err == nil || !strings.Contains(err.Error(), "malformed notebook resource URI") {
			t.Errorf("%s: %v", uri, err)
		}
	}
	_, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "nope://x"})
	if err == nil || !strings.Contains(err.Error(), "Resource not found") {
		t.Errorf("unknown scheme: %v", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, n := range []int{0, 100, 12345} {
		if got, err := decodeCursor(encodeCursor(n)); err != nil || got != n {
			t.Errorf("%d: %d %v", n, got, err)
		}
	}
	for _, c := range []string{"", "x", encodeCursor(5)[1:], "bm90ZWJvb2tzOi0x"} {
		if _, err := decodeCursor(c); err == nil {
			t.Errorf("%q decoded", c)
		}
	}
}

// A URI the parser accepts names a notebook path inside the root, and the
// URI the sidecar builds for that path names it again; a refusal is always
// an invalid-params error.
func FuzzParseResourceURI(f *testing.F) {
	for _, s := range []string{"notebook:///a.ipynb", "notebook:///d/x%20y.ipynb?cell=c1&output=0", "notebook:///a.ipynb?format=text",
		"notebook:///../a.ipynb", "notebook://h/a.ipynb", "notebook:///a.ipynb#c", "notebook:///%2e%2e/a.ipynb", "notebook:///a%2Fb.ipynb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		ref, err := parseResourceURI(uri)
		if err != nil {
			var je *jsonrpc.Error
			if !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("%q: %v", uri, err)
			}
			return
		}
		if clean, err := cleanPath(ref.Path); err != nil || clean != ref.Path || !strings.HasSuffix(ref.Path, ".ipynb") {
			t.Fatalf("%q accepted with path %q", uri, ref.Path)
		}
		again, err := parseResourceURI(NotebookURI(ref.Path))
		if err != nil || again.Path != ref.Path {
			t.Fatalf("%q: path %q does not survive NotebookURI: %+v %v", uri, ref.Path, again, err)
		}
	})
}

// The event bus's Contents actions, in order: which change the resource
// list, and which notebook or folder each takes away.
func TestContentsChanged(t *testing.T) {
	var w watch
	for _, tc := range []struct {
		ev          jupyter.ContentsEvent
		listChanged bool
		gone        string
	}{
		{jupyter.ContentsEvent{Action: "save", Path: "a.ipynb"}, true, ""},  // first seen: new
		{jupyter.ContentsEvent{Action: "save", Path: "a.ipynb"}, false, ""}, // known: a save
		{jupyter.ContentsEvent{Action: "save", Path: "notes.txt"}, false, ""},
		{jupyter.ContentsEvent{Action: "copy", Path: "d/b.ipynb", SourcePath: "a.ipynb"}, true, ""},
		{jupyter.ContentsEvent{Action: "rename", Path: "c.ipynb", SourcePath: "a.ipynb"}, true, "a.ipynb"},
		{jupyter.ContentsEvent{Action: "save", Path: "c.ipynb"}, false, ""}, // known by its rename
		{jupyter.ContentsEvent{Action: "save", Path: "a.ipynb"}, true, ""},  // back again: new
		{jupyter.ContentsEvent{Action: "delete", Path: "d"}, true, "d"},     // a folder
		{jupyter.ContentsEvent{Action: "save", Path: "d/b.ipynb"}, true, ""},
		{jupyter.ContentsEvent{Action: "rename", Path: "y.txt", SourcePath: "x.txt"}, false, "x.txt"},
		{jupyter.ContentsEvent{Action: "get", Path: "e.ipynb"}, false, ""},
	} {
		listChanged, gone := w.contentsChanged(tc.ev)
		if listChanged != tc.listChanged || gone != tc.gone {
			t.Fatalf("%+v: list changed %v, gone %q; want %v, %q", tc.ev, listChanged, gone, tc.listChanged, tc.gone)
		}
	}
}
