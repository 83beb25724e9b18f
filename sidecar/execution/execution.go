// Package execution runs notebook cells and scratch code on kernels, apart
// from any tool call: it keeps each run's record (status, outputs, a pending
// input prompt) for whoever waits on it, writes a cell's outputs into the
// notebook while it runs and when it ends, and keeps finished runs for a
// while so that a later call can still fetch them.
package execution

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Execution statuses, as an agent sees them: the tools pass them on as they are.
const (
	StatusQueued      = "queued"      // waiting for earlier code on the kernel
	StatusRunning     = "running"     // the kernel is running it
	StatusInput       = "needs_input" // waiting on input(): answer with send_input
	StatusOK          = "ok"          // finished without error
	StatusError       = "error"       // raised an exception
	StatusInterrupted = "interrupted" // stopped by interrupt or cancel
	StatusAborted     = "not_run"     // skipped after an earlier cell failed
	StatusDied        = "kernel_died" // the kernel died or restarted
	StatusFailed      = "failed"      // could not run (connection, notebook changed)
)

// Execution is one run of notebook cells (or scratch code) on a kernel. It
// belongs to no tool call: a call waits for it for a while, and if it is
// still running the agent gets its id and can wait again with
// get_execution. Its outputs land in the notebook when each cell finishes.
type Execution struct {
	ID string

	kernel  *kernel.Kernel
	started time.Time

	cancel context.CancelFunc

	mu       sync.Mutex
	steps    []*Step
	status   string
	finished time.Time
	stopped  string // why Interrupt was called, for the record
	input    *inputRequest
	lastLine string
	updated  time.Time     // when the state last changed
	inputs   int           // input() prompts asked so far
	changed  chan struct{} // closed and replaced on every change
	done     chan struct{}
}

// Step is one cell (or the scratch code) of an execution.
type Step struct {
	CellID         string
	Code           string
	Status         string
	ExecutionCount *int
	Outputs        []json.RawMessage
	Note           string // why it failed or was not saved
}

type inputRequest struct {
	prompt   string
	password bool
	reply    func(string) error
}

func newExecutionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "x" + hex.EncodeToString(b[:])
}

// touch wakes everyone waiting for a change; call with e.mu held.
func (e *Execution) touch() {
	e.updated = time.Now()
	close(e.changed)
	e.changed = make(chan struct{})
}

// Snapshot is a consistent copy of an execution's state.
type Snapshot struct {
	ID       string
	Status   string
	Steps    []Step
	Prompt   string
	Password bool
	LastLine string
	Elapsed  time.Duration
	// Started and Updated are when the run started and last changed.
	Started, Updated time.Time
	// InputSeq counts the input() prompts so far: it tells one pending
	// prompt from the next.
	InputSeq int
	Changed  <-chan struct{}
}

// Snapshot copies the execution's state; its Changed channel is closed at
// the next change.
func (e *Execution) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{ID: e.ID, Status: e.status, LastLine: e.lastLine, Changed: e.changed,
		Started: e.started, Updated: e.updated, InputSeq: e.inputs}
	for _, st := range e.steps {
		s.Steps = append(s.Steps, *st)
	}
	if e.input != nil {
		s.Prompt, s.Password = e.input.prompt, e.input.password
	}
	end := e.finished
	if end.IsZero() {
		end = time.Now()
	}
	s.Elapsed = end.Sub(e.started)
	return s
}

// Done is closed when the execution has ended.
func (e *Execution) Done() <-chan struct{} { return e.done }

// Interrupt stops the running code (the kernel raises KeyboardInterrupt);
// later cells of the run are not run. why goes into the run's record.
func (e *Execution) Interrupt(why string) {
	e.mu.Lock()
	e.stopped = why
	if e.input != nil { // the kernel's input() ends with the interrupt
		e.input = nil
		e.status = StatusRunning
	}
	e.mu.Unlock()
	e.cancel()
}

// SendInput answers a pending input() prompt.
func (e *Execution) SendInput(value string) error {
	e.mu.Lock()
	in := e.input
	e.input = nil
	if in != nil {
		e.status = StatusRunning
		e.touch()
	}
	e.mu.Unlock()
	if in == nil {
		return errors.New("this execution is not waiting for input")
	}
	return in.reply(value)
}

// Executions starts executions and keeps them, so later calls can find
// them.
type Executions struct {
	// Docs is where a cell's outputs are written, live while it runs and
	// saved when it ends.
	Docs documents.Backend
	// Log gets what goes wrong outside a tool call's answer (live output
	// writes of a run that outlived its call, for instance).
	Log zerolog.Logger

	mu   sync.Mutex
	byID map[string]*Execution
	// ended holds the finished executions still in byID, oldest first,
	// and endedBytes the size of their outputs.
	ended      []ended
	endedBytes int
}

