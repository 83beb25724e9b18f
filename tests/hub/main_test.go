// Package hub tests jupyter-mcp-sidecar under a real JupyterHub: the hub
// of jupyter_config/hub (the venv and configurable-http-proxy of `make
// hub-deps`) spawning a container of the project's image per user with
// DockerSpawner, driven with the go-sdk MCP client through the hub's proxy,
// at <hub>/user/<name>/mcp and at the hub-wide <hub>/services/mcp.
//
// The test starts the hub itself on free loopback ports, with container and
// volume names under a random prefix, and removes them at the end.
package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const (
	imageRepo = "jupyter-mcp-sidecar"
	imageTag  = "hub-test"
	// tokenCache is how long the users' servers of the test's hub keep a
	// token check (HUB_TOKEN_CACHE).
	tokenCache = 2 * time.Second
)

// hub is the JupyterHub of the whole test run; users holds each user's
// token (full rights of its owner, as a user's own tokens have by default).
var (
	theHub  *hubProcess
	tokens  = map[string]string{}
	router  string // the jupyter-mcp-hub binary
	testDir string // everything of the run: binaries, the hubs' state
)

func TestMain(m *testing.M) {
	// Ryuk, the reaper container, would have to be pulled from a registry.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (code int, err error) {
	ctx := context.Background()
	if err := labtest.BuildImage(ctx, imageRepo, imageTag); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "hub-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	testDir = dir
	if router, err = buildRouter(dir); err != nil {
		return 0, err
	}
	// The router's drain when the hub stops: long enough for the call that
	// TestHubRestartMidCall lets end within it (TestHubStop has the default).
	theHub, err = startHub(filepath.Join(dir, "hub"), router, fmt.Sprintf("HUB_TOKEN_CACHE=%d", int(tokenCache.Seconds())), "HUB_MCP_DRAIN=3")
	if err != nil {
		return 0, err
	}
	defer func() {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "---- hub log (last 12 KiB) ----\n%s\n", labtest.Tail(theHub.Log(), 12<<10))
		}
		theHub.Stop()
		if limitedHub != nil {
			limitedHub.Stop()
		}
	}()
	for _, name := range []string{"alice", "bob"} {
		if err := theHub.createUser(name); err != nil {
			return 0, err
		}
		if tokens[name], err = theHub.userToken(name); err != nil {
			return 0, err
		}
	}
	code = m.Run()
	// Nothing may log a token: not the router, not the hub, not a server.
	secrets := map[string]string{"admin": theHub.AdminToken}
	for name, tok := range tokens {
		secrets[name] = tok
	}
	for name, tok := range secrets {
		if bytes.Contains(theHub.Log(), []byte(tok)) {
			fmt.Fprintf(os.Stderr, "FAIL: the hub's log holds %s's token\n", name)
			code = 1
		}
	}
	return code, nil
}

// buildRouter builds jupyter-mcp-hub (the <hub>/services/mcp service).
func buildRouter(dir string) (string, error) {
	out := filepath.Join(dir, "jupyter-mcp-hub")
	build := exec.Command("go", "build", "-o", out, "./sidecar/cmd/jupyter-mcp-hub")
	build.Dir = labtest.RepoRoot()
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build jupyter-mcp-hub: %v\n%s", err, msg)
	}
	return out, nil
}

// hubProcess is a running JupyterHub with its proxy, culler and MCP router.
type hubProcess struct {
	URL        string // http://127.0.0.1:<port> (the proxy), no trailing slash
	AdminToken string
	Prefix     string // of the users' container and volume names
	cmd        *exec.Cmd
	exited     chan error
	logPath    string
	dir        string
	env        []string // of the hub's process, kept for a restart
}

