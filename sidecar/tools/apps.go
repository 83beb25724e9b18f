package tools

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// MCP Apps (SEP-1865, extension io.modelcontextprotocol/ui): tools that
// pick or change a notebook name a ui:// resource, a page the host renders
// in a sandboxed iframe next to the call. The page asks for the notebook
// through the host (tools/call of the app-only view_notebook) and keeps
// asking while it is shown, so it follows the agent's later edits.
// Sessions whose client did not declare the extension see none of it: the
// tool list and every result are what they were before.
const (
	// AppsExtension is the extension id clients declare under
	// capabilities.extensions.
	AppsExtension = "io.modelcontextprotocol/ui"
	// AppMIMEType is the MIME type of an MCP Apps HTML resource.
	AppMIMEType = "text/html;profile=mcp-app"
	// NotebookViewURI is the resource of the notebook view.
	NotebookViewURI = "ui://jupyter/notebook-view.html"
	// viewMetaKey carries, in a result's _meta, what the view shows and
	// highlights: the notebook and the cells the call changed.
	viewMetaKey = "jupyter-mcp-sidecar/view"
)

// The page is a single dependency-free file; its inline script is pinned by
// hash in its own Content-Security-Policy, so no other script (a notebook's
// <script>, an onerror attribute) can run even if sanitising missed one.
//
//go:embed appview/notebook.html
var notebookViewTemplate string

var notebookViewHTML = func() string {
	m := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindStringSubmatch(notebookViewTemplate)
	if m == nil {
		panic("appview/notebook.html has no inline script")
	}
	sum := sha256.Sum256([]byte(m[1]))
	return strings.Replace(notebookViewTemplate, "{{SCRIPT_HASH}}", "sha256-"+base64.StdEncoding.EncodeToString(sum[:]), 1)
}()

// viewUIMeta links a tool to the view: _meta.ui.resourceUri, and the flat
// key hosts from before the extension's 1.0 read.
func viewUIMeta() mcp.Meta {
	return mcp.Meta{"ui": map[string]any{"resourceUri": NotebookViewURI}, "ui/resourceUri": NotebookViewURI}
}

// viewed is tool with the view linked to it.
func viewed(tool *mcp.Tool) *mcp.Tool {
	c := *tool
	c.Meta = viewUIMeta()
	return &c
}

// appsClient reports whether the session's client declared MCP Apps for
// HTML views (a declaration without mimeTypes is taken to mean HTML, the
// only kind the extension defines).
func appsClient(ss *mcp.ServerSession) bool {
	if ss == nil {
		return false
	}
	p := ss.InitializeParams()
	if p == nil || p.Capabilities == nil {
		return false
	}
	ext, ok := p.Capabilities.Extensions[AppsExtension]
	if !ok {
		return false
	}
	settings, _ := ext.(map[string]any)
	types, ok := settings["mimeTypes"].([]any)
	if !ok {
		return true
	}
	return slices.Contains(types, any(AppMIMEType))
}

// ViewChange is what a viewed tool adds to its result's _meta for an MCP
// Apps client: the notebook to show and what the call changed.
type ViewChange struct {
	Path    string   `json:"path"`
	LabURL  string   `json:"lab_url,omitempty"`
	Changed []string `json:"changed_cells,omitempty"`
	Deleted []string `json:"deleted_cells,omitempty"`
}

// withView wraps a viewed tool's handler: for an MCP Apps client, a
// successful result also names the notebook and the changed cells in
// _meta (content and structured content stay as they are).
func withView[In, Out any](t *Tools, h mcp.ToolHandlerFor[In, Out], pathOf func(In) string, changes func(In, Out) (changed, deleted []string)) mcp.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		res, out, err := h(ctx, req, in)
		if err != nil || req == nil || !appsClient(req.Session) || (res != nil && res.IsError) {
			return res, out, err
		}
		p := t.Sessions.Current(sessionID(req))
		if explicit := pathOf(in); strings.TrimSpace(explicit) != "" {
			if clean, cerr := cleanPath(explicit); cerr == nil {
				p = clean
			}
		}
		if p == "" {
			return res, out, err
		}
		if res == nil {
			res = &mcp.CallToolResult{} // the SDK still fills Content from out
		}
		if res.Meta == nil {
			res.Meta = mcp.Meta{}
		}
		ch := ViewChange{Path: p, LabURL: labURL(req, p)}
		if changes != nil {
			ch.Changed, ch.Deleted = changes(in, out)
		}
		res.Meta[viewMetaKey] = ch
		return res, out, nil
	}
}

