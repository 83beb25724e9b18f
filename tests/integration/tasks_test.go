package integration

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// taskState is a task as tasks/get (or a tools/call handing one out) shows it.
type taskState struct {
	ResultType     string `json:"resultType"`
	TaskID         string `json:"taskId"`
	Status         string `json:"status"`
	StatusMessage  string `json:"statusMessage"`
	CreatedAt      string `json:"createdAt"`
	LastUpdatedAt  string `json:"lastUpdatedAt"`
	TTLMs          *int64 `json:"ttlMs"`
	PollIntervalMs int64  `json:"pollIntervalMs"`
	Result         *struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent execOut `json:"structuredContent"`
	} `json:"result"`
}

type rpcErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// rpc2026 sends one 2026-07-28 request through the proxy as a client of
// that protocol does (per-request _meta and headers), declaring the tasks
// extension when tasks is set, and decodes its result into out.
func rpc2026(t *testing.T, method string, params map[string]any, tasks bool, out any) *rpcErr {
	t.Helper()
	caps := map[string]any{}
	if tasks {
		caps["extensions"] = map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "tasks-test", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": caps,
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	header := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	for _, k := range []string{"name", "taskId"} { // SEP-2663: tasks/* name the task in Mcp-Name
		if v, ok := params[k].(string); ok {
			header["Mcp-Name"] = v
		}
	}
	resp := postMCP(t, string(body), header)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var msg struct {
			ID     any             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *rpcErr         `json:"error"`
		}
		// An event stream's "data:" lines, or a JSON body.
		if json.Unmarshal([]byte(strings.TrimPrefix(sc.Text(), "data: ")), &msg) != nil || msg.ID == nil {
			continue
		}
		if msg.Error != nil {
			return msg.Error
		}
		if err := json.Unmarshal(msg.Result, out); err != nil {
			t.Fatalf("%s: %v in %s", method, err, msg.Result)
		}
		return nil
	}
	t.Fatalf("%s: no response (HTTP %d)", method, resp.StatusCode)
	return nil
}

// taskIDParams and taskGetResult are tasks/get as go-sdk's client sends
// and decodes it (a custom method: go-sdk v1.8.0 has no tasks).
type taskIDParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
}

type taskGetResult struct {
	mcp.ResultBase
	taskState
}

// tasksClient is go-sdk's client at 2026-07-28, declaring the tasks
// extension on every request, with tasks/get and tasks/cancel registered.
func tasksClient(t *testing.T) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "tasks-test", Version: "1"}, &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{Extensions: map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}}})
	if err := mcp.AddSendingCustomMethod[*taskIDParams, *taskGetResult](c, "tasks/get"); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: shared.URL + "mcp", HTTPClient: labtest.AuthClient("token " + shared.Token), MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %q", v)
	}
	if _, ok := cs.InitializeResult().Capabilities.Extensions["io.modelcontextprotocol/tasks"]; !ok {
		t.Fatal("server/discover does not advertise the tasks extension")
	}
	return cs
}

func getTask(t *testing.T, cs *mcp.ClientSession, id string) taskState {
	t.Helper()
	res, err := mcp.CallCustomMethod[*taskIDParams, *taskGetResult](t.Context(), cs, "tasks/get", &taskIDParams{TaskID: id})
	if err != nil {
		t.Fatalf("tasks/get %s: %v", id, err)
	}
	if res.ResultType != "complete" || res.TaskID != id {
		t.Fatalf("tasks/get %s = %+v", id, res.taskState)
	}
	return res.taskState
}

// pollTask polls tasks/get at the interval the server suggests until until
// holds, failing if the task ends (or two minutes pass) first.
func pollTask(t *testing.T, cs *mcp.ClientSession, id string, until func(taskState) bool) taskState {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s := getTask(t, cs, id)
		if until(s) {
			return s
		}
		if s.Status == "completed" || s.Status == "cancelled" || s.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("task %s never got there: %+v", id, s)
		}
		time.Sleep(time.Duration(s.PollIntervalMs) * time.Millisecond) // the protocol's polling, not a synchronisation
	}
}

