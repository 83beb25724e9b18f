package tools

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

type InsertCellIn struct {
	Path         string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellType     string `json:"cell_type,omitempty" jsonschema:"code (default), markdown or raw"`
	Source       string `json:"source" jsonschema:"the cell's text"`
	Index        *int   `json:"index,omitempty" jsonschema:"0-based position of the new cell; -1 or absent appends at the end"`
	BeforeCellID string `json:"before_cell_id,omitempty" jsonschema:"insert just before the cell with this id (instead of index)"`
	AfterCellID  string `json:"after_cell_id,omitempty" jsonschema:"insert just after the cell with this id (instead of index)"`
	Execute      bool   `json:"execute,omitempty" jsonschema:"run the new code cell right away and return its outputs, as execute_cell does"`
	Timeout      *int   `json:"timeout,omitempty" jsonschema:"with execute: seconds to wait for the result, 1 to 240 (default 60)"`
}

type InsertCellOut struct {
	CellID     string        `json:"cell_id" jsonschema:"id of the new cell"`
	Index      int           `json:"index"`
	TotalCells int           `json:"total_cells"`
	Execution  *ExecutionOut `json:"execution,omitempty" jsonschema:"with execute: how the run went"`
}

var insertCellTool = &mcp.Tool{
	Name:        "insert_cell",
	Title:       "Insert cell",
	Description: "Insert a new code, markdown or raw cell; at the end unless index, before_cell_id or after_cell_id says where. Returns the new cell's id. With execute=true the new code cell also runs, as with execute_cell.",
	InputSchema: withEnums[InsertCellIn](map[string][]any{"cell_type": {"code", "markdown", "raw"}}),
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
}

func (t *Tools) insertCell(ctx context.Context, req *mcp.CallToolRequest, in InsertCellIn) (*mcp.CallToolResult, InsertCellOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, InsertCellOut{}, err
	}
	typ := in.CellType
	if typ == "" {
		typ = notebook.Code
	}
	wait, err := waitDuration(in.Timeout)
	if err != nil {
		return nil, InsertCellOut{}, err
	}
	if in.Execute && typ != notebook.Code {
		return nil, InsertCellOut{}, fmt.Errorf("execute=true needs a code cell, not %s", typ)
	}
	var out InsertCellOut
	nb, _, err := t.update(ctx, req, p, func(nb *notebook.Notebook) error {
		c, at, err := nb.Insert(notebook.Position{Index: in.Index, BeforeID: in.BeforeCellID, AfterID: in.AfterCellID}, typ, in.Source)
		if err != nil {
			return err
		}
		out = InsertCellOut{CellID: c.ID, Index: at}
		return nil
	})
	if err != nil {
		return nil, InsertCellOut{}, err
	}
	out.TotalCells = len(nb.Cells)
	if !in.Execute {
		return nil, out, nil
	}
	e, recorded, err := t.startCells(ctx, req, p, nb, []*notebook.Cell{nb.Cells[out.Index]})
	if err != nil {
		return nil, out, fmt.Errorf("inserted cell %s at index %d, but could not run it: %w", out.CellID, out.Index, err)
	}
	res, exec, err := t.await(ctx, req, e, wait, true)
	awaitRecord(e, recorded)
	if err != nil {
		return nil, out, err
	}
	inserted := &mcp.TextContent{Text: fmt.Sprintf("inserted cell %s at index %d", out.CellID, out.Index)}
	if s := taskSlotFrom(ctx); s != nil && s.render != nil {
		// The run became a task: its final result is this tool's.
		render := s.render
		s.render = func(snap execution.Snapshot) *mcp.CallToolResult {
			r := render(snap)
			final := out
			exec, _ := r.StructuredContent.(ExecutionOut)
			final.Execution = &exec
			r.StructuredContent = final
			r.Content = append([]mcp.Content{inserted}, r.Content...)
			return r
		}
	}
	out.Execution = &exec
	res.Content = append([]mcp.Content{inserted}, res.Content...)
	return res, out, nil
}

