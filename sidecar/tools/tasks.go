package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
)

// Long runs as tasks: the MCP Tasks extension (SEP-2663,
// io.modelcontextprotocol/tasks). A client that declares the extension in a
// tools/call's per-request capabilities gets, for an execution still running
// after taskAfter, a task handle (resultType "task") instead of waiting; it
// polls tasks/get for status and the final result, answers input() through
// tasks/update and stops the run with tasks/cancel (a kernel interrupt).
// The task id is the execution id, so get_execution sees the same run.
//
// The extension exists from protocol 2026-07-28 on (SEP-2663 "Backward
// Compatibility": under 2025-11-25 a server MUST NOT treat the declaration
// as enabling tasks), so only stateless 2026-07-28 requests create tasks;
// clients on earlier versions see no change and keep get_execution.
//
// go-sdk v1.8.0 has no tasks (its issue #942). It has what this needs:
// AddReceivingCustomMethod for tasks/* (unknown methods are refused before
// any middleware runs, so they must be registered), receiving middleware to
// turn a tools/call result into a task handle, ServerCapabilities.Extensions
// to advertise it, and each request's _meta for the per-request declaration.

// TasksExtension is the extension id clients declare in a request's
// _meta["io.modelcontextprotocol/clientCapabilities"].extensions.
const TasksExtension = "io.modelcontextprotocol/tasks"

// tasksSince is the first protocol version that defines the extension.
const tasksSince = "2026-07-28"

// Task statuses (SEP-2663).
const (
	taskWorking   = "working"
	taskInput     = "input_required"
	taskCompleted = "completed"
	taskCancelled = "cancelled"
)

var (
	// taskAfter is how long an execution call of a declaring client waits
	// before the run becomes a task: quick cells answer at once.
	taskAfter = 2 * time.Second
	// taskPollInterval is the polling interval suggested to clients.
	taskPollInterval = time.Second
)

// taskRun is what a task needs of its execution (an *execution.Execution).
type taskRun interface {
	Snapshot() execution.Snapshot
	Done() <-chan struct{}
	Interrupt(why string)
	SendInput(text string) error
}

// task is an execution handed to a client as a task.
type task struct {
	id      string
	run     taskRun
	owner   string
	created time.Time
	// render builds the tool's final result from the finished run: what
	// the tools/call would have returned.
	render func(execution.Snapshot) *mcp.CallToolResult

	mu        sync.Mutex
	cancelled bool // tasks/cancel asked for it
}

// taskTable holds the tasks by id.
type taskTable struct {
	mu   sync.Mutex
	byID map[string]*task
}

// add keeps a new task and drops those that ended more than keepTasks ago.
func (tt *taskTable) add(tk *task) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.byID == nil {
		tt.byID = map[string]*task{}
	}
	for id, old := range tt.byID {
		if ended(old.run) && time.Since(old.run.Snapshot().Updated) > keepTasks {
			delete(tt.byID, id)
		}
	}
	tt.byID[tk.id] = tk
}

func ended(r taskRun) bool {
	select {
	case <-r.Done():
		return true
	default:
		return false
	}
}

// get finds a task of owner. A task of another owner is not found: its
// existence is not told.
func (tt *taskTable) get(id, owner string) *task {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tk := tt.byID[id]
	if tk == nil || tk.owner != owner {
		return nil
	}
	return tk
}

// taskSlot travels in the context of a tools/call from a declaring client:
// an execution tool that hands its run over as a task fills it in.
type taskSlot struct {
	run    taskRun
	id     string
	render func(execution.Snapshot) *mcp.CallToolResult
}

type taskSlotKey struct{}
type taskOwnerKey struct{}

func taskSlotFrom(ctx context.Context) *taskSlot {
	s, _ := ctx.Value(taskSlotKey{}).(*taskSlot)
	return s
}

// handOver makes a still running execution a task, if the call came from a
// declaring client: render is how the finished run becomes the tool's
// result. It reports whether it did.
func handOver(ctx context.Context, id string, run taskRun, render func(execution.Snapshot) *mcp.CallToolResult) bool {
	s := taskSlotFrom(ctx)
	if s == nil {
		return false
	}
	s.run, s.id, s.render = run, id, render
	return true
}

