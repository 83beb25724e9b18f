package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/review"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// Tornado XSRF tokens (version 2: "2|mask|mask XOR secret|time") of one
// secret masked two ways, and of another secret.
const (
	xsrfV2         = "2|00000000|11223344|1700000000"
	xsrfV2Remasked = "2|ffffffff|eeddccbb|1700000001"
	xsrfOther      = "2|00000000|11223345|1700000000"
)

// The lab has authenticated these requests already (token or login cookie);
// the proxy extension's header says it was a token.
var tokenAuth = map[string]string{AuthHeader: "token"}

func with(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}

func TestRequestPolicy(t *testing.T) {
	t0 := &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}, Changes: &changes.Log{Dir: t.TempDir()}}
	s := New(Config{BaseURL: "/user/a/", AllowedOrigins: []string{"https://app.example"}, Review: &review.Handler{Changes: t0}}, t0, zerolog.Nop())
	h := s.Handler()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   int
	}{
		{"no origin (non-browser client)", "POST", "/", tokenAuth, 200},
		{"login cookie without XSRF token", "POST", "/", map[string]string{"Cookie": "_xsrf=" + xsrfV2}, 403},
		{"login cookie with the cookie's XSRF token", "POST", "/", map[string]string{"Cookie": "_xsrf=" + xsrfV2, "X-XSRFToken": xsrfV2}, 200},
		{"login cookie, same secret masked otherwise", "POST", "/", map[string]string{"Cookie": "_xsrf=" + xsrfV2, "X-XSRFToken": xsrfV2Remasked}, 200},
		{"login cookie, another secret", "POST", "/", map[string]string{"Cookie": "_xsrf=" + xsrfV2, "X-XSRFToken": xsrfOther}, 403},
		{"login cookie, XSRF header without cookie", "POST", "/", map[string]string{"X-XSRFToken": xsrfV2}, 403},
		{"hub-style signed token", "POST", "/", map[string]string{"Cookie": "_xsrf=c2lnbmVk", "X-XSRFToken": "c2lnbmVk"}, 200},
		{"authenticated by the login cookie, as the proxy says", "POST", "/", map[string]string{AuthHeader: "cookie", "Cookie": "_xsrf=" + xsrfV2}, 403},
		{"an Authorization header the proxy did not vouch for", "POST", "/", map[string]string{"Authorization": "token lab-token"}, 403},
		{"a lab that checks no XSRF tokens", "POST", "/", map[string]string{AuthHeader: "unchecked"}, 200},
		{"sidebar undo by token", "POST", "/changes/undo", tokenAuth, 400},
		{"cookie GET needs no XSRF token", "GET", "/healthz", nil, 200},
		{"embed state by cookie without XSRF token", "POST", "/embed/state", nil, 403},
		{"sidebar list by cookie", "GET", "/changes?path=a.ipynb", with(nil, "Origin", "https://hub.example"), 200},
		{"sidebar list from another origin", "GET", "/changes?path=a.ipynb", with(nil, "Origin", "https://evil.example"), 403},
		{"sidebar undo by cookie without XSRF token", "POST", "/changes/undo", nil, 403},
		{"sidebar undo by cookie with XSRF token", "POST", "/changes/undo", map[string]string{"Cookie": "_xsrf=" + xsrfV2, "X-XSRFToken": xsrfV2}, 400},
		{"same origin", "POST", "/", with(tokenAuth, "Origin", "https://hub.example"), 200},
		{"allowed origin", "POST", "/", with(tokenAuth, "Origin", "https://app.example"), 200},
		{"other origin", "POST", "/", with(tokenAuth, "Origin", "https://evil.example"), 403},
		{"cross-site fetch without origin", "POST", "/", with(tokenAuth, "Sec-Fetch-Site", "cross-site"), 403},
		{"health", "GET", "/healthz", nil, 200},
		{"unknown path", "POST", "/other", tokenAuth, 404},
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

// A sidecar serving on its own (TCP, no proxy in front) checks its token.
func TestSidecarToken(t *testing.T) {
	s := New(Config{BaseURL: "/", Token: "s3cret"}, &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}}, zerolog.Nop())
	h := s.Handler()
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", 403},
		{"token wrong", 403},
		{"Basic s3cret", 403},
		{"token s3cret", 200},
		{"Bearer s3cret", 200},
	} {
		req := httptest.NewRequest("GET", "http://127.0.0.1:8765/healthz", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.auth, rec.Code, tc.want)
		}
	}
}

