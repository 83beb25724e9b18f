// Package tools declares the MCP tools the sidecar offers an agent: typed
// go-sdk tools, one file per toolset, registered from one explicit list.
package tools

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
)

// PublicBaseHeader carries, from the HTTP layer to the tools, the public URL
// of the lab as the client reached it (scheme, host and base URL). The
// server package sets it on every request and drops any value a client sent.
const PublicBaseHeader = "X-Sidecar-Public-Base"

// Tools holds what the tool handlers need.
type Tools struct {
	Jupyter *jupyter.Client
	// Docs is where notebooks are read and edited: the live rooms when
	// jupyter-collaboration runs, else the files (documents.Store).
	Docs documents.Backend
	// Store creates notebook files (no room exists for a new file).
	Store      *documents.Store
	Sessions   *Sessions
	Kernels    *kernel.Manager
	Executions *execution.Executions
	Limits     Limits
	// Views links MCP sessions with embed pages.
	Views *embed.Hub
	// Changes records what agents change, for list_changes and
	// undo_changes; nil if there is nowhere to keep it.
	Changes *changes.Log

	// watch tracks resource subscriptions (resources.go).
	watch watch
	// tasks are executions handed to clients as tasks (tasks.go).
	tasks taskTable
	// handoffs end the calls of a stopping hub router (handoff.go).
	handoffs handoffs
}

// Register adds every tool to s. This list is the whole tool surface.
func (t *Tools) Register(s *mcp.Server) {
	// Files
	addTool(s, listFilesTool, t.listFiles)
	addTool(s, listNotebooksTool, t.listNotebooks)
	// Notebooks. Tools that pick or change a notebook show it in an MCP
	// Apps view (apps.go); a view gets the notebook and the changed cells.
	addTool(s, viewed(createNotebookTool), withView(t, t.createNotebook,
		func(in CreateNotebookIn) string { return in.Path }, nil))
	addTool(s, viewed(useNotebookTool), withView(t, t.useNotebook,
		func(in UseNotebookIn) string { return in.Path }, nil))
	addUncheckedOutputTool(s, readNotebookTool, t.readNotebook)
	addTool(s, readCellTool, t.readCell)
	addTool(s, saveNotebookTool, t.saveNotebook)
	// Cells
	addTool(s, viewed(insertCellTool), withView(t, t.insertCell,
		func(in InsertCellIn) string { return in.Path },
		func(_ InsertCellIn, o InsertCellOut) ([]string, []string) { return []string{o.CellID}, nil }))
	addTool(s, viewed(editCellTool), withView(t, t.editCell,
		func(in EditCellIn) string { return in.Path },
		func(_ EditCellIn, o EditCellOut) ([]string, []string) { return []string{o.CellID}, nil }))
	addTool(s, viewed(deleteCellsTool), withView(t, t.deleteCells,
		func(in DeleteCellsIn) string { return in.Path },
		func(_ DeleteCellsIn, o DeleteCellsOut) ([]string, []string) { return nil, o.Deleted }))
	addTool(s, viewed(moveCellTool), withView(t, t.moveCell,
		func(in MoveCellIn) string { return in.Path },
		func(_ MoveCellIn, o MoveCellOut) ([]string, []string) { return []string{o.CellID}, nil }))
	addTool(s, viewed(clearOutputsTool), withView(t, t.clearOutputs,
		func(in ClearOutputsIn) string { return in.Path },
		func(in ClearOutputsIn, _ ClearOutputsOut) ([]string, []string) { return in.CellIDs, nil }))
	// Review and undo (changes.go); the edits above are recorded.
	addTool(s, listChangesTool, t.listChanges)
	addTool(s, undoChangesTool, t.undoChanges)
	// Execution
	addUncheckedOutputTool(s, viewed(executeCellTool), withView(t, t.executeCell,
		func(in ExecuteCellIn) string { return in.Path }, ranCells[ExecuteCellIn]))
	addUncheckedOutputTool(s, viewed(executeCellsTool), withView(t, t.executeCells,
		func(in ExecuteCellsIn) string { return in.Path }, ranCells[ExecuteCellsIn]))
	addUncheckedOutputTool(s, executeCodeTool, t.executeCode)
	addUncheckedOutputTool(s, getExecutionTool, t.getExecution)
	addUncheckedOutputTool(s, sendInputTool, t.sendInput)
	// Kernels
	addTool(s, listKernelsTool, t.listKernels)
	addTool(s, interruptKernelTool, t.interruptKernel)
	addTool(s, restartKernelTool, t.restartKernel)
	// The person's view
	addTool(s, linkViewTool, t.linkView)
	// MCP Apps: the view's resource and tool
	t.registerApps(s)
	// Notebooks, cells and outputs as resources (resources.go); the server
	// passes Subscribe and Unsubscribe to go-sdk as its handlers.
	t.registerResources(s)
	// input() answered by the client (input.go)
	s.AddReceivingMiddleware(t.ResumeInput)
	// Long executions as tasks for clients that declare the extension
	// (tasks.go): tasks/get, tasks/update, tasks/cancel.
	t.registerTasks(s)
}

