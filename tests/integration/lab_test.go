// Package integration drives a real JupyterLab, with the project's
// jupyter-server-proxy extension launching the freshly built sidecar,
// through <lab>/mcp with the go-sdk MCP client.
package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	shared     *labtest.Lab
	sidecarBin string // folder holding the race-enabled sidecar build
	labsDir    string // where extra labs of single tests live
)

func TestMain(m *testing.M) {
	code, err := runTests(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "sidecar-it-")
	if err != nil {
		return 0, err
	}
	keep := false // a failed run keeps the lab's files and log for a look
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	// The proxy extension launches "jupyter-mcp-sidecar" from the lab's
	// PATH: a fresh race-enabled build goes first on it.
	binDir, err := labtest.BuildSidecar(filepath.Join(tmp, "bin"), true)
	if err != nil {
		return 0, err
	}
	sidecarBin, labsDir = binDir, tmp
	lab, err := labtest.Start(binDir, filepath.Join(tmp, "lab"), "it-token-"+strconv.Itoa(os.Getpid()))
	if err != nil {
		return 0, err
	}
	defer lab.Stop()
	shared = lab
	code := m.Run()
	// The sidecar under test is built with -race; a race it hit is in the log.
	if data, err := os.ReadFile(lab.LogPath); err == nil && strings.Contains(string(data), "WARNING: DATA RACE") {
		fmt.Fprintln(os.Stderr, "the sidecar reported a data race (see the JupyterLab log below)")
		code = 1
	}
	if code != 0 {
		keep = true
		fmt.Fprintf(os.Stderr, "the lab's files and full log are kept in %s\n", tmp)
		if data, err := os.ReadFile(lab.LogPath); err == nil {
			fmt.Fprintf(os.Stderr, "---- JupyterLab log (last 8 KiB) ----\n%s\n", labtest.Tail(data, 8<<10))
		}
	}
	return code, nil
}

// ownLab starts a lab of the test's own (under labsDir, named name, with
// env) and opens an MCP session to it; both end with the test.
func ownLab(t *testing.T, name string, env ...string) (*labtest.Lab, *mcp.ClientSession) {
	t.Helper()
	return labtest.Open(t, sidecarBin, filepath.Join(labsDir, name), name+"-token", env...)
}

// session opens an authenticated MCP session at <lab>/mcp, closed at the
// end of the test.
func session(t *testing.T) *mcp.ClientSession {
	t.Helper()
	cs, err := shared.Connect(t.Context(), "mcp", "token "+shared.Token)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// postMCP posts a raw JSON-RPC body to <lab>/mcp with the lab's token and
// the headers MCP clients send; header adds or overrides some.
func postMCP(t *testing.T, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, shared.URL+"mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+shared.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
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
	return readLabFile(t, shared, rel)
}

func readLabFile(t *testing.T, lab *labtest.Lab, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lab.Root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// savedFile waits until the file at rel in lab satisfies ok and returns its
// text: an edit is in the room when its call returns, and the room writes
// the file in the background, within about a second (docs/design.md, Durability).
func savedFile(t *testing.T, lab *labtest.Lab, rel, what string, ok func(disk string) bool) string {
	t.Helper()
	var disk string
	eventually(t, rel+" on disk "+what, func() bool {
		data, err := os.ReadFile(filepath.Join(lab.Root, rel))
		disk = string(data)
		return err == nil && ok(disk)
	})
	return disk
}

// savedNotebook is savedFile for a notebook of the shared lab, as JSON.
func savedNotebook(t *testing.T, rel, what string, ok func(nb map[string]any) bool) map[string]any {
	t.Helper()
	var nb map[string]any
	savedFile(t, shared, rel, what, func(disk string) bool {
		nb = nil
		return json.Unmarshal([]byte(disk), &nb) == nil && ok(nb)
	})
	return nb
}

// cellsOf is the cells of a notebook read as JSON.
func cellsOf(nb map[string]any) []any {
	cells, _ := nb["cells"].([]any)
	return cells
}

// validateNotebook checks a notebook on disk with nbformat's own validator.
func validateNotebook(t *testing.T, rel string) {
	t.Helper()
	validateLabNotebook(t, shared, rel)
}

func validateLabNotebook(t *testing.T, lab *labtest.Lab, rel string) {
	t.Helper()
	py := filepath.Join(labtest.RepoRoot(), ".venv", "bin", "python")
	script := "import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); assert nb.nbformat_minor >= 5"
	if out, err := exec.Command(py, "-c", script, filepath.Join(lab.Root, rel)).CombinedOutput(); err != nil {
		t.Fatalf("%s is not valid nbformat 4.5: %v\n%s", rel, err, out)
	}
}