type EditCellIn struct {
	Path    string  `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellID  string  `json:"cell_id,omitempty" jsonschema:"id of the cell to edit (preferred)"`
	Index   *int    `json:"index,omitempty" jsonschema:"0-based index of the cell, if no cell_id; -1 is the last cell"`
	Source  *string `json:"source,omitempty" jsonschema:"new source replacing the whole cell (give either this, or old_text and new_text)"`
	OldText string  `json:"old_text,omitempty" jsonschema:"exact text to replace; must occur exactly once in the cell"`
	NewText *string `json:"new_text,omitempty" jsonschema:"replacement for old_text"`
}

type EditCellOut struct {
	CellID string `json:"cell_id"`
	Index  int    `json:"index"`
	Diff   string `json:"diff" jsonschema:"the changed lines: '-' removed, '+' added"`
}

var editCellTool = &mcp.Tool{
	Name:        "edit_cell",
	Title:       "Edit cell",
	Description: "Change a cell's source: either replace it whole (source), or replace one exact occurrence of old_text by new_text. Outputs are kept. Returns a diff of the change.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
}

func (t *Tools) editCell(ctx context.Context, req *mcp.CallToolRequest, in EditCellIn) (*mcp.CallToolResult, EditCellOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, EditCellOut{}, err
	}
	replacing := in.OldText != "" || in.NewText != nil
	switch {
	case in.Source != nil && replacing:
		return nil, EditCellOut{}, fmt.Errorf("give either source, or old_text and new_text, not both")
	case in.Source == nil && !replacing:
		return nil, EditCellOut{}, fmt.Errorf("nothing to change: give source, or old_text and new_text")
	case replacing && (in.OldText == "" || in.NewText == nil):
		return nil, EditCellOut{}, fmt.Errorf("old_text and new_text go together: give both")
	}
	ref := notebook.Ref{ID: in.CellID, Index: in.Index}
	var out EditCellOut
	_, changed, err := t.update(ctx, req, p, func(nb *notebook.Notebook) error {
		var c *notebook.Cell
		var err error
		if in.Source != nil {
			c, err = nb.SetSource(ref, *in.Source)
		} else {
			c, err = nb.ReplaceOnce(ref, in.OldText, *in.NewText)
		}
		if err != nil {
			return err
		}
		i, _ := nb.Locate(notebook.Ref{ID: c.ID})
		out = EditCellOut{CellID: c.ID, Index: i}
		return nil
	})
	if err != nil {
		return nil, EditCellOut{}, err
	}
	// The diff of the change record (an unchanged source has none).
	for _, cc := range changed {
		if cc.Op == changes.Edit && cc.CellID == out.CellID {
			out.Diff = cc.Diff
		}
	}
	return nil, out, nil
}

type DeleteCellsIn struct {
	Path    string   `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellIDs []string `json:"cell_ids,omitempty" jsonschema:"ids of the cells to delete (preferred)"`
	Indexes []int    `json:"indexes,omitempty" jsonschema:"0-based indexes of the cells to delete, if no cell_ids"`
}

type DeleteCellsOut struct {
	Deleted        []string `json:"deleted" jsonschema:"ids of the deleted cells"`
	RemainingCells int      `json:"remaining_cells"`
}

var deleteCellsTool = &mcp.Tool{
	Name:        "delete_cells",
	Title:       "Delete cells",
	Description: "Delete one or more cells, by id or by index. All or nothing: if one cell is not found, none is deleted.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
}

