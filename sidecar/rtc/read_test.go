package rtc

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// testRoom is a room on its own document, with no connection.
func testRoom(t *testing.T) *Room {
	t.Helper()
	r := &Room{changed: make(chan struct{})}
	r.mu.Lock()
	r.setDoc(yjs.NewDoc())
	r.mu.Unlock()
	return r
}

// exchange brings the room's document and a person's up to date with each
// other, as the room's server would.
func exchange(t *testing.T, r *Room, person *yjs.Doc) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.doc.ApplyUpdate(person.EncodeStateAsUpdate(r.doc.StateVector()), "server"); err != nil {
		t.Fatal(err)
	}
	if err := person.ApplyUpdate(r.doc.EncodeStateAsUpdate(person.StateVector()), "server"); err != nil {
		t.Fatal(err)
	}
}

// readBoth is the room's read (from its kept cell conversions) and a
// conversion of the whole document afresh, as JSON.
func readBoth(t *testing.T, r *Room) (kept, fresh string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := r.notebook()
	if err != nil {
		t.Fatal(err)
	}
	b, err := notebookOf(r.doc)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja), string(jb)
}

// A seeded mix of the agent's edits (through the room) and a person's (on
// another peer: keystrokes, deletions, outputs, cells added and removed,
// delivered as updates) never leaves the room's read different from the
// whole document converted afresh, though the read converts again only the
// cells that changed.
func TestReadFollowsEveryChange(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 13))
			r := testRoom(t)
			person := yjs.NewDoc()
			load(t, person, sample)
			exchange(t, r, person)
			for step := range 120 {
				if rng.IntN(2) == 0 {
					if _, err := r.edit(func(nb *notebook.Notebook) error { return agentEdit(rng, nb) }); err != nil {
						t.Fatalf("step %d: agent: %v", step, err)
					}
				} else {
					personEdit(t, rng, person)
				}
				if rng.IntN(3) > 0 { // some changes pile up before they meet
					exchange(t, r, person)
				}
				if kept, fresh := readBoth(t, r); kept != fresh {
					t.Fatalf("step %d: the read\n%s\ndiffers from the document\n%s", step, kept, fresh)
				}
			}
		})
	}
}

// After a keystroke in one cell, the read reuses the other cells'
// conversions.
func TestReadConvertsOnlyChangedCells(t *testing.T) {
	r := testRoom(t)
	person := yjs.NewDoc()
	load(t, person, sample)
	exchange(t, r, person)
	r.mu.Lock()
	before, err := r.notebook()
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	person.Transact(func(*yjs.Transaction) {
		c, _ := cellAt(person.GetArray("cells"), 1)
		src, _ := c.GetText("source")
		_ = src.Insert(0, "# ")
	})
	exchange(t, r, person)
	r.mu.Lock()
	after, err := r.notebook()
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after.Cells[1] == before.Cells[1] || after.Cells[1].Source != "# x = 1\nprint(x)" {
		t.Fatal("the changed cell was not read again")
	}
	if after.Cells[0] != before.Cells[0] || after.Cells[2] != before.Cells[2] {
		t.Fatal("an unchanged cell was converted again")
	}
}

var words = []string{"x", " = ", "1", "\n", "print(x)", "😀", "é", "# note\n"}

// agentEdit makes one of the tools' kinds of change to nb.
func agentEdit(rng *rand.Rand, nb *notebook.Notebook) error {
	if len(nb.Cells) == 0 { // both deleted a cell at once
		_, _, err := nb.Insert(notebook.Position{Index: ptr(0)}, notebook.Code, "x")
		return err
	}
	c := nb.Cells[rng.IntN(len(nb.Cells))]
	ref := notebook.Ref{ID: c.ID}
	switch rng.IntN(7) {
	case 0:
		_, err := nb.SetSource(ref, c.Source+words[rng.IntN(len(words))])
		return err
	case 1:
		_, _, err := nb.Insert(notebook.Position{Index: ptr(rng.IntN(len(nb.Cells) + 1))}, notebook.Code, words[rng.IntN(len(words))])
		return err
	case 2:
		if len(nb.Cells) > 1 {
			_, err := nb.Delete([]notebook.Ref{ref})
			return err
		}
	case 3:
		_, err := nb.Move(ref, rng.IntN(len(nb.Cells)))
		return err
	case 4:
		if c.Type == notebook.Code {
			c.Outputs = append(c.Outputs, json.RawMessage(fmt.Sprintf(`{"output_type":"stream","name":"stdout","text":"%d\n"}`, rng.IntN(100))))
			n := rng.IntN(50)
			c.ExecutionCount = &n
		}
	case 5:
		_, err := nb.ClearOutputs(nil)
		return err
	case 6:
		c.Metadata = json.RawMessage(fmt.Sprintf(`{"tags": ["t%d"]}`, rng.IntN(9)))
	}
	return nil
}

// personEdit makes a change as JupyterLab does: keystrokes and deletions in
// a cell's text, an execution count, or cells added and removed.
func personEdit(t *testing.T, rng *rand.Rand, doc *yjs.Doc) {
	t.Helper()
	cells := doc.GetArray("cells")
	if cells.Len() == 0 {
		return
	}
	c, _ := cellAt(cells, rng.IntN(cells.Len()))
	doc.Transact(func(*yjs.Transaction) {
		switch rng.IntN(4) {
		case 0:
			src, _ := c.GetText("source")
			_ = src.Insert(rng.IntN(src.Len()+1), words[rng.IntN(len(words))])
		case 1:
			src, _ := c.GetText("source")
			if n := src.Len(); n > 0 {
				i := rng.IntN(n)
				_ = src.Delete(i, 1+rng.IntN(n-i))
			}
		case 2:
			_ = c.Set("execution_count", float64(rng.IntN(9)))
		case 3:
			if cells.Len() > 1 {
				_ = cells.Delete(rng.IntN(cells.Len()), 1)
			}
		}
	})
}
