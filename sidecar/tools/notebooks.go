package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

type CreateNotebookIn struct {
	Path       string `json:"path" jsonschema:"path of the new notebook, relative to the Jupyter root, ending in .ipynb; its folder must exist"`
	KernelName string `json:"kernel_name,omitempty" jsonschema:"kernelspec name, e.g. python3; default the server's default kernel"`
}

type NotebookRef struct {
	Path        string `json:"path"`
	Kernel      string `json:"kernel,omitempty"`
	Cells       int    `json:"cells"`
	FirstCellID string `json:"first_cell_id,omitempty" jsonschema:"id of the empty code cell a new notebook starts with: edit it or delete it"`
	LabURL      string `json:"lab_url,omitempty" jsonschema:"JupyterLab URL that shows this notebook (for a link or an iframe)"`
}

var createNotebookTool = &mcp.Tool{
	Name:        "create_notebook",
	Title:       "Create notebook",
	Description: "Create a new notebook (holding one empty code cell, as JupyterLab does) and make it this session's current notebook. Refuses to overwrite an existing file.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false)},
}

func (t *Tools) createNotebook(ctx context.Context, req *mcp.CallToolRequest, in CreateNotebookIn) (*mcp.CallToolResult, NotebookRef, error) {
	if strings.TrimSpace(in.Path) == "" {
		return nil, NotebookRef{}, fmt.Errorf("path is required, e.g. \"analysis.ipynb\"")
	}
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, NotebookRef{}, err
	}
	specs, def, err := t.Jupyter.KernelSpecs(ctx)
	if err != nil {
		return nil, NotebookRef{}, fmt.Errorf("list kernels: %w", err)
	}
	name := in.KernelName
	if name == "" {
		name = def
	}
	var names []string
	var meta json.RawMessage
	for _, k := range specs {
		names = append(names, k.Name)
		if k.Name == name {
			meta, _ = json.Marshal(map[string]any{
				"kernelspec":    map[string]string{"name": k.Name, "display_name": k.DisplayName, "language": k.Language},
				"language_info": map[string]string{"name": k.Language},
			})
		}
	}
	if meta == nil {
		return nil, NotebookRef{}, fmt.Errorf("no kernel named %q is installed; installed kernels: %s", name, strings.Join(names, ", "))
	}
	// One empty code cell, as JupyterLab makes (a live room adds it anyway
	// to a notebook without cells).
	nb := notebook.New(meta)
	if _, _, err := nb.Insert(notebook.Position{}, notebook.Code, ""); err != nil {
		return nil, NotebookRef{}, err
	}
	if err := t.Store.Create(ctx, p, nb); err != nil {
		return nil, NotebookRef{}, err
	}
	// A notebook may have been at p before: its room and its record of
	// changes are not this one's.
	if m, ok := t.Docs.(documents.Mover); ok {
		m.Moved(p)
	}
	if t.Changes != nil {
		_ = t.Changes.Created(p) // a failure leaves the record, as without it
	}
	t.listChanged() // the server reports a PUT as a save, not a creation
	t.switchTo(req, p)
	return nil, NotebookRef{Path: p, Kernel: name, Cells: 1, FirstCellID: nb.Cells[0].ID, LabURL: labURL(req, p)}, nil
}

type UseNotebookIn struct {
	Path string `json:"path" jsonschema:"notebook path relative to the Jupyter root, ending in .ipynb"`
}

var useNotebookTool = &mcp.Tool{
	Name:        "use_notebook",
	Title:       "Use notebook",
	Description: "Make a notebook this session's current notebook, so later notebook tools can omit path. Returns its cell count, kernel and the JupyterLab URL that shows it.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
}

func (t *Tools) useNotebook(ctx context.Context, req *mcp.CallToolRequest, in UseNotebookIn) (*mcp.CallToolResult, NotebookRef, error) {
	if strings.TrimSpace(in.Path) == "" {
		return nil, NotebookRef{}, fmt.Errorf("path is required")
	}
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, NotebookRef{}, err
	}
	nb, err := t.Docs.Load(ctx, p)
	if err != nil {
		return nil, NotebookRef{}, err
	}
	t.switchTo(req, p)
	return nil, NotebookRef{Path: p, Kernel: kernelName(nb), Cells: len(nb.Cells), LabURL: labURL(req, p)}, nil
}