// startTask runs a cell with the tasks extension declared and expects a task.
func startTask(t *testing.T, path, cell string) taskState {
	t.Helper()
	var s taskState
	if err := rpc2026(t, "tools/call", map[string]any{"name": "execute_cell", "arguments": map[string]any{"path": path, "cell_id": cell}}, true, &s); err != nil {
		t.Fatalf("tools/call: %+v", err)
	}
	if s.ResultType != "task" || s.TaskID == "" || s.Status != "working" || s.PollIntervalMs <= 0 || s.Result != nil {
		t.Fatalf("execute_cell of a long cell = %+v, want a working task", s)
	}
	if _, err := time.Parse(time.RFC3339Nano, s.CreatedAt); err != nil {
		t.Fatalf("createdAt %q: %v", s.CreatedAt, err)
	}
	return s
}

// SEP-2663 tasks through the proxy: a client that declares the extension
// gets a long run as a task, polls it (status and progress current at each
// poll) to its result, and cancels another, which interrupts the kernel.
func TestTasks(t *testing.T) {
	cs := tasksClient(t)
	g := newGate(t)
	const path = "exec/tasks.ipynb"
	codeNotebook(t, path, g.code("step", 2), "print('spinning', flush=True)\nwhile True:\n    pass", "x = 1")

	// A quick cell answers at once, even to a declaring client (on a
	// kernel already started: a start alone can outlast taskAfter).
	labtest.Call[execOut](t, session(t), "execute_code", map[string]any{"path": path, "code": "started = True"})
	var quick struct {
		ResultType        string  `json:"resultType"`
		StructuredContent execOut `json:"structuredContent"`
	}
	if err := rpc2026(t, "tools/call", map[string]any{"name": "execute_cell", "arguments": map[string]any{"path": path, "cell_id": "c2"}}, true, &quick); err != nil || quick.ResultType == "task" || quick.StructuredContent.Status != "ok" {
		t.Fatalf("quick cell = %+v, %+v; want its result, not a task", quick, err)
	}

	// The cell waits for the test at each line, so it is long, and each
	// poll shows the line it reached.
	created := startTask(t, path, "c0")
	id := created.TaskID
	for i, want := range []string{"step 0", "step 1"} {
		s := pollTask(t, cs, id, func(s taskState) bool { return strings.Contains(s.StatusMessage, want) })
		if s.Status != "working" || s.TTLMs != nil {
			t.Fatalf("running task = %+v", s)
		}
		g.open(t, i)
	}
	done := pollTask(t, cs, id, func(s taskState) bool { return s.Status == "completed" })
	if done.Result == nil || done.Result.StructuredContent.Status != "ok" || done.Result.StructuredContent.ExecutionID != id || done.TTLMs == nil {
		t.Fatalf("completed task = %+v", done)
	}
	var text strings.Builder
	for _, c := range done.Result.Content {
		text.WriteString(c.Text)
	}
	if !strings.Contains(text.String(), "step 0") || !strings.Contains(text.String(), "step 1") {
		t.Fatalf("the task's result lacks the outputs: %q", text.String())
	}

	// Cancel: once the code runs, tasks/cancel interrupts the kernel.
	spin := startTask(t, path, "c1")
	pollTask(t, cs, spin.TaskID, func(s taskState) bool { return strings.Contains(s.StatusMessage, "spinning") })
	var ackRes map[string]any
	if err := rpc2026(t, "tasks/cancel", map[string]any{"taskId": spin.TaskID}, true, &ackRes); err != nil || ackRes["resultType"] != "complete" || ackRes["taskId"] != nil {
		t.Fatalf("tasks/cancel = %v, %+v", ackRes, err)
	}
	cancelled := pollTask(t, cs, spin.TaskID, func(s taskState) bool { return s.Status == "cancelled" })
	if !strings.Contains(cancelled.StatusMessage, "cancelled by the client") {
		t.Fatalf("cancelled task = %+v", cancelled)
	}
	// The run's record, as get_execution shows it to any client, and the
	// notebook say what happened.
	rec := labtest.Call[execOut](t, cs, "get_execution", map[string]any{"execution_id": spin.TaskID})
	if rec.Status != "interrupted" || len(rec.Cells) != 1 || rec.Cells[0].CellID != "c1" || !strings.Contains(rec.Cells[0].Note, "cancelled by the client") {
		t.Fatalf("record after tasks/cancel: %+v", rec)
	}
	cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": path, "cell_id": "c1"})
	if len(cell.Outputs) == 0 || !strings.Contains(cell.Outputs[len(cell.Outputs)-1], "KeyboardInterrupt") {
		t.Fatalf("cell c1 outputs after tasks/cancel: %q", cell.Outputs)
	}

	// Bad input: precise errors, nothing changed.
	for _, tc := range []struct {
		method string
		params map[string]any
		tasks  bool
		code   int
		want   string
	}{
		{"tasks/get", map[string]any{"taskId": "x0000000000000000"}, true, -32602, `task not found: no task "x0000000000000000"`},
		{"tasks/cancel", map[string]any{"taskId": "nope"}, true, -32602, "task not found"},
		{"tasks/get", map[string]any{"taskId": id}, false, -32021, "needs the tasks extension"},
	} {
		var res map[string]any
		err := rpc2026(t, tc.method, tc.params, tc.tasks, &res)
		if err == nil || err.Code != tc.code || !strings.Contains(err.Message, tc.want) {
			t.Errorf("%s %v = %v, %+v; want %d %q", tc.method, tc.params, res, err, tc.code, tc.want)
		}
	}
	// Cancelling a task that has ended is acknowledged and changes nothing
	// (SEP-2663 cancellation is cooperative; the conformance suite expects
	// the ack).
	if err := rpc2026(t, "tasks/cancel", map[string]any{"taskId": id}, true, &ackRes); err != nil {
		t.Fatalf("tasks/cancel of an ended task: %+v", err)
	}
	if s := getTask(t, cs, id); s.Status != "completed" || s.Result == nil || s.Result.StructuredContent.Status != "ok" {
		t.Fatalf("after cancelling the ended task: %+v", s)
	}
}