type ended struct {
	e     *Execution
	at    time.Time
	bytes int
}

// RunCells starts running cells of the notebook at path on k, in the
// background and in order, stopping at the first failure. Each cell's
// outputs are written into the notebook, addressed by cell id.
func (x *Executions) RunCells(path string, k *kernel.Kernel, cells []*notebook.Cell) *Execution {
	var steps []*Step
	for _, c := range cells {
		steps = append(steps, &Step{CellID: c.ID, Code: c.Source, Status: StatusQueued})
	}
	return x.start(k, steps, &cellWriter{docs: x.Docs, path: path, log: x.Log})
}

// RunCode starts running scratch code on k in the background; no notebook
// is changed.
func (x *Executions) RunCode(k *kernel.Kernel, code string) *Execution {
	return x.start(k, []*Step{{Code: code, Status: StatusQueued}}, nil)
}

func (x *Executions) start(k *kernel.Kernel, steps []*Step, w *cellWriter) *Execution {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	e := &Execution{ID: newExecutionID(), kernel: k, started: now, updated: now, cancel: cancel,
		steps: steps, status: StatusQueued, changed: make(chan struct{}), done: make(chan struct{})}
	x.add(e)
	go func() {
		e.run(ctx, w)
		x.retire(e)
	}()
	return e
}

// A finished execution stays available for keepFinished, or until the
// outputs of those finished after it pass keepBytes: they are held in
// memory, and an agent in a loop runs thousands of cells an hour.
const (
	keepFinished = time.Hour
	keepBytes    = 64 << 20
)

func (x *Executions) add(e *Execution) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID == nil {
		x.byID = map[string]*Execution{}
	}
	x.byID[e.ID] = e
	x.dropEnded(time.Now())
}

// retire queues a finished execution to be dropped in its turn.
func (x *Executions) retire(e *Execution) {
	e.mu.Lock()
	r := ended{e: e, at: e.finished}
	for _, st := range e.steps {
		r.bytes += len(st.Code) + len(st.Note)
		for _, o := range st.Outputs {
			r.bytes += len(o)
		}
	}
	e.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ended = append(x.ended, r)
	x.endedBytes += r.bytes
	x.dropEnded(time.Now())
}

// dropEnded drops the finished executions past keeping, oldest first; the
// newest stays however large.
func (x *Executions) dropEnded(now time.Time) {
	for len(x.ended) > 0 {
		r := x.ended[0]
		if now.Sub(r.at) <= keepFinished && (x.endedBytes <= keepBytes || len(x.ended) == 1) {
			return
		}
		delete(x.byID, r.e.ID)
		x.endedBytes -= r.bytes
		x.ended[0] = ended{}
		x.ended = x.ended[1:]
	}
}

// Get finds an execution by id.
func (x *Executions) Get(id string) *Execution {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.byID[id]
}

// run executes the steps in order on e.kernel, stopping at the first
// failure, and writes each cell's outputs into the notebook through w (nil
// for scratch code). It runs in its own goroutine, detached from tool calls.
func (e *Execution) run(ctx context.Context, w *cellWriter) {
	defer func() {
		e.mu.Lock()
		e.finished = time.Now()
		if e.status == StatusQueued || e.status == StatusRunning || e.status == StatusInput {
			e.status = StatusOK
		}
		e.input = nil
		e.touch()
		e.mu.Unlock()
		close(e.done)
		e.cancel()
	}()
	for i, st := range e.steps {
		var live *liveOutputs
		var rendered time.Time
		hooks := kernel.Hooks{
			Started: func() {
				e.set(func() { st.Status, e.status = StatusRunning, StatusRunning })
				if w != nil && w.docs.Live() {
					live = w.startLive(st.CellID)
				}
			},
			Output: func(o *kernel.Outputs) {
				// Rendering all outputs costs as much as they weigh: once
				// they are large (a flood), do it at most every liveFlush
				// (the end of the cell renders them once more).
				if o.TextBytes() > 64<<10 && time.Since(rendered) < liveFlush {
					e.set(func() { e.lastLine = o.LastLine() })
					return
				}
				rendered = time.Now()
				outs := o.List()
				e.set(func() { st.Outputs, e.lastLine = outs, o.LastLine() })
				live.set(outs)
			},
			Input: func(prompt string, password bool, reply func(string) error) {
				e.set(func() {
					e.input = &inputRequest{prompt: prompt, password: password, reply: reply}
					e.inputs++
					e.status = StatusInput
				})
			},
		}
		res, err := e.kernel.Execute(ctx, st.Code, hooks)
		live.stop()
		status := res.Status
		switch {
		case errors.Is(err, kernel.ErrKernelDied):
			status = StatusDied
		case errors.Is(err, context.Canceled):
			status = StatusInterrupted
		case err != nil:
			status = StatusFailed
		case status == "abort" || status == "aborted":
			status = StatusAborted
		}
		e.set(func() {
			st.Status, st.ExecutionCount, st.Outputs = status, res.ExecutionCount, res.Outputs.List()
			switch {
			case status == StatusInterrupted && e.stopped != "":
				st.Note = e.stopped
			case err != nil:
				st.Note = err.Error()
			}
			e.input = nil
			if status != StatusOK {
				e.status = status
			}
		})
		if w != nil && status != StatusAborted {
			if err := w.finish(*st); err != nil {
				e.set(func() { st.Note = "outputs not saved in the notebook: " + err.Error() })
			}
		}
		if status != StatusOK {
			e.set(func() {
				for _, rest := range e.steps[i+1:] {
					rest.Status = StatusAborted
				}
			})
			return
		}
	}
}