// appsOnly keeps MCP Apps out of the tool list of clients that did not
// declare the extension: the view's own tool is left out and the tools'
// ui metadata removed, so they list exactly what they did before.
func appsOnly(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if err != nil || method != "tools/list" {
			return res, err
		}
		ss, _ := req.GetSession().(*mcp.ServerSession)
		lr, ok := res.(*mcp.ListToolsResult)
		if !ok || appsClient(ss) {
			return res, err
		}
		// The listed tools are the server's own: copy, never modify.
		cp := *lr
		cp.Tools = nil
		for _, tool := range lr.Tools {
			if tool.Name == viewNotebookTool.Name {
				continue
			}
			if _, has := tool.Meta["ui"]; has {
				c := *tool
				c.Meta = maps.Clone(tool.Meta)
				delete(c.Meta, "ui")
				delete(c.Meta, "ui/resourceUri")
				if len(c.Meta) == 0 {
					c.Meta = nil
				}
				tool = &c
			}
			cp.Tools = append(cp.Tools, tool)
		}
		return &cp, nil
	}
}

// registerApps adds the view resource, the view's tool and the filter.
func (t *Tools) registerApps(s *mcp.Server) {
	addViewResource(s)
	addTool(s, viewNotebookTool, t.viewNotebook)
	s.AddReceivingMiddleware(appsOnly)
}

// addViewResource adds (or adds again: see listChanged) the view's resource.
func addViewResource(s *mcp.Server) {
	s.AddResource(&mcp.Resource{
		URI:         NotebookViewURI,
		Name:        "notebook-view",
		Title:       "Notebook",
		Description: "The live notebook an agent works on: cells, outputs, what the last call changed, and a link to open it in JupyterLab.",
		MIMEType:    AppMIMEType,
		Meta:        mcp.Meta{"ui": viewResourceUI()},
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
			URI: NotebookViewURI, MIMEType: AppMIMEType, Text: notebookViewHTML,
			Meta: mcp.Meta{"ui": viewResourceUI()},
		}}}, nil
	})
}

// viewResourceUI asks for nothing beyond the restrictive default: no
// network, no nested frames (images come inline as data: URLs).
func viewResourceUI() map[string]any {
	return map[string]any{"csp": map[string]any{}, "prefersBorder": true}
}

type ViewNotebookIn struct {
	Path      string `json:"path" jsonschema:"notebook path relative to the Jupyter root"`
	Start     int    `json:"start,omitempty" jsonschema:"index of the first cell of the page; default 0"`
	CellID    string `json:"cell_id,omitempty" jsonschema:"show the page that holds this cell (instead of start)"`
	IfVersion string `json:"if_version,omitempty" jsonschema:"version of the page on show: when it is still current only unchanged=true comes back"`
}

// ViewOutput is one output, ready for the page: kind stream, error, image
// (base64 data), html, markdown, text, or omitted (note says what it was).
type ViewOutput struct {
	Kind string `json:"kind"`
	Name string `json:"name,omitempty"`
	MIME string `json:"mime,omitempty"`
	Data string `json:"data,omitempty"`
	Note string `json:"note,omitempty"`
}

type ViewCell struct {
	Index          int          `json:"index"`
	ID             string       `json:"id"`
	Type           string       `json:"type"`
	Source         string       `json:"source"`
	ExecutionCount *int         `json:"execution_count,omitempty"`
	Running        bool         `json:"running,omitempty"`
	Outputs        []ViewOutput `json:"outputs,omitempty"`
}

