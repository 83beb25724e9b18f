package container

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/testcontainers/testcontainers-go"
)

type insertOut struct {
	CellID    string `json:"cell_id"`
	Execution struct {
		Status string `json:"status"`
	} `json:"execution"`
}

type cellView struct {
	ID             string   `json:"id"`
	Source         string   `json:"source"`
	ExecutionCount *int     `json:"execution_count"`
	Outputs        []string `json:"outputs"`
}

type listOut struct {
	Entries []struct {
		Path string `json:"path"`
	} `json:"entries"`
}

// createAndRun creates path through MCP, inserts a cell that prints 42 and
// runs it on the notebook's kernel in the container, and checks the output
// saved in the notebook.
func createAndRun(t *testing.T, cs *mcp.ClientSession, path string) {
	t.Helper()
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": path})
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": path, "source": "print(6 * 7)", "execute": true, "timeout": 120})
	if ins.Execution.Status != "ok" {
		t.Fatalf("insert_cell execute=true: %+v", ins)
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": path, "cell_id": ins.CellID})
	if cell.ExecutionCount == nil || len(cell.Outputs) != 1 || cell.Outputs[0] != "42\n" {
		t.Fatalf("cell after the run = %+v", cell)
	}
}

func notebooks(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	var paths []string
	for _, e := range labtest.Call[listOut](t, cs, "list_notebooks", nil).Entries {
		paths = append(paths, e.Path)
	}
	return paths
}

// The whole path through the container's published port: token check in
// Jupyter, the proxy, the sidecar, the Contents API and a kernel.
func TestCreateInsertExecute(t *testing.T) {
	cs := shared.session(t)
	createAndRun(t, cs, "roundtrip.ipynb")
	if got := notebooks(t, cs); !slices.Contains(got, "roundtrip.ipynb") {
		t.Fatalf("list_notebooks = %v", got)
	}
	// The file is in the work dir, owned by the notebook user (uid 1000).
	code, out, err := shared.Exec(t.Context(), "stat", "-c", "%u", workDir+"/roundtrip.ipynb")
	if err != nil || code != 0 || strings.TrimSpace(out) != "1000" {
		t.Fatalf("stat in the container: %d %q %v", code, out, err)
	}
}

func TestTokenRequired(t *testing.T) {
	for _, tc := range []struct{ name, auth string }{
		{"no token", ""},
		{"wrong token", "token " + randomToken()},
		{"wrong bearer", "Bearer wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := status(t, shared.URL+"mcp", tc.auth); code != http.StatusForbidden {
				t.Fatalf("POST /mcp: %d, want 403", code)
			}
			if cs, err := shared.Connect(t.Context(), tc.auth); err == nil {
				cs.Close()
				t.Fatal("MCP session opened without the right token")
			}
		})
	}
	if code := status(t, shared.URL+"mcp", "Bearer "+shared.Token); code == http.StatusForbidden {
		t.Fatal("the right token is refused")
	}
}

// The process tree in the container: tini, then Jupyter as uid 1000.
func TestRunsAsNotebookUser(t *testing.T) {
	code, out, err := shared.Exec(t.Context(), "sh", "-c", "id -u; cat /proc/1/comm; command -v jupyterhub-singleuser")
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, out)
	}
	if f := strings.Fields(out); len(f) != 3 || f[0] != "1000" || f[1] != "tini" {
		t.Fatalf("uid, PID 1, jupyterhub-singleuser = %q", out)
	}
	// The image's HEALTHCHECK command.
	if code, out, err := shared.Exec(t.Context(), "jupyter-mcp-healthcheck"); err != nil || code != 0 {
		t.Fatalf("health check: %d %v %s", code, err, out)
	}
}

