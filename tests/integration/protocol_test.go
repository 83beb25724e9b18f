package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// Every protocol version still in use works through the proxy, negotiated
// per client: go-sdk's client left to itself speaks 2026-07-28 (stateless:
// no session, so every call names its notebook), and clients that ask for an
// earlier version keep a session with a current notebook.
func TestEveryProtocolVersion(t *testing.T) {
	for _, tc := range []struct {
		ask, want string
		sessions  bool
	}{
		{"", "2026-07-28", false},
		{"2025-11-25", "2025-11-25", true},
		{"2025-06-18", "2025-06-18", true},
		{"2025-03-26", "2025-03-26", true},
	} {
		t.Run("ask "+tc.ask, func(t *testing.T) {
			cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, tc.ask, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if got := cs.InitializeResult().ProtocolVersion; got != tc.want {
				t.Fatalf("negotiated %q, want %q", got, tc.want)
			}
			if (cs.ID() != "") != tc.sessions {
				t.Fatalf("session id %q: sessions=%v expected", cs.ID(), tc.sessions)
			}
			var names []string
			for tool, err := range cs.Tools(t.Context(), nil) {
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, tool.Name)
			}
			if len(names) < 20 {
				t.Fatalf("tools/list gave %d tools: %v", len(names), names)
			}
			path := "protocol-v" + strings.ReplaceAll(tc.want, "-", "") + ".ipynb"
			labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": path})
			ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": path, "source": "x = 1"})
			if tc.sessions {
				// create_notebook made it the session's current notebook.
				nb := labtest.Call[readOut](t, cs, "read_notebook", nil)
				if nb.Path != path {
					t.Fatalf("current notebook %q, want %q", nb.Path, path)
				}
				return
			}
			labtest.CallErr(t, cs, "read_notebook", nil, "path is required: this connection has no MCP session")
			labtest.CallErr(t, cs, "link_view", map[string]any{"view_id": "v1"}, "link_view needs an MCP session")
			cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": path, "cell_id": ins.CellID})
			if cell.Source != "x = 1" {
				t.Fatalf("read_cell = %+v", cell)
			}
		})
	}
}

// Under 2026-07-28 a call's progress rides its own response stream while
// the cell runs (the cell waits for the test after each line), and ending
// the call's request interrupts the kernel.
func TestStatelessProgressAndCancel(t *testing.T) {
	events := make(chan progressEvent, 100)
	cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, "", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			events <- progressEvent{message: r.Params.Message}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %q", v)
	}
	g := newGate(t)
	codeNotebook(t, "exec/stateless.ipynb", g.code("step", 2), "print('spinning', flush=True)\nwhile True:\n    pass")

	result := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := callWithProgress(t.Context(), cs, "execute_cell", map[string]any{"path": "exec/stateless.ipynb", "cell_id": "c0"})
		if err != nil {
			t.Error(err)
		}
		result <- res
	}()
	for i, want := range []string{"step 0", "step 1"} {
		waitProgress(t, events, result, want)
		g.open(t, i)
	}
	if res := <-result; res == nil || res.IsError || !strings.Contains(labtest.ResultText(res), "step 1") {
		t.Fatalf("result: %q", labtest.ResultText(res))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ended := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, _ := callWithProgress(ctx, cs, "execute_cell", map[string]any{"path": "exec/stateless.ipynb", "cell_id": "c1"})
		ended <- res
	}()
	id := executionID.FindStringSubmatch(waitProgress(t, events, ended, "spinning"))[1]
	cancel()
	<-ended
	got := labtest.Call[execOut](t, cs, "get_execution", map[string]any{"execution_id": id, "timeout": 60})
	if got.Status != "interrupted" || len(got.Cells) != 1 || got.Cells[0].CellID != "c1" || got.Cells[0].Note != "cancelled by the client" {
		t.Fatalf("after cancel: %+v, want c1 interrupted with the note \"cancelled by the client\"", got)
	}
}

// waitProgress returns the first progress message containing want, failing
// if the call ends first.
func waitProgress(t *testing.T, events <-chan progressEvent, ended <-chan *mcp.CallToolResult, want string) string {
	t.Helper()
	for {
		select {
		case ev := <-events:
			if strings.Contains(ev.message, want) {
				return ev.message
			}
		case res := <-ended:
			t.Fatalf("the call ended before progress naming %q: %q", want, labtest.ResultText(res))
		}
	}
}

// A version nobody speaks gets a precise answer: a 2026-style discover at
// an unknown version is refused with the versions this server speaks, and an
// initialize at an unknown version is answered with the version the server
// offers instead (the spec's negotiation), so the client can decide.
func TestUnknownProtocolVersion(t *testing.T) {
	for _, tc := range []struct {
		name, header, body string
		status             int
		want               []string
	}{
		{"discover", "2099-01-01",
			`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"0"}}}}`,
			http.StatusBadRequest, []string{"2099-01-01", "2026-07-28", "2025-11-25"}},
		{"initialize", "",
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-01-01","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`,
			http.StatusOK, []string{`"protocolVersion":"2025-11-25"`}},
	} {
		header := map[string]string{}
		if tc.header != "" { // a 2026-style request names its version and method in headers too
			header = map[string]string{"Mcp-Protocol-Version": tc.header, "Mcp-Method": "server/discover"}
		}
		resp := postMCP(t, tc.body, header)
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, data)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(data), w) {
				t.Fatalf("%s: answer lacks %s: %s", tc.name, w, data)
			}
		}
	}
}

// Malformed _meta gets a JSON-RPC error and runs nothing: _meta that is no
// object, a progress token that is neither a string nor a number, and a
// 2026-07-28 request whose capabilities are no object.
func TestMalformedMeta(t *testing.T) {
	const nb = "exec/malformed-meta.ipynb"
	codeNotebook(t, nb, "open('malformed-meta-ran', 'w').close()")
	call := func(meta string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"execute_cell","arguments":{"path":"` + nb + `","cell_id":"c0"},"_meta":` + meta + `}}`
	}
	v2026 := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "execute_cell"}
	for _, tc := range []struct {
		name, meta string
		header     map[string]string
	}{
		{"_meta a string", `"x"`, v2026},
		{"_meta a list", `[1]`, v2026},
		{"progress token an object", `{"progressToken":{"a":1},"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"0"}}`, v2026},
		{"capabilities a string", `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":"all","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"0"}}`, v2026},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := postMCP(t, call(tc.meta), tc.header)
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var msg struct {
				Error *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			body := string(data)
			if i := strings.Index(body, "data: "); i >= 0 { // an event stream: its one message
				body = strings.TrimSpace(strings.SplitN(body[i+len("data: "):], "\n", 2)[0])
			}
			if resp.StatusCode >= 500 || json.Unmarshal([]byte(body), &msg) != nil && resp.StatusCode < 400 || resp.StatusCode < 400 && msg.Error == nil {
				t.Fatalf("status %d: %s; want a JSON-RPC error or a 4xx", resp.StatusCode, data)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(shared.Root, "exec", "malformed-meta-ran")); err == nil {
		t.Fatal("a request with malformed _meta ran the cell")
	}
}