func (t *Tools) deleteCells(ctx context.Context, req *mcp.CallToolRequest, in DeleteCellsIn) (*mcp.CallToolResult, DeleteCellsOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, DeleteCellsOut{}, err
	}
	refs, err := cellRefs(in.CellIDs, in.Indexes)
	if err != nil {
		return nil, DeleteCellsOut{}, err
	}
	if len(refs) == 0 {
		return nil, DeleteCellsOut{}, fmt.Errorf("name the cells to delete with cell_ids or indexes")
	}
	var out DeleteCellsOut
	nb, _, err := t.update(ctx, req, p, func(nb *notebook.Notebook) error {
		gone, err := nb.Delete(refs)
		out.Deleted = nil
		for _, c := range gone {
			out.Deleted = append(out.Deleted, c.ID)
		}
		return err
	})
	if err != nil {
		return nil, DeleteCellsOut{}, err
	}
	out.RemainingCells = len(nb.Cells)
	return nil, out, nil
}

// cellRefs turns ids or indexes (not both) into references.
func cellRefs(ids []string, indexes []int) ([]notebook.Ref, error) {
	if len(ids) > 0 && len(indexes) > 0 {
		return nil, fmt.Errorf("give cell_ids or indexes, not both")
	}
	var refs []notebook.Ref
	for _, id := range ids {
		refs = append(refs, notebook.Ref{ID: id})
	}
	for _, i := range indexes {
		refs = append(refs, notebook.Ref{Index: ptr(i)})
	}
	return refs, nil
}

type MoveCellIn struct {
	Path    string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellID  string `json:"cell_id,omitempty" jsonschema:"id of the cell to move (preferred)"`
	Index   *int   `json:"index,omitempty" jsonschema:"0-based index of the cell to move, if no cell_id"`
	ToIndex int    `json:"to_index" jsonschema:"0-based index the cell has after the move; -1 moves it to the end"`
}

type MoveCellOut struct {
	CellID string `json:"cell_id"`
	From   int    `json:"from"`
	To     int    `json:"to"`
}

var moveCellTool = &mcp.Tool{
	Name:        "move_cell",
	Title:       "Move cell",
	Description: "Move a cell to another position; to_index is its index after the move.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false)},
}

func (t *Tools) moveCell(ctx context.Context, req *mcp.CallToolRequest, in MoveCellIn) (*mcp.CallToolResult, MoveCellOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, MoveCellOut{}, err
	}
	ref := notebook.Ref{ID: in.CellID, Index: in.Index}
	var out MoveCellOut
	_, _, err = t.update(ctx, req, p, func(nb *notebook.Notebook) error {
		from, err := nb.Locate(ref)
		if err != nil {
			return err
		}
		c, err := nb.Move(ref, in.ToIndex)
		if err != nil {
			return err
		}
		to, _ := nb.Locate(notebook.Ref{ID: c.ID})
		out = MoveCellOut{CellID: c.ID, From: from, To: to}
		return nil
	})
	if err != nil {
		return nil, MoveCellOut{}, err
	}
	return nil, out, nil
}

type ClearOutputsIn struct {
	Path    string   `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellIDs []string `json:"cell_ids,omitempty" jsonschema:"ids of the cells to clear; default every code cell"`
}

type ClearOutputsOut struct {
	ClearedCells int `json:"cleared_cells" jsonschema:"code cells that had outputs or an execution count"`
}

var clearOutputsTool = &mcp.Tool{
	Name:        "clear_outputs",
	Title:       "Clear outputs",
	Description: "Remove the outputs and execution counts of the given code cells, or of every code cell.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true},
}

func (t *Tools) clearOutputs(ctx context.Context, req *mcp.CallToolRequest, in ClearOutputsIn) (*mcp.CallToolResult, ClearOutputsOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, ClearOutputsOut{}, err
	}
	refs, _ := cellRefs(in.CellIDs, nil)
	var out ClearOutputsOut
	_, _, err = t.update(ctx, req, p, func(nb *notebook.Notebook) error {
		n, err := nb.ClearOutputs(refs)
		out.ClearedCells = n
		return err
	})
	if err != nil {
		return nil, ClearOutputsOut{}, err
	}
	return nil, out, nil
}