func (e *Execution) set(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
	e.touch()
}

// cellWriter writes an execution's results into its notebook, addressing
// cells by id so that concurrent edits are kept.
type cellWriter struct {
	docs documents.Backend
	path string
	log  zerolog.Logger
}

// Writes into the notebook are bounded: a run must end even when the
// notebook cannot be written (the room or the server is gone).
const (
	saveTimeout = time.Minute      // a finished cell's outputs, saved
	liveTimeout = 10 * time.Second // one live update of a running cell
)

// writeCell changes one cell of the notebook.
func (w *cellWriter) writeCell(ctx context.Context, cellID string, live bool, f func(c *notebook.Cell)) error {
	edit := func(nb *notebook.Notebook) error {
		i, err := nb.Locate(notebook.Ref{ID: cellID})
		if err != nil {
			return errors.New("the cell was deleted while it ran")
		}
		f(nb.Cells[i])
		return nil
	}
	var err error
	if live {
		_, err = w.docs.Progress(ctx, w.path, edit)
	} else {
		_, err = w.docs.Update(ctx, w.path, edit)
	}
	return err
}

// finish writes a finished cell's outputs and execution count, and saves.
func (w *cellWriter) finish(st Step) error {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	return w.writeCell(ctx, st.CellID, false, func(c *notebook.Cell) {
		c.Outputs, c.ExecutionCount = st.Outputs, st.ExecutionCount
		if c.ExecutionState != "" {
			c.ExecutionState = "idle"
		}
	})
}

// liveFlush is how often outputs of a running cell reach a live notebook.
const liveFlush = 100 * time.Millisecond

// startLive marks the cell as running (outputs cleared, as JupyterLab does)
// and starts writing its outputs as they arrive.
func (w *cellWriter) startLive(cellID string) *liveOutputs {
	w.live(cellID, "mark the cell running", func(c *notebook.Cell) {
		c.Outputs, c.ExecutionCount, c.ExecutionState = nil, nil, "running"
	})
	l := &liveOutputs{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			_, open := <-l.wake
			l.mu.Lock()
			outs, dirty := l.outs, l.dirty
			l.dirty = false
			l.mu.Unlock()
			if dirty {
				w.live(cellID, "show outputs live", func(c *notebook.Cell) { c.Outputs = outs })
			}
			if !open {
				return
			}
			time.Sleep(liveFlush) // batch a burst of outputs into one document change
		}
	}()
	return l
}

// live writes one change of a running cell for people to see. A failure
// loses nothing (finish writes the final outputs) but is logged.
func (w *cellWriter) live(cellID, what string, f func(c *notebook.Cell)) {
	ctx, cancel := context.WithTimeout(context.Background(), liveTimeout)
	defer cancel()
	if err := w.writeCell(ctx, cellID, true, f); err != nil {
		w.log.Warn().Err(err).Str("notebook", w.path).Str("cell", cellID).Msg(what)
	}
}

// liveOutputs hands the latest outputs of a running cell to its writer.
type liveOutputs struct {
	mu    sync.Mutex
	outs  []json.RawMessage
	dirty bool
	wake  chan struct{}
	done  chan struct{}
}

func (l *liveOutputs) set(outs []json.RawMessage) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.outs, l.dirty = outs, true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// stop ends live writing once the last outputs are written.
func (l *liveOutputs) stop() {
	if l == nil {
		return
	}
	close(l.wake)
	<-l.done
}
