package changes

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Undo inverts the changes cs (newest last) on nb as it is now, newest
// first. It is all or nothing: if any part cannot be undone without
// overwriting what changed since, it returns an error naming every such
// part, and nb must be thrown away (the documents backend does: an error
// from an edit changes nothing).
func Undo(nb *notebook.Notebook, cs []*Change) error {
	var problems []string
	for k := len(cs) - 1; k >= 0; k-- {
		for _, p := range undoOne(nb, cs[k]) {
			problems = append(problems, fmt.Sprintf("change %d: %s", cs[k].ID, p))
		}
	}
	if len(problems) > 0 {
		return errors.New("cannot undo without overwriting what changed since; nothing was changed:\n- " + strings.Join(problems, "\n- "))
	}
	return nil
}

// undoOne inverts one change in the reverse order of how it was made:
// outputs, sources, moves, deleted cells back, inserted cells out.
func undoOne(nb *notebook.Notebook, c *Change) []string {
	var problems []string
	byOp := func(op string) []Cell {
		var out []Cell
		for _, cc := range c.Cells {
			if cc.Op == op {
				out = append(out, cc)
			}
		}
		return out
	}
	for _, cc := range byOp(Outputs) {
		cell := find(nb, cc.CellID)
		switch {
		case cell == nil:
			problems = append(problems, fmt.Sprintf("cell %s, whose outputs it changed, is no longer in the notebook", cc.CellID))
		case Fingerprint(cell.Outputs, cell.ExecutionCount) != cc.NewOutputs:
			problems = append(problems, fmt.Sprintf("cell %s has other outputs since (it was run again or cleared); its outputs were left as they are", cc.CellID))
		default:
			cell.Outputs, cell.ExecutionCount = cc.OldOutputs, cc.OldCount
		}
	}
	for _, cc := range byOp(Edit) {
		cell := find(nb, cc.CellID)
		if cell == nil {
			problems = append(problems, fmt.Sprintf("cell %s, which it edited, is no longer in the notebook", cc.CellID))
			continue
		}
		src, conflicts := Revert(cc.Before, cc.After, cell.Source)
		for _, x := range conflicts {
			problems = append(problems, fmt.Sprintf("cell %s: %s", cc.CellID, x))
		}
		if len(conflicts) == 0 {
			cell.Source = src
		}
	}
	// Moved and deleted cells go back in the order of their original
	// indexes, so that the cell each one followed is back before it.
	moved := byOp(Move)
	sort.Slice(moved, func(i, j int) bool { return moved[i].Index < moved[j].Index })
	for _, cc := range moved {
		i := slices.IndexFunc(nb.Cells, func(x *notebook.Cell) bool { return x.ID == cc.CellID })
		if i < 0 {
			problems = append(problems, fmt.Sprintf("cell %s, which it moved, is no longer in the notebook", cc.CellID))
			continue
		}
		cell := nb.Cells[i]
		nb.Cells = slices.Delete(nb.Cells, i, i+1)
		put(nb, cell, cc.Prev, cc.Index)
	}
	deleted := byOp(Delete)
	sort.Slice(deleted, func(i, j int) bool { return deleted[i].Index < deleted[j].Index })
	for _, cc := range deleted {
		if find(nb, cc.CellID) != nil {
			problems = append(problems, fmt.Sprintf("cell %s, which it deleted, is in the notebook again", cc.CellID))
			continue
		}
		cell, err := notebook.ParseCell(cc.Cell)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the record of deleted cell %s cannot be read: %v", cc.CellID, err))
			continue
		}
		put(nb, cell, cc.Prev, cc.Index)
	}
	for _, cc := range byOp(Insert) {
		i := slices.IndexFunc(nb.Cells, func(x *notebook.Cell) bool { return x.ID == cc.CellID })
		switch {
		case i < 0:
			problems = append(problems, fmt.Sprintf("cell %s, which it inserted, is no longer in the notebook", cc.CellID))
		case nb.Cells[i].Source != cc.After:
			problems = append(problems, fmt.Sprintf("cell %s, which it inserted, has been edited since (it now reads %q); delete it by hand if it should go", cc.CellID, clip(nb.Cells[i].Source)))
		default:
			nb.Cells = slices.Delete(nb.Cells, i, i+1)
		}
	}
	return problems
}

func find(nb *notebook.Notebook, id string) *notebook.Cell {
	for _, c := range nb.Cells {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// put inserts cell just after the cell prev ("" is the top), or at index
// when prev is gone.
func put(nb *notebook.Notebook, cell *notebook.Cell, prev string, index int) {
	at := min(max(index, 0), len(nb.Cells))
	if prev == "" {
		at = 0
	} else if i := slices.IndexFunc(nb.Cells, func(x *notebook.Cell) bool { return x.ID == prev }); i >= 0 {
		at = i + 1
	}
	nb.Cells = slices.Insert(nb.Cells, at, cell)
}

func clip(s string) string {
	const n = 120
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
