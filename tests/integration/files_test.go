package integration

import (
	"slices"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

type listOut struct {
	Entries []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	} `json:"entries"`
	Total      int `json:"total"`
	NextOffset int `json:"next_offset"`
}

func paths(l listOut) []string {
	var p []string
	for _, e := range l.Entries {
		p = append(p, e.Path)
	}
	return p
}

func TestListFilesAndNotebooks(t *testing.T) {
	cs := session(t)
	for _, f := range []string{"tree/a.ipynb", "tree/data.csv", "tree/sub/b.ipynb", "tree/sub/deep/c.ipynb", "tree/sub/deep/more.csv"} {
		writeFile(t, f, goodNotebook)
	}

	top := labtest.Call[listOut](t, cs, "list_files", map[string]any{"path": "tree"})
	if got := paths(top); !slices.Equal(got, []string{"tree/a.ipynb", "tree/data.csv", "tree/sub"}) {
		t.Fatalf("list_files tree = %v", got)
	}
	csv := labtest.Call[listOut](t, cs, "list_files", map[string]any{"path": "tree", "glob": "*.csv", "depth": 3})
	if got := paths(csv); !slices.Equal(got, []string{"tree/data.csv", "tree/sub/deep/more.csv"}) {
		t.Fatalf("list_files *.csv depth 3 = %v", got)
	}
	nbs := labtest.Call[listOut](t, cs, "list_notebooks", map[string]any{"path": "tree"})
	if got := paths(nbs); !slices.Equal(got, []string{"tree/a.ipynb", "tree/sub/b.ipynb", "tree/sub/deep/c.ipynb"}) {
		t.Fatalf("list_notebooks = %v", got)
	}
	page1 := labtest.Call[listOut](t, cs, "list_notebooks", map[string]any{"path": "tree", "limit": 2})
	page2 := labtest.Call[listOut](t, cs, "list_notebooks", map[string]any{"path": "tree", "limit": 2, "offset": page1.NextOffset})
	if page1.Total != 3 || page1.NextOffset != 2 || !slices.Equal(paths(page2), []string{"tree/sub/deep/c.ipynb"}) || page2.NextOffset != 0 {
		t.Fatalf("paging: %+v then %+v", page1, page2)
	}
}
