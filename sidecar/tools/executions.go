package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Execution statuses, as an agent sees them.
const (
	statusQueued      = "queued"      // waiting for earlier code on the kernel
	statusRunning     = "running"     // the kernel is running it
	statusInput       = "needs_input" // waiting on input(): answer with send_input
	statusOK          = "ok"          // finished without error
	statusError       = "error"       // raised an exception
	statusInterrupted = "interrupted" // stopped by interrupt or cancel
	statusAborted     = "not_run"     // skipped after an earlier cell failed
	statusDied        = "kernel_died" // the kernel died or restarted
	statusFailed      = "failed"      // could not run (connection, notebook changed)
)

// Execution is one run of notebook cells (or scratch code) on a kernel. It
// belongs to no tool call: a call waits for it for a while, and if it is
// still running the agent gets its id and can wait again with
// get_execution. Its outputs land in the notebook when each cell finishes.
type Execution struct {
	ID      string
	Path    string
	Kernel  *kernel.Kernel
	Started time.Time

	cancel context.CancelFunc

	mu       sync.Mutex
	steps    []*Step
	status   string
	finished time.Time
	stopped  string // why Interrupt was called, for the record
	input    *inputRequest
	lastLine string
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
	close(e.changed)
	e.changed = make(chan struct{})
}

// snapshot is a consistent copy of the execution's state.
type snapshot struct {
	ID       string
	Status   string
	Steps    []Step
	Prompt   string
	Password bool
	LastLine string
	Elapsed  time.Duration
	Changed  <-chan struct{}
}

func (e *Execution) snapshot() snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := snapshot{ID: e.ID, Status: e.status, LastLine: e.lastLine, Changed: e.changed}
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
	s.Elapsed = end.Sub(e.Started)
	return s
}

// Done is closed when the execution has ended.
func (e *Execution) Done() <-chan struct{} { return e.done }

// Interrupt stops the running code (the kernel raises KeyboardInterrupt);
// later cells of the run are not run. why goes into the run's record.
func (e *Execution) Interrupt(why string) {
	e.mu.Lock()
	e.stopped = why
	e.mu.Unlock()
	e.cancel()
}

// SendInput answers a pending input() prompt.
func (e *Execution) SendInput(value string) error {
	e.mu.Lock()
	in := e.input
	e.input = nil
	if in != nil {
		e.status = statusRunning
		e.touch()
	}
	e.mu.Unlock()
	if in == nil {
		return errors.New("this execution is not waiting for input")
	}
	return in.reply(value)
}

// Executions is the table of executions, so later calls can find them.
type Executions struct {
	mu   sync.Mutex
	byID map[string]*Execution
}

// keepFinished is how long a finished execution stays available.
const keepFinished = time.Hour

func (x *Executions) add(e *Execution) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID == nil {
		x.byID = map[string]*Execution{}
	}
	for id, old := range x.byID {
		old.mu.Lock()
		expired := !old.finished.IsZero() && time.Since(old.finished) > keepFinished
		old.mu.Unlock()
		if expired {
			delete(x.byID, id)
		}
	}
	x.byID[e.ID] = e
}

// Get finds an execution by id.
func (x *Executions) Get(id string) *Execution {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.byID[id]
}

// run executes the steps in order on e.Kernel, stopping at the first
// failure, and writes each cell's outputs into the notebook through w (nil
// for scratch code). It runs in its own goroutine, detached from tool calls.
func (e *Execution) run(ctx context.Context, w *cellWriter) {
	defer func() {
		e.mu.Lock()
		e.finished = time.Now()
		if e.status == statusQueued || e.status == statusRunning || e.status == statusInput {
			e.status = statusOK
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
				e.set(func() { st.Status, e.status = statusRunning, statusRunning })
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
					e.status = statusInput
				})
			},
		}
		res, err := e.Kernel.Execute(ctx, st.Code, hooks)
		live.stop()
		status := res.Status
		switch {
		case errors.Is(err, kernel.ErrKernelDied):
			status = statusDied
		case errors.Is(err, context.Canceled):
			status = statusInterrupted
		case err != nil:
			status = statusFailed
		case status == "abort" || status == "aborted":
			status = statusAborted
		}
		e.set(func() {
			st.Status, st.ExecutionCount, st.Outputs = status, res.ExecutionCount, res.Outputs.List()
			switch {
			case status == statusInterrupted && e.stopped != "":
				st.Note = e.stopped
			case err != nil:
				st.Note = err.Error()
			}
			e.input = nil
			if status != statusOK {
				e.status = status
			}
		})
		if w != nil && status != statusAborted {
			if err := w.finish(*st); err != nil {
				e.set(func() { st.Note = "outputs not saved in the notebook: " + err.Error() })
			}
		}
		if status != statusOK {
			e.set(func() {
				for _, rest := range e.steps[i+1:] {
					rest.Status = statusAborted
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
	docs Documents
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
