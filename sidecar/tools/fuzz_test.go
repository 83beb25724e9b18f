package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"
)

// FuzzToolCalls drives every tool with arbitrary arguments through an MCP
// server in process, backed by an in-memory Contents API. Whatever the
// arguments, a call must end with a protocol error or a result that says
// something (never a panic, a hang or an empty error), every notebook the
// tools write must be valid nbformat, and no request may leave the root.
func FuzzToolCalls(f *testing.F) {
	seeds := map[string][]string{
		"list_files":       {`{}`, `{"path":"..","depth":-1}`, `{"glob":"[","limit":0,"offset":-5}`},
		"list_notebooks":   {`{"path":"/etc"}`, `{"limit":1000000000}`},
		"create_notebook":  {`{"path":"new.ipynb"}`, `{"path":"a/../../b.ipynb"}`, `{"path":"x.txt"}`, `{"path":"n.ipynb","kernel_name":"nope"}`},
		"use_notebook":     {`{"path":"n.ipynb"}`, `{"path":""}`, `{"path":"missing.ipynb"}`},
		"read_notebook":    {`{"path":"n.ipynb","detail":"full","start":-1,"limit":2}`, `{"path":"n.ipynb","detail":"nope"}`},
		"read_cell":        {`{"path":"n.ipynb","index":0,"include_outputs":true}`, `{"path":"n.ipynb","cell_id":"zz"}`, `{"path":"n.ipynb","index":99}`},
		"insert_cell":      {`{"path":"n.ipynb","source":"x=1","index":1}`, `{"path":"n.ipynb","source":"#","cell_type":"heading"}`, `{"path":"n.ipynb","source":"","after_cell_id":"c1","before_cell_id":"c1"}`},
		"edit_cell":        {`{"path":"n.ipynb","cell_id":"c1","old_text":"print","new_text":"len"}`, `{"path":"n.ipynb","index":0,"source":"\u0000"}`, `{"path":"n.ipynb","cell_id":"c1","old_text":""}`},
		"delete_cells":     {`{"path":"n.ipynb","indexes":[0,0,-1]}`, `{"path":"n.ipynb","cell_ids":["c1","c1"]}`},
		"move_cell":        {`{"path":"n.ipynb","cell_id":"c1","to_index":5}`, `{"path":"n.ipynb","index":1,"to_index":0}`},
		"clear_outputs":    {`{"path":"n.ipynb"}`, `{"path":"n.ipynb","cell_ids":["nope"]}`},
		"execute_cell":     {`{"path":"n.ipynb","index":0,"timeout":0.001}`, `{"path":"n.ipynb","cell_id":"m1"}`},
		"execute_cells":    {`{"path":"n.ipynb","start":2,"end":1}`},
		"execute_code":     {`{"code":"1+1","path":"n.ipynb","timeout":-3}`, `{"code":""}`},
		"get_execution":    {`{"execution_id":"nope","timeout":1e308}`},
		"send_input":       {`{"execution_id":"","text":"x"}`},
		"list_kernels":     {`{}`},
		"interrupt_kernel": {`{"path":"n.ipynb"}`},
		"restart_kernel":   {`{"path":"dir"}`},
		"link_view":        {`{"view_id":"<script>"}`, `{}`},
		"view_notebook":    {`{"path":"n.ipynb"}`, `{"path":"n.ipynb","start":-4}`, `{"path":"gone.ipynb"}`},
	}
	for name, args := range seeds {
		for _, a := range args {
			f.Add(name, []byte(a))
		}
	}
	lab := newFakeLab()
	ts := httptest.NewServer(lab)
	f.Cleanup(ts.Close)
	server := serveTools(f, ts.URL)
	f.Fuzz(func(t *testing.T, name string, args []byte) {
		// Each input meets the same notebook and a new MCP session, so a
		// failure reproduces from its input alone.
		lab.reset()
		cs := connect(t, server, withApps())
		var arguments any
		if json.Unmarshal(args, &arguments) != nil {
			arguments = string(args) // not JSON: sent as a string, which no tool accepts
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: arguments})
		switch {
		case ctx.Err() != nil:
			t.Fatalf("%s(%s) did not answer within 10 s", name, args)
		case err != nil:
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("%s(%s): empty protocol error", name, args)
			}
		case res.IsError:
			text := resultText(res)
			if strings.TrimSpace(text) == "" || strings.Contains(text, "%!") || strings.Contains(text, "runtime error") {
				t.Fatalf("%s(%s): unclear error %q", name, args, text)
			}
		}
		if bad := lab.violations(); len(bad) > 0 {
			t.Fatalf("%s(%s): %s", name, args, strings.Join(bad, "; "))
		}
	})
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// serveTools is an MCP server with every tool, wired as the sidecar wires
// them for a lab without collaboration rooms.
func serveTools(tb testing.TB, jupyterURL string) *mcp.Server {
	client, err := jupyter.NewClient(&jupyter.ServerInfo{URL: jupyterURL + "/"})
	if err != nil {
		tb.Fatal(err)
	}
	kernels := &kernel.Manager{Jupyter: client}
	tb.Cleanup(kernels.Close)
	store := &documents.Store{Jupyter: client}
	tools := &Tools{
		Jupyter:    client,
		Docs:       store,
		Store:      store,
		Sessions:   NewSessions(),
		Kernels:    kernels,
		Executions: &execution.Executions{Docs: store, Log: zerolog.Nop()},
		Limits:     DefaultLimits,
		Views:      &embed.Hub{},
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "fuzz"}, nil)
	tools.Register(s)
	return s
}