// tasksDeclared reports whether a request's _meta declares the tasks
// extension under a protocol version that defines it.
func tasksDeclared(meta map[string]any) bool {
	v, _ := meta[mcp.MetaKeyProtocolVersion].(string)
	if v < tasksSince {
		return false
	}
	caps, _ := meta[mcp.MetaKeyClientCapabilities].(map[string]any)
	ext, _ := caps["extensions"].(map[string]any)
	_, ok := ext[TasksExtension]
	return ok
}

// taskOwner binds tasks to the credential that created them (a digest of
// the Authorization header; requests on the lab's login cookie share ""), so
// a task id is useless with another credential.
func taskOwner(extra *mcp.RequestExtra) string {
	if extra == nil || extra.Header == nil {
		return ""
	}
	a := extra.Header.Get("Authorization")
	if a == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(a))
	return hex.EncodeToString(sum[:])
}

// registerTasks adds tasks/get, tasks/update and tasks/cancel and the
// middleware that creates tasks and gates the methods.
func (t *Tools) registerTasks(s *mcp.Server) {
	must := func(err error) {
		if err != nil {
			panic(err) // a programming error: a name that shadows a standard method
		}
	}
	must(mcp.AddReceivingCustomMethod(s, "tasks/get", t.tasksGet))
	must(mcp.AddReceivingCustomMethod(s, "tasks/update", t.tasksUpdate))
	must(mcp.AddReceivingCustomMethod(s, "tasks/cancel", t.tasksCancel))
	s.AddReceivingMiddleware(t.tasksMiddleware)
}

// tasksMiddleware turns an execution handed over during a tools/call into a
// task handle, refuses tasks/* to clients that did not declare the
// extension (-32021, as SEP-2663 asks), and keeps the extension out of
// initialize results: it is not defined for the protocols that have them.
func (t *Tools) tasksMiddleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch {
		case method == "initialize":
			res, err := next(ctx, method, req)
			if ir, ok := res.(*mcp.InitializeResult); ok && ir != nil && ir.Capabilities != nil {
				if _, ok := ir.Capabilities.Extensions[TasksExtension]; ok {
					caps := *ir.Capabilities
					caps.Extensions = maps.Clone(caps.Extensions)
					delete(caps.Extensions, TasksExtension)
					ir.Capabilities = &caps
				}
			}
			return res, err
		case method == "tools/call":
			if !tasksDeclared(requestMeta(req)) {
				return next(ctx, method, req)
			}
			slot := &taskSlot{}
			res, err := next(context.WithValue(ctx, taskSlotKey{}, slot), method, req)
			if err != nil || slot.run == nil {
				return res, err
			}
			tk := &task{id: slot.id, run: slot.run, owner: taskOwner(req.GetExtra()), created: slot.run.Snapshot().Started, render: slot.render}
			t.tasks.add(tk)
			r := t.taskState(tk)
			r.ResultType = "task"
			r.InputRequests, r.Result = nil, nil // CreateTaskResult carries no payload
			return r, nil
		case strings.HasPrefix(method, "tasks/"):
			if !tasksDeclared(requestMeta(req)) {
				// Not mcp.MissingRequiredClientCapabilityData: its
				// ClientCapabilities always adds "roots", which is not required.
				data, _ := json.Marshal(map[string]any{"requiredCapabilities": map[string]any{
					"extensions": map[string]any{TasksExtension: map[string]any{}}}})
				return nil, &jsonrpc.Error{Code: mcp.CodeMissingRequiredClientCapabilities, Data: data,
					Message: fmt.Sprintf("%s needs the tasks extension: declare %q in the request's _meta %q, under protocol %s or later",
						method, TasksExtension, mcp.MetaKeyClientCapabilities, tasksSince)}
			}
			// SEP-2663 routing header: clients name the task in Mcp-Name
			// (SEP-2243 checks). One that disagrees with the body is refused;
			// one left out is tolerated (go-sdk's own custom-method client
			// does not send it).
			if extra := req.GetExtra(); extra != nil && extra.Header != nil {
				if name := extra.Header.Get("Mcp-Name"); name != "" && name != taskIDOf(req) {
					return nil, &jsonrpc.Error{Code: mcp.CodeHeaderMismatch, Message: fmt.Sprintf(
						"header mismatch: Mcp-Name header value %q does not match params.taskId %q", name, taskIDOf(req))}
				}
			}
			return next(context.WithValue(ctx, taskOwnerKey{}, taskOwner(req.GetExtra())), method, req)
		}
		return next(ctx, method, req)
	}
}