// ranCells are the cells an execution ran, for the view to highlight.
func ranCells[In any](_ In, o ExecutionOut) ([]string, []string) {
	var ids []string
	for _, c := range o.Cells {
		if c.CellID != "" {
			ids = append(ids, c.CellID)
		}
	}
	return ids, nil
}

// Instructions teach an agent the workflow; sent once at initialization.
const Instructions = `Work with the Jupyter notebooks of this JupyterLab. Changes are live at once and saved to the file within about a second; a save that fails is reported by your next call on that notebook. Before something reads the file (nbconvert, papermill, git, code in the kernel), call save_notebook: it returns once the file holds your edits.
Workflow: list_notebooks (or create_notebook) -> use_notebook to pick the notebook for this session -> read_notebook to see cells and their ids -> insert_cell / edit_cell / delete_cells / move_cell -> execute_cell (or insert_cell with execute=true).
Cells are addressed by cell_id (stable across edits; prefer it) or by 0-based index (-1 is the last cell).
Notebook tools act on this session's current notebook unless you pass path. Paths are relative to the Jupyter root, with "/" separators.
Code runs on the notebook's own kernel, shared with the person using JupyterLab. A run still going after its timeout returns an execution_id: wait for it with get_execution. If code waits on input(), answer with send_input. Use execute_code to inspect state without changing the notebook.
People may have the notebook open: they see your edits and outputs live, and their edits show in your next read. Your changes are recorded: list_changes shows them (with ids), undo_changes reverts chosen ones and keeps what people changed since. If the person gives you a view id of their embed page, call link_view with it so their view and your current notebook follow each other.`

// errNoNotebook is returned when a tool needs a notebook and none is known.
var errNoNotebook = errors.New("no notebook selected: pass path, or call use_notebook first (list_notebooks shows the notebooks that exist)")

// errNoSession answers a call without path from a client whose protocol
// (2026-07-28) has no sessions, so there is no "current notebook" that would
// keep two agents apart.
var errNoSession = errors.New("path is required: this connection has no MCP session (protocol 2026-07-28 is stateless), so there is no current notebook; pass path on every call (list_notebooks shows the notebooks that exist)")

// cleanPath validates a path given by an agent and returns it relative to
// the Jupyter root. The server root is a hard boundary: any ".." segment
// or absolute path is refused rather than interpreted ("/" alone is the
// root). An absolute path is refused, not re-rooted: "/home/me/a.ipynb"
// usually means a host path, and quietly reading "home/me/a.ipynb" under
// the root instead would mislead the agent.
func cleanPath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if strings.ContainsRune(p, '\\') {
		return "", fmt.Errorf("path %q: use \"/\" as separator", p)
	}
	if p == "/" {
		return "", nil
	}
	if strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is absolute: paths are relative to the Jupyter root (e.g. %q); list_files shows what is there", p, strings.TrimLeft(p, "/"))
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", fmt.Errorf("path %q leaves the Jupyter root: \"..\" is not allowed; paths are relative to the root", p)
		}
	}
	p = strings.Trim(path.Clean("/"+p), "/")
	return p, nil
}

// notebookPath resolves the notebook a tool acts on: the given path, or the
// session's current notebook. Every tool that touches a notebook starts
// here, so this is where an earlier edit whose background save failed is
// reported (documents.Reporter): the call fails with that report, having
// done nothing, and the next one goes on.
func (t *Tools) notebookPath(req *mcp.CallToolRequest, p string) (string, error) {
	nb, err := t.resolveNotebook(req, p)
	if err != nil {
		return "", err
	}
	if r, ok := t.Docs.(documents.Reporter); ok {
		if err := r.Unsaved(nb); err != nil {
			return "", err
		}
	}
	return nb, nil
}

func (t *Tools) resolveNotebook(req *mcp.CallToolRequest, p string) (string, error) {
	if strings.TrimSpace(p) == "" {
		session := sessionID(req)
		if session == "" {
			return "", errNoSession
		}
		if cur := t.Sessions.Current(session); cur != "" {
			return cur, nil
		}
		return "", errNoNotebook
	}
	clean, err := cleanPath(p)
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(clean, ".ipynb") {
		return "", fmt.Errorf("path %q is not a notebook: notebook paths end in .ipynb", p)
	}
	return clean, nil
}

// withEnums is the input schema inferred from In, with the listed
// properties restricted to fixed values (struct tags cannot say that).
func withEnums[In any](enums map[string][]any) *jsonschema.Schema {
	s, err := jsonschema.For[In](nil)
	if err != nil {
		panic(err) // a programming error in a tool's input type
	}
	for prop, values := range enums {
		s.Properties[prop].Enum = values
	}
	return s
}

func sessionID(req *mcp.CallToolRequest) string {
	if req == nil || req.Session == nil {
		return ""
	}
	return req.Session.ID()
}

// labURL is the public JupyterLab URL that shows a notebook, for a link or
// an iframe; empty when the public base is unknown.
func labURL(req *mcp.CallToolRequest, nbPath string) string {
	if req == nil || req.Extra == nil || req.Extra.Header == nil {
		return ""
	}
	base := req.Extra.Header.Get(PublicBaseHeader)
	if base == "" {
		return ""
	}
	segs := strings.Split(nbPath, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(base, "/") + "/lab/tree/" + strings.Join(segs, "/")
}
