package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// renameContents renames a file of lab through the Contents API (PATCH),
// as JupyterLab's rename does.
func renameContents(t *testing.T, lab *labtest.Lab, from, to string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, lab.URL+"api/contents/"+from, strings.NewReader(`{"path": "`+to+`"}`))
	resp, err := labtest.AuthClient("token " + lab.Token).Do(req)
	if err != nil {
		t.Fatalf("rename %s to %s through the Contents API: %v", from, to, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rename %s to %s through the Contents API: %s", from, to, resp.Status)
	}
}

// renameOnDisk renames a file of lab behind Jupyter's back.
func renameOnDisk(t *testing.T, lab *labtest.Lab, from, to string) {
	t.Helper()
	if err := os.Rename(filepath.Join(lab.Root, from), filepath.Join(lab.Root, to)); err != nil {
		t.Fatal(err)
	}
}

// agentChanges has the agent make two changes to a new notebook at nb in
// lab (an edit of c0 and an inserted cell) and returns the inserted
// cell's id once both are on disk.
func agentChanges(t *testing.T, lab *labtest.Lab, cs *mcp.ClientSession, nb string) string {
	t.Helper()
	labCodeNotebook(t, lab, nb, "x = 1")
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "x = 2"})
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": "y = 3"})
	labtest.Call[map[string]any](t, cs, "save_notebook", map[string]any{"path": nb})
	return ins.CellID
}

// checkRenamed checks that the agent's two changes (agentChanges) moved
// with the notebook from old to renamed, and that a new notebook at old
// does not inherit them: listed and undone at the new path, they restore
// the notebook there; the new notebook shows no change, cannot undo the
// old ones, and its own changes are numbered afresh.
func checkRenamed(t *testing.T, lab *labtest.Lab, cs *mcp.ClientSession, old, renamed, inserted string) {
	t.Helper()
	var moved changesOut
	eventually(t, "the renamed notebook lists its changes", func() bool {
		moved = labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": renamed})
		return len(moved.Changes) == 2
	})
	if moved.Changes[0].Tool != "insert_cell" || moved.Changes[1].Tool != "edit_cell" {
		t.Fatalf("the renamed notebook's changes: %+v", moved)
	}

	created := labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": old})
	if fresh := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": old}); len(fresh.Changes) != 0 {
		t.Fatalf("a new notebook at the old path lists %+v", fresh)
	}
	labtest.CallErr(t, cs, "undo_changes", map[string]any{"path": old, "change_ids": []int{1}}, "has no change 1")
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": old, "cell_id": created.FirstCellID, "source": "z = 9"})
	if own := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": old}); len(own.Changes) != 1 || own.Changes[0].ID != 1 {
		t.Fatalf("the new notebook's own changes: %+v", own)
	}
	if still := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": renamed}); len(still.Changes) != 2 {
		t.Fatalf("after the new notebook's edit, the renamed one lists %+v", still)
	}

	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": renamed, "change_ids": []int{1, 2}})
	r := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": renamed})
	if ids(r) != "c0" || r.Cells[0].Source != "x = 1" {
		t.Fatalf("the renamed notebook after undoing both changes: %+v", r.Cells)
	}
	labtest.Call[map[string]any](t, cs, "save_notebook", map[string]any{"path": renamed})
	labtest.Call[map[string]any](t, cs, "save_notebook", map[string]any{"path": old})
	if disk := readLabFile(t, lab, renamed); strings.Contains(disk, inserted) || !strings.Contains(disk, `"x = 1"`) {
		t.Fatalf("%s on disk after the undo:\n%s", renamed, disk)
	}
	if disk := readLabFile(t, lab, old); !strings.Contains(disk, "z = 9") || strings.Contains(disk, "x = ") {
		t.Fatalf("the new notebook %s on disk:\n%s", old, disk)
	}
}

// A notebook renamed through the Contents API (as JupyterLab renames)
// keeps its changes and their undo under the new name; a new notebook at
// the old name starts with none.
func TestRenameThroughContentsAPI(t *testing.T) {
	cs := session(t)
	old := livePath("rename-api")
	renamed := strings.TrimSuffix(old, ".ipynb") + "-renamed.ipynb"
	inserted := agentChanges(t, shared, cs, old)
	renameContents(t, shared, old, renamed)
	checkRenamed(t, shared, cs, old, renamed, inserted)
}