// requestMeta is a request's _meta; nil when it has no params (tasks/*
// may come without).
func requestMeta(req mcp.Request) map[string]any {
	switch r := req.(type) {
	case *mcp.CallToolRequest:
		if r.Params != nil {
			return r.Params.GetMeta()
		}
	case *mcp.ServerRequest[*TaskParams]:
		if r.Params != nil {
			return r.Params.GetMeta()
		}
	case *mcp.ServerRequest[*TaskUpdateParams]:
		if r.Params != nil {
			return r.Params.GetMeta()
		}
	}
	return nil
}

// taskIDOf is a tasks/* request's taskId ("" if it has none).
func taskIDOf(req mcp.Request) string {
	switch r := req.(type) {
	case *mcp.ServerRequest[*TaskParams]:
		return r.Params.taskID()
	case *mcp.ServerRequest[*TaskUpdateParams]:
		if r.Params != nil {
			return r.Params.TaskID
		}
	}
	return ""
}

// TaskParams are the params of tasks/get and tasks/cancel.
type TaskParams struct {
	mcp.ParamsBase
	TaskID string `json:"taskId"`
}

func (p *TaskParams) taskID() string {
	if p == nil {
		return ""
	}
	return p.TaskID
}

// TaskUpdateParams are the params of tasks/update: answers to the
// inputRequests a tasks/get showed, by key.
type TaskUpdateParams struct {
	mcp.ParamsBase
	TaskID         string                     `json:"taskId"`
	InputResponses map[string]json.RawMessage `json:"inputResponses"`
}

// TaskResult is a task as tasks/get shows it (resultType "complete"), and
// the handle a tools/call returns (resultType "task", without payload).
type TaskResult struct {
	mcp.ResultBase
	ResultType     string          `json:"resultType"`
	TaskID         string          `json:"taskId"`
	Status         string          `json:"status"`
	StatusMessage  string          `json:"statusMessage,omitempty"`
	CreatedAt      string          `json:"createdAt"`
	LastUpdatedAt  string          `json:"lastUpdatedAt"`
	TTLMs          *int64          `json:"ttlMs"`
	PollIntervalMs int64           `json:"pollIntervalMs,omitempty"`
	InputRequests  map[string]any  `json:"inputRequests,omitempty"`
	Result         json.RawMessage `json:"result,omitempty"`
}

// AckResult is the empty acknowledgement of tasks/update and tasks/cancel.
type AckResult struct {
	mcp.ResultBase
	ResultType string `json:"resultType"`
}

func ack() *AckResult { return &AckResult{ResultType: "complete"} }

// lookup finds the caller's task or says precisely why it cannot (-32602,
// as SEP-2663 asks for an unknown task id).
func (t *Tools) lookup(ctx context.Context, id string) (*task, error) {
	if id == "" {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "taskId is required"}
	}
	owner, _ := ctx.Value(taskOwnerKey{}).(string)
	tk := t.tasks.get(id, owner)
	if tk == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf(
			"task not found: no task %q was created with this client's credentials; tasks live in the sidecar's memory until an hour after they end, and none from before it restarted is known", id)}
	}
	return tk, nil
}

func (t *Tools) tasksGet(ctx context.Context, _ *mcp.ServerSession, p *TaskParams) (*TaskResult, error) {
	tk, err := t.lookup(ctx, p.taskID())
	if err != nil {
		return nil, err
	}
	return t.taskState(tk), nil
}

