package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
)

// fakeRun is an execution the test drives.
type fakeRun struct {
	mu          sync.Mutex
	snap        execution.Snapshot
	done        chan struct{}
	interrupted string
	sent        []string
}

func newFakeRun(id string) *fakeRun {
	now := time.Now()
	return &fakeRun{snap: execution.Snapshot{ID: id, Status: execution.StatusRunning, Started: now, Updated: now}, done: make(chan struct{})}
}

func (f *fakeRun) Snapshot() execution.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}
func (f *fakeRun) Done() <-chan struct{} { return f.done }
func (f *fakeRun) Interrupt(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.interrupted = why
}
func (f *fakeRun) SendInput(text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, text)
	f.snap.Status = execution.StatusRunning
	return nil
}
func (f *fakeRun) set(fn func(s *execution.Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap)
	f.snap.Updated = time.Now()
}
func (f *fakeRun) end(status string) {
	f.set(func(s *execution.Snapshot) {
		s.Status = status
		s.Steps = []execution.Step{{CellID: "c1", Status: status}}
	})
	close(f.done)
}

// taskServer serves the tools' MCP surface as the sidecar does: stateless
// for 2026-07-28, with sessions for earlier versions. Its "slow" tool hands
// the run named by its "id" argument over as a task when it can.
func taskServer(t *testing.T, runs map[string]*fakeRun) *httptest.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tasks"}, &mcp.ServerOptions{Capabilities: &mcp.ServerCapabilities{
		Extensions: map[string]any{TasksExtension: map[string]any{}}}})
	(&Tools{}).Register(s)
	s.AddTool(&mcp.Tool{Name: "slow", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args struct{ ID string }
		_ = json.Unmarshal(req.Params.Arguments, &args)
		run := runs[args.ID]
		render := func(s execution.Snapshot) *mcp.CallToolResult {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran " + s.ID + ": " + s.Status}}}
		}
		if handOver(ctx, args.ID, run, render) {
			return &mcp.CallToolResult{}, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "waited for " + args.ID}}}, nil
	})
	get := func(*http.Request) *mcp.Server { return s }
	stateless := mcp.NewStreamableHTTPHandler(get, &mcp.StreamableHTTPOptions{Stateless: true})
	stateful := mcp.NewStreamableHTTPHandler(get, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= tasksSince {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// call2026 sends one 2026-07-28 request as a client would, declaring the
// tasks extension or not, and returns its result or error.
func call2026(t *testing.T, url, auth, method string, params map[string]any, declare bool) (map[string]any, *rpcError) {
	t.Helper()
	// "_mcpName" is no param: it sets an Mcp-Name header that disagrees.
	mcpName, _ := params["_mcpName"].(string)
	delete(params, "_mcpName")
	caps := map[string]any{}
	if declare {
		caps["extensions"] = map[string]any{TasksExtension: map[string]any{}}
	}
	params["_meta"] = map[string]any{
		mcp.MetaKeyProtocolVersion:    "2026-07-28",
		mcp.MetaKeyClientInfo:         map[string]any{"name": "test", "version": "1"},
		mcp.MetaKeyClientCapabilities: caps,
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", method)
	if name, ok := params["name"].(string); ok {
		req.Header.Set("Mcp-Name", name)
	}
	if id, ok := params["taskId"].(string); ok {
		req.Header.Set("Mcp-Name", id)
	}
	if mcpName != "" {
		req.Header.Set("Mcp-Name", mcpName)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct {
		Result map[string]any `json:"result"`
		Error  *rpcError      `json:"error"`
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "data: ")
		if strings.Contains(line, `"id":1`) {
			if err := json.Unmarshal([]byte(line), &msg); err != nil {
				t.Fatalf("%s: %v in %s", method, err, line)
			}
			return msg.Result, msg.Error
		}
	}
	t.Fatalf("%s: no response (HTTP %d)", method, resp.StatusCode)
	return nil, nil
}

func TestTasksLifecycle(t *testing.T) {
	runs := map[string]*fakeRun{"x1": newFakeRun("x1"), "x2": newFakeRun("x2")}
	url := taskServer(t, runs).URL
	const alice = "token alice"
	callSlow := func(id string, declare bool) map[string]any {
		res, rerr := call2026(t, url, alice, "tools/call", map[string]any{"name": "slow", "arguments": map[string]any{"id": id}}, declare)
		if rerr != nil {
			t.Fatalf("tools/call: %+v", rerr)
		}
		return res
	}
	get := func(id string) map[string]any {
		res, rerr := call2026(t, url, alice, "tasks/get", map[string]any{"taskId": id}, true)
		if rerr != nil {
			t.Fatalf("tasks/get %s: %+v", id, rerr)
		}
		return res
	}

	// A client without the extension waits for its result as before.
	if res := callSlow("x1", false); res["resultType"] == "task" || res["taskId"] != nil {
		t.Fatalf("undeclared client got a task: %v", res)
	}
	created := callSlow("x1", true)
	for k, want := range map[string]any{"resultType": "task", "taskId": "x1", "status": "working", "ttlMs": nil, "pollIntervalMs": float64(1000)} {
		if got, ok := created[k]; !ok || got != want {
			t.Errorf("CreateTaskResult[%q] = %v, want %v (in %v)", k, got, want, created)
		}
	}
	for _, k := range []string{"result", "inputRequests"} {
		if _, ok := created[k]; ok {
			t.Errorf("CreateTaskResult carries %q", k)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, created["createdAt"].(string)); err != nil {
		t.Errorf("createdAt: %v", err)
	}

	// Status and progress are current at each poll.
	runs["x1"].set(func(s *execution.Snapshot) { s.LastLine = "step 3"; s.Elapsed = 3 * time.Second })
	if g := get("x1"); g["resultType"] != "complete" || g["status"] != "working" || !strings.Contains(g["statusMessage"].(string), "step 3") {
		t.Fatalf("working task = %v", g)
	}

	// input() becomes an input request; tasks/update answers it, and
	// answers to other keys are ignored.
	runs["x1"].set(func(s *execution.Snapshot) { s.Status, s.Prompt, s.InputSeq = execution.StatusInput, "name? ", 1 })
	g := get("x1")
	reqs, _ := g["inputRequests"].(map[string]any)
	if g["status"] != "input_required" || reqs["input-1"] == nil || !strings.Contains(toJSON(reqs), `"elicitation/create"`) {
		t.Fatalf("task waiting on input() = %v", g)
	}
	for _, responses := range []map[string]any{
		{"input-0": map[string]any{"action": "accept", "content": map[string]any{"input": "old"}}},
		{"input-1": map[string]any{"action": "accept", "content": map[string]any{"input": "Ada"}}},
	} {
		if res, rerr := call2026(t, url, alice, "tasks/update", map[string]any{"taskId": "x1", "inputResponses": responses}, true); rerr != nil || res["resultType"] != "complete" {
			t.Fatalf("tasks/update = %v, %+v", res, rerr)
		}
	}
	if sent := runs["x1"].sent; len(sent) != 1 || sent[0] != "Ada" {
		t.Fatalf("input sent = %q, want only the answer to the outstanding key", sent)
	}

	// The ended run's result is the tool's; cancelling it then changes
	// nothing (an idempotent ack, as the conformance suite expects).
	runs["x1"].end(execution.StatusOK)
	done := get("x1")
	if done["status"] != "completed" || !strings.Contains(toJSON(done["result"]), "ran x1: ok") || done["ttlMs"] == nil {
		t.Fatalf("completed task = %v", done)
	}
	if res, rerr := call2026(t, url, alice, "tasks/cancel", map[string]any{"taskId": "x1"}, true); rerr != nil || len(res) != 2 || res["resultType"] != "complete" {
		t.Fatalf("cancel of an ended task = %v, %+v; want an empty ack", res, rerr)
	}
	if runs["x1"].interrupted != "" || get("x1")["status"] != "completed" {
		t.Fatal("cancelling an ended task changed it")
	}

	// Cancel interrupts the run; once it ends interrupted it is cancelled.
	callSlow("x2", true)
	if _, rerr := call2026(t, url, alice, "tasks/cancel", map[string]any{"taskId": "x2"}, true); rerr != nil {
		t.Fatal(rerr)
	}
	if why := runs["x2"].interrupted; !strings.Contains(why, "cancelled by the client") {
		t.Fatalf("interrupt reason %q", why)
	}
	runs["x2"].end(execution.StatusInterrupted)
	if c := get("x2"); c["status"] != "cancelled" || c["result"] != nil || !strings.Contains(c["statusMessage"].(string), "cancelled by the client") {
		t.Fatalf("cancelled task = %v", c)
	}
}

func TestTasksBadInput(t *testing.T) {
	runs := map[string]*fakeRun{"x1": newFakeRun("x1")}
	url := taskServer(t, runs).URL
	if res, rerr := call2026(t, url, "token alice", "tools/call", map[string]any{"name": "slow", "arguments": map[string]any{"id": "x1"}}, true); rerr != nil || res["taskId"] != "x1" {
		t.Fatalf("tools/call = %v, %+v", res, rerr)
	}
	tests := []struct {
		name, auth, method string
		params             map[string]any
		undeclared         bool
		code               int
		want               string
	}{
		{"unknown id", "token alice", "tasks/get", map[string]any{"taskId": "nope"}, false, -32602, `no task "nope"`},
		{"another credential", "token bob", "tasks/get", map[string]any{"taskId": "x1"}, false, -32602, `no task "x1" was created with this client's credentials`},
		{"cancel unknown", "token alice", "tasks/cancel", map[string]any{"taskId": "nope"}, false, -32602, "task not found"},
		{"update unknown", "token alice", "tasks/update", map[string]any{"taskId": "nope", "inputResponses": map[string]any{}}, false, -32602, "task not found"},
		{"no id", "token alice", "tasks/get", map[string]any{}, false, -32602, "taskId is required"},
		{"Mcp-Name disagrees", "token alice", "tasks/cancel", map[string]any{"taskId": "x1", "_mcpName": "x2"}, false, -32020, `Mcp-Name header value "x2" does not match params.taskId "x1"`},
		{"undeclared get", "token alice", "tasks/get", map[string]any{"taskId": "x1"}, true, -32021, "needs the tasks extension"},
		{"undeclared cancel", "token alice", "tasks/cancel", map[string]any{"taskId": "x1"}, true, -32021, "needs the tasks extension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, rerr := call2026(t, url, tc.auth, tc.method, tc.params, !tc.undeclared)
			if rerr == nil || rerr.Code != tc.code || !strings.Contains(rerr.Message, tc.want) {
				t.Fatalf("%s = %v, %+v; want code %d with %q", tc.method, res, rerr, tc.code, tc.want)
			}
			if tc.code == -32021 && !strings.Contains(string(rerr.Data), `"requiredCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}`) {
				t.Fatalf("error data %s does not name the extension", rerr.Data)
			}
		})
	}
	if runs["x1"].interrupted != "" || len(runs["x1"].sent) != 0 {
		t.Fatal("bad requests changed the run")
	}
}

// The extension is defined from 2026-07-28 on: server/discover advertises
// it, initialize (earlier protocols) does not.
func TestTasksAdvertisedOnlyTo2026(t *testing.T) {
	url := taskServer(t, nil).URL
	for _, version := range []string{"", "2025-11-25"} {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t"}, nil).Connect(t.Context(),
			&mcp.StreamableClientTransport{Endpoint: url}, &mcp.ClientSessionOptions{ProtocolVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		res := cs.InitializeResult()
		_, has := res.Capabilities.Extensions[TasksExtension]
		if has != (res.ProtocolVersion >= tasksSince) {
			t.Errorf("protocol %s: tasks extension advertised = %v", res.ProtocolVersion, has)
		}
		cs.Close()
	}
}

func TestTasksDeclared(t *testing.T) {
	ext := map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}
	tests := []struct {
		meta map[string]any
		want bool
	}{
		{map[string]any{mcp.MetaKeyProtocolVersion: "2026-07-28", mcp.MetaKeyClientCapabilities: ext}, true},
		{map[string]any{mcp.MetaKeyProtocolVersion: "2025-11-25", mcp.MetaKeyClientCapabilities: ext}, false},
		{map[string]any{mcp.MetaKeyProtocolVersion: "2026-07-28", mcp.MetaKeyClientCapabilities: map[string]any{}}, false},
		{map[string]any{mcp.MetaKeyProtocolVersion: "2026-07-28", mcp.MetaKeyClientCapabilities: "x"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := tasksDeclared(tc.meta); got != tc.want {
			t.Errorf("tasksDeclared(%v) = %v, want %v", tc.meta, got, tc.want)
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