func kernelName(nb *notebook.Notebook) string {
	var m struct {
		Kernelspec struct {
			Name string `json:"name"`
		} `json:"kernelspec"`
	}
	_ = json.Unmarshal(nb.Metadata, &m)
	return m.Kernelspec.Name
}

type ReadNotebookIn struct {
	Path           string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	Start          int    `json:"start,omitempty" jsonschema:"index of the first cell to show; default 0"`
	Limit          int    `json:"limit,omitempty" jsonschema:"show at most this many cells; default 50"`
	IncludeOutputs *bool  `json:"include_outputs,omitempty" jsonschema:"show cell outputs; default true"`
	Detail         string `json:"detail,omitempty" jsonschema:"brief (default): first lines of each cell; full: whole sources and outputs"`
}

type CellView struct {
	Index          int      `json:"index"`
	ID             string   `json:"id"`
	Type           string   `json:"type"`
	Source         string   `json:"source"`
	ExecutionCount *int     `json:"execution_count,omitempty"`
	Outputs        []string `json:"outputs,omitempty"`
	Truncated      bool     `json:"truncated,omitempty" jsonschema:"source or outputs were shortened; read_cell shows all"`
}

type ReadNotebookOut struct {
	Path       string     `json:"path"`
	TotalCells int        `json:"total_cells"`
	Cells      []CellView `json:"cells"`
	NextStart  int        `json:"next_start,omitempty" jsonschema:"pass as start to read the following cells; absent at the end"`
}

var readNotebookTool = &mcp.Tool{
	Name:        "read_notebook",
	Title:       "Read notebook",
	Description: "Show a notebook's cells with their index, id, type, source and outputs. Brief by default (long sources and outputs shortened); use start and limit to page through long notebooks.",
	InputSchema: withEnums[ReadNotebookIn](map[string][]any{"detail": {"brief", "full"}}),
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

// Shortening limits for brief and full reads.
const (
	briefSourceLines = 10
	briefOutputChars = 500
	fullOutputChars  = 20000
	defaultCellLimit = 50
	maxCellLimit     = 500
)

func (t *Tools) readNotebook(ctx context.Context, req *mcp.CallToolRequest, in ReadNotebookIn) (*mcp.CallToolResult, ReadNotebookOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, ReadNotebookOut{}, err
	}
	full := false
	switch in.Detail {
	case "", "brief":
	case "full":
		full = true
	default:
		return nil, ReadNotebookOut{}, fmt.Errorf("detail %q is not valid: use brief or full", in.Detail)
	}
	limit := in.Limit
	if limit == 0 {
		limit = defaultCellLimit
	}
	if limit < 0 || limit > maxCellLimit {
		return nil, ReadNotebookOut{}, fmt.Errorf("limit %d is out of range: use 1 to %d", in.Limit, maxCellLimit)
	}
	nb, err := t.Docs.Load(ctx, p)
	if err != nil {
		return nil, ReadNotebookOut{}, err
	}
	n := len(nb.Cells)
	if in.Start < 0 || (in.Start > 0 && in.Start >= n) {
		return nil, ReadNotebookOut{}, fmt.Errorf("start %d is out of range: the notebook has %d cells", in.Start, n)
	}
	end := min(in.Start+limit, n)
	out := ReadNotebookOut{Path: p, TotalCells: n, Cells: []CellView{}}
	outputs := in.IncludeOutputs == nil || *in.IncludeOutputs
	for i := in.Start; i < end; i++ {
		out.Cells = append(out.Cells, viewCell(nb.Cells[i], i, full, outputs))
	}
	if end < n {
		out.NextStart = end
	}
	return textResult(renderNotebook(out)), out, nil
}

type ReadCellIn struct {
	Path           string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellID         string `json:"cell_id,omitempty" jsonschema:"id of the cell (preferred)"`
	Index          *int   `json:"index,omitempty" jsonschema:"0-based index of the cell, if no cell_id; -1 is the last cell"`
	IncludeOutputs *bool  `json:"include_outputs,omitempty" jsonschema:"show the cell's outputs; default true"`
}

var readCellTool = &mcp.Tool{
	Name:        "read_cell",
	Title:       "Read cell",
	Description: "Show one cell in full: source, execution count and outputs.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) readCell(ctx context.Context, req *mcp.CallToolRequest, in ReadCellIn) (*mcp.CallToolResult, CellView, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, CellView{}, err
	}
	nb, err := t.Docs.Load(ctx, p)
	if err != nil {
		return nil, CellView{}, err
	}
	i, err := nb.Locate(notebook.Ref{ID: in.CellID, Index: in.Index})
	if err != nil {
		return nil, CellView{}, err
	}
	v := viewCell(nb.Cells[i], i, true, in.IncludeOutputs == nil || *in.IncludeOutputs)
	return textResult(renderCell(v)), v, nil
}

