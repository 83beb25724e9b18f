// Package integration drives a real JupyterLab, with the project's
// jupyter-server-proxy extension launching the freshly built sidecar,
// through <lab>/mcp with the go-sdk MCP client.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// repoRoot is the directory holding go.mod.
func repoRoot() string {
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
	log   string
}

var shared *Lab

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	root := repoRoot()
	jupyterBin := filepath.Join(root, ".venv", "bin", "jupyter")
	if _, err := os.Stat(jupyterBin); err != nil {
		return 0, fmt.Errorf("%s is missing: run `make venv` (or `make test`) first", jupyterBin)
	}
	tmp, err := os.MkdirTemp("", "sidecar-it-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	// Build the sidecar from source into a folder put first on the lab's
	// PATH: the proxy extension launches "jupyter-mcp-sidecar" from PATH.
	binDir := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-race", "-o", filepath.Join(binDir, "jupyter-mcp-sidecar"), "./sidecar/cmd/jupyter-mcp-sidecar")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build sidecar: %v\n%s", err, out)
	}
	lab, stop, err := startLab(jupyterBin, binDir, filepath.Join(tmp, "lab"), "it-token-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return 0, err
	}
	defer stop()
	shared = lab
	code := m.Run()
	if code != 0 {
		if data, err := os.ReadFile(lab.log); err == nil {
			fmt.Fprintf(os.Stderr, "---- JupyterLab log (last 8 KiB) ----\n%s\n", tail(data, 8<<10))
		}
	}
	return code, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// startLab starts JupyterLab on a free port with isolated Jupyter dirs and
// waits until its API answers.
func startLab(jupyterBin, binDir, dir, token string) (*Lab, func(), error) {
	for _, d := range []string{"root", "runtime", "config", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, nil, err
		}
	}
	logPath := filepath.Join(dir, "lab.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	args := []string{"lab", "--no-browser", "--ip=127.0.0.1", "--port=0",
		"--IdentityProvider.token=" + token,
		"--ServerApp.root_dir=" + filepath.Join(dir, "root"),
		"--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	cmd := exec.Command(jupyterBin, args...)
	cmd.Env = append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"JUPYTER_RUNTIME_DIR="+filepath.Join(dir, "runtime"),
		"JUPYTER_CONFIG_DIR="+filepath.Join(dir, "config"),
		"JUPYTER_DATA_DIR="+filepath.Join(dir, "data"),
		"JUPYTER_TOKEN=", // the token comes from the flag only
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Process.Signal(os.Interrupt) // Jupyter asks for confirmation on the first ^C
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	}

	// The server writes jpserver-<pid>.json once it listens; it holds the
	// port it picked.
	runtimeFile := filepath.Join(dir, "runtime", "jpserver-"+strconv.Itoa(cmd.Process.Pid)+".json")
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			data, _ := os.ReadFile(logPath)
			return nil, nil, fmt.Errorf("JupyterLab exited early (%v):\n%s", err, tail(data, 4<<10))
		default:
		}
		if data, err := os.ReadFile(runtimeFile); err == nil {
			var info struct {
				Port int `json:"port"`
			}
			if json.Unmarshal(data, &info) == nil && info.Port != 0 {
				lab := &Lab{URL: fmt.Sprintf("http://127.0.0.1:%d/", info.Port), Token: token, Root: filepath.Join(dir, "root"), log: logPath}
				if lab.apiReady() {
					return lab, stop, nil
				}
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("JupyterLab not ready after 90 s; log: %s", logPath)
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

// authClient is an HTTP client that sends "Authorization: <auth>" (none if
// auth is empty).
func authClient(auth string) *http.Client {
	h := http.Header{}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return &http.Client{Transport: headerTransport{header: h, base: http.DefaultTransport}}
}

// connect opens an MCP session on endpoint (relative to the lab URL).
func (l *Lab) connect(ctx context.Context, endpoint, auth string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "integration-test", Version: "v0"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   l.URL + endpoint,
		HTTPClient: authClient(auth),
		MaxRetries: -1,
	}, nil)
}

// session opens an authenticated MCP session at <lab>/mcp, closed at the
// end of the test.
func session(t *testing.T) *mcp.ClientSession {
	t.Helper()
	cs, err := shared.connect(t.Context(), "mcp", "token "+shared.Token)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool that must succeed and decodes its structured result.
func call[T any](t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) T {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	if res.IsError {
		t.Fatalf("%s(%v) failed: %s", tool, args, resultText(res))
	}
	var out T
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: decode structured result %s: %v", tool, data, err)
	}
	return out
}

// callErr calls a tool that must fail with a tool error containing want.
func callErr(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any, want string) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded, want error containing %q: %s", tool, args, want, resultText(res))
	}
	if got := resultText(res); !strings.Contains(got, want) {
		t.Fatalf("%s(%v) error = %q, want it to contain %q", tool, args, got, want)
	}
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// writeFile creates a file under the lab's root.
func writeFile(t *testing.T, rel, content string) string {
	t.Helper()
	p := filepath.Join(shared.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(shared.Root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// validateNotebook checks a notebook on disk with nbformat's own validator.
func validateNotebook(t *testing.T, rel string) {
	t.Helper()
	py := filepath.Join(repoRoot(), ".venv", "bin", "python")
	script := "import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); assert nb.nbformat_minor >= 5"
	if out, err := exec.Command(py, "-c", script, filepath.Join(shared.Root, rel)).CombinedOutput(); err != nil {
		t.Fatalf("%s is not valid nbformat 4.5: %v\n%s", rel, err, out)
	}
}
