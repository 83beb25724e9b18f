package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type notebookRef struct {
	Path        string `json:"path"`
	Kernel      string `json:"kernel"`
	Cells       int    `json:"cells"`
	FirstCellID string `json:"first_cell_id"`
	LabURL      string `json:"lab_url"`
}

type cellView struct {
	Index          int      `json:"index"`
	ID             string   `json:"id"`
	Type           string   `json:"type"`
	Source         string   `json:"source"`
	ExecutionCount *int     `json:"execution_count"`
	Outputs        []string `json:"outputs"`
	Truncated      bool     `json:"truncated"`
}

type readOut struct {
	Path       string     `json:"path"`
	TotalCells int        `json:"total_cells"`
	Cells      []cellView `json:"cells"`
	NextStart  int        `json:"next_start"`
}

type insertOut struct {
	CellID     string `json:"cell_id"`
	Index      int    `json:"index"`
	TotalCells int    `json:"total_cells"`
}

func ids(r readOut) string {
	var s []string
	for _, c := range r.Cells {
		s = append(s, c.ID)
	}
	return strings.Join(s, ",")
}

// The whole editing workflow through the proxy, checked on disk.
func TestNotebookWorkflow(t *testing.T) {
	cs := session(t)
	writeFile(t, "work/.keep", "")

	created := labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": "work/flow.ipynb"})
	if created.Path != "work/flow.ipynb" || created.Kernel != "python3" {
		t.Fatalf("create_notebook = %+v", created)
	}
	if want := shared.URL + "lab/tree/work/flow.ipynb"; created.LabURL != want {
		t.Fatalf("lab_url = %q, want %q", created.LabURL, want)
	}
	validateNotebook(t, "work/flow.ipynb")
	labtest.CallErr(t, cs, "create_notebook", map[string]any{"path": "work/flow.ipynb"}, "already exists")
	// A new notebook holds one empty code cell, as in JupyterLab.
	if created.Cells != 1 || created.FirstCellID == "" {
		t.Fatalf("new notebook: %+v", created)
	}
	labtest.Call[map[string]any](t, cs, "delete_cells", map[string]any{"cell_ids": []string{created.FirstCellID}})

	// create_notebook made it current: no path needed from here on.
	a := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"source": "x = 1\nprint(x)"})
	b := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"source": "# Title", "cell_type": "markdown", "index": 0})
	c := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"source": "raw", "cell_type": "raw", "after_cell_id": b.CellID})
	d := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"source": "y = 2", "before_cell_id": a.CellID})
	if a.Index != 0 || b.Index != 0 || c.Index != 1 || d.Index != 2 || d.TotalCells != 4 {
		t.Fatalf("insert positions: %+v %+v %+v %+v", a, b, c, d)
	}
	r := labtest.Call[readOut](t, cs, "read_notebook", nil)
	if got, want := ids(r), strings.Join([]string{b.CellID, c.CellID, d.CellID, a.CellID}, ","); got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
	if r.Cells[1].Type != "raw" || r.Cells[0].Source != "# Title" {
		t.Fatalf("read_notebook cells = %+v", r.Cells)
	}

	type editOut struct {
		CellID string `json:"cell_id"`
		Diff   string `json:"diff"`
	}
	e := labtest.Call[editOut](t, cs, "edit_cell", map[string]any{"cell_id": a.CellID, "old_text": "print(x)", "new_text": "print(x + 1)"})
	if !strings.Contains(e.Diff, "- print(x)") || !strings.Contains(e.Diff, "+ print(x + 1)") {
		t.Fatalf("diff = %q", e.Diff)
	}
	labtest.Call[editOut](t, cs, "edit_cell", map[string]any{"index": 0, "source": "# New title"})
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"cell_id": a.CellID})
	if cell.Source != "x = 1\nprint(x + 1)" || cell.Index != 3 {
		t.Fatalf("read_cell = %+v", cell)
	}

	type moveOut struct{ From, To int }
	m := labtest.Call[moveOut](t, cs, "move_cell", map[string]any{"cell_id": a.CellID, "to_index": 0})
	if m.From != 3 || m.To != 0 {
		t.Fatalf("move_cell = %+v", m)
	}
	type deleteOut struct {
		Deleted        []string `json:"deleted"`
		RemainingCells int      `json:"remaining_cells"`
	}
	del := labtest.Call[deleteOut](t, cs, "delete_cells", map[string]any{"cell_ids": []string{c.CellID, d.CellID}})
	if del.RemainingCells != 2 || len(del.Deleted) != 2 {
		t.Fatalf("delete_cells = %+v", del)
	}

	nb := savedNotebook(t, "work/flow.ipynb", "has the two cells left", func(nb map[string]any) bool { return len(cellsOf(nb)) == 2 })
	validateNotebook(t, "work/flow.ipynb")
	cells := cellsOf(nb)
	if cells[0].(map[string]any)["id"] != a.CellID {
		t.Fatalf("disk cells = %v", cells)
	}
	if md := nb["metadata"].(map[string]any)["kernelspec"].(map[string]any)["name"]; md != "python3" {
		t.Fatalf("kernelspec on disk = %v", md)
	}
}

