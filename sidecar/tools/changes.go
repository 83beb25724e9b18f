package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// update is Docs.Update for an agent's call that changes a notebook: what
// the edit did is recorded, attributed to the call's client and session.
func (t *Tools) update(ctx context.Context, req *mcp.CallToolRequest, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, []changes.Cell, error) {
	var cells []changes.Cell
	nb, err := t.Docs.Update(ctx, path, func(nb *notebook.Notebook) error {
		before := changes.Snapshot(nb)
		if err := edit(nb); err != nil {
			return err
		}
		cells = changes.Compute(before, nb.Cells)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return nb, cells, t.record(req, path, cells)
}

func (t *Tools) record(req *mcp.CallToolRequest, path string, cells []changes.Cell) error {
	if t.Changes == nil || len(cells) == 0 {
		return nil
	}
	tool := ""
	if req != nil && req.Params != nil {
		tool = req.Params.Name
	}
	// The room the edit went to knows the notebook's file id.
	id := ""
	if m, ok := t.Docs.(documents.Mover); ok {
		id = m.FileID(path)
	}
	if _, err := t.Changes.Record(changes.Change{Path: path, FileID: id, Tool: tool, Client: clientName(req), Session: changeSession(req), Cells: cells}); err != nil {
		return fmt.Errorf("the change was made, but recording it for undo failed: %w", err)
	}
	return nil
}

// recordRun records, once execution e has ended, the outputs it wrote into
// cells (as they were before it). The returned channel is closed then.
func (t *Tools) recordRun(req *mcp.CallToolRequest, path string, cells []*notebook.Cell, e *execution.Execution) <-chan struct{} {
	done := make(chan struct{})
	if t.Changes == nil {
		close(done)
		return done
	}
	before := make([]*notebook.Cell, len(cells))
	for i, c := range cells {
		cp := *c
		before[i] = &cp
	}
	go func() {
		defer close(done)
		<-e.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		nb, err := t.Docs.Load(ctx, path)
		if err != nil {
			return // the notebook is gone: nothing to undo
		}
		var now []*notebook.Cell
		for _, c := range before {
			if i := slices.IndexFunc(nb.Cells, func(x *notebook.Cell) bool { return x.ID == c.ID }); i >= 0 {
				now = append(now, nb.Cells[i])
			}
		}
		var outs []changes.Cell
		for _, cc := range changes.Compute(before, now) {
			if cc.Op == changes.Outputs { // the source is the person's to change meanwhile
				outs = append(outs, cc)
			}
		}
		_ = t.record(req, path, outs) // no caller is left to tell
	}()
	return done
}

// clientName is the MCP client's name from its initialization (or, under
// 2026-07-28, from the request).
func clientName(req *mcp.CallToolRequest) string {
	if req == nil || req.Session == nil {
		return ""
	}
	if p := req.Session.InitializeParams(); p != nil && p.ClientInfo != nil {
		return p.ClientInfo.Name
	}
	return ""
}

// changeSession is the session a change is attributed to.
func changeSession(req *mcp.CallToolRequest) string {
	if s := sessionID(req); s != "" {
		return s
	}
	return changes.Stateless
}

type ListChangesIn struct {
	Path           string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	Mine           bool   `json:"mine,omitempty" jsonschema:"only the changes of this MCP session"`
	Session        string `json:"session,omitempty" jsonschema:"only the changes of this session id ('stateless' for requests without a session)"`
	SinceChangeID  int    `json:"since_change_id,omitempty" jsonschema:"only changes with this id or a later one"`
	Since          string `json:"since,omitempty" jsonschema:"only changes made at or after this time (RFC 3339, e.g. 2026-01-02T15:04:05Z)"`
	BeforeChangeID int    `json:"before_change_id,omitempty" jsonschema:"only changes older than this id: the next page after a result with more=true"`
	Limit          int    `json:"limit,omitempty" jsonschema:"at most this many changes, 1 to 200 (default 50)"`
}

// CellChangeOut is what a change did to one cell.
type CellChangeOut struct {
	Op      string `json:"op" jsonschema:"insert, delete, edit, move or outputs"`
	CellID  string `json:"cell_id"`
	Index   int    `json:"index" jsonschema:"the cell's index before the change (after it, for insert)"`
	To      *int   `json:"to,omitempty" jsonschema:"move: the index it was moved to"`
	Diff    string `json:"diff,omitempty" jsonschema:"insert, edit: the source change, '-' removed and '+' added lines"`
	Summary string `json:"summary,omitempty" jsonschema:"outputs: what happened to them"`
}

type ChangeOut struct {
	ID      int             `json:"id"`
	Time    string          `json:"time"`
	Tool    string          `json:"tool"`
	Client  string          `json:"client,omitempty" jsonschema:"the MCP client's name"`
	Session string          `json:"session" jsonschema:"MCP session id, or 'stateless'"`
	Mine    bool            `json:"mine" jsonschema:"made by this session"`
	Undone  string          `json:"undone,omitempty" jsonschema:"when it was undone, if it was"`
	Cells   []CellChangeOut `json:"cells"`
}

type ListChangesOut struct {
	Path    string      `json:"path"`
	Changes []ChangeOut `json:"changes" jsonschema:"newest first"`
	More    bool        `json:"more" jsonschema:"older changes match too: pass before_change_id with the last id here"`
}

var listChangesTool = &mcp.Tool{
	Name:        "list_changes",
	Title:       "List changes",
	Description: "List the changes agents made to a notebook, newest first: which tool, client and session, when, and per cell what changed (diffs of sources, a summary of outputs). Ids are per notebook; undo_changes takes them.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) listChanges(ctx context.Context, req *mcp.CallToolRequest, in ListChangesIn) (*mcp.CallToolResult, ListChangesOut, error) {
	out, err := t.listChangesAs(req, changeSession(req), in)
	return nil, out, err
}

// ReviewChanges is list_changes for the person reviewing in JupyterLab
// (the sidebar's HTTP endpoint): no MCP session, so none is "mine".
func (t *Tools) ReviewChanges(in ListChangesIn) (ListChangesOut, error) {
	return t.listChangesAs(nil, "", in)
}

func (t *Tools) listChangesAs(req *mcp.CallToolRequest, me string, in ListChangesIn) (ListChangesOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return ListChangesOut{}, err
	}
	if t.Changes == nil {
		return ListChangesOut{}, errNoRecord
	}
	f := changes.Filter{Session: in.Session, SinceID: in.SinceChangeID, Before: in.BeforeChangeID, Limit: in.Limit}
	if in.Limit < 0 || in.Limit > 200 {
		return ListChangesOut{}, fmt.Errorf("limit %d is out of range: use 1 to 200", in.Limit)
	}
	if in.Mine {
		if me == "" {
			return ListChangesOut{}, errors.New("mine needs an MCP session; give session instead")
		}
		if in.Session != "" && in.Session != me {
			return ListChangesOut{}, fmt.Errorf("give mine or session, not both")
		}
		f.Session = me
	}
	if in.Since != "" {
		if f.Since, err = time.Parse(time.RFC3339, in.Since); err != nil {
			return ListChangesOut{}, fmt.Errorf("since %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", in.Since)
		}
	}
	cs, more, err := t.Changes.List(p, f)
	if err != nil {
		return ListChangesOut{}, err
	}
	out := ListChangesOut{Path: p, Changes: []ChangeOut{}, More: more}
	for _, c := range cs {
		co := ChangeOut{ID: c.ID, Time: c.Time.Format(time.RFC3339), Tool: c.Tool, Client: c.Client, Session: c.Session,
			Mine: c.Session == me && me != changes.Stateless, Cells: []CellChangeOut{}}
		if !c.Undone.IsZero() {
			co.Undone = c.Undone.Format(time.RFC3339)
		}
		for _, cc := range c.Cells {
			o := CellChangeOut{Op: cc.Op, CellID: cc.CellID, Index: cc.Index, Diff: cc.Diff, Summary: cc.Summary}
			if cc.Op == changes.Move {
				o.To = ptr(cc.To)
			}
			co.Cells = append(co.Cells, o)
		}
		out.Changes = append(out.Changes, co)
	}
	return out, nil
}

var errNoRecord = errors.New("changes are not recorded: the sidecar found no Jupyter data directory to keep them in")

type UndoChangesIn struct {
	Path          string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	ChangeIDs     []int  `json:"change_ids,omitempty" jsonschema:"ids of the changes to undo (from list_changes), by any session"`
	SinceChangeID int    `json:"since_change_id,omitempty" jsonschema:"undo every change of this session from this id on (it must be this session's)"`
}

type UndoChangesOut struct {
	Path   string   `json:"path"`
	Undone []int    `json:"undone" jsonschema:"ids of the changes undone"`
	Cells  []string `json:"cells" jsonschema:"ids of the cells put back, taken out or changed"`
}

var undoChangesTool = &mcp.Tool{
	Name:  "undo_changes",
	Title: "Undo changes",
	Description: "Undo changes agents made to a notebook, live: inserted cells go, deleted cells come back with their ids and outputs, moved cells move back, edits are reverted, cleared or rewritten outputs come back. " +
		"What people changed since is kept, even in the same cell; if someone has since changed the very lines a change wrote, nothing is changed and the conflict is reported. All or nothing.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
}

func (t *Tools) undoChanges(ctx context.Context, req *mcp.CallToolRequest, in UndoChangesIn) (*mcp.CallToolResult, UndoChangesOut, error) {
	me := changeSession(req)
	if in.SinceChangeID > 0 && me == changes.Stateless {
		return nil, UndoChangesOut{}, fmt.Errorf("since_change_id undoes this session's changes, and this connection has no MCP session (protocol 2026-07-28 is stateless): name the changes with change_ids (list_changes shows them); nothing was changed")
	}
	out, err := t.undoAs(ctx, req, in.Path, changes.Selection{IDs: in.ChangeIDs, SinceID: in.SinceChangeID, Session: me})
	if err != nil {
		return nil, UndoChangesOut{}, err
	}
	ids := make([]string, len(out.Undone))
	for i, id := range out.Undone {
		ids[i] = fmt.Sprint(id)
	}
	res := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf("undid change(s) %s of %s", strings.Join(ids, ", "), out.Path)}}}
	return res, out, nil
}

