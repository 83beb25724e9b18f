package integration

import (
	"cmp"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

var wantTools = []string{
	"clear_outputs", "create_notebook", "delete_cells", "edit_cell", "execute_cell", "execute_cells",
	"execute_code", "get_execution", "insert_cell", "interrupt_kernel", "link_view", "list_changes", "list_files", "list_kernels",
	"list_notebooks", "move_cell", "read_cell", "read_notebook", "restart_kernel", "save_notebook", "send_input", "undo_changes", "use_notebook",
}

// Both <lab>/mcp and <lab>/mcp/ reach the sidecar, with either header form.
func TestEndpointURLForms(t *testing.T) {
	for _, tc := range []struct{ endpoint, auth string }{
		{"mcp", "token " + shared.Token},
		{"mcp/", "token " + shared.Token},
		{"mcp", "Bearer " + shared.Token},
	} {
		t.Run(tc.endpoint+" "+strings.Fields(tc.auth)[0], func(t *testing.T) {
			cs, err := shared.Connect(t.Context(), tc.endpoint, tc.auth)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer cs.Close()
			var names []string
			for tool, err := range cs.Tools(t.Context(), nil) {
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, tool.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, wantTools) {
				t.Fatalf("tools = %v, want %v", names, wantTools)
			}
			if instr := cs.InitializeResult().Instructions; !strings.Contains(instr, "use_notebook") {
				t.Fatalf("server instructions do not teach the workflow: %q", instr)
			}
		})
	}
}

// Requests without a valid Jupyter token never reach a tool.
func TestAuthRequired(t *testing.T) {
	for _, auth := range []string{"", "token wrong-token", "Bearer wrong-token"} {
		t.Run("connect "+auth, func(t *testing.T) {
			cs, err := shared.Connect(t.Context(), "mcp", auth)
			if err == nil {
				cs.Close()
				t.Fatal("connected without a valid token")
			}
		})
	}
	// A raw tools/call with a wrong token is refused before the sidecar and
	// creates nothing.
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_notebook","arguments":{"path":"intruder.ipynb"}}}`
	for _, endpoint := range []string{"mcp", "mcp/"} {
		req, _ := http.NewRequest(http.MethodPost, shared.URL+endpoint, strings.NewReader(body))
		req.Header.Set("Authorization", "token wrong-token")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with a wrong token: status %d, want 403", endpoint, resp.StatusCode)
		}
	}
	if _, err := os.Stat(filepath.Join(shared.Root, "intruder.ipynb")); !os.IsNotExist(err) {
		t.Fatalf("a request with a wrong token created a notebook (stat: %v)", err)
	}
}

// Malformed JSON-RPC gets a JSON-RPC error or a 4xx, never a tool run.
func TestMalformedJSONRPC(t *testing.T) {
	cases := []struct {
		name, body, contentType string
		wantStatus              int
		wantBody                string
	}{
		{"not json", `{"jsonrpc": "2.0", "id": 1, "method": `, "application/json", http.StatusBadRequest, ""},
		{"wrong content type", `{}`, "text/plain", http.StatusUnsupportedMediaType, ""},
		{"tool call before initialize", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_files"}}`, "application/json", http.StatusOK, `"error":{"code":0,"message":"method \"tools/call\" is invalid during session initialization"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := postMCP(t, tc.body, map[string]string{"Content-Type": tc.contentType})
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, data, tc.wantStatus)
			}
			if !strings.Contains(string(data), tc.wantBody) {
				t.Fatalf("body %s, want it to contain %s", data, tc.wantBody)
			}
		})
	}
}

