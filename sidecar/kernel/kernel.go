package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
)

// Manager hands out kernels by notebook, one connection per kernel.
type Manager struct {
	Jupyter *jupyter.Client
	// ConnectionDir is where the local Jupyter server writes its kernels'
	// connection files (its runtime dir): a kernel with one there is
	// reached on its own sockets. Empty, or for kernels without one
	// (remote kernels, a gateway), the server's kernel websocket is used.
	ConnectionDir string

	mu      sync.Mutex
	kernels map[string]*Kernel // by kernel id
	byPath  map[string]*Kernel // notebook path -> its session's kernel
}

// Kernel is a running kernel; executions on it run one at a time, in the
// order they were asked for.
type Kernel struct {
	ID   string
	Name string

	jc      *jupyter.Client
	connDir string
	queue   fifo

	mu   sync.Mutex // guards conn and direct; never held across network I/O
	conn *conn
	// direct is whether the kernel was reached on its own sockets: if they
	// refuse later, it is restarting.
	direct bool
	// dialing makes one dial at a time, so concurrent callers share it.
	dialing sync.Mutex
}

// ForNotebook returns the kernel of the notebook at path: the one its
// Jupyter session already uses (a person's kernel in JupyterLab), or a new
// one of kernelspec kernelName started in the notebook's folder.
func (m *Manager) ForNotebook(ctx context.Context, path, kernelName string) (*Kernel, error) {
	if k := m.Known(path); k != nil {
		return k, nil
	}
	s, err := m.Jupyter.EnsureSession(ctx, path, kernelName)
	if err != nil {
		var ae *jupyter.APIError
		if errors.As(err, &ae) && ae.Status == 501 {
			return nil, fmt.Errorf("kernel %q is not installed (list_kernels shows the installed kernelspecs)", kernelName)
		}
		return nil, fmt.Errorf("start or find the kernel of %q: %w", path, err)
	}
	k := m.byID(s.Kernel.ID, s.Kernel.Name)
	m.mu.Lock()
	if m.byPath == nil {
		m.byPath = map[string]*Kernel{}
	}
	m.byPath[path] = k
	m.mu.Unlock()
	return k, nil
}

// KernelChanged is told of a kernel action on the server, by anyone. After
// a restart a connection proves its IOPub subscription again before its
// next request: the server tells a websocket nothing of a restart (a person
// restarting the kernel in JupyterLab), and the subscription of the
// server's relay to the new kernel can lag behind, losing the outputs of a
// run sent at once.
func (m *Manager) KernelChanged(ev jupyter.KernelEvent) {
	if ev.Action != "restart" {
		return
	}
	m.mu.Lock()
	k := m.kernels[ev.KernelID]
	m.mu.Unlock()
	if k == nil {
		return
	}
	if c := k.open(); c != nil {
		c.recheck.Store(true)
	}
}

// Known returns the kernel last found for a notebook, if its connection is
// still up. A kernel that is shut down (also when a person switches the
// notebook to another kernel) closes its connection, so the next call asks
// the server again.
func (m *Manager) Known(path string) *Kernel {
	m.mu.Lock()
	k := m.byPath[path]
	m.mu.Unlock()
	if k == nil {
		return nil
	}
	if k.open() == nil {
		return nil
	}
	return k
}

func (m *Manager) byID(id, name string) *Kernel {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kernels == nil {
		m.kernels = map[string]*Kernel{}
	}
	k, ok := m.kernels[id]
	if !ok {
		k = &Kernel{ID: id, Name: name, jc: m.Jupyter, connDir: m.ConnectionDir}
		m.kernels[id] = k
	}
	return k
}

// Close drops every kernel connection.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.kernels {
		k.mu.Lock()
		if k.conn != nil {
			k.conn.close()
		}
		k.mu.Unlock()
	}
}