// viewCell renders a cell for an agent, shortened unless full.
func viewCell(c *notebook.Cell, index int, full, outputs bool) CellView {
	v := CellView{Index: index, ID: c.ID, Type: c.Type, Source: c.Source, ExecutionCount: c.ExecutionCount}
	if !full {
		lines := strings.SplitAfter(c.Source, "\n")
		if len(lines) > briefSourceLines {
			v.Source = strings.Join(lines[:briefSourceLines], "") + fmt.Sprintf("… (%d more lines)", len(lines)-briefSourceLines)
			v.Truncated = true
		}
	}
	if outputs {
		limit := fullOutputChars
		if !full {
			limit = briefOutputChars
		}
		for _, o := range c.Outputs {
			text, cut := shorten(notebook.OutputText(o), limit)
			v.Truncated = v.Truncated || cut
			v.Outputs = append(v.Outputs, text)
		}
	}
	return v
}

// shorten caps s at limit bytes (on a rune boundary) with an explicit marker.
func shorten(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… [%d more characters]", len(s)-cut), true
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func renderNotebook(out ReadNotebookOut) string {
	var sb strings.Builder
	if len(out.Cells) == 0 {
		fmt.Fprintf(&sb, "%s: %d cells", out.Path, out.TotalCells)
		return sb.String()
	}
	fmt.Fprintf(&sb, "%s: %d cells, showing %d to %d\n", out.Path, out.TotalCells, out.Cells[0].Index, out.Cells[len(out.Cells)-1].Index)
	for _, c := range out.Cells {
		sb.WriteString("\n" + renderCell(c) + "\n")
	}
	if out.NextStart > 0 {
		fmt.Fprintf(&sb, "\n(more cells: read_notebook with start=%d)", out.NextStart)
	}
	return strings.TrimRight(sb.String(), "\n")
}

func renderCell(c CellView) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- cell %d · id %s · %s", c.Index, c.ID, c.Type)
	if c.ExecutionCount != nil {
		fmt.Fprintf(&sb, " · [%d]", *c.ExecutionCount)
	}
	sb.WriteString("\n" + c.Source)
	for _, o := range c.Outputs {
		sb.WriteString("\n>>> output:\n" + strings.TrimRight(o, "\n"))
	}
	return sb.String()
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func ptr[T any](v T) *T { return &v }

type SaveNotebookIn struct {
	Path string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
}

type SaveNotebookOut struct {
	Path          string  `json:"path"`
	LastModified  string  `json:"last_modified" jsonschema:"the file's modification time after the save (RFC 3339, UTC)"`
	WaitedSeconds float64 `json:"waited_seconds" jsonschema:"how long the save took"`
}

var saveNotebookTool = &mcp.Tool{
	Name:  "save_notebook",
	Title: "Save notebook",
	Description: "Write the notebook's file now, and return once the file on disk holds every edit made before this call (yours, other agents', and what people typed), with the file's last_modified. " +
		"Edits are saved in the background within about a second anyway: call this before something reads the file (nbconvert, papermill, git, code in the kernel). " +
		"While people keep typing it waits for a write that holds the notebook as it is live, at most 30 s.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true},
}

func (t *Tools) saveNotebook(ctx context.Context, req *mcp.CallToolRequest, in SaveNotebookIn) (*mcp.CallToolResult, SaveNotebookOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, SaveNotebookOut{}, err
	}
	saver, ok := t.Docs.(documents.Saver)
	if !ok {
		return nil, SaveNotebookOut{}, fmt.Errorf("notebook %q cannot be saved by the sidecar on this server", p)
	}
	start := time.Now()
	e, err := saver.Save(ctx, p)
	if err != nil {
		return nil, SaveNotebookOut{}, err
	}
	out := SaveNotebookOut{Path: p, LastModified: e.LastModified.UTC().Format(time.RFC3339Nano), WaitedSeconds: time.Since(start).Seconds()}
	return textResult(fmt.Sprintf("%s saved (last modified %s, after %.2f s)", p, out.LastModified, out.WaitedSeconds)), out, nil
}
