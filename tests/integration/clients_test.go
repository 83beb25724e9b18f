package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
// initialize handshake (2025-11-25). Through the proxy, in each: its
// progress callback gets each output line while the cell still runs (the
// cell waits for the test after each line, and the test lets it go on only
// once the SDK reported the line); cancelling a running call (the asyncio
// task of call_tool: under 2026-07-28 the SDK closes the request's stream,
// under 2025-11-25 it sends notifications/cancelled) interrupts the kernel;
// code waiting on input() asks the SDK's elicitation callback for the line
// (2026-07-28: an input_required result the SDK answers by retrying;
// 2025-11-25: an elicitation request); and a notebook read as a resource and
// subscribed to (2026-07-28: Client.listen, a subscriptions/listen stream;
// 2025-11-25: resources/subscribe) is told of a person's edit in JupyterLab,
// which a re-read shows. Tasks are not tested: the SDK (2.3.0) has no client
// methods for tasks (only the 2025-11-25 task types), and the server's tasks
// are the 2026-07-28 extension (SEP-2663).
func TestPythonSDK(t *testing.T) {
	python := filepath.Join(labtest.RepoRoot(), ".venv-clients", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: run `make clients` (or `make test`)", python)
	}
	modes := []struct{ mode, protocol string }{{"auto", "2026-07-28"}, {"legacy", "2025-11-25"}}
	gates := make([]gate, len(modes))
	var cells []string
	for i := range modes {
		gates[i] = newGate(t)
		cells = append(cells, gates[i].code("line", 2), spinCell)
	}
	// One notebook, so one kernel, for both: cells c<2i> and c<2i+1> for mode i.
	codeNotebook(t, "exec/python-sdk.ipynb", cells...)
	live := livePath("python-sdk")
	codeNotebook(t, live, "first = 1")
	page := browser(t, live)
	for i, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			p := startClient(t, python, filepath.Join(labtest.RepoRoot(), "tests", "clients", "python_client.py"),
				shared.URL+"mcp", shared.Token, "exec/python-sdk.ipynb", fmt.Sprintf("c%d", 2*i), fmt.Sprintf("c%d", 2*i+1), live, m.mode)
			if line := p.next(t); line != "protocol "+m.protocol {
				t.Fatalf("first line %q, want protocol %s", line, m.protocol)
			}
			p.gatedRun(t, gates[i], 2)
			p.cancelled(t, fmt.Sprintf("c%d", 2*i+1))
			p.inputAnswered(t)
			p.resourceFollowed(t, page, live, "  # typed for "+m.mode)
			p.wait(t)
		})
	}
}

// spinCell prints, then runs until interrupted.
const spinCell = "print('spinning', flush=True)\nwhile True:\n    pass"

// The official TypeScript MCP SDK (tests/conformance, pinned) in each
// protocol version it speaks that this server speaks too: it lists the
// tools, gets each output line as progress while the cell still runs
// (gated as above), aborting a running execute_cell (the SDK sends
// notifications/cancelled) interrupts the kernel, which get_execution
// reports, input() is answered by its elicitation handler (the server asks
// over the session, whichever version: the SDK declares elicitation in all),
// and a notebook read as a resource and subscribed to (resources/subscribe)
// is told of a person's edit in JupyterLab, which a re-read shows. The SDK
// also speaks 2024-10-07, which this server answers with 2025-11-25 (the
// spec's negotiation), the first case again; it does not speak 2026-07-28.
// Tasks are not tested: the SDK (1.32.2) has only the experimental tasks of
// 2025-11-25 (params.task on tools/call), and the server's tasks are the
// 2026-07-28 extension (SEP-2663), which must not be enabled before it.
func TestTypeScriptSDK(t *testing.T) {
	node := labtest.Node(t) // the SDK needs Node >= 18: the suite's Node does
	script := filepath.Join(labtest.RepoRoot(), "tests", "conformance", "ts_client.mjs")
	versions := []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
	gates := make([]gate, len(versions))
	var cells []string
	for i := range versions {
		gates[i] = newGate(t)
		cells = append(cells, gates[i].code("line", 2), spinCell)
	}
	// One notebook, so one kernel, for all: cells c<2i> and c<2i+1> for version i.
	codeNotebook(t, "exec/ts-sdk.ipynb", cells...)
	live := livePath("ts-sdk")
	codeNotebook(t, live, "first = 1")
	page := browser(t, live)
	p := startClient(t, node, append([]string{script, shared.URL + "mcp", shared.Token, "exec/ts-sdk.ipynb", live}, versions...)...)
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
		p.cancelled(t, fmt.Sprintf("c%d", 2*i+1))
		p.inputAnswered(t)
		p.resourceFollowed(t, page, live, "  # typed for "+v)
	}
	p.wait(t)
}

// cancelled follows a call of execute_cell on the spinning cell loop that
// the client cancelled: get_execution must show the run interrupted for
// that reason.
func (p *clientProc) cancelled(t *testing.T, loop string) {
	t.Helper()
	id := strings.TrimPrefix(p.until(t, "cancelled "), "cancelled ")
	var got execOut
	if err := json.Unmarshal([]byte(strings.TrimPrefix(p.until(t, "execution "), "execution ")), &got); err != nil {
		t.Fatal(err)
	}
	if got.ExecutionID != id || got.Status != "interrupted" || len(got.Cells) != 1 || got.Cells[0].CellID != loop || got.Cells[0].Note != "cancelled by the client" {
		t.Fatalf("after the cancel: %+v, want %s interrupted with the note \"cancelled by the client\"", got, loop)
	}
}

// inputAnswered follows code waiting on input(), which asks the client,
// and the client answers "Ada".
func (p *clientProc) inputAnswered(t *testing.T) {
	t.Helper()
	if line := p.next(t); !strings.HasPrefix(line, "asked ") || !strings.Contains(line, "Your name?") {
		t.Fatalf("%q, want the elicitation for the input() prompt", line)
	}
	if line := p.next(t); !strings.HasPrefix(line, "input ok ") || !strings.Contains(line, "hello Ada") {
		t.Fatalf("%q, want the run's result with the answer", line)
	}
}

// resourceFollowed follows the client reading the live notebook as a
// resource and subscribing to it; once subscribed, the test types text at
// the end of its first cell in the page (and tells the client what), and
// the client must be told of the change and see the text on a re-read.
func (p *clientProc) resourceFollowed(t *testing.T, page context.Context, live, text string) {
	t.Helper()
	mime, src, _ := strings.Cut(strings.TrimPrefix(p.next(t), "read "), " ")
	var source string
	if err := json.Unmarshal([]byte(src), &source); err != nil || mime != "application/x-ipynb+json" || !strings.HasPrefix(source, "first = 1") {
		t.Fatalf("read: %s %s (%v), want the notebook with its first cell", mime, src, err)
	}
	if line := p.next(t); line != "subscribed" {
		t.Fatalf("%q, want subscribed", line)
	}
	p.tell(t, text)
	typeAtEnd(t, page, text)
	for {
		uri, src, _ := strings.Cut(strings.TrimPrefix(p.until(t, "updated "), "updated "), " ")
		if err := json.Unmarshal([]byte(src), &source); err != nil {
			t.Fatalf("updated: %s: %v", src, err)
		}
		if uri == nbURI(live) && strings.Contains(source, text) {
			return
		}
	}
}

// clientProc is a client SDK script whose output lines the test follows.
type clientProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
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
	if p.stdin, err = cmd.StdinPipe(); err != nil {
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

// tell writes a line to the client's stdin.
func (p *clientProc) tell(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
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
