package tools

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	pathpkg "path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Notebooks as MCP resources. One scheme, the path under the Jupyter root
// percent-encoded like a URL path, and a query that picks a part:
//
//	notebook:///{+path}                       the notebook, nbformat JSON
//	notebook:///{+path}?format=text           the notebook as read_notebook shows it (full)
//	notebook:///{+path}?cell={id}             one cell as text, then each of its outputs
//	notebook:///{+path}?cell={id}&output={n}  output n (0-based): an image as a blob, else text
//
// A query, not a fragment: fragments are dropped by many URL libraries, and
// a query keeps the URI one opaque string for subscriptions. Reads serve
// the live document (the room, when jupyter-collaboration runs), so they
// hold what a person has typed but not yet saved.
const (
	NotebookScheme = "notebook"
	// IpynbMIMEType is nbformat JSON.
	IpynbMIMEType = "application/x-ipynb+json"
	textMIMEType  = "text/plain"
	// resourcePage is how many notebooks one resources/list page holds.
	resourcePage = 100
)

// resourceTemplates are listed in resources/templates/list. They all go to
// readResource, which parses the URI itself: go-sdk picks the first
// template that matches, and {+path} matches a query too.
var resourceTemplates = []*mcp.ResourceTemplate{
	{
		URITemplate: "notebook:///{+path}",
		Name:        "notebook",
		Title:       "Notebook (nbformat)",
		Description: "A notebook under the Jupyter root as nbformat 4 JSON, as it is live (unsaved edits of people in JupyterLab included). path is relative to the root, percent-encoded like a URL path. Subscribe to hear of every change.",
		MIMEType:    IpynbMIMEType,
	},
	{
		URITemplate: "notebook:///{+path}{?format}",
		Name:        "notebook-text",
		Title:       "Notebook (text)",
		Description: "format=text: the notebook as read_notebook shows it with detail=full: each cell's index, id, type, source and outputs as text.",
		MIMEType:    textMIMEType,
	},
	{
		URITemplate: "notebook:///{+path}{?cell}",
		Name:        "notebook-cell",
		Title:       "Notebook cell",
		Description: "One cell by id: its text (as read_cell shows it), then each of its outputs as a content of its own with its output URI (images as blobs).",
		MIMEType:    textMIMEType,
	},
	{
		URITemplate: "notebook:///{+path}{?cell,output}",
		Name:        "notebook-cell-output",
		Title:       "Cell output",
		Description: "Output number output (0-based) of a cell: a PNG or JPEG image as a blob with its image MIME type, any other output as text/plain.",
		MIMEType:    textMIMEType,
	},
}

// resourceRef is what a notebook URI names.
type resourceRef struct {
	Path   string
	Text   bool // format=text
	Cell   string
	Output int // -1: none
}

// NotebookURI is the resource URI of the notebook at path.
func NotebookURI(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return NotebookScheme + ":///" + strings.Join(segs, "/")
}

func cellURI(path, cell string) string {
	return NotebookURI(path) + "?cell=" + url.QueryEscape(cell)
}

func outputURI(path, cell string, i int) string {
	return cellURI(path, cell) + "&output=" + strconv.Itoa(i)
}

// malformed answers a notebook URI that names nothing it could: invalid
// params, with what is wrong and the form that works.
func malformed(uri, format string, args ...any) error {
	return &jsonrpc.Error{
		Code:    jsonrpc.CodeInvalidParams,
		Message: fmt.Sprintf("malformed notebook resource URI %q: %s; use notebook:///<path>[?format=text | ?cell=<id>[&output=<n>]]", uri, fmt.Sprintf(format, args...)),
		Data:    uriData(uri),
	}
}

// notFound is go-sdk's ResourceNotFoundError with the reason in the message.
func notFound(uri, format string, args ...any) error {
	return &jsonrpc.Error{
		Code:    mcp.CodeResourceNotFound,
		Message: "Resource not found: " + fmt.Sprintf(format, args...),
		Data:    uriData(uri),
	}
}

func uriData(uri string) json.RawMessage {
	data, _ := json.Marshal(map[string]string{"uri": uri})
	return data
}

