// Package changes records what agents change in notebooks and undoes it:
// each change is kept per notebook with who made it, when and a per-cell
// diff (Log, persisted as JSON lines), and reverted by inverting only the
// agent's operations on the notebook as it is now, so that what people
// changed since is kept and a clash is reported, never overwritten.
package changes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// What a change did to one cell.
const (
	Insert  = "insert"
	Delete  = "delete"
	Edit    = "edit"
	Move    = "move"
	Outputs = "outputs" // outputs and execution count replaced or cleared
)

// Change is one agent call that changed a notebook.
type Change struct {
	ID   int    `json:"id"`
	Path string `json:"path"`
	// FileID is the notebook's file id on the Jupyter server, if it has
	// one (see Log.IDs).
	FileID  string    `json:"file_id,omitempty"`
	Time    time.Time `json:"time"`
	Tool    string    `json:"tool"`
	Client  string    `json:"client,omitempty"`
	Session string    `json:"session"`
	Cells   []Cell    `json:"cells"`
	// Undone is when the change was undone; zero if it stands.
	Undone time.Time `json:"undone,omitzero"`
}

// Cell is what a change did to one cell, with what undoing it needs.
type Cell struct {
	Op     string `json:"op"`
	CellID string `json:"cell_id"`
	// Index is the cell's index before the change (after it, for Insert).
	Index int `json:"index"`
	// To is a moved cell's index after the move.
	To int `json:"to,omitempty"`
	// Prev is the id of the cell that preceded it before the change
	// (Delete, Move; "" for the first), where undo puts it back.
	Prev string `json:"prev,omitempty"`
	// Diff is the source change, unified style (Edit, Insert).
	Diff string `json:"diff,omitempty"`
	// Before and After are the whole sources around an Edit; After is the
	// inserted source for Insert.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Cell is the deleted cell as nbformat JSON (Delete).
	Cell json.RawMessage `json:"cell,omitempty"`
	// OldOutputs and OldCount are what Outputs replaced; NewOutputs is a
	// fingerprint of what it wrote, and Summary says it in words.
	OldOutputs []json.RawMessage `json:"old_outputs,omitempty"`
	OldCount   *int              `json:"old_count,omitempty"`
	NewOutputs string            `json:"new_outputs,omitempty"`
	Summary    string            `json:"summary,omitempty"`
}

// Snapshot copies the cells of nb so that an edit made afterwards in place
// can be compared with them (edits replace fields, never mutate them).
func Snapshot(nb *notebook.Notebook) []*notebook.Cell {
	out := make([]*notebook.Cell, len(nb.Cells))
	for i, c := range nb.Cells {
		cp := *c
		out[i] = &cp
	}
	return out
}

// Compute lists what changed from the cells before to after, cell by cell:
// deletions, insertions, moves, source edits and output changes.
func Compute(before, after []*notebook.Cell) []Cell {
	idx := func(cells []*notebook.Cell) map[string]int {
		m := make(map[string]int, len(cells))
		for i, c := range cells {
			m[c.ID] = i
		}
		return m
	}
	bi, ai := idx(before), idx(after)
	var out []Cell
	for i, c := range before {
		if _, ok := ai[c.ID]; !ok {
			data, _ := json.Marshal(c)
			out = append(out, Cell{Op: Delete, CellID: c.ID, Index: i, Prev: prevID(before, i, ""), Cell: data})
		}
	}
	for i, c := range after {
		if _, ok := bi[c.ID]; !ok {
			out = append(out, Cell{Op: Insert, CellID: c.ID, Index: i, After: c.Source, Diff: notebook.Diff("", c.Source, 0)})
		}
	}
	out = append(out, moves(before, after, ai)...)
	for _, c := range after {
		j, ok := bi[c.ID]
		if !ok {
			continue
		}
		old := before[j]
		if old.Source != c.Source {
			out = append(out, Cell{Op: Edit, CellID: c.ID, Index: j, Before: old.Source, After: c.Source, Diff: notebook.Diff(old.Source, c.Source, 2)})
		}
		if c.Type == notebook.Code && (!outputsEqual(old.Outputs, c.Outputs) || !countEqual(old.ExecutionCount, c.ExecutionCount)) {
			out = append(out, Cell{Op: Outputs, CellID: c.ID, Index: j, OldOutputs: old.Outputs, OldCount: old.ExecutionCount,
				NewOutputs: Fingerprint(c.Outputs, c.ExecutionCount), Summary: summary(old, c)})
		}
	}
	return out
}

// moves finds the cells present before and after whose order changed:
// those outside a longest run kept in order.
func moves(before, after []*notebook.Cell, ai map[string]int) []Cell {
	var common []*notebook.Cell
	var from []int
	for i, c := range before {
		if _, ok := ai[c.ID]; ok {
			common = append(common, c)
			from = append(from, i)
		}
	}
	order := make([]int, len(common))
	for i, c := range common {
		order[i] = ai[c.ID]
	}
	kept := map[int]bool{}
	for _, k := range increasing(order) {
		kept[k] = true
	}
	var out []Cell
	for k, c := range common {
		if !kept[k] {
			out = append(out, Cell{Op: Move, CellID: c.ID, Index: from[k], To: ai[c.ID], Prev: prevID(before, from[k], c.ID)})
		}
	}
	return out
}

// increasing returns the indexes of a longest strictly increasing
// subsequence of xs (O(n^2): notebooks have hundreds of cells, not more).
func increasing(xs []int) []int {
	n := len(xs)
	length, prev := make([]int, n), make([]int, n)
	best := -1
	for i := range xs {
		length[i], prev[i] = 1, -1
		for j := 0; j < i; j++ {
			if xs[j] < xs[i] && length[j]+1 > length[i] {
				length[i], prev[i] = length[j]+1, j
			}
		}
		if best < 0 || length[i] > length[best] {
			best = i
		}
	}
	var out []int
	for i := best; i >= 0; i = prev[i] {
		out = append(out, i)
	}
	slices.Reverse(out)
	return out
}

// prevID is the id of the cell before index i, skipping the cell skip.
func prevID(cells []*notebook.Cell, i int, skip string) string {
	for j := i - 1; j >= 0; j-- {
		if cells[j].ID != skip {
			return cells[j].ID
		}
	}
	return ""
}

func outputsEqual(a, b []json.RawMessage) bool {
	return slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return string(x) == string(y) })
}

func countEqual(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Fingerprint identifies a cell's outputs and execution count, so that undo
// can tell whether they are still the ones a change wrote.
func Fingerprint(outs []json.RawMessage, count *int) string {
	h := sha256.New()
	for _, o := range outs {
		var v any
		_ = json.Unmarshal(o, &v)
		canon, _ := json.Marshal(v) // key order and spacing do not matter
		h.Write(canon)
		h.Write([]byte{0})
	}
	if count != nil {
		fmt.Fprint(h, *count)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func summary(old, c *notebook.Cell) string {
	switch {
	case len(c.Outputs) == 0 && c.ExecutionCount == nil:
		return fmt.Sprintf("cleared %d output(s)", len(old.Outputs))
	default:
		n := "none"
		if c.ExecutionCount != nil {
			n = fmt.Sprint(*c.ExecutionCount)
		}
		return fmt.Sprintf("%d output(s) replaced by %d (execution count %s)", len(old.Outputs), len(c.Outputs), n)
	}
}
