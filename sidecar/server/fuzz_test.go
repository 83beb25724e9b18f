package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// FuzzJSONRPC posts arbitrary bodies to the MCP endpoint, once as the first
// message of a client and once inside an initialized session. Malformed
// JSON, unknown methods, wrong params and batches must get a client error
// (4xx, or a JSON-RPC error), never a server error, a panic or a hang.
// Tool calls reach a Jupyter server that does not answer, as when the lab
// has gone away.
func FuzzJSONRPC(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_notebook","arguments":{"path":"a.ipynb"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope","arguments":[]}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"execute_code","arguments":{"code":"1"},"_meta":{"progressToken":{}}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"1.0","id":null,"method":"initialize"}`,
		`{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"1999-01-01"}}`,
		`{"jsonrpc":"2.0","id":6,"result":{}}`,
		`{`, ``, `null`, `"x"`,
	} {
		f.Add([]byte(seed))
	}
	client, err := jupyter.NewClient(&jupyter.ServerInfo{URL: "http://127.0.0.1:1/"})
	if err != nil {
		f.Fatal(err)
	}
	kernels := &kernel.Manager{Jupyter: client}
	f.Cleanup(kernels.Close)
	store := &documents.Store{Jupyter: client}
	s := New(Config{BaseURL: "/"}, &tools.Tools{
		Jupyter: client, Docs: store, Store: store, Sessions: tools.NewSessions(), Kernels: kernels,
		Executions: &execution.Executions{Docs: store, Log: zerolog.Nop()}, Limits: tools.DefaultLimits, Views: &embed.Hub{},
	}, zerolog.Nop())
	h := s.Handler()

	post := func(t *testing.T, session string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "http://127.0.0.1/", bytes.NewReader(body))
		req.Header.Set(AuthHeader, "token")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("server error %d for %q: %s", rec.Code, body, rec.Body)
		}
		return rec
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		post(t, "", body)
		init := post(t, "", []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"fuzz","version":"0"}}}`))
		session := init.Header().Get("Mcp-Session-Id")
		if session == "" {
			t.Fatalf("initialize gave no session: %d %s", init.Code, init.Body)
		}
		post(t, session, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
		rec := post(t, session, body)
		if rec.Code == http.StatusOK && strings.Contains(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer to %q is not JSON: %s", body, rec.Body)
		}
		del := httptest.NewRequest("DELETE", "http://127.0.0.1/", nil)
		del.Header.Set(AuthHeader, "token")
		del.Header.Set("Mcp-Session-Id", session)
		h.ServeHTTP(httptest.NewRecorder(), del)
	})
}