// localFileIDs starts a lab whose file ids follow files moved on disk
// (jupyter_server_fileid's LocalFileIdManager, which knows a file by its
// inode), with an MCP session to it.
func localFileIDs(t *testing.T, name string) (*labtest.Lab, *mcp.ClientSession) {
	t.Helper()
	dir := filepath.Join(labsDir, name)
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := `{"FileIdExtension": {"file_id_manager_class": "jupyter_server_fileid.manager.LocalFileIdManager"}}`
	if err := os.WriteFile(filepath.Join(dir, "config", "jupyter_server_config.json"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return ownLab(t, name)
}

// On disk, a renamed notebook keeps its changes where the server's file
// id follows the file.
func TestRenameOnDiskFollowedByFileID(t *testing.T) {
	lab, cs := localFileIDs(t, fmt.Sprintf("rename-disk-local-%d", faultRuns.Add(1)))
	inserted := agentChanges(t, lab, cs, "a.ipynb")
	renameOnDisk(t, lab, "a.ipynb", "b.ipynb")
	checkRenamed(t, lab, cs, "a.ipynb", "b.ipynb", inserted)
}

// With the server's default file ids, which follow only renames made
// through Jupyter, neither the server nor the sidecar can tell a notebook
// renamed on disk: its changes stay under the old path, and the tools say
// so at both paths; put back, it is undone there. A notebook the agent
// then creates at the old path starts with no changes all the same.
func TestRenameOnDiskNotFollowed(t *testing.T) {
	cs := session(t)
	old := livePath("rename-disk")
	renamed := strings.TrimSuffix(old, ".ipynb") + "-renamed.ipynb"
	agentChanges(t, shared, cs, old)
	renameOnDisk(t, shared, old, renamed)
	if l := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": renamed}); len(l.Changes) != 0 {
		t.Fatalf("the renamed notebook lists %+v", l)
	}
	labtest.CallErr(t, cs, "undo_changes", map[string]any{"path": renamed, "change_ids": []int{1}},
		"has no change 1 (it has no recorded changes; the changes of a notebook renamed outside Jupyter (on disk) stay under its old path")
	if l := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": old}); len(l.Changes) != 2 {
		t.Fatalf("the old path lists %+v", l)
	}
	labtest.CallErr(t, cs, "undo_changes", map[string]any{"path": old, "change_ids": []int{2}}, "to undo them, put the notebook back at")

	renameOnDisk(t, shared, renamed, old)
	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": old, "change_ids": []int{2}})
	if r := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": old}); ids(r) != "c0" || r.Cells[0].Source != "x = 2" {
		t.Fatalf("put back, after undoing the insert: %+v", r.Cells)
	}

	labtest.Call[map[string]any](t, cs, "save_notebook", map[string]any{"path": old})
	renameOnDisk(t, shared, old, renamed)
	created := labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": old})
	if l := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": old}); len(l.Changes) != 0 {
		t.Fatalf("a new notebook at the old path lists %+v", l)
	}
	labtest.CallErr(t, cs, "undo_changes", map[string]any{"path": old, "change_ids": []int{1}}, "has no change 1")
	// To the server the new file is the old notebook (same file id, same
	// room): its room shows the new file once the server reloads it.
	eventually(t, "the room holds the new notebook", func() bool {
		r := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": old})
		return ids(r) == created.FirstCellID
	})
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": old, "cell_id": created.FirstCellID, "source": "z = 9"})
	if own := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": old}); len(own.Changes) != 1 || own.Changes[0].ID != 1 {
		t.Fatalf("the new notebook's own changes: %+v", own)
	}
}

// A notebook renamed right after the agent's edit, before the sidecar
// checked that the file holds it: the check follows the notebook to its
// new path, where the edit is saved, and nothing is reported lost — not to
// a call on the renamed notebook, nor to one on a new notebook at the old
// path.
func TestRenameBeforeTheSave(t *testing.T) {
	cs := session(t)
	old := livePath("rename-unsaved")
	renamed := strings.TrimSuffix(old, ".ipynb") + "-renamed.ipynb"
	codeNotebook(t, old, "x = 1")
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": old, "cell_id": "c0", "source": "x = 2"})
	renameContents(t, shared, old, renamed)
	savedFile(t, shared, renamed, "holds the edit", func(disk string) bool { return strings.Contains(disk, `"x = 2"`) })
	created := labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": old})
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": old, "cell_id": created.FirstCellID, "source": "z = 9"})
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": renamed, "cell_id": "c0", "source": "x = 3"})
	labtest.Call[map[string]any](t, cs, "save_notebook", map[string]any{"path": renamed})
	if l := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": renamed}); len(l.Changes) != 2 {
		t.Fatalf("the renamed notebook's changes: %+v", l)
	}
}

// A person renames the notebook in JupyterLab (its rename dialog) while it
// is open: the agent's change is listed and undone at the new name, and
// the person's tab shows the undo.
func TestBrowserRenameKeepsChanges(t *testing.T) {
	cs := session(t)
	nb := livePath("browser-rename")
	codeNotebook(t, nb, "x = 1")
	ctx := browser(t, nb)
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "x = 2"})
	waitForText(t, ctx, "x = 2")

	name := strings.TrimSuffix(filepath.Base(nb), ".ipynb") + "-renamed.ipynb"
	renamed := filepath.Dir(nb) + "/" + name
	// The rename applies to the document in focus, as from the tab's menu.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(firstCell)),
		chromedp.Evaluate[chromedp.Void](`void jupyterapp.commands.execute('docmanager:rename')`),
		chromedp.WaitVisible(chromedp.CSS(`.jp-Dialog input`)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('.jp-Dialog input').value = %q`, name)),
		chromedp.Click(chromedp.CSS(`.jp-Dialog .jp-mod-accept`)),
	); err != nil {
		screenshot(t, ctx)
		t.Fatalf("rename the notebook in JupyterLab: %v", err)
	}
	var list changesOut
	eventually(t, "the renamed notebook lists the agent's change", func() bool {
		list = labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": renamed})
		return len(list.Changes) == 1
	})
	if _, err := os.Stat(filepath.Join(shared.Root, nb)); !os.IsNotExist(err) {
		t.Fatalf("the old file is still there (%v)", err)
	}
	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": renamed, "change_ids": []int{list.Changes[0].ID}})
	waitForText(t, ctx, "x = 1")
	savedNotebook(t, renamed, "is back to the start", func(disk map[string]any) bool { return diskCells(disk) == "c0=x = 1" })
}
