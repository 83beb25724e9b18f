// Package labtest starts a real JupyterLab for tests and benchmarks: the
// pinned environment in .venv, the project's proxy extension, and a
// sidecar freshly built from source, on a free port with isolated Jupyter
// directories.
package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Lab is a running JupyterLab for tests.
type Lab struct {
	URL   string // e.g. http://127.0.0.1:41234/
	Token string
	Root  string // the server's root_dir
	// RuntimeDir holds the server's runtime files and its kernels'
	// connection files.
	RuntimeDir string
	// LogPath is the lab's combined stdout and stderr (the sidecar logs there too).
	LogPath string
	PID     int
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	logFile *os.File
}

// ChildPIDs lists the processes whose parent is ppid.
func ChildPIDs(ppid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// SidecarPID is the pid of the lab's sidecar (its child running the
// jupyter-mcp-sidecar binary), or 0 when none runs.
func (l *Lab) SidecarPID() int {
	for _, pid := range ChildPIDs(l.PID) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == "jupyter-mcp-sidecar" {
			return pid
		}
	}
	return 0
}

// Stop interrupts the lab and waits for it to exit.
func (l *Lab) Stop() {
	// Jupyter asks for confirmation on the first ^C, so send two.
	l.end(10*time.Second, os.Interrupt, os.Interrupt)
}

// Terminate sends one SIGTERM, as docker stop and process managers do, and
// waits up to grace for the lab to exit by itself; then it kills the lab and
// reports that it had to.
func (l *Lab) Terminate(grace time.Duration) (killed bool) {
	return l.end(grace, syscall.SIGTERM)
}