type ViewNotebookOut struct {
	Path       string     `json:"path"`
	LabURL     string     `json:"lab_url,omitempty"`
	Version    string     `json:"version"`
	Unchanged  bool       `json:"unchanged,omitempty"`
	TotalCells int        `json:"total_cells"`
	Start      int        `json:"start"`
	NextStart  int        `json:"next_start,omitempty" jsonschema:"first cell of the next page; absent on the last page"`
	Cells      []ViewCell `json:"cells"`
}

var viewNotebookTool = &mcp.Tool{
	Name:        "view_notebook",
	Title:       "Notebook view data",
	Description: "For the notebook view (MCP Apps) only: one page of a notebook's cells with their outputs, images included. Agents read notebooks with read_notebook.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	Meta:        mcp.Meta{"ui": map[string]any{"resourceUri": NotebookViewURI, "visibility": []string{"app"}}},
}

// A page holds at most viewPageCells cells and, past its first cell, about
// viewPageBytes of sources and outputs: a view of a huge notebook stays
// responsive and within what hosts relay.
const (
	viewPageCells = 50
	viewPageBytes = 2 << 20
)

func (t *Tools) viewNotebook(ctx context.Context, req *mcp.CallToolRequest, in ViewNotebookIn) (*mcp.CallToolResult, ViewNotebookOut, error) {
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, ViewNotebookOut{}, err
	}
	if t.Docs.Live() {
		// A live room outlives its file (jupyter-collaboration keeps it in
		// memory): the view must not show a deleted notebook as if it were
		// there. Metadata only, no content.
		if _, err := t.Jupyter.Get(ctx, p, false); jupyter.IsNotFound(err) {
			return nil, ViewNotebookOut{}, fmt.Errorf("notebook %q no longer exists: it was deleted or renamed", p)
		}
	}
	nb, err := t.Docs.Load(ctx, p)
	if err != nil {
		return nil, ViewNotebookOut{}, err
	}
	n := len(nb.Cells)
	start := in.Start
	at := -1
	if in.CellID != "" {
		if i, lerr := nb.Locate(notebook.Ref{ID: in.CellID}); lerr == nil {
			at = i
			start = i - i%viewPageCells
		}
	}
	if start < 0 || (start > 0 && start >= n) {
		start = 0 // a page past the end (cells were deleted): the first
	}
	out := t.viewPage(nb, start)
	if at >= 0 && at >= start+len(out.Cells) { // the byte budget ended the page early
		out = t.viewPage(nb, at)
	}
	out.Path, out.LabURL = p, labURL(req, p)
	data, _ := json.Marshal(out)
	sum := sha256.Sum256(data)
	out.Version = hex.EncodeToString(sum[:12])
	if in.IfVersion != "" && in.IfVersion == out.Version {
		out = ViewNotebookOut{Path: out.Path, LabURL: out.LabURL, Version: out.Version, Unchanged: true, TotalCells: n, Start: out.Start, NextStart: out.NextStart, Cells: []ViewCell{}}
		return textResult(fmt.Sprintf("%s: unchanged", p)), out, nil
	}
	summary := fmt.Sprintf("%s: %d cells", p, n)
	if len(out.Cells) > 0 {
		summary += fmt.Sprintf(", cells %d to %d for the notebook view", out.Start, out.Start+len(out.Cells)-1)
	}
	// A short text: the page's data is in the structured content only.
	return textResult(summary), out, nil
}

// viewPage renders the cells from start on, as many as a page holds.
func (t *Tools) viewPage(nb *notebook.Notebook, start int) ViewNotebookOut {
	out := ViewNotebookOut{TotalCells: len(nb.Cells), Start: start, Cells: []ViewCell{}}
	size := 0
	for i := start; i < len(nb.Cells); i++ {
		if len(out.Cells) == viewPageCells || (len(out.Cells) > 0 && size >= viewPageBytes) {
			out.NextStart = i
			break
		}
		c := nb.Cells[i]
		vc := ViewCell{Index: i, ID: c.ID, Type: c.Type, Source: c.Source, ExecutionCount: c.ExecutionCount, Running: c.ExecutionState == "running"}
		size += len(c.Source)
		for _, raw := range c.Outputs {
			o := t.viewOutput(raw)
			size += len(o.Data)
			vc.Outputs = append(vc.Outputs, o)
		}
		out.Cells = append(out.Cells, vc)
	}
	return out
}

