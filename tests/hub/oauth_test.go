package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// An MCP client given only <hub>/services/mcp signs in as the MCP
// specification says, here the official TypeScript SDK's OAuth client:
// the router's 401 names its authorization server, the SDK registers
// itself, the person logs in with the hub's own login page and consents
// on the router's page (in headless Chromium), and the SDK's tokens then
// list the tools and run a cell on the person's server. A refresh gives
// new tokens that work; the first refresh token, used again, is refused.
func TestSignInWithTheTypeScriptSDK(t *testing.T) {
	aliceRunning(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	next := tsOAuthClient(t, ctx, "oauth-ts.ipynb")
	signIn(t, ctx, next("authorize"), "alice", nil)
	tsClientWorks(t, next)
	// The audit trail names the client, its scopes, the tool and the
	// notebook of each call, and holds neither code nor token.
	audit := theHub.Audit()
	var found bool
	for _, line := range strings.Split(string(audit), "\n") {
		if strings.Contains(line, `"client":"TS SDK test client"`) && strings.Contains(line, `"user":"alice"`) &&
			strings.Contains(line, `"tool":"execute_code"`) && strings.Contains(line, `"notebook":"oauth-ts.ipynb"`) &&
			strings.Contains(line, `"scopes":["mcp:read","mcp:edit","mcp:execute"]`) {
			found = true
		}
	}
	if !found || strings.Contains(string(audit), "print(6*7)") || strings.Contains(string(audit), "mcpat_") {
		t.Fatalf("audit trail (want a line for the client's execute_code, and no code or token):\n%s", labtest.Tail(audit, 4<<10))
	}
	// The run happened on alice's server, as alice.
	if who := whoami(t, connect(t, "/services/mcp", "token "+tokens["alice"]), "oauth-ts.ipynb"); who != "alice" {
		t.Fatalf("the notebook's kernel runs as %q, want alice", who)
	}
}

// A grant the person narrowed to mcp:read on the consent page: the client
// lists only the tools that read, reads, and its insert is refused with
// the insufficient_scope answer (the SDK, 1.32.2, then refreshes its token
// rather than asking the person for more, and gives up, saying so), and
// so is its execute; the notebook is unchanged, and the code did not run.
func TestSignInReadOnly(t *testing.T) {
	aliceRunning(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	api := connect(t, "/services/mcp", "token "+tokens["alice"])
	labtest.Call[map[string]any](t, api, "create_notebook", map[string]any{"path": "oauth-read.ipynb"})
	cells := func() float64 {
		return labtest.Call[map[string]any](t, api, "read_notebook", map[string]any{"path": "oauth-read.ipynb"})["total_cells"].(float64)
	}
	before := cells()

	next := tsOAuthClient(t, ctx, "oauth-read.ipynb", "read-only")
	signIn(t, ctx, next("authorize"), "alice", []string{"mcp:edit", "mcp:execute"})
	if got := next("scope"); got != "mcp:read" {
		t.Fatalf("granted scopes %q, want mcp:read", got)
	}
	if tools := next("tools"); !strings.Contains(tools, "read_notebook") || strings.Contains(tools, "insert_cell") || strings.Contains(tools, "execute_code") {
		t.Fatalf("tools of a read-only grant: %s", tools)
	}
	if got := next("read"); !strings.HasPrefix(got, "ok") {
		t.Fatalf("read_notebook with mcp:read: %s", got)
	}
	if got := next("insert"); !strings.HasPrefix(got, "error") || !strings.Contains(got, "403 after trying upscoping") {
		t.Fatalf("insert_cell with mcp:read: %s, want it refused as insufficient_scope", got)
	}
	if got := next("execute"); !strings.HasPrefix(got, "error") || !strings.Contains(got, "403 after trying upscoping") {
		t.Fatalf("execute_code with mcp:read: %s, want it refused as insufficient_scope", got)
	}
	if after := cells(); after != before {
		t.Fatalf("the notebook had %v cells, now %v: the refused insert changed it", before, after)
	}
	if exec.Command("docker", "exec", theHub.Prefix+"-alice", "test", "-e", "/home/jovyan/work/oauth-read-ran.txt").Run() == nil {
		t.Fatal("the refused execute_code ran")
	}
}

// The same sign-in with the official Python SDK's OAuth client: the tools
// listed and a cell run on the person's server.
func TestSignInWithThePythonSDK(t *testing.T) {
	aliceRunning(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	python := filepath.Join(labtest.RepoRoot(), ".venv-clients", "bin", "python")
	script := filepath.Join(labtest.RepoRoot(), "tests", "clients", "python_oauth_client.py")
	next := oauthClient(t, ctx, python, script, theHub.URL+"/services/mcp", "oauth-py.ipynb")
	signIn(t, ctx, next("authorize"), "alice", nil)
	if got := next("scope"); got != "mcp:read mcp:edit mcp:execute" {
		t.Fatalf("granted scopes %q, want all three", got)
	}
	if tools := next("tools"); !strings.Contains(tools, "execute_code") {
		t.Fatalf("tools: %s", tools)
	}
	if got := next("result"); !strings.HasPrefix(got, "ok") || !strings.Contains(got, "42") {
		t.Fatalf("the cell run with the sign-in's token: %s", got)
	}
}

// tsClientWorks checks what the TypeScript SDK's client script says once
// the person granted every scope: the scopes, the tools, a cell run, a
// refresh whose tokens work, and the first refresh token refused when
// used again.
func tsClientWorks(t *testing.T, next func(string) string) {
	t.Helper()
	if got := next("scope"); got != "mcp:read mcp:edit mcp:execute" {
		t.Fatalf("granted scopes %q, want all three", got)
	}
	if tools := next("tools"); !strings.Contains(tools, "execute_code") || !strings.Contains(tools, "insert_cell") {
		t.Fatalf("tools: %s", tools)
	}
	if got := next("result"); !strings.HasPrefix(got, "ok") || !strings.Contains(got, "42") {
		t.Fatalf("the cell run with the sign-in's token: %s", got)
	}
	if got := next("refreshed"); got != "yes" {
		t.Fatalf("refresh: %s", got)
	}
	if got := next("after-refresh"); !strings.HasPrefix(got, "ok") || !strings.Contains(got, "42") {
		t.Fatalf("the cell run with the refreshed token: %s", got)
	}
	if got := next("reuse"); !strings.HasPrefix(got, "refused") || !strings.Contains(got, "used already") {
		t.Fatalf("the first refresh token used again: %s", got)
	}
}

// tsOAuthClient starts the TypeScript SDK's OAuth client script against
// <hub>/services/mcp (oauthClient).
func tsOAuthClient(t *testing.T, ctx context.Context, args ...string) (next func(key string) string) {
	t.Helper()
	script := filepath.Join(labtest.RepoRoot(), "tests", "conformance", "ts_oauth_client.mjs")
	return oauthClient(t, ctx, labtest.Node(t), append([]string{script, theHub.URL + "/services/mcp"}, args...)...)
}

// oauthClient runs an SDK's OAuth client script and returns next, which
// reads its next line and checks that it starts with key.
func oauthClient(t *testing.T, ctx context.Context, command string, args ...string) (next func(key string) string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, command, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return func(key string) string {
		t.Helper()
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the client ended before %q; stderr:\n%s", key, stderr.String())
			}
			k, v, _ := strings.Cut(line, " ")
			if k != key {
				t.Fatalf("client said %q, want %q first", line, key)
			}
			return v
		case <-ctx.Done():
			t.Fatalf("no %q from the client in time", key)
		}
		return ""
	}
}

// signIn plays the person in a headless browser: open the authorization
// URL, log in at the hub as user (the test hub takes any password), and on
// the router's consent page untick the scopes in refuse, then allow. The
// browser, logged in to the hub, stays open until the test ends.
func signIn(t testing.TB, ctx context.Context, authorizeURL, user string, refuse []string) (page context.Context) {
	t.Helper()
	page = browser(t, ctx)
	steps := append(logIn(authorizeURL, user), chromedp.WaitVisible(`button[value=allow]`))
	for _, sc := range refuse {
		steps = append(steps, chromedp.Click(fmt.Sprintf(`input[name=scope][value=%q]`, sc)))
	}
	if err := chromedp.Do(page, steps...); err != nil {
		where, _ := chromedp.Run(page, chromedp.Location())
		t.Fatalf("signing in in the browser (at %s): %v", where, err)
	}
	// Allow: the browser goes on to the client's redirect URI.
	if _, err := chromedp.Run(page, chromedp.Evaluate[any](`document.querySelector("button[value=allow]").click()`)); err != nil {
		t.Fatalf("allow: %v", err)
	}
	var where string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		where, _ = chromedp.Run(page, chromedp.Location())
		if strings.Contains(where, "/callback?") {
			return page
		}
		time.Sleep(100 * time.Millisecond) // polling the browser's location, with a deadline
	}
	t.Fatalf("after Allow the browser is at %s, not the client's redirect URI", where)
	return nil
}

