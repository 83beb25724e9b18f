package notebook

import (
	"fmt"
	"strings"
)

// Ref names a cell by its id or, when ID is empty, by its 0-based index.
// Negative indexes count from the end (-1 is the last cell).
type Ref struct {
	ID    string
	Index *int
}

func (r Ref) String() string {
	if r.ID != "" {
		return fmt.Sprintf("cell id %q", r.ID)
	}
	if r.Index != nil {
		return fmt.Sprintf("cell index %d", *r.Index)
	}
	return "no cell"
}

// Locate returns the index of the referenced cell, or an error that tells
// the caller which cells exist.
func (nb *Notebook) Locate(r Ref) (int, error) {
	n := len(nb.Cells)
	switch {
	case r.ID != "":
		if i := nb.indexOfID(r.ID); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("no cell has id %q; %s", r.ID, nb.describeIDs())
	case r.Index != nil:
		i := *r.Index
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			if n == 0 {
				return 0, fmt.Errorf("cell index %d is out of range: the notebook has no cells", *r.Index)
			}
			return 0, fmt.Errorf("cell index %d is out of range: the notebook has %d cells (indexes 0 to %d, or -1 for the last)", *r.Index, n, n-1)
		}
		return i, nil
	}
	return 0, fmt.Errorf("name a cell by cell_id or index")
}

// describeIDs lists a few ids so that an agent can correct a wrong one.
func (nb *Notebook) describeIDs() string {
	if len(nb.Cells) == 0 {
		return "the notebook has no cells"
	}
	ids := nb.IDs()
	const shown = 20
	if len(ids) > shown {
		return fmt.Sprintf("the notebook has %d cells; first ids: %s, ...", len(ids), strings.Join(ids[:shown], ", "))
	}
	return fmt.Sprintf("the notebook's cell ids are: %s", strings.Join(ids, ", "))
}

// Position says where a new cell goes: before or after a cell, or at an
// index (0..len; -1 or nil means at the end).
type Position struct {
	Index    *int
	BeforeID string
	AfterID  string
}

// insertionIndex resolves a Position against the current cells.
func (nb *Notebook) insertionIndex(p Position) (int, error) {
	set := 0
	for _, b := range []bool{p.Index != nil, p.BeforeID != "", p.AfterID != ""} {
		if b {
			set++
		}
	}
	if set > 1 {
		return 0, fmt.Errorf("give only one of index, before_cell_id and after_cell_id")
	}
	n := len(nb.Cells)
	switch {
	case p.BeforeID != "":
		return nb.Locate(Ref{ID: p.BeforeID})
	case p.AfterID != "":
		i, err := nb.Locate(Ref{ID: p.AfterID})
		return i + 1, err
	case p.Index != nil && *p.Index != -1:
		if *p.Index < 0 || *p.Index > n {
			return 0, fmt.Errorf("insert index %d is out of range: use 0 to %d (or -1 to append)", *p.Index, n)
		}
		return *p.Index, nil
	}
	return n, nil
}

func checkSource(src string) error {
	if len(src) > MaxSourceBytes {
		return fmt.Errorf("source is %d bytes, more than the limit of %d bytes; split it into several cells", len(src), MaxSourceBytes)
	}
	return nil
}

// Insert adds a new cell and returns it with its index.
func (nb *Notebook) Insert(p Position, cellType, source string) (*Cell, int, error) {
	if !IsCellType(cellType) {
		return nil, 0, fmt.Errorf("cell_type %q is not valid: use code, markdown or raw", cellType)
	}
	if err := checkSource(source); err != nil {
		return nil, 0, err
	}
	at, err := nb.insertionIndex(p)
	if err != nil {
		return nil, 0, err
	}
	c := &Cell{ID: nb.newID(nil), Type: cellType, Source: source, Metadata: []byte("{}")}
	nb.Cells = append(nb.Cells, nil)
	copy(nb.Cells[at+1:], nb.Cells[at:])
	nb.Cells[at] = c
	return c, at, nil
}

// SetSource replaces a cell's whole source.
func (nb *Notebook) SetSource(r Ref, source string) (*Cell, error) {
	if err := checkSource(source); err != nil {
		return nil, err
	}
	i, err := nb.Locate(r)
	if err != nil {
		return nil, err
	}
	c := nb.Cells[i]
	c.Source = source
	return c, nil
}

// ReplaceOnce replaces the one occurrence of old in a cell's source by new.
// It fails if old occurs zero or several times, so an edit never lands in
// the wrong place.
func (nb *Notebook) ReplaceOnce(r Ref, old, new string) (*Cell, error) {
	if old == "" {
		return nil, fmt.Errorf("old_text is empty; to replace the whole source, give source instead")
	}
	i, err := nb.Locate(r)
	if err != nil {
		return nil, err
	}
	c := nb.Cells[i]
	switch n := strings.Count(c.Source, old); n {
	case 0:
		return nil, fmt.Errorf("old_text does not occur in %s; read the cell and copy the exact text, including whitespace", r)
	case 1:
	default:
		return nil, fmt.Errorf("old_text occurs %d times in %s; include more surrounding text so it occurs once", n, r)
	}
	updated := strings.Replace(c.Source, old, new, 1)
	if err := checkSource(updated); err != nil {
		return nil, err
	}
	c.Source = updated
	return c, nil
}

// Delete removes the referenced cells (all or none) and returns them.
func (nb *Notebook) Delete(refs []Ref) ([]*Cell, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("name at least one cell to delete")
	}
	drop := map[int]bool{}
	for _, r := range refs {
		i, err := nb.Locate(r)
		if err != nil {
			return nil, err
		}
		if drop[i] {
			return nil, fmt.Errorf("%s names cell %d twice", r, i)
		}
		drop[i] = true
	}
	var kept, gone []*Cell
	for i, c := range nb.Cells {
		if drop[i] {
			gone = append(gone, c)
		} else {
			kept = append(kept, c)
		}
	}
	nb.Cells = kept
	return gone, nil
}

// Move moves a cell so that it ends up at index to (in the resulting list;
// -1 is the end).
func (nb *Notebook) Move(r Ref, to int) (*Cell, error) {
	from, err := nb.Locate(r)
	if err != nil {
		return nil, err
	}
	n := len(nb.Cells)
	if to == -1 {
		to = n - 1
	}
	if to < 0 || to >= n {
		return nil, fmt.Errorf("target index %d is out of range: use 0 to %d (or -1 for the end)", to, n-1)
	}
	c := nb.Cells[from]
	nb.Cells = append(nb.Cells[:from], nb.Cells[from+1:]...)
	nb.Cells = append(nb.Cells[:to], append([]*Cell{c}, nb.Cells[to:]...)...)
	return c, nil
}

// ClearOutputs empties the outputs and execution counts of the referenced
// code cells, or of every code cell when refs is empty. It returns how many
// cells had something to clear.
func (nb *Notebook) ClearOutputs(refs []Ref) (int, error) {
	targets := nb.Cells
	if len(refs) > 0 {
		targets = nil
		for _, r := range refs {
			i, err := nb.Locate(r)
			if err != nil {
				return 0, err
			}
			targets = append(targets, nb.Cells[i])
		}
	}
	cleared := 0
	for _, c := range targets {
		if c.Type != Code {
			continue
		}
		if len(c.Outputs) > 0 || c.ExecutionCount != nil {
			cleared++
		}
		c.Outputs = nil
		c.ExecutionCount = nil
	}
	return cleared, nil
}
