package tools

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Waiting bounds: jupyter-server-proxy cuts a POST at 300 s, so no call
// may wait that long; longer runs go on and are fetched with get_execution.
const (
	defaultWait       = 60 * time.Second
	maxWaitSeconds    = 240
	progressEvery     = 250 * time.Millisecond // at most this often on output
	heartbeatInterval = 5 * time.Second        // when the code is silent
)

type ExecuteCellIn struct {
	Path    string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	CellID  string `json:"cell_id,omitempty" jsonschema:"id of the code cell to run (preferred)"`
	Index   *int   `json:"index,omitempty" jsonschema:"0-based index of the cell, if no cell_id; -1 is the last cell"`
	Timeout *int   `json:"timeout,omitempty" jsonschema:"seconds to wait for the result, 1 to 240 (default 60); if the code still runs then, you get its execution_id and it keeps running"`
}

// CellRun is how one cell of an execution went.
type CellRun struct {
	CellID         string `json:"cell_id,omitempty"`
	Status         string `json:"status"`
	ExecutionCount *int   `json:"execution_count,omitempty"`
	Note           string `json:"note,omitempty"`
}

type ExecutionOut struct {
	ExecutionID    string    `json:"execution_id"`
	Status         string    `json:"status" jsonschema:"queued, running, needs_input (answer with send_input), ok, error, interrupted, kernel_died or failed"`
	Cells          []CellRun `json:"cells,omitempty"`
	InputPrompt    string    `json:"input_prompt,omitempty" jsonschema:"the prompt of the input() the code waits on"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
}

var executeCellTool = &mcp.Tool{
	Name:  "execute_cell",
	Title: "Execute cell",
	Description: "Run a code cell on the notebook's kernel (the same kernel a person uses in JupyterLab, started if none runs) and return its outputs; they are also saved in the notebook. " +
		"Progress is reported while it runs. If it is still running after timeout, you get an execution_id: wait again with get_execution. If it waits on input(), answer with send_input.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
}

func (t *Tools) executeCell(ctx context.Context, req *mcp.CallToolRequest, in ExecuteCellIn) (*mcp.CallToolResult, ExecutionOut, error) {
	return t.runCells(ctx, req, in.Path, in.Timeout, func(nb *notebook.Notebook) ([]*notebook.Cell, error) {
		i, err := nb.Locate(notebook.Ref{ID: in.CellID, Index: in.Index})
		if err != nil {
			return nil, err
		}
		c := nb.Cells[i]
		if c.Type != notebook.Code {
			return nil, fmt.Errorf("cell %s (index %d) is a %s cell: only code cells run", c.ID, i, c.Type)
		}
		return []*notebook.Cell{c}, nil
	})
}

type ExecuteCellsIn struct {
	Path    string `json:"path,omitempty" jsonschema:"notebook path; default this session's current notebook"`
	Start   int    `json:"start,omitempty" jsonschema:"index of the first cell to run; default 0"`
	End     *int   `json:"end,omitempty" jsonschema:"index of the last cell to run (inclusive); default the last cell"`
	Timeout *int   `json:"timeout,omitempty" jsonschema:"seconds to wait for the result, 1 to 240 (default 60); if the cells still run then, you get an execution_id and they keep running"`
}

var executeCellsTool = &mcp.Tool{
	Name:  "execute_cells",
	Title: "Execute cells",
	Description: "Run the code cells from start to end (default: all) in order on the notebook's kernel, stopping at the first error. " +
		"Returns each cell's status and the outputs of the last cell run; all outputs are saved in the notebook.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
}

func (t *Tools) executeCells(ctx context.Context, req *mcp.CallToolRequest, in ExecuteCellsIn) (*mcp.CallToolResult, ExecutionOut, error) {
	return t.runCells(ctx, req, in.Path, in.Timeout, func(nb *notebook.Notebook) ([]*notebook.Cell, error) {
		n := len(nb.Cells)
		end := n - 1
		if in.End != nil {
			end = *in.End
		}
		if in.Start < 0 || in.Start >= n || end < in.Start || end >= n {
			return nil, fmt.Errorf("cells %d to %d do not exist: the notebook has %d cells (indexes 0 to %d)", in.Start, end, n, n-1)
		}
		var cells []*notebook.Cell
		for _, c := range nb.Cells[in.Start : end+1] {
			if c.Type == notebook.Code {
				cells = append(cells, c)
			}
		}
		if len(cells) == 0 {
			return nil, fmt.Errorf("cells %d to %d hold no code cell", in.Start, end)
		}
		return cells, nil
	})
}

// runCells runs the cells that pick chooses from the notebook, and waits
// for them as the execute tools do.
func (t *Tools) runCells(ctx context.Context, req *mcp.CallToolRequest, path string, timeout *int, pick func(*notebook.Notebook) ([]*notebook.Cell, error)) (*mcp.CallToolResult, ExecutionOut, error) {
	wait, err := waitDuration(timeout)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	p, err := t.notebookPath(req, path)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	nb, err := t.Docs.Load(ctx, p)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	cells, err := pick(nb)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	e, recorded, err := t.startCells(ctx, req, p, nb, cells)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	res, out, err := t.await(ctx, req, e, wait, true)
	awaitRecord(e, recorded)
	return res, out, err
}

// awaitRecord waits, if execution e has ended, until the outputs it wrote are
// recorded, so that a list_changes right after the call shows them.
func awaitRecord(e *execution.Execution, recorded <-chan struct{}) {
	select {
	case <-e.Done():
		<-recorded
	default:
	}
}

type ExecuteCodeIn struct {
	Path    string `json:"path,omitempty" jsonschema:"notebook whose kernel runs the code; default this session's current notebook"`
	Code    string `json:"code" jsonschema:"code to run, e.g. df.head() or %pip list"`
	Timeout *int   `json:"timeout,omitempty" jsonschema:"seconds to wait for the result, 1 to 240 (default 60); if the code still runs then, you get its execution_id and it keeps running"`
}

var executeCodeTool = &mcp.Tool{
	Name:  "execute_code",
	Title: "Execute scratch code",
	Description: "Run code on the notebook's kernel without adding it to the notebook, to inspect state (variables, dataframes, installed packages). " +
		"It shares the kernel's variables with the notebook's cells.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), OpenWorldHint: ptr(true)},
}

func (t *Tools) executeCode(ctx context.Context, req *mcp.CallToolRequest, in ExecuteCodeIn) (*mcp.CallToolResult, ExecutionOut, error) {
	wait, err := waitDuration(in.Timeout)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	if len(in.Code) > notebook.MaxSourceBytes {
		return nil, ExecutionOut{}, fmt.Errorf("code is %d bytes, more than the limit of %d", len(in.Code), notebook.MaxSourceBytes)
	}
	p, err := t.notebookPath(req, in.Path)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	// Scratch code needs the notebook only to learn its kernel.
	k := t.Kernels.Known(p)
	if k == nil {
		nb, err := t.Docs.Load(ctx, p)
		if err != nil {
			return nil, ExecutionOut{}, err
		}
		if k, err = t.kernelFor(ctx, p, nb); err != nil {
			return nil, ExecutionOut{}, err
		}
	}
	e := t.Executions.RunCode(k, in.Code)
	return t.await(ctx, req, e, wait, true)
}

type GetExecutionIn struct {
	ExecutionID string `json:"execution_id" jsonschema:"id returned by an execute tool"`
	Timeout     *int   `json:"timeout,omitempty" jsonschema:"seconds to wait for it to finish, 1 to 240 (default 60)"`
}

var getExecutionTool = &mcp.Tool{
	Name:        "get_execution",
	Title:       "Get execution",
	Description: "Wait for an execution that was still running when its call returned, and get its status and outputs.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) getExecution(ctx context.Context, req *mcp.CallToolRequest, in GetExecutionIn) (*mcp.CallToolResult, ExecutionOut, error) {
	wait, err := waitDuration(in.Timeout)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	e := t.Executions.Get(in.ExecutionID)
	if e == nil {
		return nil, ExecutionOut{}, unknownExecution(in.ExecutionID)
	}
	return t.await(ctx, req, e, wait, false)
}

type SendInputIn struct {
	ExecutionID string `json:"execution_id" jsonschema:"id of the execution that waits on input()"`
	Text        string `json:"text" jsonschema:"the line to answer with (no trailing newline needed)"`
	Timeout     *int   `json:"timeout,omitempty" jsonschema:"seconds to wait for the code to finish afterwards, 1 to 240 (default 60)"`
}

var sendInputTool = &mcp.Tool{
	Name:        "send_input",
	Title:       "Send input",
	Description: "Answer the input() or getpass() prompt that a running execution waits on (status needs_input), then wait for it like get_execution.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false)},
}

func (t *Tools) sendInput(ctx context.Context, req *mcp.CallToolRequest, in SendInputIn) (*mcp.CallToolResult, ExecutionOut, error) {
	wait, err := waitDuration(in.Timeout)
	if err != nil {
		return nil, ExecutionOut{}, err
	}
	e := t.Executions.Get(in.ExecutionID)
	if e == nil {
		return nil, ExecutionOut{}, unknownExecution(in.ExecutionID)
	}
	if err := e.SendInput(in.Text); err != nil {
		return nil, ExecutionOut{}, fmt.Errorf("execution %s: %w (status %s)", in.ExecutionID, err, e.Snapshot().Status)
	}
	return t.await(ctx, req, e, wait, false)
}

// unknownExecution says why an execution id may be unknown: executions live
// in the sidecar's memory, so one started before it restarted (it crashed,
// or the lab restarted) is gone, though its code may have run on.
func unknownExecution(id string) error {
	return fmt.Errorf("no execution has id %q: finished executions are kept for an hour (the oldest go sooner once all their outputs pass 64 MiB), and none started before the sidecar restarted is known "+
		"(its code may have run on: read the cell's outputs in the notebook, or run it again)", id)
}

func waitDuration(seconds *int) (time.Duration, error) {
	if seconds == nil {
		return defaultWait, nil
	}
	if *seconds < 1 || *seconds > maxWaitSeconds {
		return 0, fmt.Errorf("timeout %d is out of range: use 1 to %d seconds; longer runs keep going and are fetched with get_execution", *seconds, maxWaitSeconds)
	}
	return time.Duration(*seconds) * time.Second, nil
}

// kernelFor finds the notebook's kernel: the one its Jupyter session uses,
// or a new one of the notebook's kernelspec.
func (t *Tools) kernelFor(ctx context.Context, path string, nb *notebook.Notebook) (*kernel.Kernel, error) {
	if k := t.Kernels.Known(path); k != nil {
		return k, nil
	}
	name := kernelName(nb)
	if name == "" {
		sessions, err := t.Jupyter.Sessions(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range sessions {
			if s.Path == path {
				name = s.Kernel.Name
			}
		}
		if name == "" {
			return nil, fmt.Errorf("notebook %q names no kernel (metadata.kernelspec is missing) and none runs for it: pick a kernel in JupyterLab, or create notebooks with create_notebook", path)
		}
	}
	return t.Kernels.ForNotebook(ctx, path, name)
}

// startCells starts running cells of a notebook in the background; the
// channel is closed once the outputs it wrote are recorded as a change.
func (t *Tools) startCells(ctx context.Context, req *mcp.CallToolRequest, path string, nb *notebook.Notebook, cells []*notebook.Cell) (*execution.Execution, <-chan struct{}, error) {
	k, err := t.kernelFor(ctx, path, nb)
	if err != nil {
		return nil, nil, err
	}
	e := t.Executions.RunCells(path, k, cells)
	return e, t.recordRun(req, path, cells, e), nil
}

// await waits for an execution to end, need input, or for wait to pass,
// sending progress notifications meanwhile. If the call is cancelled and
// owns the execution, the execution is interrupted.
//
// For a client that declared the tasks extension (tasks.go), a run it owns
// that still runs after taskAfter, or waits on input(), becomes a task: the
// call returns at once and the middleware answers with the task handle.
func (t *Tools) await(ctx context.Context, req *mcp.CallToolRequest, e *execution.Execution, wait time.Duration, owner bool) (*mcp.CallToolResult, ExecutionOut, error) {
	asTask := owner && taskSlotFrom(ctx) != nil
	if asTask {
		wait = min(wait, taskAfter)
	}
	handOff := func() (*mcp.CallToolResult, ExecutionOut, error) {
		handOver(ctx, e.ID, e, func(s execution.Snapshot) *mcp.CallToolResult {
			res, out, _ := t.executionResult(e, s, "")
			res.StructuredContent = out
			return res
		})
		return t.executionResult(e, e.Snapshot(), "")
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	heartbeat := time.NewTicker(heartbeatInterval)
	defer heartbeat.Stop()
	p := progress{req: req}
	handedOff := t.handedOff(req)
	for {
		snap := e.Snapshot()
		if snap.Status == execution.StatusInput {
			if asTask {
				return handOff() // tasks/get asks for the line
			}
			if res, ok := askForInput(ctx, req, e, snap); ok {
				if res != nil {
					return res, ExecutionOut{}, nil
				}
				continue // answered over the session: wait on
			}
			return t.executionResult(e, snap, "")
		}
		select {
		case <-e.Done():
			return t.executionResult(e, e.Snapshot(), "")
		case <-timer.C:
			if asTask {
				return handOff()
			}
			return t.executionResult(e, e.Snapshot(), fmt.Sprintf("still running after %s: call get_execution with this execution_id to wait again (it keeps running and its outputs are saved in the notebook), or interrupt_kernel to stop it", wait))
		case <-handedOff:
			return t.executionResult(e, e.Snapshot(), "the hub's MCP service is restarting, so this call ends here; the run goes on: call get_execution with this execution_id to wait for its result")
		case <-ctx.Done():
			if owner {
				e.Interrupt("cancelled by the client")
			}
			return nil, ExecutionOut{}, ctx.Err()
		case <-heartbeat.C:
			p.send(ctx, e.Snapshot())
		case <-snap.Changed:
			if time.Since(p.last) < progressEvery {
				select { // let a burst of outputs settle into one notification
				case <-time.After(progressEvery - time.Since(p.last)):
				case <-e.Done():
				case <-ctx.Done():
				}
			}
			p.send(ctx, e.Snapshot())
		}
	}
}

// progress sends MCP progress notifications for one call.
type progress struct {
	req  *mcp.CallToolRequest
	n    float64
	last time.Time
}

func (p *progress) send(ctx context.Context, s execution.Snapshot) {
	p.last = time.Now()
	token := p.req.Params.GetProgressToken()
	if token == nil || p.req.Session == nil {
		return
	}
	p.n++
	_ = p.req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: p.n, Message: progressMessage(s)})
}

// progressMessage tells how a run goes: status, elapsed time, the cell
// running, the number of outputs and the last output line.
func progressMessage(s execution.Snapshot) string {
	// The execution id comes first: a client that gives up on the call can
	// still find the run with get_execution.
	msg := fmt.Sprintf("execution %s: %s %.0fs", s.ID, s.Status, s.Elapsed.Seconds())
	if len(s.Steps) > 1 {
		for i, st := range s.Steps {
			if st.Status == execution.StatusRunning || st.Status == execution.StatusInput {
				msg += fmt.Sprintf(" · cell %d of %d", i+1, len(s.Steps))
			}
		}
	}
	outputs := 0
	for _, st := range s.Steps {
		outputs += len(st.Outputs)
	}
	if outputs > 0 {
		msg += fmt.Sprintf(" · %d outputs", outputs)
	}
	if s.LastLine != "" {
		line, _ := shorten(s.LastLine, 200)
		msg += " · last: " + line
	}
	return msg
}

// executionResult renders an execution for the agent: a status line, each
// cell's status, and the outputs of the last cell that ran.
func (t *Tools) executionResult(e *execution.Execution, s execution.Snapshot, note string) (*mcp.CallToolResult, ExecutionOut, error) {
	out := ExecutionOut{ExecutionID: e.ID, Status: s.Status, ElapsedSeconds: float64(s.Elapsed.Milliseconds()) / 1000}
	var head strings.Builder
	fmt.Fprintf(&head, "execution %s: %s after %.1fs", e.ID, s.Status, out.ElapsedSeconds)
	if s.Status == execution.StatusInput {
		out.InputPrompt = s.Prompt
		kind := "input()"
		if s.Password {
			kind = "a password prompt (getpass)"
		}
		fmt.Fprintf(&head, "\nthe code waits on %s with prompt %q: answer with send_input", kind, s.Prompt)
	}
	if note != "" {
		head.WriteString("\n" + note)
	}
	shown := -1
	for i, st := range s.Steps {
		out.Cells = append(out.Cells, CellRun{CellID: st.CellID, Status: st.Status, ExecutionCount: st.ExecutionCount, Note: st.Note})
		if st.Status != execution.StatusQueued && st.Status != execution.StatusAborted {
			shown = i
		}
		if len(s.Steps) > 1 || st.Note != "" {
			what := "cell " + st.CellID
			if st.CellID == "" {
				what = "code" // execute_code: scratch code, no cell
			}
			line := fmt.Sprintf("\n- %s: %s", what, st.Status)
			if st.ExecutionCount != nil {
				line += fmt.Sprintf(" [%d]", *st.ExecutionCount)
			}
			if st.Note != "" {
				line += " — " + st.Note
			}
			head.WriteString(line)
		}
	}
	content := []mcp.Content{&mcp.TextContent{Text: head.String()}}
	if shown >= 0 {
		if len(s.Steps) > 1 {
			content = append(content, &mcp.TextContent{Text: fmt.Sprintf("outputs of cell %s:", s.Steps[shown].CellID)})
		}
		content = append(content, outputContent(s.Steps[shown].Outputs, t.Limits)...)
	}
	return &mcp.CallToolResult{Content: content}, out, nil
}