// A client that does not declare the extension, on either protocol
// generation, sees no change: a long run returns its execution id after the
// call's timeout, and get_execution waits for it.
func TestNoTasksWithoutTheExtension(t *testing.T) {
	for _, version := range []string{"", "2025-11-25"} {
		t.Run("protocol "+version, func(t *testing.T) {
			g := newGate(t)
			path := "exec/notasks" + strings.ReplaceAll(version, "-", "") + ".ipynb"
			codeNotebook(t, path, g.code("wait", 1))
			cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, version, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			run := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": path, "cell_id": "c0", "timeout": 1})
			if (run.Status != "running" && run.Status != "queued") || run.ExecutionID == "" {
				t.Fatalf("long run without tasks = %+v, want it going on, with an execution id", run)
			}
			g.open(t, 0)
			if got := labtest.Call[execOut](t, cs, "get_execution", map[string]any{"execution_id": run.ExecutionID}); got.Status != "ok" {
				t.Fatalf("get_execution = %+v", got)
			}
		})
	}
	// A 2026-07-28 request without the declaration gets a plain result.
	g := newGate(t)
	codeNotebook(t, "exec/notasks-raw.ipynb", g.code("wait", 1))
	var res struct {
		ResultType        string  `json:"resultType"`
		TaskID            string  `json:"taskId"`
		StructuredContent execOut `json:"structuredContent"`
	}
	if err := rpc2026(t, "tools/call", map[string]any{"name": "execute_cell", "arguments": map[string]any{"path": "exec/notasks-raw.ipynb", "cell_id": "c0", "timeout": 3}}, false, &res); err != nil {
		t.Fatal(err)
	}
	g.open(t, 0)
	if st := res.StructuredContent.Status; res.ResultType != "complete" || res.TaskID != "" || (st != "running" && st != "queued") {
		t.Fatalf("undeclared 2026 call = %+v, want a complete result with the run still going", res)
	}
}