// withApps is the options of a client that declares MCP Apps.
func withApps() *mcp.ClientOptions {
	caps := &mcp.ClientCapabilities{}
	caps.AddExtension(AppsExtension, map[string]any{"mimeTypes": []string{AppMIMEType}})
	return &mcp.ClientOptions{Capabilities: caps}
}

// connect opens an in-process client session on s.
func connect(tb testing.TB, s *mcp.Server, opts *mcp.ClientOptions) *mcp.ClientSession {
	ct, st := mcp.NewInMemoryTransports()
	if _, err := s.Connect(context.Background(), st, nil); err != nil {
		tb.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "fuzz"}, opts).Connect(context.Background(), ct, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cs.Close() })
	return cs
}

// fakeLab is the part of a Jupyter server the tools reach over HTTP: the
// Contents API in memory (a notebook n.ipynb, a folder, a text file), kernel
// specs, and sessions whose kernel cannot be reached (so execution fails the
// way it does when a kernel is gone). It records what a real server would
// have to refuse or what would corrupt a notebook.
type fakeLab struct {
	mu    sync.Mutex
	files map[string]json.RawMessage // path → notebook JSON, or nil for a text file
	dirs  map[string]bool
	bad   []string
}

func newFakeLab() *fakeLab {
	l := &fakeLab{}
	l.reset()
	return l
}

// reset puts back the files the lab starts with.
func (l *fakeLab) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.files = map[string]json.RawMessage{
		"n.ipynb": json.RawMessage(`{"cells":[
				{"cell_type":"code","id":"c1","metadata":{},"execution_count":1,"source":"print(1)","outputs":[{"output_type":"stream","name":"stdout","text":"1\n"}]},
				{"cell_type":"markdown","id":"m1","metadata":{},"source":"# title"}],
				"metadata":{},"nbformat":4,"nbformat_minor":5}`),
		"dir/notes.txt": nil,
	}
	l.dirs = map[string]bool{"": true, "dir": true}
}

func (l *fakeLab) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := l.bad
	l.bad = nil
	return bad
}