func (l *Lab) end(grace time.Duration, signals ...os.Signal) (killed bool) {
	for _, sig := range signals {
		_ = l.cmd.Process.Signal(sig)
	}
	select {
	case <-l.done:
	case <-time.After(grace):
		killed = true
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	l.logFile.Close()
	return killed
}

// Start starts JupyterLab from the repository's .venv on a free port with
// isolated Jupyter dirs, binDir first on its PATH, and waits until its API
// answers.
// env adds variables to the lab's environment (the sidecar inherits it).
func Start(binDir, dir, token string, env ...string) (*Lab, error) {
	return StartFrom(Setup{Path: binDir + string(os.PathListSeparator) + os.Getenv("PATH")}, dir, token, env...)
}

// Setup says which Python environment a lab runs from and what PATH it sees.
type Setup struct {
	Venv string // the environment holding bin/jupyter; "" is the repository's .venv
	Path string // the lab's PATH (the sidecar and kernels inherit it); "" keeps the test's
	Port int    // the port to listen on; 0 picks a free one (a restarted lab reuses its port)
}

// StartFrom is Start with the lab's environment and PATH given by s.
func StartFrom(s Setup, dir, token string, env ...string) (*Lab, error) {
	venv := s.Venv
	if venv == "" {
		venv = filepath.Join(RepoRoot(), ".venv")
	}
	jupyterBin := filepath.Join(venv, "bin", "jupyter")
	if _, err := os.Stat(jupyterBin); err != nil {
		return nil, fmt.Errorf("%s is missing: run `make venv` (or `make test`) first", jupyterBin)
	}
	if s.Venv == "" {
		// The proxy extension from this checkout, not the copy installed
		// in the repository's .venv when it was made. (Another environment
		// is tested with what it has installed: the wheel tests.)
		env = append(env, "PYTHONPATH="+strings.TrimSuffix(filepath.Join(RepoRoot(), "jupyter_config")+string(os.PathListSeparator)+os.Getenv("PYTHONPATH"), string(os.PathListSeparator)))
	}
	path := s.Path
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, d := range []string{"root", "runtime", "config", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// The "Agent changes" sidebar from this checkout (make labextension),
	// not the copy installed in the repository's .venv: JUPYTER_PATH comes
	// first among JupyterLab's extension paths (the data dir does not: in a
	// virtualenv jupyter_core prefers the environment's). Another
	// environment keeps what it has installed, as with PYTHONPATH above.
	if built := filepath.Join(RepoRoot(), "jupyter_config", "labextension", "dist"); s.Venv == "" && fileExists(filepath.Join(built, "package.json")) {
		ours := filepath.Join(dir, "checkout")
		if err := os.MkdirAll(filepath.Join(ours, "labextensions"), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(built, filepath.Join(ours, "labextensions", "jupyter-mcp-sidecar-changes")); err != nil && !os.IsExist(err) {
			return nil, err
		}
		env = append(env, "JUPYTER_PATH="+ours)
	}
	logPath := filepath.Join(dir, "lab.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"lab", "--no-browser", "--ip=127.0.0.1", "--port=" + strconv.Itoa(s.Port), "--ServerApp.port_retries=0",
		"--IdentityProvider.token=" + token,
		"--ServerApp.root_dir=" + filepath.Join(dir, "root"),
		"--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"}
	// This checkout's JupyterLab defaults (overrides.d), as the wheel
	// installs them in the environment's app settings directory.
	if s.Venv == "" {
		args = append(args, "--LabApp.app_settings_dir="+filepath.Join(RepoRoot(), "jupyter_config", "jupyter-config", "lab-settings"))
	}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	cmd := exec.Command(jupyterBin, args...)
	cmd.Env = append(os.Environ(),
		"PATH="+path,
		"JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"JUPYTER_DATA_DIR="+filepath.Join(dir, "data"),
		"JUPYTER_TOKEN=", // the token comes from the flag only
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir // the collaboration store (.jupyter_ystore.db) goes to the working directory
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lab := &Lab{Token: token, Root: filepath.Join(dir, "root"), RuntimeDir: filepath.Join(dir, "runtime"), LogPath: logPath, PID: cmd.Process.Pid,
		cmd: cmd, done: make(chan struct{}), logFile: logFile}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(lab.done) }()

	// The server writes jpserver-<pid>.json once it listens; it holds the
	// port it picked.
	runtimeFile := filepath.Join(dir, "runtime", "jpserver-"+strconv.Itoa(cmd.Process.Pid)+".json")
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-lab.done:
			data, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("JupyterLab exited early (%v):\n%s", waitErr, Tail(data, 4<<10))
		default:
		}
		if data, err := os.ReadFile(runtimeFile); err == nil {
			var info struct {
				Port int `json:"port"`
			}
			if json.Unmarshal(data, &info) == nil && info.Port != 0 {
				lab.URL = fmt.Sprintf("http://127.0.0.1:%d/", info.Port)
				if lab.apiReady() {
					return lab, nil
				}
			}
		}
		if time.Now().After(deadline) {
			lab.Stop()
			return nil, fmt.Errorf("JupyterLab not ready after 90 s; log: %s", logPath)
		}
		time.Sleep(100 * time.Millisecond) // polling for readiness, not synchronising a test
	}
}

func (l *Lab) apiReady() bool {
	req, _ := http.NewRequest(http.MethodGet, l.URL+"api/status", nil)
	req.Header.Set("Authorization", "token "+l.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	header http.Header
	base   http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.base.RoundTrip(r)
}

// AuthClient is an HTTP client that sends "Authorization: <auth>" (none if
// auth is empty).
func AuthClient(auth string) *http.Client {
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return &http.Client{Transport: headerTransport{header: h, base: http.DefaultTransport}}
}

// Connect opens an MCP session on endpoint (relative to the lab URL),
// sending "Authorization: <auth>".
func (l *Lab) Connect(ctx context.Context, endpoint, auth string) (*mcp.ClientSession, error) {
	return l.ConnectWith(ctx, endpoint, auth, nil)
}

// Open starts a lab (as Start) and an MCP session to it with the lab's
// token, both ended with the test or benchmark.
func Open(tb testing.TB, binDir, dir, token string, env ...string) (*Lab, *mcp.ClientSession) {
	tb.Helper()
	lab, err := Start(binDir, dir, token, env...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lab.Stop)
	cs, err := lab.Connect(tb.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cs.Close() })
	return lab, cs
}

// SessionProtocol is the protocol version tests speak unless they test
// another: the newest one with sessions, which most clients in use speak and
// whose "current notebook" many tests rely on. (go-sdk's client would pick
// 2026-07-28, which has no sessions; tests of it say so.)
const SessionProtocol = "2025-11-25"

// ConnectWith is Connect with client options (progress handlers...).
func (l *Lab) ConnectWith(ctx context.Context, endpoint, auth string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	return l.ConnectProtocol(ctx, endpoint, auth, SessionProtocol, opts)
}

// ConnectProtocol connects asking for protocol version ("" lets the client
// pick its newest).
func (l *Lab) ConnectProtocol(ctx context.Context, endpoint, auth, version string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "labtest", Version: "v0"}, opts)
	return c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   l.URL + endpoint,
		HTTPClient: AuthClient(auth),
		MaxRetries: -1,
	}, &mcp.ClientSessionOptions{ProtocolVersion: version})
}