// Outputs, metadata and unknown fields written by others survive edits,
// and clear_outputs removes exactly the outputs.
func TestEditsPreserveNotebookContent(t *testing.T) {
	cs := session(t)
	writeFile(t, "keep.ipynb", `{
 "cells": [
  {"cell_type": "code", "execution_count": 7, "id": "c1", "metadata": {"tags": ["keep-me"], "collapsed": false},
   "outputs": [{"name": "stdout", "output_type": "stream", "text": ["hello\n"]},
               {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": ["\u001b[0;31mValueError\u001b[0m: boom"]}],
   "source": ["print('hello')\n", "raise ValueError('boom')"]},
  {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "text"}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "custom": {"a": 1}},
 "nbformat": 4, "nbformat_minor": 5
}`)
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "keep.ipynb", "cell_id": "c1"})
	if len(cell.Outputs) != 2 || cell.Outputs[0] != "hello\n" || !strings.Contains(cell.Outputs[1], "ValueError: boom") || strings.Contains(cell.Outputs[1], "\x1b") {
		t.Fatalf("outputs = %q", cell.Outputs)
	}
	if cell.ExecutionCount == nil || *cell.ExecutionCount != 7 {
		t.Fatalf("execution_count = %v", cell.ExecutionCount)
	}
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "keep.ipynb", "source": "z = 3"})
	nb := savedNotebook(t, "keep.ipynb", "has the inserted cell", func(nb map[string]any) bool { return len(cellsOf(nb)) == 3 })
	first := cellsOf(nb)[0].(map[string]any)
	if len(first["outputs"].([]any)) != 2 || first["execution_count"].(float64) != 7 {
		t.Fatalf("insert lost outputs: %v", first)
	}
	if tags := first["metadata"].(map[string]any)["tags"]; fmt.Sprint(tags) != "[keep-me]" {
		t.Fatalf("insert lost cell metadata: %v", first["metadata"])
	}
	if nb["metadata"].(map[string]any)["custom"] == nil {
		t.Fatal("insert lost notebook metadata")
	}

	type clearOut struct {
		ClearedCells int `json:"cleared_cells"`
	}
	if got := labtest.Call[clearOut](t, cs, "clear_outputs", map[string]any{"path": "keep.ipynb"}); got.ClearedCells != 1 {
		t.Fatalf("clear_outputs = %+v", got)
	}
	nb = savedNotebook(t, "keep.ipynb", "has the outputs cleared", func(nb map[string]any) bool {
		outputs, _ := cellsOf(nb)[0].(map[string]any)["outputs"].([]any)
		return len(outputs) == 0
	})
	validateNotebook(t, "keep.ipynb")
	first = cellsOf(nb)[0].(map[string]any)
	if first["execution_count"] != nil || first["source"] == "" {
		t.Fatalf("after clear_outputs: %v", first)
	}
}