// browser is a new headless Chromium's page, closed with the test.
func browser(t testing.TB, ctx context.Context) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	page, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return page
}

// logIn opens u, which sends the browser to the hub's login page, and
// logs in there as user (the test hub takes any password).
func logIn(u, user string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(u),
		chromedp.WaitVisible(`input[name=username]`),
		chromedp.SendKeys(`input[name=username]`, user),
		chromedp.SendKeys(`input[name=password]`, "any-password"),
		chromedp.Submit(`input[name=username]`),
	}
}

// An MCP client identified by a Client ID Metadata Document, here the
// TypeScript SDK's (clientMetadataUrl): it does not register; the router
// fetches the document from the client's https URL (on a loopback
// address, which the limited hub's admin allows, with a certificate in
// its router's SSL_CERT_FILE) and holds the client to the redirect URI it
// lists. The tokens work and refresh as a registered client's.
func TestSignInWithAClientMetadataDocument(t *testing.T) {
	h := limited(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	docURL := metadataDocs.URL + "/ts-client.json"
	script := filepath.Join(labtest.RepoRoot(), "tests", "conformance", "ts_oauth_client.mjs")
	next := oauthClient(t, ctx, labtest.Node(t), script, h.URL+"/services/mcp", "oauth-cimd.ipynb", "cimd="+docURL)
	redirect := next("redirect")
	metadataDocs.set("/ts-client.json", map[string]any{"client_id": docURL, "client_name": "TS SDK document client",
		"redirect_uris": []string{redirect}, "grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none"})
	authorize := next("authorize")
	if u, err := url.Parse(authorize); err != nil || u.Query().Get("client_id") != docURL {
		t.Fatalf("the SDK asks to authorize %s, want the document's URL as its client_id", authorize)
	}
	signIn(t, ctx, authorize, "cimd-"+randomHex(3), nil)
	tsClientWorks(t, next)
	if !metadataDocs.fetched("/ts-client.json") {
		t.Fatal("the router never fetched the client's document")
	}
}

// documents is an https server of client metadata documents on a
// loopback address.
type documents struct {
	*httptest.Server
	certFile string // its certificate, PEM
	mu       sync.Mutex
	docs     map[string][]byte
	seen     map[string]bool
}

func serveDocuments(dir string) (*documents, error) {
	d := &documents{docs: map[string][]byte{}, seen: map[string]bool{}}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		doc, ok := d.docs[r.URL.Path]
		d.seen[r.URL.Path] = true
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d.certFile = filepath.Join(dir, "metadata-ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d.Certificate().Raw})
	return d, os.WriteFile(d.certFile, cert, 0o600)
}

func (d *documents) set(path string, doc any) {
	data, _ := json.Marshal(doc)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path] = data
}

func (d *documents) fetched(path string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[path]
}