// parseResourceURI checks a notebook URI strictly: anything it does not
// know is refused, not ignored, so a typo never reads something else.
func parseResourceURI(uri string) (resourceRef, error) {
	ref := resourceRef{Output: -1}
	u, err := url.Parse(uri)
	if err != nil {
		return ref, malformed(uri, "%v", errors.Unwrap(err))
	}
	switch {
	case u.Scheme != NotebookScheme:
		return ref, malformed(uri, "the scheme is not %s:", NotebookScheme)
	case u.Opaque != "" || u.Host != "" || u.User != nil:
		return ref, malformed(uri, "the path must follow three slashes (no host)")
	case u.Fragment != "" || strings.Contains(uri, "#"):
		return ref, malformed(uri, "fragments are not used; name a cell with ?cell=<id>")
	}
	p := strings.TrimPrefix(u.Path, "/")
	clean, err := cleanPath(p)
	if err != nil {
		return ref, malformed(uri, "%v", err)
	}
	if clean != p || !strings.HasSuffix(clean, ".ipynb") {
		return ref, malformed(uri, "the path must be a notebook path relative to the Jupyter root, ending in .ipynb (got %q)", p)
	}
	ref.Path = clean
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return ref, malformed(uri, "bad query: %v", err)
	}
	for k, v := range q {
		if len(v) != 1 || v[0] == "" {
			return ref, malformed(uri, "%s must be given once, with a value", k)
		}
		switch k {
		case "format":
			if v[0] != "text" {
				return ref, malformed(uri, "format %q is not known (format=text, or no format for nbformat JSON)", v[0])
			}
			ref.Text = true
		case "cell":
			ref.Cell = v[0]
		case "output":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 0 {
				return ref, malformed(uri, "output %q is not a 0-based index", v[0])
			}
			ref.Output = n
		default:
			return ref, malformed(uri, "query parameter %q is not known", k)
		}
	}
	if ref.Text && ref.Cell != "" {
		return ref, malformed(uri, "format=text is for the whole notebook; a cell is always text")
	}
	if ref.Output >= 0 && ref.Cell == "" {
		return ref, malformed(uri, "output needs cell")
	}
	return ref, nil
}

// registerResources adds the templates, the paged notebook listing and
// the subscription bookkeeping (see Subscribe).
func (t *Tools) registerResources(s *mcp.Server) {
	t.watch.mu.Lock()
	t.watch.server = s
	t.watch.mu.Unlock()
	for _, rt := range resourceTemplates {
		s.AddResourceTemplate(rt, t.readResource)
	}
	s.AddReceivingMiddleware(t.listNotebookResources)
}

// readResource serves every notebook URI.
func (t *Tools) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	ref, err := parseResourceURI(uri)
	if err != nil {
		return nil, err
	}
	nb, err := t.loadResource(ctx, uri, ref.Path)
	if err != nil {
		return nil, err
	}
	if ref.Cell == "" {
		if ref.Text {
			out := ReadNotebookOut{Path: ref.Path, TotalCells: len(nb.Cells)}
			for i, c := range nb.Cells {
				out.Cells = append(out.Cells, viewCell(c, i, true, true))
			}
			return contents(&mcp.ResourceContents{URI: uri, MIMEType: textMIMEType, Text: renderNotebook(out)}), nil
		}
		data, err := json.Marshal(nb)
		if err != nil {
			return nil, err
		}
		return contents(&mcp.ResourceContents{URI: uri, MIMEType: IpynbMIMEType, Text: string(data)}), nil
	}
	i := slices.IndexFunc(nb.Cells, func(c *notebook.Cell) bool { return c.ID == ref.Cell })
	if i < 0 {
		return nil, notFound(uri, "notebook %q has no cell with id %q (read notebook:///%s?format=text for the ids)", ref.Path, ref.Cell, ref.Path)
	}
	c := nb.Cells[i]
	if ref.Output >= 0 {
		if ref.Output >= len(c.Outputs) {
			return nil, notFound(uri, "cell %q of %q has %d outputs, so there is no output %d", ref.Cell, ref.Path, len(c.Outputs), ref.Output)
		}
		return contents(outputResource(uri, c.Outputs[ref.Output])), nil
	}
	res := contents(&mcp.ResourceContents{URI: uri, MIMEType: textMIMEType, Text: renderCell(viewCell(c, i, true, true))})
	for j, o := range c.Outputs {
		res.Contents = append(res.Contents, outputResource(outputURI(ref.Path, c.ID, j), o))
	}
	return res, nil
}