// RevertChanges is undo_changes for the person reviewing in JupyterLab (the
// sidebar's HTTP endpoint): in.SinceChangeID undoes that change and the
// later ones of the session that made it.
func (t *Tools) RevertChanges(ctx context.Context, in UndoChangesIn) (UndoChangesOut, error) {
	if _, err := t.resolveNotebook(nil, in.Path); err != nil {
		return UndoChangesOut{}, BadPath{err}
	}
	return t.undoAs(ctx, nil, in.Path, changes.Selection{IDs: in.ChangeIDs, SinceID: in.SinceChangeID})
}

// BadPath is a path that names no notebook, whatever is on disk: the
// caller's mistake, not the notebook's or the record's state.
type BadPath struct{ Err error }

func (e BadPath) Error() string { return e.Err.Error() }
func (e BadPath) Unwrap() error { return e.Err }

func (t *Tools) undoAs(ctx context.Context, req *mcp.CallToolRequest, path string, sel changes.Selection) (UndoChangesOut, error) {
	p, err := t.notebookPath(req, path)
	if err != nil {
		return UndoChangesOut{}, err
	}
	if t.Changes == nil {
		return UndoChangesOut{}, errNoRecord
	}
	out := UndoChangesOut{Path: p, Undone: []int{}, Cells: []string{}}
	done, err := t.Changes.Undo(p, sel, func(cs []*changes.Change) error {
		if _, err := t.Jupyter.Get(ctx, p, false); err != nil {
			if jupyter.IsNotFound(err) {
				return fmt.Errorf("notebook %q no longer exists: it was deleted or renamed after the changes were made, and their record stays with the old path (renamed outside Jupyter, on disk, the server did not follow it); to undo them, put the notebook back at %q; nothing was changed", p, p)
			}
			return jupyter.NotebookError(p, err)
		}
		_, err := t.Docs.Update(ctx, p, func(nb *notebook.Notebook) error { return changes.Undo(nb, cs) })
		return err
	})
	if err != nil {
		return UndoChangesOut{}, err
	}
	seen := map[string]bool{}
	for _, c := range done {
		out.Undone = append(out.Undone, c.ID)
		for _, cc := range c.Cells {
			if !seen[cc.CellID] {
				seen[cc.CellID] = true
				out.Cells = append(out.Cells, cc.CellID)
			}
		}
	}
	return out, nil
}
