package integration

import (
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const goodNotebook = `{"cells": [
  {"cell_type": "code", "id": "a1", "metadata": {}, "outputs": [], "execution_count": null, "source": "x = 1"},
  {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "note"}
 ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`

// Every bad input gets a precise error and leaves the files as they were.
func TestBadInputsChangeNothing(t *testing.T) {
	cs := session(t)
	writeFile(t, "bad/good.ipynb", goodNotebook)
	writeFile(t, "bad/corrupt.ipynb", `{"cells": [ {"cell_type": "code", `)
	writeFile(t, "bad/notes.txt", "plain text")
	before := map[string]string{}
	for _, f := range []string{"bad/good.ipynb", "bad/corrupt.ipynb", "bad/notes.txt"} {
		before[f] = readFile(t, f)
	}
	good := "bad/good.ipynb"
	cases := []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{"traversal", "read_notebook", map[string]any{"path": "../outside.ipynb"}, `leaves the Jupyter root`},
		{"traversal in middle", "insert_cell", map[string]any{"path": "bad/../../x.ipynb", "source": "1"}, `leaves the Jupyter root`},
		{"traversal in listing", "list_files", map[string]any{"path": "../"}, `leaves the Jupyter root`},
		{"missing notebook", "read_notebook", map[string]any{"path": "bad/nope.ipynb"}, `"bad/nope.ipynb" does not exist`},
		{"not a notebook path", "read_notebook", map[string]any{"path": "bad/notes.txt"}, `is not a notebook`},
		{"no notebook selected", "read_notebook", map[string]any{}, `no notebook selected`},
		{"create existing", "create_notebook", map[string]any{"path": good}, `already exists`},
		{"create in missing folder", "create_notebook", map[string]any{"path": "nofolder/x.ipynb"}, `folder "nofolder" does not exist`},
		{"create unknown kernel", "create_notebook", map[string]any{"path": "bad/k.ipynb", "kernel_name": "cobol"}, `no kernel named "cobol"`},
		{"create not ipynb", "create_notebook", map[string]any{"path": "bad/x.txt"}, `end in .ipynb`},
		{"unknown cell id", "edit_cell", map[string]any{"path": good, "cell_id": "zz", "source": "y"}, `no cell has id "zz"; the notebook's cell ids are: a1, m1`},
		{"index out of range", "read_cell", map[string]any{"path": good, "index": 5}, `cell index 5 is out of range: the notebook has 2 cells`},
		{"wrong cell type", "insert_cell", map[string]any{"path": good, "source": "x", "cell_type": "python"}, `python does not equal any of: [code markdown raw]`},
		{"bad insert index", "insert_cell", map[string]any{"path": good, "source": "x", "index": 9}, `insert index 9 is out of range`},
		{"oversized source", "insert_cell", map[string]any{"path": good, "source": strings.Repeat("a", 1<<20+1)}, `more than the limit`},
		{"ambiguous replace", "edit_cell", map[string]any{"path": good, "cell_id": "a1", "old_text": " ", "new_text": "_"}, `occurs 2 times`},
		{"absent replace", "edit_cell", map[string]any{"path": good, "cell_id": "a1", "old_text": "zzz", "new_text": "_"}, `does not occur`},
		{"edit both modes", "edit_cell", map[string]any{"path": good, "cell_id": "a1", "source": "s", "old_text": "x", "new_text": "y"}, `not both`},
		{"delete unknown", "delete_cells", map[string]any{"path": good, "cell_ids": []string{"a1", "zz"}}, `no cell has id "zz"`},
		{"delete nothing", "delete_cells", map[string]any{"path": good}, `name the cells to delete`},
		{"move out of range", "move_cell", map[string]any{"path": good, "cell_id": "a1", "to_index": 7}, `target index 7 is out of range`},
		{"wrong argument type", "read_cell", map[string]any{"path": good, "index": "first"}, `first has type "string"`},
		{"unknown argument", "read_cell", map[string]any{"path": good, "cell": "a1"}, `unexpected additional properties ["cell"]`},
		{"corrupt notebook read", "read_notebook", map[string]any{"path": "bad/corrupt.ipynb"}, `is not valid notebook JSON`},
		{"corrupt notebook edit", "insert_cell", map[string]any{"path": "bad/corrupt.ipynb", "source": "x"}, `is not valid notebook JSON`},
		{"file is a folder", "list_files", map[string]any{"path": good}, `not a folder`},
		{"bad glob", "list_files", map[string]any{"glob": "[x"}, `not a valid pattern`},
		{"bad detail", "read_notebook", map[string]any{"path": good, "detail": "everything"}, `everything does not equal any of: [brief full]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			labtest.CallErr(t, cs, tc.tool, tc.args, tc.want)
		})
	}
	for f, content := range before {
		if got := readFile(t, f); got != content {
			t.Errorf("%s changed after bad inputs", f)
		}
	}
	validateNotebook(t, good)
}