func freePort() (int, error) {
	// Bound on every interface: the hub's API port must be free on the
	// Docker bridge too.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startHub starts JupyterHub with the repository's config (and env, more
// HUB_* settings) in dir and waits until its API answers through the proxy.
func startHub(dir, router string, env ...string) (*hubProcess, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	root := labtest.RepoRoot()
	chp := filepath.Join(root, "jupyter_config", "hub", "node_modules", ".bin", "configurable-http-proxy")
	for _, p := range []string{filepath.Join(root, ".hub", "venv", "bin", "python"), chp} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make hub-deps` (or `make test`) first", p)
		}
	}
	ports := map[string]int{}
	for _, name := range []string{"HUB_PORT", "HUB_API_PORT", "HUB_PROXY_API_PORT", "HUB_MCP_PORT"} {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[name] = p
	}
	h := &hubProcess{
		URL:        fmt.Sprintf("http://127.0.0.1:%d", ports["HUB_PORT"]),
		AdminToken: randomHex(24),
		Prefix:     "hubtest-" + randomHex(4),
		logPath:    filepath.Join(dir, "hub.log"),
		dir:        dir,
	}
	h.env = append(os.Environ(),
		"HUB_STATE_DIR="+dir,
		"HUB_ADMIN_TOKEN="+h.AdminToken,
		"HUB_IMAGE="+imageRepo+":"+imageTag,
		"HUB_NAME_PREFIX="+h.Prefix,
		"HUB_MCP_ROUTER="+router,
		"HUB_CHP="+chp,
	)
	for k, v := range ports {
		h.env = append(h.env, k+"="+strconv.Itoa(v))
	}
	h.env = append(h.env, env...)
	if err := h.launch(); err != nil {
		if h.cmd != nil {
			h.Stop()
		}
		return nil, err
	}
	return h, nil
}

// launch starts the hub's process (its log appended to hub.log) and waits
// until its API answers through the proxy.
func (h *hubProcess) launch() error {
	root := labtest.RepoRoot()
	logFile, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// As `make hub` starts it: JupyterHub through launch.py.
	cmd := exec.Command(filepath.Join(root, ".hub", "venv", "bin", "python"), filepath.Join(root, "jupyter_config", "hub", "launch.py"),
		"-f", filepath.Join(root, "jupyter_config", "hub", "jupyterhub_config.py"))
	cmd.Dir = h.dir
	cmd.Env = h.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: the proxy and the services go with it if the
	// hub has to be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	exited := make(chan error, 1)
	h.cmd, h.exited = cmd, exited
	go func() { exited <- cmd.Wait(); logFile.Close() }()

	err = poll(90*time.Second, func() (bool, error) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Errorf("JupyterHub exited early (%v):\n%s", err, labtest.Tail(h.Log(), 6<<10))
		default:
		}
		resp, err := http.Get(h.URL + "/hub/api/")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("JupyterHub not ready: %w", err)
	}
	return nil
}

// restart stops the hub's process as an operator would (SIGTERM: the hub
// stops its proxy and services itself, and leaves the users' servers
// running) and starts it again on the same ports, database and tokens.
// stopping runs right after the signal, while the hub stops; down runs
// between the two, with the hub down.
func (h *hubProcess) restart(stopping, down func() error) error {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	if err := stopping(); err != nil {
		return err
	}
	select {
	case err := <-h.exited:
		h.exited <- err
	case <-time.After(time.Minute):
		return errors.New("JupyterHub did not exit within a minute of SIGTERM")
	}
	if err := down(); err != nil {
		return err
	}
	return h.launch()
}

// Stop removes the users' containers (at once: the test needs nothing
// from them any more), stops the hub, then removes the users' volumes.
func (h *hubProcess) Stop() {
	docker := func(args ...string) string {
		out, _ := exec.Command("docker", args...).Output()
		return strings.TrimSpace(string(out))
	}
	if ids := docker("ps", "-aq", "--filter", "name=^"+h.Prefix+"-"); ids != "" {
		docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-h.exited:
		h.exited <- err
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		h.exited <- <-h.exited
	}
	if ids := docker("ps", "-aq", "--filter", "name=^"+h.Prefix+"-"); ids != "" {
		docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	if vols := docker("volume", "ls", "-q", "--filter", "name=^"+h.Prefix+"-"); vols != "" {
		docker(append([]string{"volume", "rm", "-f"}, strings.Fields(vols)...)...)
	}
}

// setting is the value of one of the hub's HUB_* settings, "" if unset.
func (h *hubProcess) setting(name string) string {
	for _, kv := range slices.Backward(h.env) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// Log is the hub's output so far (the proxy's, the culler's and the
// router's included).
func (h *hubProcess) Log() []byte {
	data, _ := os.ReadFile(h.logPath)
	return data
}

// api calls the hub's REST API (path after /hub/api) with a token and
// returns the status and body.
func (h *hubProcess) api(method, path, token string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.URL+"/hub/api"+path, r)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// userPath is the API path of name's user (the name escaped).
func userPath(name string) string { return "/users/" + url.PathEscape(name) }

func (h *hubProcess) createUser(name string) error {
	code, body, err := h.api(http.MethodPost, userPath(name), h.AdminToken, nil)
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("create user %s: %d %v %s", name, code, err, body)
	}
	return nil
}

// userToken makes a new API token for name, with the admin token.
func (h *hubProcess) userToken(name string) (string, error) {
	code, body, err := h.api(http.MethodPost, userPath(name)+"/tokens", h.AdminToken, map[string]any{"note": "hub test"})
	if err != nil || code != http.StatusCreated {
		return "", fmt.Errorf("token for %s: %d %v %s", name, code, err, body)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("token for %s: %s", name, body)
	}
	return out.Token, nil
}

// serverState is the user's default server as the hub sees it: "" (not
// running), "spawn", "stop" (pending) or "ready".
func (h *hubProcess) serverState(name string) (string, error) {
	code, body, err := h.api(http.MethodGet, userPath(name), h.AdminToken, nil)
	if err != nil || code != http.StatusOK {
		return "", fmt.Errorf("read user %s: %d %v %s", name, code, err, body)
	}
	var u struct {
		Servers map[string]struct {
			Ready   bool    `json:"ready"`
			Pending *string `json:"pending"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(body, &u); err != nil {
		return "", err
	}
	s, ok := u.Servers[""]
	switch {
	case !ok:
		return "", nil
	case s.Pending != nil:
		return *s.Pending, nil
	case s.Ready:
		return "ready", nil
	}
	return "", nil
}

// startServer starts name's server through the REST API (admin token) and
// waits until the hub says it is ready.
func (h *hubProcess) startServer(name string) error {
	code, body, err := h.api(http.MethodPost, userPath(name)+"/server", h.AdminToken, nil)
	if err != nil {
		return err
	}
	if code != http.StatusCreated && code != http.StatusAccepted && !(code == http.StatusBadRequest && bytes.Contains(body, []byte("already running"))) {
		return fmt.Errorf("start %s's server: %d %s", name, code, body)
	}
	return h.waitState(name, "ready", 2*time.Minute)
}

// stopServer stops name's server and waits until the hub has forgotten it.
func (h *hubProcess) stopServer(name string) error {
	code, body, err := h.api(http.MethodDelete, userPath(name)+"/server", h.AdminToken, nil)
	if err != nil {
		return err
	}
	if code != http.StatusNoContent && code != http.StatusAccepted && code != http.StatusBadRequest {
		return fmt.Errorf("stop %s's server: %d %s", name, code, body)
	}
	return h.waitState(name, "", time.Minute)
}

func (h *hubProcess) waitState(name, want string, d time.Duration) error {
	var last string
	err := poll(d, func() (bool, error) {
		s, err := h.serverState(name)
		last = s
		return s == want, err
	})
	if err != nil {
		return fmt.Errorf("%s's server: want state %q, last %q: %w", name, want, last, err)
	}
	return nil
}

// poll calls cond every 100 ms until it is true, fails, or d passes.
func poll(d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out after " + d.String())
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, not synchronising
	}
}

