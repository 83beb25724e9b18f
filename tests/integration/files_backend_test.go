package integration

import (
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
	lab, err := labtest.Start(sidecarBin, filepath.Join(labsDir, "files-lab"), "files-token", "JUPYTER_MCP_DOCUMENTS=files")
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Stop()
	cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

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
}
