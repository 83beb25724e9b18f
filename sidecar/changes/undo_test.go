package changes

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

func cell(id, src string, outs ...string) *notebook.Cell {
	c := &notebook.Cell{ID: id, Type: notebook.Code, Source: src, Metadata: json.RawMessage(`{"tags":["t"]}`)}
	for _, o := range outs {
		c.Outputs = append(c.Outputs, json.RawMessage(`{"output_type":"stream","name":"stdout","text":"`+o+`"}`))
	}
	if len(outs) > 0 {
		n := 1
		c.ExecutionCount = &n
	}
	return c
}

func nbOf(cells ...*notebook.Cell) *notebook.Notebook {
	nb := notebook.New(nil)
	nb.Cells = cells
	return nb
}

// describe is a notebook's cells as "id:source[outputs]" for comparison.
func describe(nb *notebook.Notebook) string {
	var parts []string
	for _, c := range nb.Cells {
		s := c.ID + ":" + c.Source
		if len(c.Outputs) > 0 {
			s += "[" + notebook.OutputText(c.Outputs[0]) + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestComputeAndUndo(t *testing.T) {
	start := func() *notebook.Notebook {
		return nbOf(cell("a", "x = 1"), cell("b", "y = 2", "out"), cell("c", "z = 3"))
	}
	tests := []struct {
		name   string
		agent  func(nb *notebook.Notebook)
		person func(nb *notebook.Notebook) // after the agent, before the undo
		ops    string                      // the recorded ops, in order
		after  string                      // after the undo
		err    string                      // part of the undo's error, if one
	}{
		{name: "insert", ops: "insert",
			agent: func(nb *notebook.Notebook) {
				nb.Cells = append(nb.Cells[:1], append([]*notebook.Cell{cell("n", "new")}, nb.Cells[1:]...)...)
			},
			after: "a:x = 1 b:y = 2[out] c:z = 3"},
		{name: "insert edited since", ops: "insert",
			agent:  func(nb *notebook.Notebook) { nb.Cells = append(nb.Cells, cell("n", "new")) },
			person: func(nb *notebook.Notebook) { nb.Cells[3].Source = "mine" },
			err:    "cell n, which it inserted, has been edited since"},
		{name: "delete comes back with id, metadata and outputs", ops: "delete",
			agent:  func(nb *notebook.Notebook) { nb.Cells = append(nb.Cells[:1], nb.Cells[2:]...) },
			person: func(nb *notebook.Notebook) { nb.Cells[0].Source = "x = 10" },
			after:  "a:x = 10 b:y = 2[out] c:z = 3"},
		{name: "delete of the first cell", ops: "delete",
			agent: func(nb *notebook.Notebook) { nb.Cells = nb.Cells[1:] },
			after: "a:x = 1 b:y = 2[out] c:z = 3"},
		{name: "move back", ops: "move",
			agent:  func(nb *notebook.Notebook) { nb.Cells = []*notebook.Cell{nb.Cells[1], nb.Cells[2], nb.Cells[0]} },
			person: func(nb *notebook.Notebook) { nb.Cells[0].Source = "y = 20" },
			after:  "a:x = 1 b:y = 20[out] c:z = 3"},
		{name: "edit reverted, person's line kept", ops: "edit",
			agent:  func(nb *notebook.Notebook) { nb.Cells[2].Source = "z = 3\nw = 4" },
			person: func(nb *notebook.Notebook) { nb.Cells[2].Source = "z = 30\nw = 4" },
			after:  "a:x = 1 b:y = 2[out] c:z = 30"},
		{name: "edit conflict", ops: "edit",
			agent:  func(nb *notebook.Notebook) { nb.Cells[2].Source = "z = 4" },
			person: func(nb *notebook.Notebook) { nb.Cells[2].Source = "z = 5" },
			err:    `cell c: line 1, which the change made "z = 4", now read "z = 5"`},
		{name: "cleared outputs come back", ops: "outputs",
			agent: func(nb *notebook.Notebook) { nb.Cells[1].Outputs, nb.Cells[1].ExecutionCount = nil, nil },
			after: "a:x = 1 b:y = 2[out] c:z = 3"},
		{name: "outputs rewritten since", ops: "outputs",
			agent:  func(nb *notebook.Notebook) { nb.Cells[1].Outputs, nb.Cells[1].ExecutionCount = nil, nil },
			person: func(nb *notebook.Notebook) { nb.Cells[1].Outputs = cell("", "", "again").Outputs },
			err:    "cell b has other outputs since"},
		{name: "deleted cell is back already", ops: "delete",
			agent:  func(nb *notebook.Notebook) { nb.Cells = nb.Cells[:2] },
			person: func(nb *notebook.Notebook) { nb.Cells = append(nb.Cells, cell("c", "z")) },
			err:    "cell c, which it deleted, is in the notebook again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb := start()
			before := Snapshot(nb)
			tt.agent(nb)
			cells := Compute(before, nb.Cells)
			var ops []string
			for _, c := range cells {
				ops = append(ops, c.Op)
			}
			if got := strings.Join(ops, " "); got != tt.ops {
				t.Fatalf("recorded %q, want %q", got, tt.ops)
			}
			// The record goes through JSON, as it does on disk.
			data, _ := json.Marshal(Change{ID: 7, Cells: cells})
			var ch Change
			if err := json.Unmarshal(data, &ch); err != nil {
				t.Fatal(err)
			}
			if tt.person != nil {
				tt.person(nb)
			}
			err := Undo(nb, []*Change{&ch})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "change 7") {
					t.Fatalf("error %v, want one naming change 7 and saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(nb); got != tt.after {
				t.Fatalf("after undo %q, want %q", got, tt.after)
			}
		})
	}
}

// A restored cell keeps its metadata.
func TestDeletedCellKeepsMetadata(t *testing.T) {
	nb := nbOf(cell("a", "x"), cell("b", "y", "o"))
	before := Snapshot(nb)
	nb.Cells = nb.Cells[:1]
	ch := &Change{ID: 1, Cells: Compute(before, nb.Cells)}
	if err := Undo(nb, []*Change{ch}); err != nil {
		t.Fatal(err)
	}
	b := nb.Cells[1]
	if b.ID != "b" || string(b.Metadata) != `{"tags":["t"]}` || b.ExecutionCount == nil || *b.ExecutionCount != 1 || len(b.Outputs) != 1 {
		t.Fatalf("restored cell %+v", b)
	}
}

// Undoing several changes goes newest first, each on the result of the last.
func TestUndoSeveral(t *testing.T) {
	nb := nbOf(cell("a", "1\n2\n3"))
	var chs []*Change
	step := func(f func()) {
		before := Snapshot(nb)
		f()
		chs = append(chs, &Change{ID: len(chs) + 1, Cells: Compute(before, nb.Cells)})
	}
	step(func() { nb.Cells[0].Source = "1\nTWO\n3" })
	step(func() { nb.Cells[0].Source = "1\nTWO\n3\n4" })
	step(func() { nb.Cells = append(nb.Cells, cell("n", "new")) })
	nb.Cells[0].Source = "one\nTWO\n3\n4" // the person
	if err := Undo(nb, chs); err != nil {
		t.Fatal(err)
	}
	if got := describe(nb); got != "a:one\n2\n3" {
		t.Fatalf("got %q", got)
	}
}