// viewOutput picks the richest representation the page can show safely:
// raster and SVG images (shown as <img>, where scripts never run), HTML
// and markdown (sanitised by the page), then text. Anything else becomes
// a note naming the MIME type and size, never an empty box.
func (t *Tools) viewOutput(raw json.RawMessage) ViewOutput {
	lim := t.Limits
	if lim.MaxOutputChars == 0 {
		lim = DefaultLimits
	}
	var o notebook.Output
	if json.Unmarshal(raw, &o) != nil {
		return ViewOutput{Kind: "omitted", Note: "an output that could not be read"}
	}
	switch o.OutputType {
	case "stream":
		return ViewOutput{Kind: "stream", Name: o.Name, Data: capText(multiline(o.Text), lim.MaxOutputChars)}
	case "error":
		return ViewOutput{Kind: "error", Name: o.EName, Data: capText(notebook.OutputText(raw), lim.MaxOutputChars)}
	case "execute_result", "display_data":
	default:
		return ViewOutput{Kind: "omitted", Note: fmt.Sprintf("%s output", o.OutputType)}
	}
	for _, mime := range []string{"image/png", "image/jpeg", "image/gif"} {
		raw, ok := o.Data[mime]
		if !ok {
			continue
		}
		b64 := strings.Join(strings.Fields(multiline(raw)), "")
		if size := base64.StdEncoding.DecodedLen(len(b64)); size > lim.MaxImageBytes {
			return ViewOutput{Kind: "omitted", MIME: mime, Note: fmt.Sprintf("%s image of %d KB, above the %d KB the view shows", mime, size/1024, lim.MaxImageBytes/1024)}
		}
		if _, err := base64.StdEncoding.DecodeString(b64); err != nil {
			return ViewOutput{Kind: "omitted", MIME: mime, Note: mime + " image that is not valid base64"}
		}
		return ViewOutput{Kind: "image", MIME: mime, Data: b64}
	}
	if raw, ok := o.Data["image/svg+xml"]; ok {
		if svg := multiline(raw); len(svg) <= lim.MaxImageBytes {
			return ViewOutput{Kind: "image", MIME: "image/svg+xml", Data: base64.StdEncoding.EncodeToString([]byte(svg))}
		}
	}
	text := func(kind, mime string) (ViewOutput, bool) {
		raw, ok := o.Data[mime]
		if !ok {
			return ViewOutput{}, false
		}
		s := multiline(raw)
		if mime == "application/json" {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				b, _ := json.MarshalIndent(v, "", "  ")
				s = string(b)
			}
		}
		if len(s) > lim.MaxOutputChars*5 {
			// Cut HTML or markdown would render as a fragment: text it is.
			return ViewOutput{Kind: "text", MIME: mime, Data: capText(s, lim.MaxOutputChars), Note: fmt.Sprintf("%s of %d KB shortened", mime, len(s)/1024)}, true
		}
		return ViewOutput{Kind: kind, MIME: mime, Data: s}, true
	}
	for _, c := range []struct{ kind, mime string }{
		{"html", "text/html"}, {"markdown", "text/markdown"}, {"text", "text/latex"},
		{"text", "application/json"}, {"text", "text/plain"},
	} {
		if v, ok := text(c.kind, c.mime); ok {
			return v
		}
	}
	var parts []string
	for _, mime := range slices.Sorted(maps.Keys(o.Data)) {
		parts = append(parts, fmt.Sprintf("%s (%s)", mime, sizeOf(len(o.Data[mime]))))
	}
	if len(parts) == 0 {
		return ViewOutput{Kind: "omitted", Note: "an empty output"}
	}
	return ViewOutput{Kind: "omitted", MIME: slices.Sorted(maps.Keys(o.Data))[0], Note: "output of type " + strings.Join(parts, ", ") + ": the view cannot show it"}
}

// multiline decodes an nbformat multiline string (a string or a list).
func multiline(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []string
	if json.Unmarshal(raw, &parts) == nil {
		return strings.Join(parts, "")
	}
	return string(raw)
}

func sizeOf(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d KB", n/1024)
}