// connect opens an MCP session at <hub><path> with "Authorization: <auth>".
func connect(t testing.TB, path, auth string) *mcp.ClientSession {
	t.Helper()
	return theHub.connect(t, path, auth)
}

func (h *hubProcess) connect(t testing.TB, path, auth string) *mcp.ClientSession {
	t.Helper()
	return h.connectWith(t, path, auth, nil)
}

func (h *hubProcess) connectWith(t testing.TB, path, auth string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "hub-test", Version: "v0"}, opts)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:   h.URL + path,
		HTTPClient: labtest.AuthClient(auth),
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// whoami runs code on the user's kernel that prints JUPYTERHUB_USER, in a
// notebook of its own, and returns the printed name (any name: it is
// printed JSON-quoted).
func whoami(t *testing.T, cs *mcp.ClientSession, path string) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "create_notebook", Arguments: map[string]any{"path": path}})
	if err != nil {
		t.Fatalf("create_notebook: %v", err)
	}
	if res.IsError && !strings.Contains(labtest.ResultText(res), "exists") {
		t.Fatalf("create_notebook: %s", labtest.ResultText(res))
	}
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{
		"path": path, "code": `import json, os; print("user=" + json.dumps(os.environ["JUPYTERHUB_USER"]))`, "timeout": 120,
	}})
	if err != nil || res.IsError {
		t.Fatalf("execute_code: %v %v", err, res)
	}
	text := labtest.ResultText(res)
	i := strings.Index(text, "user=")
	if i < 0 {
		t.Fatalf("execute_code printed no user: %s", text)
	}
	var name string
	if err := json.NewDecoder(strings.NewReader(text[i+len("user="):])).Decode(&name); err != nil {
		t.Fatalf("execute_code printed no JSON name: %s", text)
	}
	return name
}

// post sends one JSON-RPC message to <hub><path> and returns the status.
func post(t *testing.T, path, auth, sessionID, body string) (int, string) {
	t.Helper()
	code, data, _ := postHeader(t, path, auth, sessionID, body)
	return code, data
}

// postHeader is post with the answer's headers.
func postHeader(t *testing.T, path, auth, sessionID, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, theHub.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if sessionID != "" {
		req.Header.Set("Mcp-Session-Id", sessionID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

// Audit is the MCP router's audit trail so far (one JSON line per request).
func (h *hubProcess) Audit() []byte {
	data, _ := os.ReadFile(filepath.Join(h.dir, "mcp-audit.log"))
	return data
}

// memory is the container's memory use as docker stats reports it.
func memory(t *testing.T, user string) string {
	t.Helper()
	out, err := exec.Command("docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", theHub.Prefix+"-"+user).Output()
	if err != nil {
		t.Fatalf("docker stats: %v", err)
	}
	return strings.TrimSpace(string(out))
}