func contents(c *mcp.ResourceContents) *mcp.ReadResourceResult {
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{c}}
}

// loadResource reads the notebook a URI names; one that does not exist (or
// is no notebook) is go-sdk's resource-not-found.
func (t *Tools) loadResource(ctx context.Context, uri, path string) (*notebook.Notebook, error) {
	e, err := t.Jupyter.Get(ctx, path, false)
	if jupyter.IsNotFound(err) {
		return nil, notFound(uri, "notebook %q does not exist", path)
	}
	if err != nil {
		return nil, jupyter.NotebookError(path, err)
	}
	if e.Type != "notebook" {
		return nil, notFound(uri, "%q is a %s, not a notebook", path, e.Type)
	}
	return t.Docs.Load(ctx, path)
}

// outputResource is one output: a PNG or JPEG image as its bytes, else the
// text an agent reads for it in read_cell.
func outputResource(uri string, raw json.RawMessage) *mcp.ResourceContents {
	var o notebook.Output
	_ = json.Unmarshal(raw, &o)
	if o.OutputType == "display_data" || o.OutputType == "execute_result" {
		if img, mime, ok := pickImage(o.Data); ok {
			if data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(img, "\n", "")); err == nil {
				return &mcp.ResourceContents{URI: uri, MIMEType: mime, Blob: data}
			}
		}
		return &mcp.ResourceContents{URI: uri, MIMEType: textMIMEType, Text: richText(o.Data)}
	}
	return &mcp.ResourceContents{URI: uri, MIMEType: textMIMEType, Text: notebook.OutputText(raw)}
}

// listNotebookResources answers resources/list with the server's own
// resources, then every notebook under the root, resourcePage at a time
// (go-sdk lists only resources registered one by one). The cursor is the
// offset of the next notebook in the walk.
func (t *Tools) listNotebookResources(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		lr, ok := req.(*mcp.ListResourcesRequest)
		if method != "resources/list" || !ok {
			return next(ctx, method, req)
		}
		res := &mcp.ListResourcesResult{Resources: []*mcp.Resource{}}
		offset := 0
		if lr.Params != nil && lr.Params.Cursor != "" {
			var err error
			if offset, err = decodeCursor(lr.Params.Cursor); err != nil {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "invalid cursor: pass the nextCursor of the previous page"}
			}
		} else {
			r, err := next(ctx, method, req)
			if err != nil {
				return nil, err
			}
			own, _ := r.(*mcp.ListResourcesResult)
			if own != nil { // the server's own list: copy, never modify
				cp := *own
				cp.Resources = slices.Clone(own.Resources)
				res = &cp
			}
		}
		out, err := t.walk(ctx, "", maxDepth, offset, resourcePage, func(e FileEntry) bool { return e.Type == "notebook" })
		if err != nil {
			return nil, err
		}
		t.watch.mu.Lock()
		for _, e := range out.Entries {
			t.watch.see(e.Path) // listed: its saves are no news
		}
		t.watch.mu.Unlock()
		for _, e := range out.Entries {
			r := &mcp.Resource{URI: NotebookURI(e.Path), Name: e.Path, Title: pathpkg.Base(e.Path), MIMEType: IpynbMIMEType}
			if e.LastModified != "" {
				r.Annotations = &mcp.Annotations{LastModified: e.LastModified}
			}
			res.Resources = append(res.Resources, r)
		}
		if out.NextOffset > 0 {
			res.NextCursor = encodeCursor(out.NextOffset)
		}
		return res, nil
	}
}

const cursorPrefix = "notebooks:"

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), cursorPrefix)
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 0 {
		return 0, errors.New("bad cursor")
	}
	return n, nil
}

