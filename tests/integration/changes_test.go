package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

type changeView struct {
	ID      int    `json:"id"`
	Tool    string `json:"tool"`
	Client  string `json:"client"`
	Session string `json:"session"`
	Mine    bool   `json:"mine"`
	Undone  string `json:"undone"`
	Cells   []struct {
		Op      string `json:"op"`
		CellID  string `json:"cell_id"`
		Index   int    `json:"index"`
		Diff    string `json:"diff"`
		Summary string `json:"summary"`
	} `json:"cells"`
}

type changesOut struct {
	Changes []changeView `json:"changes"`
	More    bool         `json:"more"`
}

type undoOut struct {
	Undone []int    `json:"undone"`
	Cells  []string `json:"cells"`
}

// diskCells is a saved notebook's cells as "id=source" lines, with the
// outputs' text of cells that have some.
func diskCells(nb map[string]any) string {
	var out []string
	for _, c := range cellsOf(nb) {
		m, _ := c.(map[string]any)
		src := m["source"]
		if parts, ok := src.([]any); ok {
			var s []string
			for _, p := range parts {
				s = append(s, fmt.Sprint(p))
			}
			src = strings.Join(s, "")
		}
		line := fmt.Sprintf("%v=%v", m["id"], src)
		if outs, _ := m["outputs"].([]any); len(outs) > 0 {
			line += fmt.Sprintf(" %v", outs)
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// The agent runs a cell, then makes three changes; the person types in the
// cell the second change edited. Undoing the second change removes exactly
// it: the person's line and changes one and three stay, in the agent's view
// and on disk. A deleted cell comes back with its id and outputs; a clash
// with a later edit is reported and changes nothing.
func TestBrowserUndoKeepsPersonsEdits(t *testing.T) {
	agent := session(t)
	nb := livePath("undo")
	codeNotebook(t, nb, "a = 1", "b = 2\nb2 = 22", "print('three')")
	ctx := browser(t, nb)

	run := labtest.Call[execOut](t, agent, "execute_cell", map[string]any{"path": nb, "cell_id": "c2", "timeout": 120})
	if run.Status != "ok" {
		t.Fatalf("execute_cell: %+v", run)
	}
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 10"})
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "old_text": "b = 2\n", "new_text": "b = 20\n"})
	labtest.Call[map[string]any](t, agent, "delete_cells", map[string]any{"path": nb, "cell_ids": []string{"c2"}})
	waitForText(t, ctx, "b = 20")

	// The person adds a line at the end of the cell the second change edited.
	second := `.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:nth-child(2) .cm-content`
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(second)),
		chromedp.KeyEvent(kb.End, chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent("\nperson = 1"),
	); err != nil {
		t.Fatal(err)
	}
	readUntil(t, agent, nb, "c1", "b = 20\nb2 = 22\nperson = 1")

	list := labtest.Call[changesOut](t, agent, "list_changes", map[string]any{"path": nb})
	var got []string
	for _, c := range list.Changes {
		ops := []string{}
		for _, cc := range c.Cells {
			ops = append(ops, cc.Op+" "+cc.CellID)
		}
		got = append(got, fmt.Sprintf("%d %s %s", c.ID, c.Tool, strings.Join(ops, ",")))
		if !c.Mine || c.Client == "" || c.Session == "" {
			t.Fatalf("change %d not attributed to this session and its client: %+v", c.ID, c)
		}
	}
	want := "4 delete_cells delete c2|3 edit_cell edit c1|2 edit_cell edit c0|1 execute_cell outputs c2"
	if strings.Join(got, "|") != want {
		t.Fatalf("list_changes:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	if d := list.Changes[1].Cells[0].Diff; !strings.Contains(d, "- b = 2") || !strings.Contains(d, "+ b = 20") {
		t.Fatalf("diff of change 3: %q", d)
	}

	// Undo the second change: only its line goes back.
	u := labtest.Call[undoOut](t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{3}})
	if len(u.Undone) != 1 || u.Undone[0] != 3 {
		t.Fatalf("undo_changes: %+v", u)
	}
	waitForText(t, ctx, "b = 2\n")
	r := labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
	if ids(r) != "c0,c1" || r.Cells[0].Source != "a = 10" || r.Cells[1].Source != "b = 2\nb2 = 22\nperson = 1" {
		t.Fatalf("after undoing change 3: %+v", r.Cells)
	}
	savedNotebook(t, nb, "has change 3 undone and the person's line", func(disk map[string]any) bool {
		return diskCells(disk) == "c0=a = 10\nc1=b = 2\nb2 = 22\nperson = 1"
	})
	labtest.CallErr(t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{3}}, "change 3 of \""+nb+"\" was already undone at")
	labtest.CallErr(t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{99}}, "has no change 99 (its recorded changes are 1 to 4")

	// Another writer (a second session, as a person would) rewrites the
	// line change 2 wrote: undoing change 2 is a clash and changes nothing.
	other := session(t)
	labtest.Call[map[string]any](t, other, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 11"})
	labtest.CallErr(t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{2}}, `cell c0: line 1, which the change made "a = 10", now read "a = 11"`)
	// "This session's changes since" cannot start at another's change.
	labtest.CallErr(t, other, "undo_changes", map[string]any{"path": nb, "since_change_id": 2}, "change 2 was made by session ")

	// The deleted cell comes back at its place, with its id and outputs.
	labtest.Call[undoOut](t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{4}})
	waitForText(t, ctx, "print('three')")
	r = labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
	if ids(r) != "c0,c1,c2" || len(r.Cells[2].Outputs) == 0 || !strings.Contains(r.Cells[2].Outputs[0], "three") || r.Cells[0].Source != "a = 11" {
		t.Fatalf("after undoing the delete: %+v", r.Cells)
	}
	savedNotebook(t, nb, "has the deleted cell back with its outputs", func(disk map[string]any) bool {
		s := diskCells(disk)
		return strings.HasPrefix(s, "c0=a = 11\nc1=b = 2\nb2 = 22\nperson = 1\nc2=print('three') ") && strings.Contains(s, "three\n")
	})

	// Cleared outputs come back; undoing the run removes what it wrote.
	labtest.Call[map[string]any](t, agent, "clear_outputs", map[string]any{"path": nb, "cell_ids": []string{"c2"}})
	cleared := labtest.Call[changesOut](t, agent, "list_changes", map[string]any{"path": nb, "mine": true, "limit": 1}).Changes[0]
	if cleared.Tool != "clear_outputs" || cleared.Cells[0].Op != "outputs" || !strings.Contains(cleared.Cells[0].Summary, "cleared 1 output") {
		t.Fatalf("the clear is recorded as %+v", cleared)
	}
	labtest.Call[undoOut](t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{cleared.ID}})
	if c := labtest.Call[cellView](t, agent, "read_cell", map[string]any{"path": nb, "cell_id": "c2"}); len(c.Outputs) != 1 || c.ExecutionCount == nil {
		t.Fatalf("after undoing the clear: %+v", c)
	}
	labtest.Call[undoOut](t, agent, "undo_changes", map[string]any{"path": nb, "change_ids": []int{1}})
	if c := labtest.Call[cellView](t, agent, "read_cell", map[string]any{"path": nb, "cell_id": "c2"}); len(c.Outputs) != 0 || c.ExecutionCount != nil {
		t.Fatalf("after undoing the run: %+v", c)
	}
	savedNotebook(t, nb, "has no outputs left", func(disk map[string]any) bool { return !strings.Contains(diskCells(disk), "three\n") })
	validateNotebook(t, nb)
}

