package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
)

type execOut struct {
	ExecutionID string `json:"execution_id"`
	Status      string `json:"status"`
	Cells       []struct {
		CellID         string `json:"cell_id"`
		Status         string `json:"status"`
		ExecutionCount *int   `json:"execution_count"`
		Note           string `json:"note"`
	} `json:"cells"`
	InputPrompt    string  `json:"input_prompt"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

// codeNotebook writes a python3 notebook with one code cell per source
// into the shared lab; cell ids are c0, c1, ...
func codeNotebook(t *testing.T, rel string, sources ...string) {
	t.Helper()
	labCodeNotebook(t, shared, rel, sources...)
}

// labCodeNotebook is codeNotebook for the lab given.
func labCodeNotebook(t *testing.T, lab *labtest.Lab, rel string, sources ...string) {
	t.Helper()
	var cells []string
	for i, s := range sources {
		cells = append(cells, fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"outputs":[],"execution_count":null,"source":%q}`, i, s))
	}
	p := filepath.Join(lab.Root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	body := `{"cells":[` + strings.Join(cells, ",") + `],"metadata":{"kernelspec":{"name":"python3","display_name":"Python 3","language":"python"}},"nbformat":4,"nbformat_minor":5}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// progressSession is an MCP session that records progress notifications
// with their arrival time.
type progressEvent struct {
	at      time.Time
	message string
}

func progressSession(t *testing.T) (*mcp.ClientSession, <-chan progressEvent) {
	t.Helper()
	events := make(chan progressEvent, 1000)
	cs, err := shared.ConnectWith(t.Context(), "mcp", "token "+shared.Token, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			events <- progressEvent{at: time.Now(), message: r.Params.Message}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, events
}

func callWithProgress(ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	return cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args, Meta: mcp.Meta{"progressToken": tool + "-progress"}})
}

func decode[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var out T
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out
}

// gate lets a cell's code wait for the test: the cell prints line i, then
// blocks until the test opens gate i (creates a file). A test that opens gate
// i only after it saw line i arrive knows, by construction and not by
// timing, that the line arrived while the call was still running.
type gate string

func newGate(t *testing.T) gate { return gate(t.TempDir()) }

// code prints "<word> 0" … "<word> n-1", each followed by a wait on its gate.
func (g gate) code(word string, n int) string {
	return fmt.Sprintf("import os, time\nfor i in range(%d):\n    print('%s', i, flush=True)\n"+
		"    while not os.path.exists(os.path.join(%q, f'go{i}')):\n        time.sleep(0.02)", n, word, string(g))
}

func (g gate) open(t *testing.T, i int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(string(g), fmt.Sprintf("go%d", i)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Progress reaches the client through the proxy while the cell runs (each
// line's progress arrives while the cell waits for the test to let it go on),
// and the outputs land in the notebook.
func TestExecuteStreamsProgress(t *testing.T) {
	cs, events := progressSession(t)
	g := newGate(t)
	codeNotebook(t, "exec/progress.ipynb", g.code("line", 3))
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := callWithProgress(t.Context(), cs, "execute_cell", map[string]any{"path": "exec/progress.ipynb", "cell_id": "c0", "timeout": 120})
		done <- result{res, err}
	}()
	deadline := time.After(60 * time.Second)
	for i := range 3 {
		want := fmt.Sprintf("last: line %d", i)
	wait:
		for {
			select {
			case ev := <-events:
				if strings.Contains(ev.message, want) {
					break wait
				}
			case r := <-done:
				t.Fatalf("execute_cell returned before line %d was let through: %v %s", i, r.err, labtest.ResultText(r.res))
			case <-deadline:
				t.Fatalf("no progress naming %q while the cell waits after printing it", want)
			}
		}
		g.open(t, i)
	}
	r := <-done
	if r.err != nil || r.res.IsError {
		t.Fatalf("execute_cell: %v %s", r.err, labtest.ResultText(r.res))
	}
	if out := decode[execOut](t, r.res); out.Status != "ok" || !strings.Contains(labtest.ResultText(r.res), "line 0\nline 1\nline 2") {
		t.Fatalf("execute_cell = %+v %q", out, labtest.ResultText(r.res))
	}
	validateNotebook(t, "exec/progress.ipynb")
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "exec/progress.ipynb", "cell_id": "c0"})
	if cell.ExecutionCount == nil || len(cell.Outputs) != 1 || !strings.HasPrefix(cell.Outputs[0], "line 0\n") {
		t.Fatalf("notebook cell after run = %+v", cell)
	}
}

func TestExecuteImageAndError(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/rich.ipynb",
		"import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
		"def f():\n    return 1/0\nf()",
	)
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": "exec/rich.ipynb", "cell_id": "c0", "timeout": 120}})
	if err != nil || res.IsError {
		t.Fatalf("plot: %v %s", err, labtest.ResultText(res))
	}
	var img *mcp.ImageContent
	for _, c := range res.Content {
		if ic, ok := c.(*mcp.ImageContent); ok {
			img = ic
		}
	}
	if img == nil || img.MIMEType != "image/png" || !strings.HasPrefix(string(img.Data), "\x89PNG") {
		t.Fatalf("no PNG image content in %s", labtest.ResultText(res))
	}

	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": "exec/rich.ipynb", "cell_id": "c1"}})
	if err != nil || res.IsError {
		t.Fatalf("error cell: %v %s", err, labtest.ResultText(res))
	}
	text := labtest.ResultText(res)
	if decode[execOut](t, res).Status != "error" || !strings.Contains(text, "ZeroDivisionError: division by zero") || strings.Contains(text, "\x1b[") {
		t.Fatalf("error result: %q", text)
	}
	savedNotebook(t, "exec/rich.ipynb", "has the plot and the error", func(nb map[string]any) bool {
		plot, _ := cellsOf(nb)[0].(map[string]any)["outputs"].([]any)
		failed, _ := cellsOf(nb)[1].(map[string]any)["outputs"].([]any)
		if len(plot) == 0 || len(failed) == 0 {
			return false
		}
		data, _ := plot[len(plot)-1].(map[string]any)["data"].(map[string]any)
		return data["image/png"] != nil
	})
	validateNotebook(t, "exec/rich.ipynb")
}

func TestInputAnsweredWithSendInput(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/input.ipynb", "name = input('Your name? ')\nprint('hello', name)")
	first := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": "exec/input.ipynb", "cell_id": "c0"})
	if first.Status != "needs_input" || first.InputPrompt != "Your name? " {
		t.Fatalf("execute_cell = %+v, want needs_input", first)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "send_input", Arguments: map[string]any{"execution_id": first.ExecutionID, "text": "Ada"}})
	if err != nil || res.IsError || decode[execOut](t, res).Status != "ok" || !strings.Contains(labtest.ResultText(res), "hello Ada") {
		t.Fatalf("send_input: %v %s", err, labtest.ResultText(res))
	}
	labtest.CallErr(t, cs, "send_input", map[string]any{"execution_id": first.ExecutionID, "text": "again"}, "not waiting for input")
}

var executionID = regexp.MustCompile(`execution (x[0-9a-f]+)`)

// Cancelling the call interrupts the kernel; the run ends as interrupted
// and the kernel is free for the next call.
func TestCancelInterruptsKernel(t *testing.T) {
	cs, events := progressSession(t)
	codeNotebook(t, "exec/loop.ipynb", "print('spinning', flush=True)\nwhile True:\n    pass")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	result := make(chan error, 1)
	go func() {
		_, err := callWithProgress(ctx, cs, "execute_cell", map[string]any{"path": "exec/loop.ipynb", "cell_id": "c0"})
		result <- err
	}()
	var id string
	for id == "" {
		select {
		case ev := <-events:
			if strings.Contains(ev.message, "spinning") {
				id = executionID.FindStringSubmatch(ev.message)[1]
			}
		case err := <-result:
			t.Fatalf("execute_cell returned before cancel: %v", err)
		}
	}
	cancel()
	if err := <-result; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	got := labtest.Call[execOut](t, cs, "get_execution", map[string]any{"execution_id": id, "timeout": 60})
	if got.Status != "interrupted" || len(got.Cells) != 1 || got.Cells[0].CellID != "c0" || got.Cells[0].Note != "cancelled by the client" {
		t.Fatalf("after cancel: %+v, want c0 interrupted with the note \"cancelled by the client\"", got)
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "exec/loop.ipynb", "cell_id": "c0"})
	if len(cell.Outputs) == 0 || !strings.Contains(cell.Outputs[len(cell.Outputs)-1], "KeyboardInterrupt") {
		t.Fatalf("interrupted cell outputs = %q", cell.Outputs)
	}
	res := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": "exec/loop.ipynb", "code": "1+1"})
	if res.Status != "ok" {
		t.Fatalf("kernel not usable after interrupt: %+v", res)
	}
}

// A run longer than its wait returns a handle; get_execution returns the
// full outputs later, and they are in the notebook.
func TestLongRunReturnsHandle(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/long.ipynb", "import time\nprint('begin', flush=True)\ntime.sleep(3)\nprint('finished')")
	first := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": "exec/long.ipynb", "cell_id": "c0", "timeout": 1})
	if first.Status != "running" && first.Status != "queued" {
		t.Fatalf("first call = %+v, want running", first)
	}
	// The handle is current: the call waited its 1 s before answering.
	if first.ElapsedSeconds < 1 {
		t.Fatalf("handle after a 1 s wait says elapsed %.3f s", first.ElapsedSeconds)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_execution", Arguments: map[string]any{"execution_id": first.ExecutionID, "timeout": 60}})
	if err != nil || res.IsError || decode[execOut](t, res).Status != "ok" || !strings.Contains(labtest.ResultText(res), "begin\nfinished") {
		t.Fatalf("get_execution: %v %q", err, labtest.ResultText(res))
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "exec/long.ipynb", "cell_id": "c0"})
	if cell.ExecutionCount == nil || len(cell.Outputs) != 1 || cell.Outputs[0] != "begin\nfinished\n" {
		t.Fatalf("notebook cell = %+v", cell)
	}
}

// The sidecar runs code on the kernel the person's session already uses.
func TestPersonsKernelIsReused(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/shared.ipynb", "print(secret)")
	// The "person": another client of the same server, with its own
	// websocket session, defines a variable in the notebook's kernel.
	jc, err := jupyter.NewClient(&jupyter.ServerInfo{URL: shared.URL, Token: shared.Token})
	if err != nil {
		t.Fatal(err)
	}
	person := &kernel.Manager{Jupyter: jc}
	defer person.Close()
	k, err := person.ForNotebook(t.Context(), "exec/shared.ipynb", "python3")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := k.Execute(t.Context(), "secret = 4242", kernel.Hooks{}); err != nil || res.Status != "ok" {
		t.Fatalf("person's execute: %v %+v", err, res)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": "exec/shared.ipynb", "cell_id": "c0"}})
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), "4242") {
		t.Fatalf("agent did not see the person's variable: %v %q", err, labtest.ResultText(res))
	}
	type kernelsOut struct {
		Running []struct {
			ID        string   `json:"id"`
			Notebooks []string `json:"notebooks"`
		} `json:"running"`
		Installed []struct {
			Name string `json:"name"`
		} `json:"installed"`
	}
	ks := labtest.Call[kernelsOut](t, cs, "list_kernels", nil)
	found := false
	for _, r := range ks.Running {
		found = found || (r.ID == k.ID && len(r.Notebooks) == 1 && r.Notebooks[0] == "exec/shared.ipynb")
	}
	if !found || len(ks.Installed) == 0 || ks.Installed[0].Name != "python3" {
		t.Fatalf("list_kernels = %+v", ks)
	}
}

// A kernel killed mid-run gives a clear error; after restart_kernel the
// next execution works and the notebook stays valid.
func TestKernelDeathMidRun(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/die.ipynb", "import os\nprint('about to die', flush=True)\nos.kill(os.getpid(), 9)")
	res := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": "exec/die.ipynb", "cell_id": "c0"})
	if res.Status != "kernel_died" || !strings.Contains(res.Cells[0].Note, "died") {
		t.Fatalf("execute_cell = %+v", res)
	}
	validateNotebook(t, "exec/die.ipynb")
	labtest.Call[map[string]any](t, cs, "restart_kernel", map[string]any{"path": "exec/die.ipynb"})
	after := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": "exec/die.ipynb", "code": "print(6*7)"})
	if after.Status != "ok" {
		t.Fatalf("after restart: %+v", after)
	}
}

// Ten notebooks run at the same time on ten kernels.
func TestTenNotebooksInParallel(t *testing.T) {
	cs := session(t)
	const n = 10
	// A rendezvous, not a clock: each cell announces itself and then waits
	// until all ten have, so they all finish only if all ten run at once
	// (runs queued behind one another would wait until the cell gives up).
	meet := t.TempDir()
	for i := range n {
		codeNotebook(t, fmt.Sprintf("exec/par%d.ipynb", i), fmt.Sprintf("import os, time\nopen(os.path.join(%q, 'here%d'), 'w').close()\n"+
			"deadline = time.time() + 150\nwhile len(os.listdir(%q)) < %d:\n    assert time.time() < deadline, 'not all %d ran at once'\n    time.sleep(0.05)\nprint('met', len(os.listdir(%q)))", meet, i, meet, n, n, meet))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": fmt.Sprintf("exec/par%d.ipynb", i), "cell_id": "c0", "timeout": 180}})
			if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), fmt.Sprintf("met %d", n)) {
				t.Errorf("notebook %d: %v %s", i, err, labtest.ResultText(res))
			}
		}()
	}
	wg.Wait()
}

func TestExecutionBadInputs(t *testing.T) {
	cs := session(t)
	writeFile(t, "exec/mixed.ipynb", `{"cells":[{"cell_type":"markdown","id":"m","metadata":{},"source":"# t"},{"cell_type":"code","id":"c","metadata":{},"outputs":[],"execution_count":null,"source":"1"}],"metadata":{},"nbformat":4,"nbformat_minor":5}`)
	codeNotebook(t, "exec/ok.ipynb", "1")
	before := readFile(t, "exec/mixed.ipynb")
	for _, tc := range []struct {
		name, tool string
		args       map[string]any
		want       string
	}{
		{"unknown index", "execute_cell", map[string]any{"path": "exec/ok.ipynb", "index": 5}, "out of range"},
		{"markdown run", "execute_cell", map[string]any{"path": "exec/mixed.ipynb", "cell_id": "m"}, "is a markdown cell: only code cells run"},
		{"no kernelspec", "execute_cell", map[string]any{"path": "exec/mixed.ipynb", "cell_id": "c"}, "names no kernel"},
		{"timeout zero", "execute_cell", map[string]any{"path": "exec/ok.ipynb", "cell_id": "c0", "timeout": 0}, "timeout 0 is out of range"},
		{"timeout absurd", "execute_code", map[string]any{"path": "exec/ok.ipynb", "code": "1", "timeout": 100000}, "timeout 100000 is out of range"},
		{"unknown execution", "get_execution", map[string]any{"execution_id": "x00"}, `no execution has id "x00"`},
		{"send_input unknown", "send_input", map[string]any{"execution_id": "x00", "text": "a"}, `no execution has id "x00"`},
		{"bad range", "execute_cells", map[string]any{"path": "exec/ok.ipynb", "start": 3}, "do not exist"},
		{"kernel of idle notebook", "interrupt_kernel", map[string]any{"path": "exec/mixed.ipynb"}, "no kernel runs"},
	} {
		t.Run(tc.name, func(t *testing.T) { labtest.CallErr(t, cs, tc.tool, tc.args, tc.want) })
	}
	if readFile(t, "exec/mixed.ipynb") != before {
		t.Fatal("bad inputs changed the notebook")
	}
}

// A flood of output gives a bounded result and a valid notebook.
func TestOutputFloodIsBounded(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/flood.ipynb", "for i in range(1000000):\n    print(i)")
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": "exec/flood.ipynb", "cell_id": "c0", "timeout": 200}})
	if err != nil || res.IsError {
		t.Fatalf("flood: %v %v", err, res)
	}
	text := labtest.ResultText(res)
	if len(text) > 25000 || !strings.Contains(text, "characters left out") {
		t.Fatalf("result of %d characters, want a capped one with a marker", len(text))
	}
	validateNotebook(t, "exec/flood.ipynb")
}

// Running several cells stops at the first error.
func TestExecuteCellsStopsAtError(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/range.ipynb", "a = 1", "raise ValueError('stop here')", "b = 2")
	out := labtest.Call[execOut](t, cs, "execute_cells", map[string]any{"path": "exec/range.ipynb"})
	if out.Status != "error" || len(out.Cells) != 3 || out.Cells[0].Status != "ok" || out.Cells[1].Status != "error" || out.Cells[2].Status != "not_run" {
		t.Fatalf("execute_cells = %+v", out)
	}
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "exec/range.ipynb", "source": "print(a + 41)", "execute": true})
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": "exec/range.ipynb", "cell_id": ins.CellID})
	if len(cell.Outputs) != 1 || cell.Outputs[0] != "42\n" {
		t.Fatalf("insert_cell execute=true: %+v", cell)
	}
}

// A plain HTTP client — no MCP SDK — that POSTs a tool call with the Accept
// header every MCP client sends reads the call's progress from the
// response's own event stream while the cell still runs (the cell waits for
// the test after each line), then the result on the same stream. This is
// how clients without a GET stream (and the 2026 protocol) get progress
// through jupyter-server-proxy.
func TestProgressOnTheRequestsOwnStream(t *testing.T) {
	g := newGate(t)
	codeNotebook(t, "exec/raw-progress.ipynb", g.code("line", 2))
	post := func(sessionID, body string) *http.Response {
		t.Helper()
		if sessionID == "" {
			return postMCP(t, body, nil)
		}
		return postMCP(t, body, map[string]string{"Mcp-Session-Id": sessionID, "Mcp-Protocol-Version": "2025-06-18"})
	}
	resp := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %s, session %q", resp.Status, sid)
	}
	resp = post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()

	resp = post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_cell","arguments":{"path":"exec/raw-progress.ipynb","cell_id":"c0","timeout":120},"_meta":{"progressToken":"raw"}}}`)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("tools/call answered %s with Content-Type %q, want an event stream", resp.Status, ct)
	}
	events := bufio.NewScanner(resp.Body)
	events.Buffer(make([]byte, 1<<20), 1<<20)
	next := func() string { // the data of the next event
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				return data
			}
		}
		t.Fatalf("the event stream ended: %v", events.Err())
		return ""
	}
	for i := range 2 {
		want := fmt.Sprintf("last: line %d", i)
		for {
			data := next()
			if strings.Contains(data, `"id":2`) {
				t.Fatalf("the result came before the progress naming %q: %s", want, data)
			}
			if strings.Contains(data, "notifications/progress") && strings.Contains(data, want) {
				break
			}
		}
		g.open(t, i)
	}
	for {
		if data := next(); strings.Contains(data, `"id":2`) {
			if !strings.Contains(data, `line 0\nline 1`) || strings.Contains(data, `"isError":true`) {
				t.Fatalf("result: %s", data)
			}
			return
		}
	}
}