// A browser page from another site cannot drive MCP with the user's
// credentials; the lab's own origin can.
func TestCrossOriginRefused(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"0"}}}`
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://evil.example", http.StatusForbidden},
		{strings.TrimRight(shared.URL, "/"), http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, shared.URL+"mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "token "+shared.Token)
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Origin %s: status %d, want %d", tc.origin, resp.StatusCode, tc.want)
		}
	}
}

// A request that Jupyter lets through on the login cookie (a browser page of
// the lab's origin — on a one-domain JupyterHub, possibly another user's)
// drives MCP only with Jupyter's XSRF token, as JupyterLab's own requests
// carry it; the request without it runs nothing.
func TestCookieNeedsXSRF(t *testing.T) {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(shared.URL + "lab?token=" + shared.Token) // the login sets the cookies
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	labtest.CheckCookieXSRF(t, browser, shared.URL, shared.Token)
}

// A client that takes only a URL connects with <lab>/mcp?token=<token>:
// Jupyter takes a token in the URL as in the header, and so does the
// sidecar, with either protocol generation; the sidebar's POSTs too. A
// wrong token in the URL opens nothing. The token goes no further than
// Jupyter's authentication: no line the lab logs meanwhile (its proxy's
// at debug level included) holds it.
func TestURLToken(t *testing.T) {
	dir := filepath.Join(labsDir, "url-token")
	config := filepath.Join(dir, "config")
	if err := os.MkdirAll(config, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(config, "jupyter_server_config.json"), []byte(`{"ServerApp": {"log_level": "DEBUG"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const token = "url-token-3f9a1c"
	lab, err := labtest.Start(sidecarBin, dir, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Stop)
	logged, err := os.Stat(lab.LogPath) // Jupyter prints its own URL, token and all, as it starts
	if err != nil {
		t.Fatal(err)
	}

	for _, version := range []string{labtest.SessionProtocol, ""} {
		t.Run("protocol "+version, func(t *testing.T) {
			cs, err := lab.ConnectProtocol(t.Context(), "mcp?token="+token, "", version, nil)
			if err != nil {
				t.Fatalf("connect with the token in the URL: %v", err)
			}
			defer cs.Close()
			path := "url-token-" + strings.ReplaceAll(cmp.Or(version, "newest"), "-", "") + ".ipynb"
			labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": path})
			labtest.Call[map[string]any](t, cs, "insert_cell", map[string]any{"path": path, "source": "1 + 1", "execute": true})
		})
	}
	t.Run("sidebar", func(t *testing.T) {
		resp, err := http.Post(lab.URL+"mcp/changes/undo?token="+token, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(data), "path") {
			t.Fatalf("undo with the token in the URL: %s %s, want 400 asking for a path (past the XSRF check)", resp.Status, data)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		cs, err := lab.Connect(t.Context(), "mcp?token=wrong-"+token, "")
		if err == nil {
			cs.Close()
			t.Fatal("connected with a wrong token in the URL")
		}
	})

	data, err := os.ReadFile(lab.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	since := string(data[logged.Size():])
	if !strings.Contains(since, "Proxying request to") {
		t.Fatalf("the lab logged no proxied request at debug level; the check below would prove nothing:\n%s", labtest.Tail([]byte(since), 4<<10))
	}
	for _, line := range strings.Split(since, "\n") {
		if strings.Contains(line, token) {
			t.Errorf("the token is in the lab's log: %s", line)
		}
	}
}

// The sidecar's pages carry the lab's own security headers, so that
// whoever may not frame the lab may not frame the embed page either: the
// proxy copies none of Jupyter's headers by itself.
func TestLabHeadersOnSidecarPages(t *testing.T) {
	get := func(path string) http.Header {
		t.Helper()
		resp, err := http.Get(shared.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return resp.Header
	}
	lab := get("lab?token=" + shared.Token)
	want := lab.Get("Content-Security-Policy")
	if !strings.Contains(want, "frame-ancestors 'self'") {
		t.Fatalf("the lab's Content-Security-Policy is %q; expected Jupyter's frame-ancestors", want)
	}
	for _, path := range []string{"mcp/embed?token=", "mcp/changes?path=x.ipynb&token="} {
		h := get(path + shared.Token)
		if got := h.Get("Content-Security-Policy"); got != want {
			t.Errorf("%s: Content-Security-Policy %q, want the lab's %q", path, got, want)
		}
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", path, got)
		}
	}
}