// Requests without a session (2026-07-28) are recorded as "stateless":
// their changes can be undone by id, not as "this session's since".
func TestUndoStateless(t *testing.T) {
	nb := livePath("stateless")
	codeNotebook(t, nb, "s = 1")
	cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "s = 2"})
	c := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": nb}).Changes
	if len(c) != 1 || c[0].Session != "stateless" || c[0].Mine {
		t.Fatalf("list_changes: %+v", c)
	}
	t.Logf("a stateless client is recorded as %q", c[0].Client)
	labtest.CallErr(t, cs, "undo_changes", map[string]any{"path": nb, "since_change_id": 1}, "this connection has no MCP session")
	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": nb, "change_ids": []int{1}})
	if cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": nb, "cell_id": "c0"}); cell.Source != "s = 1" {
		t.Fatalf("after the undo: %q", cell.Source)
	}
}

// Changes recorded before the sidecar is killed are listed and undone by
// the sidecar the proxy starts next; for a notebook renamed behind
// Jupyter's back, undo is refused and nothing is changed.
func TestUndoAfterSidecarRestart(t *testing.T) {
	nb := livePath("restart")
	codeNotebook(t, nb, "x = 1")
	agent := session(t)
	ins := labtest.Call[insertOut](t, agent, "insert_cell", map[string]any{"path": nb, "source": "y = 2"})
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "x = 100"})
	labtest.Call[map[string]any](t, agent, "move_cell", map[string]any{"path": nb, "cell_id": ins.CellID, "to_index": 0})

	old := shared.SidecarPID()
	if old == 0 {
		t.Fatal("no sidecar process under the lab")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The proxy starts a new sidecar for the first request after the old
	// one is gone; a request racing the death of the old one may fail.
	eventually(t, "the killed sidecar has exited", func() bool { return shared.SidecarPID() != old })
	var fresh *mcp.ClientSession
	eventually(t, "a new session connects", func() bool {
		cs, err := shared.Connect(t.Context(), "mcp", "token "+shared.Token)
		if err == nil {
			fresh = cs
			t.Cleanup(func() { cs.Close() })
		}
		return err == nil
	})
	list := labtest.Call[changesOut](t, fresh, "list_changes", map[string]any{"path": nb, "limit": 2})
	if len(list.Changes) != 2 || list.Changes[0].ID != 3 || list.Changes[0].Tool != "move_cell" || !list.More || list.Changes[0].Mine {
		t.Fatalf("after the restart, list_changes = %+v", list)
	}
	if pid := shared.SidecarPID(); pid == 0 || pid == old {
		t.Fatalf("sidecar pid after the kill = %d (killed: %d), want a new process", pid, old)
	}
	older := labtest.Call[changesOut](t, fresh, "list_changes", map[string]any{"path": nb, "before_change_id": 2})
	if len(older.Changes) != 1 || older.Changes[0].Tool != "insert_cell" || older.More {
		t.Fatalf("second page = %+v", older)
	}
	// Undo all three, newest first: the notebook is as it was.
	u := labtest.Call[undoOut](t, fresh, "undo_changes", map[string]any{"path": nb, "change_ids": []int{1, 2, 3}})
	if len(u.Undone) != 3 {
		t.Fatalf("undo_changes: %+v", u)
	}
	r := labtest.Call[readOut](t, fresh, "read_notebook", map[string]any{"path": nb})
	if ids(r) != "c0" || r.Cells[0].Source != "x = 1" {
		t.Fatalf("after undoing everything: %+v", r.Cells)
	}
	savedNotebook(t, nb, "is back to the start", func(disk map[string]any) bool { return diskCells(disk) == "c0=x = 1" })

	// Renamed behind Jupyter's back: a precise error, and nothing changed.
	// (Renames through Jupyter are followed: TestFilesBackend.)
	labtest.Call[map[string]any](t, fresh, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "x = 6"})
	savedNotebook(t, nb, "has the last edit", func(disk map[string]any) bool { return diskCells(disk) == "c0=x = 6" })
	moved := strings.TrimSuffix(nb, ".ipynb") + "-moved.ipynb"
	if err := os.Rename(filepath.Join(shared.Root, nb), filepath.Join(shared.Root, moved)); err != nil {
		t.Fatal(err)
	}
	labtest.CallErr(t, fresh, "undo_changes", map[string]any{"path": nb, "change_ids": []int{4}}, "no longer exists: it was deleted or renamed")
	if data, err := os.ReadFile(filepath.Join(shared.Root, moved)); err != nil || !strings.Contains(string(data), "x = 6") {
		t.Fatalf("the renamed notebook changed: %v %s", err, data)
	}
}

