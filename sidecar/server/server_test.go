package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

func TestRequestPolicy(t *testing.T) {
	s := New(Config{BaseURL: "/user/a/", AllowedOrigins: []string{"https://app.example"}}, &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}}, zerolog.Nop())
	h := s.Handler()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   int
	}{
		{"no origin (non-browser client)", "POST", "/", nil, 200},
		{"same origin", "POST", "/", map[string]string{"Origin": "https://hub.example"}, 200},
		{"allowed origin", "POST", "/", map[string]string{"Origin": "https://app.example"}, 200},
		{"other origin", "POST", "/", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site fetch without origin", "POST", "/", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"health", "GET", "/healthz", nil, 200},
		{"unknown path", "POST", "/other", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://hub.example"+tc.path, strings.NewReader(init))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

// The public base URL comes from the request, never from a client header.
func TestPublicBaseHeader(t *testing.T) {
	s := &Server{cfg: Config{BaseURL: "/user/a/"}}
	var got string
	h := s.publicBase(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Get(tools.PublicBaseHeader) }))
	for _, tc := range []struct {
		proto, spoof, want string
	}{
		{"", "", "http://hub.example/user/a/"},
		{"https", "", "https://hub.example/user/a/"},
		{"gopher", "http://evil/", "http://hub.example/user/a/"},
	} {
		req := httptest.NewRequest("POST", "http://hub.example/", nil)
		req.Header.Set("X-Forwarded-Proto", tc.proto)
		req.Header.Set(tools.PublicBaseHeader, tc.spoof)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if got != tc.want {
			t.Errorf("proto %q spoof %q: base %q, want %q", tc.proto, tc.spoof, got, tc.want)
		}
	}
}