// watch is the subscription bookkeeping. go-sdk keeps who is subscribed to
// which URI and sends the notifications; this keeps, per notebook, the URIs
// to notify and what holds its room, and sends notifications off the
// goroutine that reported the change.
type watch struct {
	mu sync.Mutex
	// server is set once, under mu: the Jupyter server's events may come
	// (ContentsChanged) before the MCP server is built.
	server   *mcp.Server
	subs     map[*mcp.ServerSession]map[string]func() // session → URI → release
	byPath   map[string]map[string]int                // notebook → URI → subscribers
	pending  map[string]bool                          // notebooks changed, not yet notified
	flushing bool
	known    map[string]bool // notebooks seen (ContentsChanged)
}

// Subscribe is go-sdk's SubscribeHandler (resources/subscribe, and each URI
// of a 2026-07-28 subscriptions/listen): the resource must exist now.
func (t *Tools) Subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	if !strings.HasPrefix(uri, NotebookScheme+":") {
		if uri == NotebookViewURI {
			return nil // never changes: nothing will be sent
		}
		return mcp.ResourceNotFoundError(uri)
	}
	ref, err := parseResourceURI(uri)
	if err != nil {
		return err
	}
	// A read checks the notebook, the cell and the output all exist.
	if _, err := t.readResource(ctx, &mcp.ReadResourceRequest{Params: &mcp.ReadResourceParams{URI: uri}}); err != nil {
		return err
	}
	w := &t.watch
	w.mu.Lock()
	_, dup := w.subs[req.Session][uri]
	w.mu.Unlock()
	if dup {
		return nil
	}
	release := func() {}
	if h, ok := t.Docs.(documents.Holder); ok {
		if release, err = h.Hold(ctx, ref.Path); err != nil {
			return err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.subs[req.Session][uri]; dup { // subscribed meanwhile
		release()
		return nil
	}
	if w.subs == nil {
		w.subs = map[*mcp.ServerSession]map[string]func(){}
		w.byPath = map[string]map[string]int{}
	}
	if w.subs[req.Session] == nil {
		w.subs[req.Session] = map[string]func(){}
	}
	w.subs[req.Session][uri] = release
	if w.byPath[ref.Path] == nil {
		w.byPath[ref.Path] = map[string]int{}
	}
	w.byPath[ref.Path][uri]++
	return nil
}

// Unsubscribe is go-sdk's UnsubscribeHandler; unsubscribing from what was
// not subscribed is no error.
func (t *Tools) Unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	t.watch.drop(req.Session, req.Params.URI)
	return nil
}

// ForgetSubscriptions drops the subscriptions of a session that ended
// (go-sdk forgets its own then, without calling Unsubscribe).
func (t *Tools) ForgetSubscriptions(ss *mcp.ServerSession) {
	t.watch.mu.Lock()
	var uris []string
	for uri := range t.watch.subs[ss] {
		uris = append(uris, uri)
	}
	t.watch.mu.Unlock()
	for _, uri := range uris {
		t.watch.drop(ss, uri)
	}
}

func (w *watch) drop(ss *mcp.ServerSession, uri string) {
	w.mu.Lock()
	release, ok := w.subs[ss][uri]
	if ok {
		delete(w.subs[ss], uri)
		if len(w.subs[ss]) == 0 {
			delete(w.subs, ss)
		}
		if ref, err := parseResourceURI(uri); err == nil {
			if w.byPath[ref.Path][uri]--; w.byPath[ref.Path][uri] <= 0 {
				delete(w.byPath[ref.Path], uri)
			}
			if len(w.byPath[ref.Path]) == 0 {
				delete(w.byPath, ref.Path)
			}
		}
	}
	w.mu.Unlock()
	if ok {
		release()
	}
}

// NotebookChanged is told that the notebook at path changed (its room saw
// an update, or the sidecar wrote the file). It never blocks: a burst of
// changes (a person typing, outputs streaming) becomes one notification
// per subscribed URI for each round the sender makes.
func (t *Tools) NotebookChanged(path string) {
	w := &t.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.server == nil || len(w.byPath[path]) == 0 {
		return
	}
	if w.pending == nil {
		w.pending = map[string]bool{}
	}
	w.pending[path] = true
	if !w.flushing {
		w.flushing = true
		go w.flush()
	}
}