// read_notebook pages through long notebooks and shortens long cells.
func TestReadNotebookPaging(t *testing.T) {
	cs := session(t)
	var cells []string
	for i := range 120 {
		src := fmt.Sprintf("cell %d", i)
		if i == 5 {
			src = strings.Repeat("line\n", 40)
		}
		cells = append(cells, fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"outputs":[],"execution_count":null,"source":%q}`, i, src))
	}
	writeFile(t, "long.ipynb", `{"cells":[`+strings.Join(cells, ",")+`],"metadata":{},"nbformat":4,"nbformat_minor":5}`)
	labtest.Call[notebookRef](t, cs, "use_notebook", map[string]any{"path": "long.ipynb"})

	first := labtest.Call[readOut](t, cs, "read_notebook", nil)
	if first.TotalCells != 120 || len(first.Cells) != 50 || first.NextStart != 50 {
		t.Fatalf("first page: total %d, %d cells, next %d", first.TotalCells, len(first.Cells), first.NextStart)
	}
	if !first.Cells[5].Truncated || !strings.Contains(first.Cells[5].Source, "more lines") {
		t.Fatalf("long cell not shortened in brief mode: %+v", first.Cells[5])
	}
	last := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"start": 100, "limit": 50, "detail": "full"})
	if len(last.Cells) != 20 || last.Cells[0].ID != "c100" || last.NextStart != 0 {
		t.Fatalf("last page: %d cells from %s, next %d", len(last.Cells), last.Cells[0].ID, last.NextStart)
	}
	full := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"start": 5, "limit": 1, "detail": "full"})
	if full.Cells[0].Truncated || full.Cells[0].Source != strings.Repeat("line\n", 40) {
		t.Fatalf("full mode shortened the cell: %+v", full.Cells[0])
	}
}

// Two MCP sessions each have their own current notebook.
func TestSessionsHaveTheirOwnCurrentNotebook(t *testing.T) {
	one, two := session(t), session(t)
	labtest.Call[notebookRef](t, one, "create_notebook", map[string]any{"path": "one.ipynb"})
	labtest.Call[notebookRef](t, two, "create_notebook", map[string]any{"path": "two.ipynb"})

	// Both sessions insert at the same time, without naming a notebook.
	var wg sync.WaitGroup
	for name, cs := range map[string]*mcp.ClientSession{"one": one, "two": two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{"source": fmt.Sprintf("%s %d", name, i)}})
				if err != nil || res.IsError {
					t.Errorf("insert_cell in session %s: %v %v", name, err, res)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, name := range []string{"one", "two"} {
		r := labtest.Call[readOut](t, one, "read_notebook", map[string]any{"path": name + ".ipynb"})
		if r.TotalCells != 6 {
			t.Fatalf("%s.ipynb has %d cells, want the first empty one and 5 inserted", name, r.TotalCells)
		}
		for i, c := range r.Cells[1:] {
			if c.Source != fmt.Sprintf("%s %d", name, i) {
				t.Fatalf("%s.ipynb cell %d = %q: sessions interfered", name, i, c.Source)
			}
		}
		validateNotebook(t, name+".ipynb")
	}
}

type saveOut struct {
	Path          string  `json:"path"`
	LastModified  string  `json:"last_modified"`
	WaitedSeconds float64 `json:"waited_seconds"`
}

// save_notebook returns once the file holds the edits made before it: the
// file read at once shows each edit, and last_modified is the file's.
func TestSaveNotebook(t *testing.T) {
	nb := "work/save-now.ipynb"
	writeFile(t, "work/.keep", "")
	codeNotebook(t, nb, "first = 1")
	cs := session(t)
	for i := range 5 {
		src := fmt.Sprintf("saved_now_%d = %d", i, i)
		labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": src})
		out := labtest.Call[saveOut](t, cs, "save_notebook", map[string]any{"path": nb})
		disk := readFile(t, nb)
		if !strings.Contains(disk, src) {
			t.Fatalf("save_notebook returned %+v, and the file does not hold the edit %q made before it:\n%s", out, src, disk)
		}
		info, err := os.Stat(filepath.Join(shared.Root, nb))
		if err != nil {
			t.Fatal(err)
		}
		got, err := time.Parse(time.RFC3339Nano, out.LastModified)
		// The server gives the file's time to the microsecond.
		if err != nil || out.Path != nb || got.Sub(info.ModTime()).Abs() > time.Microsecond {
			t.Fatalf("save_notebook = %+v (%v); want path %q and last_modified the file's, %s", out, err, nb, info.ModTime().UTC().Format(time.RFC3339Nano))
		}
	}
	validateNotebook(t, nb)
}

// save_notebook on a notebook that does not exist, is not a notebook, is
// read-only, or was deleted while open says so, and writes nothing.
func TestSaveNotebookBadInput(t *testing.T) {
	cs := session(t)
	labtest.CallErr(t, cs, "save_notebook", map[string]any{"path": "work/no-such.ipynb"}, `notebook "work/no-such.ipynb" does not exist`)
	labtest.CallErr(t, cs, "save_notebook", map[string]any{"path": "work/data.csv"}, `path "work/data.csv" is not a notebook`)
	labtest.CallErr(t, cs, "save_notebook", map[string]any{}, "no notebook selected")

	readOnly := faultPath("save-readonly")
	codeNotebook(t, readOnly, "kept = 1")
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": readOnly})
	makeReadOnly(t, readOnly)
	before := readFile(t, readOnly)
	labtest.CallErr(t, cs, "save_notebook", map[string]any{"path": readOnly}, fmt.Sprintf("notebook %q is read-only on disk, so the server cannot save it", readOnly))
	if readFile(t, readOnly) != before {
		t.Fatal("the read-only file changed")
	}

	deleted := faultPath("save-deleted")
	codeNotebook(t, deleted, "gone = 1")
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": deleted, "source": "unsaved = 1"})
	labtest.Call[saveOut](t, cs, "save_notebook", map[string]any{"path": deleted})
	if err := os.Remove(filepath.Join(shared.Root, deleted)); err != nil {
		t.Fatal(err)
	}
	labtest.CallErr(t, cs, "save_notebook", map[string]any{"path": deleted}, "the file no longer exists: it was deleted or renamed while the notebook was open")
	if _, err := os.Stat(filepath.Join(shared.Root, deleted)); !os.IsNotExist(err) {
		t.Fatalf("save_notebook brought the deleted notebook back (%v)", err)
	}
}