// The sidecar has no prompts, and declares none: prompts/list and
// prompts/get are unknown methods to it in every protocol version, not an
// empty list (which says prompts are served; the conformance suite's
// server-stateless scenario checks this).
func TestUndeclaredPromptsAreNotServed(t *testing.T) {
	s := New(Config{BaseURL: "/"}, &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}}, zerolog.Nop())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, version := range []string{"", "2025-11-25", "2025-03-26"} {
		client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
		// As behind the proxy: the lab has authenticated the token.
		hc := &http.Client{Transport: withHeaders{}}
		cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/", HTTPClient: hc},
			&mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		if cs.InitializeResult().Capabilities.Prompts != nil {
			t.Errorf("%s: prompts declared", version)
		}
		_, err = cs.ListPrompts(t.Context(), nil)
		var jerr *jsonrpc.Error
		if !errors.As(err, &jerr) || jerr.Code != jsonrpc.CodeMethodNotFound {
			t.Errorf("%s: prompts/list: %v, want method not found (-32601)", version, err)
		}
		_, err = cs.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "x"})
		if !errors.As(err, &jerr) || jerr.Code != jsonrpc.CodeMethodNotFound {
			t.Errorf("%s: prompts/get: %v, want method not found (-32601)", version, err)
		}
		cs.Close()
	}
}

// A signed-in client's grant (the router's scopes header) decides what it
// sees and may call: a read-only grant lists only the read tools, and a
// call beyond it is refused with 403 and the insufficient_scope challenge
// before it runs; a request without the header keeps every tool.
func TestScopesOfASignIn(t *testing.T) {
	s := New(Config{BaseURL: "/"}, &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}}, zerolog.Nop())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	const metadata = "https://hub.example/.well-known/oauth-protected-resource/services/mcp"
	list := func(scopes string) []string {
		t.Helper()
		hc := &http.Client{Transport: withHeaders{hubauth.ScopesHeader: scopes}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(t.Context(),
			&mcp.StreamableClientTransport{Endpoint: srv.URL + "/", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		var names []string
		for tool, err := range cs.Tools(t.Context(), nil) {
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, tool.Name)
		}
		return names
	}
	all, read := list(""), list(hubauth.ScopeRead)
	if !slices.Contains(all, "execute_code") || !slices.Contains(read, "read_notebook") || slices.Contains(read, "insert_cell") || slices.Contains(read, "execute_code") {
		t.Fatalf("tools without a grant: %v; with mcp:read: %v", all, read)
	}

	call := func(scopes, params string) (int, string, string) {
		req := httptest.NewRequest("POST", srv.URL+"/", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":`+params+`}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(hubauth.ScopesHeader, scopes)
		req.Header.Set(hubauth.ResourceMetadataHeader, metadata)
		req.Header.Set(AuthHeader, "token")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body.String()
	}
	for _, tc := range []struct {
		name, scopes, params, missing string
	}{
		{"execute with read and edit", "mcp:read mcp:edit", `{"name":"execute_code","arguments":{"code":"1"}}`, "mcp:execute"},
		{"insert and run with edit", "mcp:read mcp:edit", `{"name":"insert_cell","arguments":{"path":"a.ipynb","source":"1","execute":true}}`, "mcp:execute"},
		{"edit with read", "mcp:read", `{"name":"edit_cell","arguments":{"path":"a.ipynb","cell_id":"c","source":"x"}}`, "mcp:edit"},
	} {
		code, challenge, body := call(tc.scopes, tc.params)
		if code != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) ||
			!strings.Contains(challenge, `scope="`+tc.scopes+" "+tc.missing+`"`) || !strings.Contains(challenge, metadata) ||
			!strings.Contains(body, `"id":9`) || !strings.Contains(body, tc.missing) {
			t.Errorf("%s: %d %q %s; want 403 with insufficient_scope asking for %s", tc.name, code, challenge, body, tc.missing)
		}
	}
	// Within the grant the call goes on to the SDK (which wants a session).
	if code, challenge, _ := call("mcp:read", `{"name":"read_notebook","arguments":{"path":"a.ipynb"}}`); code == http.StatusForbidden || challenge != "" {
		t.Errorf("a read with mcp:read: %d %q, want it past the gate", code, challenge)
	}
}

// withHeaders adds headers to every request, as the lab (AuthHeader) and
// the hub's router would.
type withHeaders map[string]string

func (h withHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(AuthHeader, "token")
	for k, v := range h {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}