// flush sends the pending notifications, until none are left.
func (w *watch) flush() {
	for {
		w.mu.Lock()
		var uris []string
		for path := range w.pending {
			for uri := range w.byPath[path] {
				uris = append(uris, uri)
			}
		}
		clear(w.pending)
		if len(uris) == 0 {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		slices.Sort(uris)
		for _, uri := range uris {
			_ = w.server.ResourceUpdated(context.Background(), &mcp.ResourceUpdatedNotificationParams{URI: uri})
		}
	}
}

// ContentsChanged is told of a Contents API action the server reported on
// its event bus (jupyter.Client.WatchEvents): by a person in JupyterLab,
// another client, or the sidecar. A notebook (or folder) that appears,
// moves or goes changes the resource list, which clients are told
// (notifications/resources/list_changed); the subscribers of a notebook
// renamed or deleted away are told it changed (reading it now says it does
// not exist). The server reports a new notebook as a save, so the first
// save of a notebook the sidecar has not seen counts as one appearing: at
// worst one needless list_changed per notebook after the sidecar starts.
func (t *Tools) ContentsChanged(ev jupyter.ContentsEvent) {
	if ev.Action == "rename" && t.Changes != nil {
		// The record of agents' changes follows the notebook; a failure
		// leaves it under the old path, where undo says the notebook is gone.
		_ = t.Changes.Rename(ev.SourcePath, ev.Path)
	}
	if m, ok := t.Docs.(documents.Mover); ok {
		switch ev.Action {
		case "rename":
			m.Moved(ev.SourcePath)
		case "delete":
			m.Moved(ev.Path)
		}
	}
	listChanged, gone := t.watch.contentsChanged(ev)
	if listChanged {
		t.listChanged()
	}
	if gone != "" {
		t.goneUnder(gone)
	}
}

// contentsChanged keeps the known notebooks up to date with ev, and says
// whether the list changed and which path (notebook or folder) is gone.
func (w *watch) contentsChanged(ev jupyter.ContentsEvent) (listChanged bool, gone string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev.Action {
	case "save", "copy", "upload":
		return strings.HasSuffix(ev.Path, ".ipynb") && w.see(ev.Path), ""
	case "rename", "delete":
		gone = ev.Path
		if ev.Action == "rename" {
			gone = ev.SourcePath
			if strings.HasSuffix(ev.Path, ".ipynb") {
				w.see(ev.Path)
			}
		}
		for p := range w.known {
			if p == gone || strings.HasPrefix(p, gone+"/") {
				delete(w.known, p)
			}
		}
		return mayHoldNotebooks(ev.Path) || mayHoldNotebooks(ev.SourcePath), gone
	}
	return false, ""
}

// see notes that the notebook at p exists, and reports whether it is news.
// w.mu must be held.
func (w *watch) see(p string) bool {
	if w.known[p] {
		return false
	}
	if w.known == nil {
		w.known = map[string]bool{}
	}
	w.known[p] = true
	return true
}

// mayHoldNotebooks: a notebook, or a folder (no extension) that may hold
// some.
func mayHoldNotebooks(p string) bool {
	return p != "" && (strings.HasSuffix(p, ".ipynb") || pathpkg.Ext(p) == "")
}

// listChanged tells clients that the resource list changed. go-sdk sends
// list_changed only when its own resources change, so the view's resource
// is added again: the same resource, and a notification (debounced by
// go-sdk) to every client that listens.
func (t *Tools) listChanged() {
	t.watch.mu.Lock()
	s := t.watch.server
	t.watch.mu.Unlock()
	if s != nil {
		addViewResource(s)
	}
}

// goneUnder tells the subscribers of the notebook at p, or of those under
// the folder p, that it changed: it is gone.
func (t *Tools) goneUnder(p string) {
	w := &t.watch
	w.mu.Lock()
	var paths []string
	for path := range w.byPath {
		if path == p || strings.HasPrefix(path, p+"/") {
			paths = append(paths, path)
		}
	}
	w.mu.Unlock()
	for _, path := range paths {
		t.NotebookChanged(path)
	}
}