// The image installs the jupyter-mcp-sidecar wheel, and runs the sidecar in
// it, whose version is the wheel's.
func TestInstalledFromWheel(t *testing.T) {
	code, out, err := shared.Exec(t.Context(), "sh", "-c",
		`python3 -c 'import importlib.metadata as m; print(m.version("jupyter-mcp-sidecar"))'; jupyter-mcp-sidecar --version; readlink -f "$(command -v jupyter-mcp-sidecar)"`)
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, out)
	}
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != f[1] || !strings.HasSuffix(f[2], "/site-packages/jupyter_mcp_sidecar_proxy/bin/jupyter-mcp-sidecar") {
		t.Fatalf("wheel version, sidecar --version, sidecar path = %q", f)
	}
}

// The server starts without building jsonschema's "iri" format parsers
// (rfc3987-syntax builds ~35 Lark parsers as it is imported: most of a
// second of every start), which no Jupyter schema uses.
func TestServerImportsNoIRIParsers(t *testing.T) {
	code, out, err := shared.Exec(t.Context(), "python3", "-c",
		`import sys, jupyterhub.singleuser, jupyter_server.serverapp; print(sorted(m for m in sys.modules if m.startswith("rfc3987")))`)
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, out)
	}
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("importing the server loads %s; want none of rfc3987's checkers", strings.TrimSpace(out))
	}
}

// The image's JupyterLab has the "Agent changes" sidebar the wheel ships.
func TestSidebarExtensionInstalled(t *testing.T) {
	code, out, err := shared.Exec(t.Context(), "jupyter", "labextension", "list")
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v %s", code, err, out)
	}
	plain := regexp.MustCompile(`\x1b\[[0-9;]*m`).ReplaceAllString(out, "")
	if !regexp.MustCompile(`(?m)^\s*jupyter-mcp-sidecar-changes v\S+ enabled OK`).MatchString(plain) {
		t.Fatalf("jupyter labextension list does not show the sidebar enabled and OK:\n%s", plain)
	}
}

var printedToken = regexp.MustCompile(`/lab\?token=([0-9a-f]{48})`)

// A container started without a token generates one and prints it; the lab
// is never open. A second container on the same volume (with a token of
// its own) still has the notebooks of the first.
func TestGeneratedTokenAndVolume(t *testing.T) {
	ctx := t.Context()
	volume := "jupyter-mcp-sidecar-test-" + randomToken()[:12]
	first, err := startLab(ctx, labOptions{volume: volume})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The last container removes the volume with it.
		_ = first.c.Terminate(context.Background(), testcontainers.RemoveVolumes(volume))
	}()
	m := printedToken.FindStringSubmatch(first.Logs())
	if m == nil {
		t.Fatalf("no generated token printed:\n%s", first.Logs())
	}
	first.Token = m[1]
	if code := status(t, first.URL+"mcp", ""); code != http.StatusForbidden {
		t.Fatalf("POST /mcp without token: %d, want 403", code)
	}
	cs := first.session(t)
	createAndRun(t, cs, "kept.ipynb") // the sidecar is now in the notebook's room
	cs.Close()
	// docker stop: SIGTERM, and SIGKILL after the grace period. The lab must
	// exit by itself (0, or 143 for SIGTERM), not be killed (137).
	grace := 30 * time.Second
	if err := first.c.Stop(ctx, &grace); err != nil {
		t.Fatal(err)
	}
	st, err := first.c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 0 && st.ExitCode != 143 {
		t.Fatalf("docker stop: exit code %d, want 0 or 143; logs:\n%s", st.ExitCode, labtest.Tail([]byte(first.Logs()), 4<<10))
	}

	second, err := startLab(ctx, labOptions{token: randomToken(), volume: volume})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Terminate()
	cs = second.session(t)
	if got := notebooks(t, cs); !slices.Contains(got, "kept.ipynb") {
		t.Fatalf("after restart list_notebooks = %v", got)
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "kept.ipynb", "index": -1})
	if cell.Source != "print(6 * 7)" || len(cell.Outputs) != 1 || cell.Outputs[0] != "42\n" {
		t.Fatalf("cell after restart = %+v", cell)
	}
	// The first container's token is not valid for the second.
	if code := status(t, second.URL+"mcp", "token "+first.Token); code != http.StatusForbidden {
		t.Fatalf("old token: %d, want 403", code)
	}
}