// tasksCancel interrupts the task's run. Cancelling a task that has ended
// changes nothing and is acknowledged all the same: SEP-2663 makes
// cancellation cooperative, and the official conformance suite
// (tasks-cancel-terminal-idempotent-ack) expects the same empty ack.
func (t *Tools) tasksCancel(ctx context.Context, _ *mcp.ServerSession, p *TaskParams) (*AckResult, error) {
	tk, err := t.lookup(ctx, p.taskID())
	if err != nil {
		return nil, err
	}
	if ended(tk.run) {
		return ack(), nil
	}
	tk.mu.Lock()
	tk.cancelled = true
	tk.mu.Unlock()
	tk.run.Interrupt("cancelled by the client (tasks/cancel)")
	return ack(), nil
}

// tasksUpdate answers the input() the run waits on. Responses to keys that
// are not outstanding are ignored, as SEP-2663 says.
func (t *Tools) tasksUpdate(ctx context.Context, _ *mcp.ServerSession, p *TaskUpdateParams) (*AckResult, error) {
	if p == nil {
		p = &TaskUpdateParams{}
	}
	tk, err := t.lookup(ctx, p.TaskID)
	if err != nil {
		return nil, err
	}
	s := tk.run.Snapshot()
	raw, ok := p.InputResponses[inputKey(s)]
	if s.Status != execution.StatusInput || !ok {
		return ack(), nil
	}
	var answer mcp.ElicitResult
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("inputResponses[%q]: %v", inputKey(s), err)}
	}
	if err := answerInput(tk.run, &answer, inputKey(s)); err != nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("task %s: %v", p.TaskID, err)}
	}
	return ack(), nil
}

// inputKey names the pending input() prompt of a run; each prompt gets its
// own key, as SEP-2663 asks.
func inputKey(s execution.Snapshot) string { return fmt.Sprintf("input-%d", s.InputSeq) }

// taskState is the task as tasks/get shows it now: status, a progress
// message (elapsed time, outputs, last line), and the final result once
// the run has ended.
func (t *Tools) taskState(tk *task) *TaskResult {
	done := ended(tk.run) // before the snapshot: an ended run's snapshot is final
	s := tk.run.Snapshot()
	r := &TaskResult{ResultType: "complete", TaskID: tk.id, Status: taskWorking,
		StatusMessage: progressMessage(s),
		CreatedAt:     tk.created.UTC().Format(time.RFC3339Nano), LastUpdatedAt: s.Updated.UTC().Format(time.RFC3339Nano),
		PollIntervalMs: taskPollInterval.Milliseconds()}
	tk.mu.Lock()
	cancelled := tk.cancelled
	tk.mu.Unlock()
	if !done {
		// Running: no end is set; it is kept keepTasks after it ends.
		if s.Status == execution.StatusInput {
			if ask := inputElicitation(tk.id, s); ask != nil {
				r.Status = taskInput
				r.InputRequests = map[string]any{inputKey(s): map[string]any{"method": "elicitation/create", "params": ask}}
			} else {
				r.StatusMessage += fmt.Sprintf(" · waits on a password prompt (getpass) with prompt %q: answer it with send_input %s (secrets are not asked for in a form)", s.Prompt, tk.id)
			}
		}
		return r
	}
	ttl := (s.Updated.Sub(tk.created) + keepTasks).Milliseconds()
	r.TTLMs = &ttl
	if cancelled && s.Status == execution.StatusInterrupted {
		r.Status = taskCancelled
		r.StatusMessage = "cancelled by the client: the kernel was interrupted; get_execution " + tk.id + " shows the run's record. " + r.StatusMessage
		return r
	}
	r.Status = taskCompleted
	res, err := json.Marshal(tk.render(s))
	if err != nil { // cannot happen: the result is built from JSON values
		res, _ = json.Marshal(&mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}})
	}
	r.Result = res
	return r
}

// keepTasks is how long an ended task stays (it holds its execution, which
// execution.Executions may drop sooner).
const keepTasks = time.Hour
