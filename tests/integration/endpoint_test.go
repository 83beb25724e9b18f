package integration

import (
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
	labtest.CheckCookieXSRF(t, browser, shared.URL)
}
