package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// The official Python MCP SDK, as an agent built on it would use the
// sidecar, in both of its ways to connect: its default, which discovers
// 2026-07-28 (no session, so the call names its notebook), and the
// initialize handshake (2025-11-25). Through the proxy, its progress
// callback gets each output line while the cell still runs (the cell waits
// for the test after each line, and the test lets it go on only once the
// SDK reported the line). Then code waiting on input() asks the SDK's
// elicitation callback for the line (2026-07-28: an input_required result
// the SDK answers by retrying; 2025-11-25: an elicitation request).
func TestPythonSDKGetsProgress(t *testing.T) {
	python := filepath.Join(labtest.RepoRoot(), ".venv-clients", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: run `make clients` (or `make test`)", python)
	}
	modes := []struct{ mode, protocol string }{{"auto", "2026-07-28"}, {"legacy", "2025-11-25"}}
	gates := make([]gate, len(modes))
	var cells []string
	for i := range modes {
		gates[i] = newGate(t)
		cells = append(cells, gates[i].code("line", 2))
	}
	// One notebook, so one kernel, for both: cell c<i> for mode i.
	codeNotebook(t, "exec/python-sdk.ipynb", cells...)
	for i, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			p := startClient(t, python, filepath.Join(labtest.RepoRoot(), "tests", "clients", "python_progress.py"),
				shared.URL+"mcp", shared.Token, "exec/python-sdk.ipynb", "c"+strconv.Itoa(i), m.mode)
			if line := p.next(t); line != "protocol "+m.protocol {
				t.Fatalf("first line %q, want protocol %s", line, m.protocol)
			}
			p.gatedRun(t, gates[i], 2)
			// input() is asked of the client, which answers "Ada".
			if line := p.next(t); !strings.HasPrefix(line, "asked ") || !strings.Contains(line, "Your name?") {
				t.Fatalf("%q, want the elicitation for the input() prompt", line)
			}
			if line := p.next(t); !strings.HasPrefix(line, "input ok ") || !strings.Contains(line, "hello Ada") {
				t.Fatalf("%q, want the run's result with the answer", line)
			}
			p.wait(t)
		})
	}
}

// The official TypeScript MCP SDK (tests/conformance, pinned) in each
// protocol version it speaks that this server speaks too: it lists the
// tools, gets each output line as progress while the cell still runs
// (gated as above), and aborting a running execute_cell (the SDK sends
// notifications/cancelled) interrupts the kernel, which get_execution
// reports. The SDK also speaks 2024-10-07, which this server answers with
// 2025-11-25 (the spec's negotiation), the first case again; it does not
// speak 2026-07-28.
func TestTypeScriptSDK(t *testing.T) {
	node := conformanceNode(t) // the SDK needs Node >= 18: the suite's Node does
	script := filepath.Join(labtest.RepoRoot(), "tests", "conformance", "ts_client.mjs")
	versions := []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
	gates := make([]gate, len(versions))
	var cells []string
	for i := range versions {
		gates[i] = newGate(t)
		cells = append(cells, gates[i].code("line", 2), "print('spinning', flush=True)\nwhile True:\n    pass")
	}
	// One notebook, so one kernel, for all: cells c<2i> and c<2i+1> for version i.
	codeNotebook(t, "exec/ts-sdk.ipynb", cells...)
	p := startClient(t, node, append([]string{script, shared.URL + "mcp", shared.Token, "exec/ts-sdk.ipynb"}, versions...)...)
	for i, v := range versions {
		for _, want := range []string{"version " + v, "protocol " + v} {
			if line := p.next(t); line != want {
				t.Fatalf("%q, want %q", line, want)
			}
		}
		if n, _ := strconv.Atoi(strings.TrimPrefix(p.next(t), "tools ")); n < 20 {
			t.Fatalf("%s: tools/list gave %d tools", v, n)
		}
		p.gatedRun(t, gates[i], 2)
		id := strings.TrimPrefix(p.until(t, "cancelled "), "cancelled ")
		var got execOut
		if err := json.Unmarshal([]byte(strings.TrimPrefix(p.until(t, "execution "), "execution ")), &got); err != nil {
			t.Fatal(err)
		}
		loop := fmt.Sprintf("c%d", 2*i+1)
		if got.ExecutionID != id || got.Status != "interrupted" || len(got.Cells) != 1 || got.Cells[0].CellID != loop || got.Cells[0].Note != "cancelled by the client" {
			t.Fatalf("%s: after the abort: %+v, want %s interrupted with the note \"cancelled by the client\"", v, got, loop)
		}
	}
	p.wait(t)
}

// clientProc is a client SDK script whose output lines the test follows.
type clientProc struct {
	cmd    *exec.Cmd
	lines  *bufio.Scanner
	stderr *strings.Builder
}

func startClient(t *testing.T, name string, args ...string) *clientProc {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	p := &clientProc{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.lines = bufio.NewScanner(out)
	return p
}

func (p *clientProc) next(t *testing.T) string {
	t.Helper()
	if !p.lines.Scan() {
		t.Fatalf("the client ended early: %v\n%s", p.cmd.Wait(), p.stderr)
	}
	return p.lines.Text()
}

// until skips lines up to the first that starts with prefix.
func (p *clientProc) until(t *testing.T, prefix string) string {
	t.Helper()
	for {
		if line := p.next(t); strings.HasPrefix(line, prefix) {
			return line
		}
	}
}

// gatedRun follows a call of execute_cell on g.code("line", n): the
// progress naming each line must come before the result, and only then does
// the cell go on; the result must be ok.
func (p *clientProc) gatedRun(t *testing.T, g gate, n int) {
	t.Helper()
	for i := range n {
		want := fmt.Sprintf("last: line %d", i)
		for {
			line := p.next(t)
			if strings.HasPrefix(line, "result ") {
				t.Fatalf("the result came before progress naming %q: %s", want, line)
			}
			if strings.HasPrefix(line, "progress ") && strings.Contains(line, want) {
				break
			}
		}
		g.open(t, i)
	}
	if line := p.until(t, "result "); !strings.HasPrefix(line, "result ok ") {
		t.Fatalf("%s", line)
	}
}

func (p *clientProc) wait(t *testing.T) {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("the client failed: %v\n%s", err, p.stderr)
	}
}