func (l *fakeLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	api := strings.TrimPrefix(r.URL.Path, "/api/")
	if slices.Contains(strings.Split(api, "/"), "..") {
		l.bad = append(l.bad, fmt.Sprintf("%s %s leaves the root", r.Method, r.URL.Path))
		http.Error(w, `{"message":"forbidden"}`, http.StatusForbidden)
		return
	}
	switch {
	case api == "status":
		fmt.Fprint(w, `{}`)
	case api == "kernelspecs":
		fmt.Fprint(w, `{"default":"python3","kernelspecs":{"python3":{"name":"python3","spec":{"display_name":"Python 3","language":"python"}}}}`)
	case api == "sessions" && r.Method == http.MethodPost:
		var body struct{ Path string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		fmt.Fprintf(w, `{"id":"s1","path":%q,"type":"notebook","kernel":{"id":"k-unreachable","name":"python3"}}`, body.Path)
	case api == "sessions", api == "kernels":
		fmt.Fprint(w, `[]`)
	case strings.HasPrefix(api, "kernels/"):
		http.Error(w, `{"message":"Kernel does not exist"}`, http.StatusNotFound)
	case strings.HasPrefix(api, "contents"):
		l.contents(w, r, strings.Trim(strings.TrimPrefix(api, "contents"), "/"))
	default:
		http.NotFound(w, r)
	}
}

func (l *fakeLab) contents(w http.ResponseWriter, r *http.Request, p string) {
	stamp := `"last_modified":"2026-01-01T00:00:00Z","created":"2026-01-01T00:00:00Z","writable":true`
	switch r.Method {
	case http.MethodGet:
		if l.dirs[p] {
			var entries []string
			for f, nb := range l.files {
				if parent(f) == p {
					kind := "file"
					if nb != nil {
						kind = "notebook"
					}
					entries = append(entries, fmt.Sprintf(`{"name":%q,"path":%q,"type":%q,%s}`, path.Base(f), f, kind, stamp))
				}
			}
			for d := range l.dirs {
				if d != "" && parent(d) == p {
					entries = append(entries, fmt.Sprintf(`{"name":%q,"path":%q,"type":"directory",%s}`, path.Base(d), d, stamp))
				}
			}
			fmt.Fprintf(w, `{"name":%q,"path":%q,"type":"directory",%s,"content":[%s]}`, path.Base(p), p, stamp, strings.Join(entries, ","))
			return
		}
		nb, ok := l.files[p]
		if !ok {
			http.Error(w, `{"message":"No such file or directory"}`, http.StatusNotFound)
			return
		}
		kind, content := "notebook", string(nb)
		if nb == nil {
			kind, content = "file", `"text"`
		}
		if r.URL.Query().Get("content") == "0" {
			content = "null"
		}
		fmt.Fprintf(w, `{"name":%q,"path":%q,"type":%q,%s,"content":%s}`, path.Base(p), p, kind, stamp, content)
	case http.MethodPut:
		var body struct {
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Type != "notebook" {
			l.bad = append(l.bad, fmt.Sprintf("PUT %s: not a notebook model", p))
			http.Error(w, `{"message":"bad model"}`, http.StatusBadRequest)
			return
		}
		if err := validNotebook(body.Content); err != nil {
			l.bad = append(l.bad, fmt.Sprintf("PUT %s: %v", p, err))
			http.Error(w, `{"message":"bad notebook"}`, http.StatusBadRequest)
			return
		}
		if !l.dirs[parent(p)] {
			http.Error(w, `{"message":"No such directory"}`, http.StatusNotFound)
			return
		}
		l.files[p] = body.Content
		fmt.Fprintf(w, `{"name":%q,"path":%q,"type":"notebook",%s}`, path.Base(p), p, stamp)
	default:
		http.Error(w, `{"message":"method not allowed"}`, http.StatusMethodNotAllowed)
	}
}

// parent is the folder of p, "" for the root.
func parent(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// validNotebook checks what nbformat 4.5's schema requires of what the tools
// write: the top-level fields, and per cell an id, a known type, a string
// source, object metadata, and for code cells outputs and an execution count.
func validNotebook(data []byte) error {
	var nb struct {
		Cells         []map[string]json.RawMessage `json:"cells"`
		Metadata      map[string]any               `json:"metadata"`
		NBFormat      *int                         `json:"nbformat"`
		NBFormatMinor *int                         `json:"nbformat_minor"`
	}
	if err := json.Unmarshal(data, &nb); err != nil {
		return err
	}
	if nb.Cells == nil || nb.Metadata == nil || nb.NBFormat == nil || *nb.NBFormat != 4 || nb.NBFormatMinor == nil {
		return fmt.Errorf("top-level fields missing or wrong")
	}
	seen := map[string]bool{}
	for i, c := range nb.Cells {
		var id, typ string
		if json.Unmarshal(c["id"], &id) != nil || id == "" || seen[id] {
			return fmt.Errorf("cell %d: missing or duplicate id", i)
		}
		seen[id] = true
		if json.Unmarshal(c["cell_type"], &typ) != nil || !notebook.IsCellType(typ) {
			return fmt.Errorf("cell %d: cell_type %s", i, c["cell_type"])
		}
		var src string
		var lines []string
		if json.Unmarshal(c["source"], &src) != nil && json.Unmarshal(c["source"], &lines) != nil {
			return fmt.Errorf("cell %d: source is neither a string nor a list of strings", i)
		}
		var meta map[string]any
		if json.Unmarshal(c["metadata"], &meta) != nil || meta == nil {
			return fmt.Errorf("cell %d: metadata is not an object", i)
		}
		if typ == notebook.Code {
			var outputs []json.RawMessage
			if json.Unmarshal(c["outputs"], &outputs) != nil || outputs == nil {
				return fmt.Errorf("cell %d: code cell without outputs", i)
			}
			if _, ok := c["execution_count"]; !ok {
				return fmt.Errorf("cell %d: code cell without execution_count", i)
			}
		}
	}
	return nil
}