// insert_cell with execute and execute_code become tasks too, with their
// own final result; input() is answered through tasks/update.
func TestTaskInputAndOtherTools(t *testing.T) {
	cs := tasksClient(t)
	const path = "exec/tasks-more.ipynb"
	codeNotebook(t, path, "x = 1")

	// input(): the task asks for it as an input request.
	var s taskState
	if err := rpc2026(t, "tools/call", map[string]any{"name": "execute_code", "arguments": map[string]any{"path": path, "code": "name = input('name? ')\nprint('hello', name)"}}, true, &s); err != nil || s.ResultType != "task" {
		t.Fatalf("execute_code waiting on input() = %+v, %+v; want a task", s, err)
	}
	var asked struct {
		taskState
		InputRequests map[string]struct {
			Method string `json:"method"`
			Params struct {
				Message string `json:"message"`
			} `json:"params"`
		} `json:"inputRequests"`
	}
	pollTask(t, cs, s.TaskID, func(s taskState) bool { return s.Status == "input_required" })
	if err := rpc2026(t, "tasks/get", map[string]any{"taskId": s.TaskID}, true, &asked); err != nil {
		t.Fatal(err)
	}
	req, ok := asked.InputRequests["input-1"]
	if !ok || req.Method != "elicitation/create" || !strings.Contains(req.Params.Message, "name?") {
		t.Fatalf("input requests = %+v", asked.InputRequests)
	}
	var ackRes map[string]any
	answer := map[string]any{"input-1": map[string]any{"action": "accept", "content": map[string]any{"input": "Ada"}}}
	if err := rpc2026(t, "tasks/update", map[string]any{"taskId": s.TaskID, "inputResponses": answer}, true, &ackRes); err != nil || ackRes["resultType"] != "complete" {
		t.Fatalf("tasks/update = %v, %+v", ackRes, err)
	}
	done := pollTask(t, cs, s.TaskID, func(s taskState) bool { return s.Status == "completed" })
	if done.Result == nil || done.Result.StructuredContent.Status != "ok" || !strings.Contains(done.Result.Content[len(done.Result.Content)-1].Text, "hello Ada") {
		t.Fatalf("task after the answer = %+v", done)
	}

	// insert_cell with execute: the final result is insert_cell's.
	g := newGate(t)
	var ins taskState
	if err := rpc2026(t, "tools/call", map[string]any{"name": "insert_cell", "arguments": map[string]any{"path": path, "source": g.code("row", 1), "execute": true}}, true, &ins); err != nil || ins.ResultType != "task" {
		t.Fatalf("insert_cell execute = %+v, %+v; want a task", ins, err)
	}
	pollTask(t, cs, ins.TaskID, func(s taskState) bool { return strings.Contains(s.StatusMessage, "row 0") })
	g.open(t, 0)
	pollTask(t, cs, ins.TaskID, func(s taskState) bool { return s.Status == "completed" })
	var final struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent struct {
				CellID    string   `json:"cell_id"`
				Execution *execOut `json:"execution"`
			} `json:"structuredContent"`
		} `json:"result"`
	}
	if err := rpc2026(t, "tasks/get", map[string]any{"taskId": ins.TaskID}, true, &final); err != nil {
		t.Fatal(err)
	}
	sc := final.Result.StructuredContent
	if sc.CellID == "" || sc.Execution == nil || sc.Execution.Status != "ok" || !strings.HasPrefix(final.Result.Content[0].Text, "inserted cell "+sc.CellID) {
		t.Fatalf("insert_cell task result = %+v", final.Result)
	}
}
