package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// BenchmarkToolCallHTTP is the sidecar's own cost of one tool call that does
// no work (get_execution of an unknown id) over HTTP, as jupyter-server-proxy
// sends it: a POST answered by an event stream. The
// client is plain net/http, so nearly all of B/op is the server's: most of
// it is go-sdk's JSON decoding, which allocates a 32 KiB read buffer per
// message it unmarshals (its internal/json over segmentio's Decoder).
func BenchmarkToolCallHTTP(b *testing.B) {
	// "": what go-sdk's client speaks by default, a protocol without
	// sessions (each request stands alone); 2025-11-25 with a session.
	for _, v := range []string{"", "2025-11-25"} {
		b.Run("protocol="+v, func(b *testing.B) { benchToolCall(b, v) })
	}
}

func benchToolCall(b *testing.B, protocol string) {
	t0 := &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}, Executions: &execution.Executions{}}
	srv := httptest.NewServer(New(Config{BaseURL: "/"}, t0, zerolog.Nop()).Handler())
	defer srv.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "v0"}, nil).
		Connect(b.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: &http.Client{Transport: withHeaders{}}},
			&mcp.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	version := cs.InitializeResult().ProtocolVersion
	hc := &http.Client{}
	id := 0
	b.ReportAllocs()
	for b.Loop() {
		id++
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_execution","arguments":{"execution_id":"x0"},`+
			`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"v0"}}}}`, id, version)
		if cs.ID() != "" { // a session: no per-request _meta
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_execution","arguments":{"execution_id":"x0"}}}`, id)
		}
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, srv.URL, bytes.NewBufferString(body))
		req.Header.Set(AuthHeader, "token")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", version)
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "get_execution")
		if cs.ID() != "" {
			req.Header.Set("Mcp-Session-Id", cs.ID())
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"isError":true`)) {
			b.Fatalf("%d %s", resp.StatusCode, out)
		}
	}
}
