package hub

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

var aliceStarted = sync.OnceValue(func() error { return theHub.startServer("alice") })

// aliceRunning starts alice's server once for the tests that need it.
func aliceRunning(t testing.TB) {
	t.Helper()
	if err := aliceStarted(); err != nil {
		t.Fatal(err)
	}
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"hub-test","version":"0"}}}`

// alice's own token reaches her server at <hub>/user/alice/mcp: the tools
// are there and code runs on her kernel, in her container.
func TestUserEndpoint(t *testing.T) {
	aliceRunning(t)
	for _, scheme := range []string{"token", "Bearer"} {
		t.Run(scheme, func(t *testing.T) {
			cs := connect(t, "/user/alice/mcp", scheme+" "+tokens["alice"])
			res, err := cs.ListTools(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tool := range res.Tools {
				names = append(names, tool.Name)
			}
			if !slices.Contains(names, "execute_code") || !slices.Contains(names, "create_notebook") {
				t.Fatalf("tools = %v", names)
			}
			if who := whoami(t, cs, "who.ipynb"); who != "alice" {
				t.Fatalf("JUPYTERHUB_USER = %q, want alice", who)
			}
		})
	}
	fmt.Fprintf(os.Stderr, "figure: idle user container with one kernel: %s\n", memory(t, "alice"))
}

// Nobody but alice gets through to her server: bob's valid token, a wrong
// token and no token are refused by her server's hub check, before the
// sidecar, and nothing runs.
func TestUserEndpointRefusesOthers(t *testing.T) {
	aliceRunning(t)
	cs := connect(t, "/user/alice/mcp", "token "+tokens["alice"])
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "guard.ipynb"})
	// What another user would run in alice's session: a file as evidence.
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_code","arguments":{"path":"guard.ipynb","code":"open('intruder.txt','w').write('x')"}}}`
	for _, tc := range []struct{ name, auth string }{
		{"bob's token", "token " + tokens["bob"]},
		{"bob's token as Bearer", "Bearer " + tokens["bob"]},
		{"wrong token", "token " + randomHex(16)},
		{"no token", ""},
	} {
		for _, path := range []string{"/user/alice/mcp", "/user/alice/mcp/"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				if code, body := post(t, path, tc.auth, "", initialize); code != http.StatusForbidden {
					t.Fatalf("initialize: %d, want 403: %.300s", code, body)
				}
				if code, body := post(t, path, tc.auth, cs.ID(), call); code != http.StatusForbidden {
					t.Fatalf("tools/call in alice's session: %d, want 403: %.300s", code, body)
				}
			})
		}
	}
	type listOut struct {
		Entries []struct {
			Path string `json:"path"`
		} `json:"entries"`
	}
	for _, e := range labtest.Call[listOut](t, cs, "list_files", nil).Entries {
		if e.Path == "intruder.txt" {
			t.Fatal("a refused request ran code in alice's server")
		}
	}
}

var xsrfField = regexp.MustCompile(`name="_xsrf" value="([^"]+)"`)

// On a hub served from one domain every user's server shares the origin, so
// only the XSRF token keeps a page (of anybody's server) from driving a
// user's MCP with that user's login cookie. A browser logged in as alice:
// its cookie alone, as a page's request would carry it, runs nothing at
// <hub>/user/alice/mcp; with the server's XSRF token, as JupyterLab sends
// it, the request goes through.
func TestCookieNeedsXSRFOnHub(t *testing.T) {
	aliceRunning(t)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	navigate := func(method, path string, form url.Values) string {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, theHub.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Sec-Fetch-Mode", "navigate") // servers set XSRF cookies on navigation only
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
		return string(data)
	}
	// Log in (the test hub's dummy authenticator takes any password), then
	// open the lab: the OAuth round trip sets alice's server cookie.
	m := xsrfField.FindStringSubmatch(navigate(http.MethodGet, "/hub/login", nil))
	if m == nil {
		t.Fatal("no _xsrf field on the hub's login page")
	}
	navigate(http.MethodPost, "/hub/login?next=", url.Values{"_xsrf": {m[1]}, "username": {"alice"}, "password": {"any-password"}})
	navigate(http.MethodGet, "/user/alice/lab", nil)
	labtest.CheckCookieXSRF(t, browser, theHub.URL+"/user/alice/", tokens["alice"])
}