// connection returns the open connection, reconnecting after a drop.
func (k *Kernel) connection(ctx context.Context) (*conn, error) {
	if c := k.open(); c != nil {
		return c, nil
	}
	k.dialing.Lock()
	defer k.dialing.Unlock()
	if c := k.open(); c != nil { // another caller dialed meanwhile
		return c, nil
	}
	c, err := k.dial(ctx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.conn = c
	k.mu.Unlock()
	return c, nil
}

// dial connects to the kernel's own sockets when its connection file is
// at hand, else (or if they do not answer) to the server's kernel
// websocket.
func (k *Kernel) dial(ctx context.Context) (*conn, error) {
	if k.connDir != "" {
		c, err := k.dialOwnSockets(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrKernelGone) {
			return c, err
		}
	}
	c, err := dialWebsocket(ctx, k.jc, k.ID)
	if jupyter.IsNotFound(err) {
		return nil, k.gone()
	}
	return c, err
}

// ErrKernelGone means the server no longer has the kernel.
var ErrKernelGone = errors.New("the kernel no longer exists: it was shut down, or it died again and again and the server stopped restarting it; " +
	"run the code again to start a new kernel (its variables are lost)")

func (k *Kernel) gone() error { return fmt.Errorf("kernel %s: %w", k.ID, ErrKernelGone) }

// dialOwnSockets connects to the sockets named in the kernel's connection
// file. A kernel that is starting has not opened its ports yet (and while
// the server restarts it, its connection file may be gone or name the old
// ports): that is waited for, up to startWait, when the kernel was reached
// on its own sockets before or the server says it is starting. The
// server's state alone does not tell: it reads "idle" right after a
// restart, before the new kernel listens.
func (k *Kernel) dialOwnSockets(ctx context.Context) (*conn, error) {
	deadline := time.Now().Add(startWait)
	var asked time.Time // when the server was last asked about the kernel
	for {
		info, err := readConnectionFile(k.connDir, k.ID)
		var c *conn
		if err == nil {
			c, err = dialZMQ(ctx, info)
		}
		if err == nil {
			k.mu.Lock()
			k.direct = true
			k.mu.Unlock()
			return c, nil
		}
		k.mu.Lock()
		direct := k.direct
		k.mu.Unlock()
		// Ports that refuse, or no connection file: the kernel is not up
		// yet. A kernel reached directly before is being restarted, and
		// then anything can meet the dial for a moment (the connection
		// file half rewritten with new ports, a new kernel that does not
		// answer yet): that is waited out too, not taken as a reason to
		// fall back to the websocket.
		starting := errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
		if ctx.Err() != nil || !(starting || direct) || time.Now().After(deadline) {
			return nil, err
		}
		// Ask the server about the kernel at once if it was never reached
		// directly, then every second: a kernel that died too often in a
		// row is not restarted again, and no ports will open.
		if !direct || time.Since(asked) >= time.Second {
			asked = time.Now()
			state, serr := k.State(ctx)
			if jupyter.IsNotFound(serr) || state == "dead" {
				return nil, k.gone()
			}
			if !direct && (serr != nil || (state != "starting" && state != "restarting")) {
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(startPoll):
		}
	}
}

// startPoll is how often dial looks for the ports of a starting kernel,
// and startWait how long at most.
const (
	startPoll = 50 * time.Millisecond
	startWait = 20 * time.Second
)

// open returns the connection if it is up.
func (k *Kernel) open() *conn {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil && !k.conn.isClosed() {
		return k.conn
	}
	return nil
}

// Interrupt interrupts the code running on the kernel.
func (k *Kernel) Interrupt(ctx context.Context) error { return k.jc.InterruptKernel(ctx, k.ID) }

// Restart restarts the kernel; its variables are lost. The connection is
// dropped, so the next request dials afresh and proves its IOPub
// subscription (as KernelChanged has it do after a restart by someone
// else, which the event bus tells later, and only servers that have one).
func (k *Kernel) Restart(ctx context.Context) error {
	if err := k.jc.RestartKernel(ctx, k.ID); err != nil {
		return err
	}
	k.mu.Lock()
	c := k.conn
	k.mu.Unlock()
	if c != nil {
		c.shutdown(ErrKernelDied)
	}
	return nil
}

// State is the kernel's execution state as the server reports it (idle,
// busy, starting, dead...).
func (k *Kernel) State(ctx context.Context) (string, error) {
	info, err := k.jc.GetKernel(ctx, k.ID)
	if err != nil {
		return "", err
	}
	return info.ExecutionState, nil
}

// Hooks let the caller follow an execution while it runs.
type Hooks struct {
	// Started is called when the kernel begins running this code (earlier
	// requests on the same kernel have finished).
	Started func()
	// Output is called after every change of the outputs.
	Output func(o *Outputs)
	// Input is called when the code waits on input() or getpass(); reply
	// answers it.
	Input func(prompt string, password bool, reply func(value string) error)
}

// Result is how an execution ended.
type Result struct {
	// Status is ok, error (the code raised), or aborted (not run, e.g.
	// after an earlier error).
	Status         string
	ExecutionCount *int
	Outputs        *Outputs
}

// interruptGrace is how long to wait for the kernel to report idle after
// an interrupt before giving up on the request.
const interruptGrace = 10 * time.Second

// Execute runs code on the kernel after the executions queued before it,
// and returns when the kernel is done with it. If ctx ends first the kernel
// is interrupted and ctx's error is returned with the outputs so far.
func (k *Kernel) Execute(ctx context.Context, code string, h Hooks) (*Result, error) {
	if err := k.queue.acquire(ctx); err != nil {
		return &Result{Outputs: &Outputs{}}, err
	}
	defer k.queue.release()
	started := false
	h2 := h
	h2.Started = func() {
		if !started && h.Started != nil {
			h.Started()
		}
		started = true
	}
	res, err := k.execute(ctx, code, h2)
	if errors.Is(err, errUnacknowledged) {
		// Sent while the kernel restarted: nothing ran, so sending again
		// on a fresh connection is safe.
		res, err = k.execute(ctx, code, h2)
	}
	return res, err
}

// errUnacknowledged means the kernel never saw a request.
var errUnacknowledged = errors.New("the kernel did not receive the request (was it restarting?); try again")

// ackTimeout is how often a run asks the server about its kernel: a
// request an idle kernel has not acknowledged by then is lost.
var ackTimeout = 5 * time.Second // a variable for the tests

// afterReplyWait is how long IOPub may stay silent after the execute
// reply before the execution ends without its idle status. A kernel
// publishes every output before it replies, so only messages already on
// their way are still to come.
var afterReplyWait = 10 * time.Second // a variable for the tests

// execute runs code once on the kernel's connection: send asks the kernel
// to run it, collect gathers the run's messages into the result until the
// kernel has replied and gone idle, interrupting the kernel when ctx ends
// and asking the server about the kernel every ackTimeout (checkKernel), as
// a restart or a lost request shows in nothing the kernel sends.
func (k *Kernel) execute(ctx context.Context, code string, h Hooks) (*Result, error) {
	r := &run{k: k, h: h, res: &Result{Outputs: &Outputs{}}}
	if err := r.send(ctx, code); err != nil {
		return r.res, err
	}
	defer r.c.unsubscribe(r.s)
	h.Started()
	err := r.collect(ctx)
	return r.res, err
}

// run is one execution of code while its messages come in.
type run struct {
	k   *Kernel
	h   Hooks
	res *Result
	c   *conn
	s   *sub // the run's messages

	acked, replied, idle bool
	// lastMsg is when the run's last message arrived; idleSince when the
	// server first said idle in a row of checks.
	lastMsg, idleSince time.Time
}

// send sends the execute request on the kernel's connection, first
// proving the connection's subscription to the kernel's outputs again if
// the kernel restarted since its last run.
func (r *run) send(ctx context.Context, code string) error {
	c, err := r.k.connection(ctx)
	if err != nil {
		return err
	}
	if c.recheck.Swap(false) {
		if err := c.awaitSubscription(ctx); err != nil {
			c.shutdown(err)
			return err
		}
	}
	s, err := c.request("execute_request", map[string]any{
		"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": r.h.Input != nil, "stop_on_error": true,
	})
	if err != nil {
		return err
	}
	r.c, r.s = c, s
	return nil
}

// collect reads the run's messages until the kernel has replied and gone
// idle. When ctx ends it interrupts the kernel once and drains the run for
// at most interruptGrace, then returns ctx's error.
func (r *run) collect(ctx context.Context) error {
	ack := time.NewTimer(ackTimeout)
	defer ack.Stop()
	var cancelled error
	var grace <-chan time.Time
	// quiet fires when IOPub has been silent for afterReplyWait after the
	// reply: its idle is lost, and waiting longer would hang the call.
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	done := ctx.Done()
	for !(r.idle && r.replied) {
		select {
		case <-quiet.C:
			return cancelled
		case <-done:
			cancelled = ctx.Err()
			done = nil // interrupt once, then drain until idle
			ictx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = r.k.Interrupt(ictx)
			cancel()
			grace = time.After(interruptGrace)
		case <-grace:
			return cancelled
		case <-ack.C:
			if err := r.checkKernel(ctx); err != nil {
				return err
			}
			ack.Reset(ackTimeout)
		case <-r.s.died:
			if err := r.c.closeErr(); err != nil && !errors.Is(err, ErrKernelDied) {
				return fmt.Errorf("lost the connection to the kernel: %v", err)
			}
			return ErrKernelDied
		case m := <-r.s.msgs:
			r.acked, r.lastMsg = true, time.Now()
			if r.replied || (m.Channel == "shell" && m.Header.MsgType == "execute_reply") {
				quiet.Reset(afterReplyWait)
			}
			r.handle(m)
		}
	}
	return cancelled
}

// checkKernel judges the run by the server's word on the kernel, and
// returns an error when the run cannot end by itself. Busy: with earlier
// code, or with this run. Idle: a request it never acknowledged is lost; a
// run it started that has said nothing since the server last said idle was
// lost to a restart, which the server's websocket does not tell (someone
// else restarted the kernel; on its own sockets the sidecar sees the old
// kernel go at once). One look at the server is not enough for that: under
// load its idle can come before the run's last messages reach the sidecar.
func (r *run) checkKernel(ctx context.Context) error {
	state, err := r.k.State(ctx)
	switch {
	case jupyter.IsNotFound(err):
		// Removed (it died again and again): the server may not close the
		// websocket or say "dead" on it first.
		r.c.shutdown(ErrKernelGone)
		return r.k.gone()
	case err != nil || state != "idle":
		r.idleSince = time.Time{}
	case len(r.s.msgs) > 0: // messages not read yet: judge after them
	case !r.acked:
		r.c.close()
		return errUnacknowledged
	case r.replied: // its idle is on its way (quiet ends the wait)
	case r.idleSince.IsZero() || r.lastMsg.After(r.idleSince):
		r.idleSince = time.Now()
	default:
		r.c.shutdown(ErrKernelDied)
		return ErrKernelDied
	}
	return nil
}

// handle takes one of the run's messages into the result: status,
// execution count, outputs, the reply, and input requests (answered
// through the Input hook).
func (r *run) handle(m *Message) {
	switch {
	case m.Channel == "iopub" && m.Header.MsgType == "status":
		var st struct {
			ExecutionState string `json:"execution_state"`
		}
		_ = json.Unmarshal(m.Content, &st)
		r.idle = r.idle || st.ExecutionState == "idle"
	case m.Channel == "iopub" && m.Header.MsgType == "execute_input":
		var in struct {
			ExecutionCount *int `json:"execution_count"`
		}
		_ = json.Unmarshal(m.Content, &in)
		r.res.ExecutionCount = in.ExecutionCount
	case m.Channel == "iopub":
		if r.res.Outputs.apply(m) && r.h.Output != nil {
			r.h.Output(r.res.Outputs)
		}
	case m.Channel == "shell" && m.Header.MsgType == "execute_reply":
		var rep struct {
			Status         string `json:"status"`
			ExecutionCount *int   `json:"execution_count"`
		}
		_ = json.Unmarshal(m.Content, &rep)
		r.res.Status = rep.Status
		if rep.ExecutionCount != nil {
			r.res.ExecutionCount = rep.ExecutionCount
		}
		r.replied = true
	case m.Channel == "stdin" && m.Header.MsgType == "input_request" && r.h.Input != nil:
		var ir struct {
			Prompt   string `json:"prompt"`
			Password bool   `json:"password"`
		}
		_ = json.Unmarshal(m.Content, &ir)
		parent := m.Header
		c := r.c
		r.h.Input(ir.Prompt, ir.Password, func(value string) error {
			reply, err := newMessage("stdin", "input_reply", c.session, map[string]string{"value": value}, &parent)
			if err != nil {
				return err
			}
			return c.write(reply)
		})
	}
}

// fifo is a lock that is granted in request order.
type fifo struct {
	mu      sync.Mutex
	busy    bool
	waiters []chan struct{}
}

func (f *fifo) acquire(ctx context.Context) error {
	f.mu.Lock()
	if !f.busy {
		f.busy = true
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, ch)
	f.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, w := range f.waiters {
			if w == ch {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				return ctx.Err()
			}
		}
		// Granted while giving up: pass it on.
		f.mu.Unlock()
		f.release()
		f.mu.Lock()
		return ctx.Err()
	}
}

func (f *fifo) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.waiters) == 0 {
		f.busy = false
		return
	}
	next := f.waiters[0]
	f.waiters = f.waiters[1:]
	close(next)
}