// BuildSidecar builds the sidecar from source into dir (with the race
// detector when race is true) and returns dir.
func BuildSidecar(dir string, race bool) (string, error) {
	args := []string{"build", "-o", filepath.Join(dir, "jupyter-mcp-sidecar")}
	if race {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./sidecar/cmd/jupyter-mcp-sidecar")...)
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sidecar: %v\n%s", err, out)
	}
	return dir, nil
}

// Tail returns the last n bytes of b.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Call calls a tool that must succeed and decodes its structured result.
func Call[T any](t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) T {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s(%v) failed: %s", tool, args, ResultText(res))
	}
	var out T
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: decode structured result %s: %v", tool, data, err)
	}
	return out
}

// CallErr calls a tool that must fail with a tool error containing want.
func CallErr(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any, want string) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded, want error containing %q: %s", tool, args, want, ResultText(res))
	}
	if got := ResultText(res); !strings.Contains(got, want) {
		t.Fatalf("%s(%v) error = %q, want it to contain %q", tool, args, got, want)
	}
}

// ResultText joins the text content of a tool result.
func ResultText(res *mcp.CallToolResult) string {
	if res == nil { // the call failed before it had a result
		return ""
	}
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// CheckCookieXSRF POSTs an MCP initialize to serverURL+"mcp" with browser
// (a client whose jar holds the server's login and _xsrf cookies) and
// checks the sidecar's XSRF rule: the cookie alone, the cookie with a wrong
// token and the cookie with a forged copy of the proxy's verdict header are
// refused with 403 and open no session; with the _xsrf cookie's value as
// X-XSRFToken it goes through. So does a request without cookies that
// carries token (the server's or the user's) in the URL, as Jupyter needs
// no XSRF token with a token.
func CheckCookieXSRF(t *testing.T, browser *http.Client, serverURL, token string) {
	t.Helper()
	server, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	xsrf := ""
	for _, c := range browser.Jar.Cookies(server) {
		if c.Name == "_xsrf" {
			xsrf = c.Value
		}
	}
	if xsrf == "" {
		t.Fatalf("%s set no _xsrf cookie (cookies: %v)", serverURL, browser.Jar.Cookies(server))
	}
	mcpURL := serverURL + "mcp"
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"page","version":"0"}}}`
	for _, tc := range []struct {
		name   string
		client *http.Client
		query  string
		header map[string]string
		want   int
	}{
		{"login cookie only", browser, "", nil, http.StatusForbidden},
		{"login cookie and another token", browser, "", map[string]string{"X-XSRFToken": "2|00|00|0"}, http.StatusForbidden},
		{"login cookie and a forged proxy verdict", browser, "", map[string]string{"X-Jupyter-MCP-Auth": "token"}, http.StatusForbidden},
		{"login cookie and its XSRF token", browser, "", map[string]string{"X-XSRFToken": xsrf}, http.StatusOK},
		{"token in the URL", http.DefaultClient, "?token=" + url.QueryEscape(token), nil, http.StatusOK},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, mcpURL+tc.query, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := tc.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s (%.200s), want %d", tc.name, resp.Status, data, tc.want)
		}
		if tc.want == http.StatusForbidden && resp.Header.Get("Mcp-Session-Id") != "" {
			t.Errorf("%s: an MCP session was created", tc.name)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Node is the pinned Node 22 that tests/conformance installs (`make
// clients`), which runs the official TypeScript SDK's client scripts and
// the conformance suite (it needs fs.globSync, which Node 20 lacks).
func Node(t testing.TB) string {
	t.Helper()
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	node := filepath.Join(RepoRoot(), "tests", "conformance", "node_modules", "node-linux-"+arch, "bin", "node")
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("%s is missing: run `make clients` (or `make test`)", node)
	}
	return node
}