// since_change_id undoes this session's own changes from that one on, and
// leaves another session's changes made in between.
func TestUndoSinceMine(t *testing.T) {
	nb := livePath("since")
	codeNotebook(t, nb, "a = 0", "b = 0")
	mine, other := session(t), session(t)
	labtest.Call[map[string]any](t, mine, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 1"})
	labtest.Call[map[string]any](t, other, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "source": "b = 1"})
	ins := labtest.Call[insertOut](t, mine, "insert_cell", map[string]any{"path": nb, "source": "c = 1"})
	u := labtest.Call[undoOut](t, mine, "undo_changes", map[string]any{"path": nb, "since_change_id": 1})
	if fmt.Sprint(u.Undone) != "[1 3]" || fmt.Sprint(u.Cells) != "[c0 "+ins.CellID+"]" {
		t.Fatalf("undo_changes since 1: %+v", u)
	}
	r := labtest.Call[readOut](t, mine, "read_notebook", map[string]any{"path": nb})
	if ids(r) != "c0,c1" || r.Cells[0].Source != "a = 0" || r.Cells[1].Source != "b = 1" {
		t.Fatalf("after undoing this session's changes: %+v", r.Cells)
	}
	labtest.CallErr(t, mine, "undo_changes", map[string]any{"path": nb, "since_change_id": 1}, "this session has no change")
	list := labtest.Call[changesOut](t, other, "list_changes", map[string]any{"path": nb, "mine": true})
	if len(list.Changes) != 1 || list.Changes[0].ID != 2 || list.Changes[0].Undone != "" {
		t.Fatalf("the other session's changes: %+v", list)
	}
}

