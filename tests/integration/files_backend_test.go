package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// With --documents files (or without jupyter-collaboration) the tools read
// and write notebook files through the Contents API; edits and outputs land
// in the file.
func TestFilesBackend(t *testing.T) {
	lab, cs := ownLab(t, "files-lab", "JUPYTER_MCP_DOCUMENTS=files")

	created := labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": "files.ipynb"})
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"cell_id": created.FirstCellID, "source": "x = 20"})
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"source": "print(x + 22)", "execute": true})
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cells", Arguments: map[string]any{}})
	if err != nil || res.IsError || decode[execOut](t, res).Status != "ok" {
		t.Fatalf("execute_cells: %v %s", err, labtest.ResultText(res))
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"cell_id": ins.CellID})
	if len(cell.Outputs) != 1 || cell.Outputs[0] != "42\n" {
		t.Fatalf("outputs = %q", cell.Outputs)
	}
	disk := readLabFile(t, lab, "files.ipynb")
	if !strings.Contains(disk, `"x = 20"`) || !strings.Contains(disk, `"42\n"`) {
		t.Fatalf("the file lacks the edit or the output:\n%s", disk)
	}
	validateLabNotebook(t, lab, "files.ipynb")

	// Files have no change feed: a subscriber hears of the sidecar's own
	// writes (and of nothing a person saves).
	updated := make(chan string, 16)
	sub, err := lab.ConnectWith(t.Context(), "mcp", "token "+lab.Token, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Subscribe(t.Context(), &mcp.SubscribeParams{URI: "notebook:///files.ipynb"}); err != nil {
		t.Fatal(err)
	}
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "files.ipynb", "source": "told_from_files = 1"})
	untilUpdated(t, sub, updated, "notebook:///files.ipynb", "notebook:///files.ipynb", "told_from_files = 1")

	// Undo works on the file with the same rule: the agent adds a line, a
	// person saves an edit of the line above it, and undoing the agent's
	// change removes only its line.
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": "files.ipynb", "cell_id": created.FirstCellID, "source": "x = 20\ny = 1"})
	last := labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": "files.ipynb", "mine": true, "limit": 1})
	if len(last.Changes) != 1 || last.Changes[0].Tool != "edit_cell" {
		t.Fatalf("list_changes: %+v", last)
	}
	disk = readLabFile(t, lab, "files.ipynb")
	if !strings.Contains(disk, `"x = 20\n"`) {
		t.Fatalf("the file does not hold the edit as expected:\n%s", disk)
	}
	if err := os.WriteFile(filepath.Join(lab.Root, "files.ipynb"), []byte(strings.Replace(disk, `"x = 20\n"`, `"x = 21\n"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": "files.ipynb", "change_ids": []int{last.Changes[0].ID}})
	if cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "files.ipynb", "cell_id": created.FirstCellID}); cell.Source != "x = 21" {
		t.Fatalf("after the undo the cell reads %q, want the person's %q", cell.Source, "x = 21")
	}
	validateLabNotebook(t, lab, "files.ipynb")

	// Renamed through Jupyter, the notebook keeps its record: its changes
	// are listed and undone at the new path.
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": "files.ipynb", "cell_id": created.FirstCellID, "source": "x = 22"})
	renameContents(t, lab, "files.ipynb", "renamed.ipynb")
	var moved changesOut
	eventually(t, "the record follows the renamed notebook", func() bool {
		moved = labtest.Call[changesOut](t, cs, "list_changes", map[string]any{"path": "renamed.ipynb", "limit": 1})
		return len(moved.Changes) == 1
	})
	labtest.Call[undoOut](t, cs, "undo_changes", map[string]any{"path": "renamed.ipynb", "change_ids": []int{moved.Changes[0].ID}})
	if cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "renamed.ipynb", "cell_id": created.FirstCellID}); cell.Source != "x = 21" {
		t.Fatalf("after the undo at the new path the cell reads %q", cell.Source)
	}
}
