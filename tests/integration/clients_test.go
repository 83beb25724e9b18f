package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// The official Python MCP SDK, as an agent built on it would use the
// sidecar: it connects through the proxy, and its progress callback gets
// each output line while the cell still runs (the cell waits for the test
// after each line, and the test lets it go on only once the SDK reported
// the line).
func TestPythonSDKGetsProgress(t *testing.T) {
	python := filepath.Join(labtest.RepoRoot(), ".venv-clients", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: run `make clients` (or `make test`)", python)
	}
	g := newGate(t)
	codeNotebook(t, "exec/python-sdk.ipynb", g.code("line", 2))
	cmd := exec.CommandContext(t.Context(), python, filepath.Join(labtest.RepoRoot(), "tests", "clients", "python_progress.py"),
		shared.URL+"mcp", shared.Token, "exec/python-sdk.ipynb", "c0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the Python client ended early: %v\n%s", cmd.Wait(), stderr.String())
		}
		return lines.Text()
	}
	if line := next(); !strings.HasPrefix(line, "protocol ") {
		t.Fatalf("first line %q", line)
	}
	for i := range 2 {
		want := fmt.Sprintf("last: line %d", i)
		for {
			line := next()
			if strings.HasPrefix(line, "result ") {
				t.Fatalf("the result came before progress naming %q: %s", want, line)
			}
			if strings.HasPrefix(line, "progress ") && strings.Contains(line, want) {
				break
			}
		}
		g.open(t, i)
	}
	for {
		line := next()
		if strings.HasPrefix(line, "result ") {
			if !strings.HasPrefix(line, "result ok ") {
				t.Fatalf("%s", line)
			}
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the Python client failed: %v\n%s", err, stderr.String())
	}
}