// The changes of a notebook renamed through Jupyter while no sidecar ran
// are listed and undone under the new name. That happens after the lab
// restarts: jupyter-server-proxy starts the sidecar at the first request to
// it, so a person can rename notebooks long before. (It restarts a sidecar
// that dies at once.) The record carries the notebook's file id, which the
// server keeps across the rename.
func TestChangesFollowRenameWhileSidecarStopped(t *testing.T) {
	dir := filepath.Join(labsDir, fmt.Sprintf("rename-lab-%d", faultRuns.Add(1)))
	lab, err := labtest.Start(sidecarBin, dir, "rename-token")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Stop() })
	cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": "a.ipynb"})
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "a.ipynb", "source": "w = 1"})
	cs.Close()
	lab.Stop()

	lab, err = labtest.Start(sidecarBin, dir, "rename-token")
	if err != nil {
		t.Fatal(err)
	}
	renameContents(t, lab, "a.ipynb", "b.ipynb")
	if pid := lab.SidecarPID(); pid != 0 {
		t.Fatalf("a sidecar (pid %d) ran while the notebook was renamed; the test needs none", pid)
	}

	fresh, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token) // starts the sidecar
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	list := labtest.Call[changesOut](t, fresh, "list_changes", map[string]any{"path": "b.ipynb"})
	if len(list.Changes) != 1 || list.Changes[0].Tool != "insert_cell" {
		t.Fatalf("the renamed notebook's changes: %+v", list)
	}
	if old := labtest.Call[changesOut](t, fresh, "list_changes", map[string]any{"path": "a.ipynb"}); len(old.Changes) != 0 {
		t.Fatalf("its old name still lists %+v", old)
	}
	labtest.Call[undoOut](t, fresh, "undo_changes", map[string]any{"path": "b.ipynb", "change_ids": []int{list.Changes[0].ID}})
	for _, c := range labtest.Call[readOut](t, fresh, "read_notebook", map[string]any{"path": "b.ipynb"}).Cells {
		if c.ID == ins.CellID {
			t.Fatalf("the inserted cell is still there after undoing its insert: %+v", c)
		}
	}
}
