package integration

// The fault suite: the failures a sidecar meets in production, each caused
// from outside the sidecar (signals, dropped sockets, files changed, made
// read-only or deleted behind its back, a full disk, a restarted lab), and
// what an agent then sees through the real proxy.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// kernelPID is the pid of the kernel process with this id (its command
// line names its connection file kernel-<id>.json).
func kernelPID(t *testing.T, lab *labtest.Lab, kernelID string) int {
	t.Helper()
	for _, pid := range labtest.ChildPIDs(lab.PID) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("kernel-"+kernelID+".json")) {
			return pid
		}
	}
	t.Fatalf("no process of the lab runs kernel %s", kernelID)
	return 0
}

// eventually polls cond until it holds; the deadline only bounds the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60 s: %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

// faultRuns numbers the notebooks of fault tests, so that a test run again
// in the same lab (-count) starts on fresh files, not on a room it left.
var faultRuns atomic.Int64

// faultPath is a fresh notebook path under faults/ in the shared lab.
func faultPath(name string) string {
	return fmt.Sprintf("faults/%s-%d.ipynb", name, faultRuns.Add(1))
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

func callAsync(ctx context.Context, cs *mcp.ClientSession, tool string, args map[string]any) <-chan callResult {
	done := make(chan callResult, 1)
	go func() {
		res, err := callWithProgress(ctx, cs, tool, args)
		done <- callResult{res, err}
	}()
	return done
}

// runGated writes a notebook at path whose one cell prints "step i" and
// waits on gate i, for i < steps, and starts execute_cell on it in a new
// session; it returns once the cell waits on gate 0, its line seen by the
// client, so the call is in flight and the kernel busy. id is the run's
// execution id.
func runGated(t *testing.T, path string, steps int) (cs *mcp.ClientSession, g gate, done <-chan callResult, id string) {
	t.Helper()
	cs, events := progressSession(t)
	g = newGate(t)
	t.Cleanup(func() { // a failed test must not leave the kernel waiting
		for i := range steps {
			g.open(t, i)
		}
	})
	codeNotebook(t, path, g.code("step", steps))
	done = callAsync(t.Context(), cs, "execute_cell", map[string]any{"path": path, "cell_id": "c0", "timeout": 120})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-events:
			if strings.Contains(ev.message, "last: step 0") {
				return cs, g, done, executionID.FindStringSubmatch(ev.message)[1]
			}
		case r := <-done:
			t.Fatalf("execute_cell ended before the cell printed its first line: %v %+v", r.err, r.res)
		case <-deadline:
			t.Fatal("no progress naming \"step 0\" within 60 s")
		}
	}
}

// The sidecar killed with SIGKILL while a call waits on a running cell:
// that call fails instead of hanging, the proxy starts a new sidecar for
// the next request, and a new session works on the same notebook and
// kernel. The run itself belonged to the killed process: the kernel
// finishes the cell, but its outputs from after the kill reach nobody (the
// new sidecar does not know the run, and the person's browser shows only
// the outputs of its own requests), so the notebook keeps what was written
// before the kill and stays valid.
func TestFaultSidecarKilledMidCall(t *testing.T) {
	killedNB := faultPath("killed")
	_, g, done, run := runGated(t, killedNB, 2)

	old := shared.SidecarPID()
	if old == 0 {
		t.Fatal("no sidecar process under the lab")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case r := <-done:
		if r.err == nil && !r.res.IsError {
			t.Fatalf("the call in flight succeeded after its sidecar was killed: %s", labtest.ResultText(r.res))
		}
		t.Logf("the call in flight failed %.2f s after the kill: %v", time.Since(killed).Seconds(), r.err)
	case <-time.After(60 * time.Second):
		t.Fatal("the call in flight still hangs 60 s after its sidecar was killed")
	}

	fresh := session(t)
	cell := labtest.Call[cellView](t, fresh, "read_cell", map[string]any{"path": killedNB, "cell_id": "c0"})
	t.Logf("a new session's first call answered %.2f s after the kill", time.Since(killed).Seconds())
	if pid := shared.SidecarPID(); pid == 0 || pid == old {
		t.Fatalf("sidecar pid after the kill = %d (killed: %d), want a new process", pid, old)
	}
	t.Logf("what the notebook holds of the run before it ends: %q", cell.Outputs)

	// The kernel runs requests in order: code sent now answers once the
	// orphaned cell has finished.
	g.open(t, 0)
	g.open(t, 1)
	after := labtest.Call[execOut](t, fresh, "execute_code", map[string]any{"path": killedNB, "code": "print('kernel alive')", "timeout": 120})
	if after.Status != "ok" {
		t.Fatalf("execute_code after the orphaned run = %+v", after)
	}
	cell = labtest.Call[cellView](t, fresh, "read_cell", map[string]any{"path": killedNB, "cell_id": "c0"})
	if strings.Contains(strings.Join(cell.Outputs, ""), "step 1") {
		t.Fatalf("outputs printed after the kill reached the notebook (%q): update this test and the README (Execution)", cell.Outputs)
	}
	validateNotebook(t, killedNB)
	// The agent's handle on the run is gone with the process that ran it.
	labtest.CallErr(t, fresh, "get_execution", map[string]any{"execution_id": run}, "the sidecar restarted")
}

// Requests that reach a sidecar as it dies are sent again to the one the
// proxy starts next, not answered 500: the dying sidecar closes their
// connections unread. Stopped (SIGSTOP), the sidecar takes new connections
// into its listening socket's queue without accepting them; killed then,
// it closes them with the requests unread — as a sidecar that crashes does
// with the requests that arrive while it exits.
func TestFaultRequestsToADyingSidecarGoToTheNextOne(t *testing.T) {
	session(t) // a sidecar runs
	pid := shared.SidecarPID()
	socket := sidecarSocket(t, pid)
	queued := func() int { return socketEnds(t, socket) }
	before := queued()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Should the test end before the kill, the shared lab's sidecar runs on.
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	// kill returns before the signal takes effect: a sidecar still running
	// could read a request, and one it read and dies with is rightly not
	// sent again (it may have acted on it).
	eventually(t, "every thread of the sidecar is stopped", func() bool { return stopped(t, pid) })
	const requests = 24 // more than the proxy keeps open (16): some connect anew
	status := make(chan string, requests)
	for i := range requests {
		go func() {
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"dying","version":"0"}}}`, i)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, shared.URL+"mcp", strings.NewReader(body))
			req.Header.Set("Authorization", "token "+shared.Token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				status <- err.Error()
				return
			}
			// The whole response: the request counts as answered only when
			// it is.
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				status <- fmt.Sprintf("%s, then reading the body: %v", resp.Status, err)
				return
			}
			status <- resp.Status
		}()
	}
	// Killed as soon as the first new connection waits, while the proxy is
	// still making others: those are reset as they are made.
	for deadline := time.Now().Add(60 * time.Second); queued() == before; {
		if time.Now().After(deadline) {
			t.Fatal("no new connection waits in the stopped sidecar's queue after 60 s")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range requests {
		if got := <-status; got != "200 OK" {
			t.Errorf("a request sent as the sidecar died: %s, want 200 OK from the next sidecar", got)
		}
	}
	if now := shared.SidecarPID(); now == 0 || now == pid {
		t.Errorf("sidecar pid %d after the kill of %d, want a new process", now, pid)
	}
}

// sidecarSocket is the unix socket the sidecar with pid listens on (its
// --listen unix:<path> argument).
func sidecarSocket(t *testing.T, pid int) string {
	t.Helper()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if path, ok := strings.CutPrefix(arg, "unix:"); ok {
			return path
		}
	}
	t.Fatalf("no unix:<path> among the sidecar's arguments %q", cmdline)
	return ""
}

// stopped reports whether every thread of the process is stopped by a
// signal (state T in /proc/<pid>/task/<tid>/stat).
func stopped(t *testing.T, pid int) bool {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("the sidecar's threads: %v (%d found)", err, len(stats))
	}
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue // a thread that ended since the listing
		}
		// The state follows the command name, in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// socketEnds counts the sockets bound to the unix socket path: the
// listening one, and the server end of every connection to it, accepted or
// still queued (from /proc/net/unix).
func socketEnds(t *testing.T, path string) int {
	t.Helper()
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(table), "\n") {
		if f := strings.Fields(line); len(f) == 8 && f[7] == path {
			n++
		}
	}
	return n
}

// The kernel killed with SIGKILL from outside while a cell waits: the run
// ends as kernel_died with a note saying so, and the next execution works
// without restart_kernel, on the kernel Jupyter restarts by itself
// (TestKernelDeathMidRun covers a kernel that kills itself, then
// restart_kernel).
func TestFaultKernelKilledMidRun(t *testing.T) {
	kernelNB := faultPath("kernel")
	cs, _, done, _ := runGated(t, kernelNB, 1)

	type kernelsOut struct {
		Running []struct {
			ID        string   `json:"id"`
			Notebooks []string `json:"notebooks"`
		} `json:"running"`
	}
	kernelID := ""
	for _, k := range labtest.Call[kernelsOut](t, cs, "list_kernels", nil).Running {
		if len(k.Notebooks) == 1 && k.Notebooks[0] == kernelNB {
			kernelID = k.ID
		}
	}
	if kernelID == "" {
		t.Fatalf("list_kernels names no kernel for %s", kernelNB)
	}
	if err := syscall.Kill(kernelPID(t, shared, kernelID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var r callResult
	select {
	case r = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("the run still waits 90 s after its kernel was killed")
	}
	if r.err != nil || r.res.IsError {
		t.Fatalf("execute_cell: %v %s", r.err, labtest.ResultText(r.res))
	}
	out := decode[execOut](t, r.res)
	if out.Status != "kernel_died" || len(out.Cells) != 1 || !strings.Contains(out.Cells[0].Note, "died") {
		t.Fatalf("execute_cell = %+v, want kernel_died with a note", out)
	}
	validateNotebook(t, kernelNB)
	next := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": kernelNB, "code": "print(6*7)", "timeout": 120})
	if next.Status != "ok" {
		t.Fatalf("the next execution after the kernel was killed = %+v", next)
	}
}

// dropConnections aborts every TCP connection the process pid has open
// (its room and kernel websockets, its REST connections) with ss -K, as a
// network failure would: both ends see the connection reset.
func dropConnections(t *testing.T, pid int) int {
	t.Helper()
	out, err := exec.Command("ss", "-tnpH", "state", "established").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var ports []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, fmt.Sprintf("pid=%d,", pid)) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		local := f[2]
		ports = append(ports, "sport = :"+local[strings.LastIndexByte(local, ':')+1:])
	}
	if len(ports) == 0 {
		return 0
	}
	filter := "( " + strings.Join(ports, " or ") + " )"
	if out, err := exec.Command("ss", "-K", "-tnH", "state", "established", filter).CombinedOutput(); err != nil {
		t.Fatalf("ss -K: %v\n%s", err, out)
	}
	return len(ports)
}

// The sidecar's connections to the lab (the notebook's room websocket among
// them) reset while edits are in flight: every insert_cell call succeeds,
// each cell is in the notebook exactly once, live and, once the room has
// saved, on disk, and no save is reported failed.
func TestFaultRoomDroppedMidEdit(t *testing.T) {
	droppedNB := faultPath("dropped")
	cs := session(t)
	codeNotebook(t, droppedNB, "warm = 1")
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": droppedNB, "source": "joined = 1"})
	pid := shared.SidecarPID()
	const n = 8
	for i := range n {
		// The reset lands before, during or after the edit: each round
		// races it against the call differently.
		done := callAsync(t.Context(), cs, "insert_cell", map[string]any{"path": droppedNB, "source": fmt.Sprintf("edit_%d = %d", i, i)})
		if dropped := dropConnections(t, pid); dropped == 0 {
			t.Fatal("the sidecar has no TCP connection to drop")
		}
		r := <-done
		if r.err != nil || r.res.IsError {
			t.Fatalf("insert_cell %d with its connections reset: %v %s", i, r.err, labtest.ResultText(r.res))
		}
	}
	read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": droppedNB})
	disk := savedFile(t, shared, droppedNB, "holds every edit", func(disk string) bool {
		return strings.Contains(disk, fmt.Sprintf("edit_%d = %d", n-1, n-1))
	})
	for i := range n {
		src := fmt.Sprintf("edit_%d = %d", i, i)
		live := 0
		for _, c := range read.Cells {
			if c.Source == src {
				live++
			}
		}
		if live != 1 || strings.Count(disk, src) != 1 {
			t.Errorf("%q: %d times in the live notebook, %d times on disk; want once", src, live, strings.Count(disk, src))
		}
	}
	if read.TotalCells != n+2 {
		t.Errorf("the notebook has %d cells, want %d", read.TotalCells, n+2)
	}
	validateNotebook(t, droppedNB)
}

// The file rewritten on disk behind the room (another program, git
// checkout): jupyter-collaboration reloads the room from the file; the
// agent then reads the new content, and its next edit lands on top of it
// instead of bringing the old cells back.
func TestFaultFileChangedBehindRoom(t *testing.T) {
	reloadedNB := faultPath("reloaded")
	cs := session(t)
	codeNotebook(t, reloadedNB, "old_content = 1")
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": reloadedNB, "source": "old_content = 2"})
	// Rewritten once the room has saved the edit: an edit the reload undoes
	// before it is saved is reported (sidecar/rtc's TestRoomsUpdateSavesInBackground).
	savedFile(t, shared, reloadedNB, "holds the agent's edit", func(disk string) bool { return strings.Contains(disk, "old_content = 2") })
	// The server notices the change on its next poll of the file
	// (file_poll_interval, 1 s): the agent's reads follow the room. The
	// server takes the file's time after each save it makes; a write that
	// lands between its save and that look is taken for its own and never
	// reloaded (jupyter-collaboration's race, seen once in a CI run), so
	// the same content is written again, later, until the room has it.
	write := func() time.Time {
		codeNotebook(t, reloadedNB, "from_disk = 1", "from_disk = 2")
		return time.Now()
	}
	written := write()
	eventually(t, "the agent reads the content written on disk", func() bool {
		read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": reloadedNB})
		if ids(read) == "c0,c1" {
			return true
		}
		if time.Since(written) > 3*time.Second {
			written = write()
		}
		return false
	})
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": reloadedNB, "source": "agent_after = 1"})
	read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": reloadedNB})
	var sources []string
	for _, c := range read.Cells {
		sources = append(sources, c.Source)
	}
	if got := strings.Join(sources, "|"); got != "from_disk = 1|from_disk = 2|agent_after = 1" {
		t.Fatalf("live notebook after the reload and an edit = %q", got)
	}
	disk := savedFile(t, shared, reloadedNB, "holds the edit made after the reload", func(disk string) bool { return strings.Contains(disk, "agent_after = 1") })
	if !strings.Contains(disk, "from_disk = 2") || strings.Contains(disk, "old_content") {
		t.Fatalf("file after the reload and an edit:\n%s", disk)
	}
	validateNotebook(t, reloadedNB)

	// Not tested: an edit made right after the file changed on disk, before
	// the server's poll saw it, races jupyter-collaboration's own reload. In
	// one run out of several the server itself then wrote the room's
	// pre-reload content (with the edit) over the file's new content: it
	// updates its last-modified mark before the reload lands, so a save in
	// between passes its out-of-band check. The sidecar reports what it sees
	// (saved, not saved, or taken out by the reload), but the outcome on
	// disk is the server's.
}

// makeReadOnly makes a file under the shared lab's root unwritable for the
// lab: chmod when the tests run as a user; as root, which ignores file
// modes, a read-only bind mount of the file on itself.
func makeReadOnly(t *testing.T, rel string) {
	t.Helper()
	p := filepath.Join(shared.Root, rel)
	if os.Geteuid() != 0 {
		if err := os.Chmod(p, 0o444); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, 0o644) })
		return
	}
	if out, err := exec.Command("mount", "--bind", p, p).CombinedOutput(); err != nil {
		t.Fatalf("bind-mount %s: %v\n%s", p, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", p).Run() })
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", p).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v\n%s", p, err, out)
	}
}

// A notebook whose file cannot be written (read-only; the room is open):
// an edit is refused with an error that says so, and changes neither the
// live notebook nor the file.
func TestFaultReadOnlyNotebook(t *testing.T) {
	readonlyNB := faultPath("readonly")
	cs := session(t)
	codeNotebook(t, readonlyNB, "kept = 1")
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": readonlyNB})
	makeReadOnly(t, readonlyNB)
	before := readFile(t, readonlyNB)
	labtest.CallErr(t, cs, "insert_cell", map[string]any{"path": readonlyNB, "source": "refused = 1"}, "read-only on disk, so the server cannot save it; nothing was changed")
	if read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": readonlyNB}); ids(read) != "c0" {
		t.Fatalf("the live notebook changed: cells %s", ids(read))
	}
	if readFile(t, readonlyNB) != before {
		t.Fatal("the read-only file changed")
	}
	validateNotebook(t, readonlyNB)
}

// A notebook made read-only right after an edit: the next edit comes within
// the second in which the sidecar trusts its last check of the file, or
// after it. Either way nothing is lost silently: the edit is refused with
// nothing changed, or it is live and the agent's next call reports that it
// was not saved, naming it. The file keeps the first edit and stays valid.
func TestFaultReadOnlyAfterEdit(t *testing.T) {
	nb := faultPath("readonly-later")
	cs := session(t)
	codeNotebook(t, nb, "kept = 1")
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": "saved_first = 1"})
	before := savedFile(t, shared, nb, "holds the first edit", func(disk string) bool { return strings.Contains(disk, "saved_first = 1") })
	makeReadOnly(t, nb)
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{"path": nb, "source": "too_late = 1"}})
	if err != nil {
		t.Fatalf("insert_cell: protocol error: %v", err)
	}
	if res.IsError {
		if msg := labtest.ResultText(res); !strings.Contains(msg, "read-only on disk, so the server cannot save it; nothing was changed") {
			t.Fatalf("insert_cell on a file made read-only failed with %.300q", msg)
		}
		t.Log("the edit came after the check expired: refused")
		if read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": nb}); read.TotalCells != 2 {
			t.Fatalf("the refused edit changed the live notebook: %d cells", read.TotalCells)
		}
	} else {
		t.Log("the edit came within the check's second: live, its save reported failed")
		added := decode[insertOut](t, res)
		msg := reportedUnsaved(t, cs, nb)
		for _, want := range []string{"inserted cell " + added.CellID, "read-only on disk", "this call did nothing"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("the report = %.500q; want it to say %q", msg, want)
			}
		}
	}
	if readFile(t, nb) != before {
		t.Fatal("the read-only file changed")
	}
	validateNotebook(t, nb)
}

// A notebook deleted behind the sidecar's back while its room is open: the
// next edit fails with an error saying the file is gone, and the file is
// not brought back by a save.
func TestFaultNotebookDeletedBehindRoom(t *testing.T) {
	vanishedNB := faultPath("vanished")
	cs := session(t)
	codeNotebook(t, vanishedNB, "gone = 1")
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": vanishedNB})
	if err := os.Remove(filepath.Join(shared.Root, vanishedNB)); err != nil {
		t.Fatal(err)
	}
	labtest.CallErr(t, cs, "insert_cell", map[string]any{"path": vanishedNB, "source": "orphan = 1"}, fmt.Sprintf("notebook %q does not exist", vanishedNB))
	if _, err := os.Stat(filepath.Join(shared.Root, vanishedNB)); !os.IsNotExist(err) {
		t.Fatalf("the deleted notebook is back on disk (%v)", err)
	}
}

// The disk full (a small tmpfs holds the notebook's folder): the edit is
// live when its call returns; the room's save cannot be written, and the
// agent's next call on the notebook fails with an error naming the edit and
// saying the file was not saved; the call after that works. The file on
// disk stays unchanged and valid.
func TestFaultDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("mounting a small tmpfs needs root (CAP_SYS_ADMIN); run the integration tests as root, as CI does")
	}
	dirRel := fmt.Sprintf("faults/full-%d", faultRuns.Add(1))
	dir := filepath.Join(shared.Root, dirRel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	cs := session(t)
	smallNB := dirRel + "/small.ipynb"
	codeNotebook(t, smallNB, "small = 1")
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": smallNB})
	// Fill the disk to its last blocks: writing fails with ENOSPC.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	before := readFile(t, smallNB)
	big := "big = '" + strings.Repeat("x", 64<<10) + "'"
	added := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": smallNB, "source": big})
	msg := reportedUnsaved(t, cs, smallNB)
	for _, want := range []string{"inserted cell " + added.CellID, "was not saved", "the file on disk is unchanged", "this call did nothing"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the report of a 64 KiB cell not saved on a full disk = %.500q; want it to say %q", msg, want)
		}
	}
	if read := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": smallNB}); read.TotalCells != 2 {
		t.Fatalf("after the report the live notebook has %d cells, want 2 (the edit stays live)", read.TotalCells)
	}
	if readFile(t, smallNB) != before {
		t.Fatal("the file changed on a full disk")
	}
	validateNotebook(t, smallNB)
}

// reportedUnsaved calls read_notebook on path until a call fails with the
// report of an earlier edit that was not saved (the room saves in the
// background, so the report comes with the first call after the save
// failed), and returns the report.
func reportedUnsaved(t *testing.T, cs *mcp.ClientSession, path string) string {
	t.Helper()
	var msg string
	eventually(t, "a call on "+path+" reports an edit not saved", func() bool {
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: map[string]any{"path": path}})
		if err != nil {
			t.Fatalf("read_notebook: protocol error: %v", err)
		}
		msg = labtest.ResultText(res)
		return res.IsError
	})
	if !strings.Contains(msg, "an earlier edit of") {
		t.Fatalf("read_notebook failed with %.300q, not with the report of an earlier edit", msg)
	}
	return msg
}

// The lab restarted (same port, same files) while an agent's MCP session is
// open: the old session's next call fails at once with an error instead of
// hanging, and a new session works on the notebook the old one edited.
func TestFaultLabRestarted(t *testing.T) {
	dir := filepath.Join(labsDir, fmt.Sprintf("restart-lab-%d", faultRuns.Add(1)))
	lab, err := labtest.Start(sidecarBin, dir, "restart-token")
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			lab.Stop()
		}
	})
	cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": "kept.ipynb"})
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "kept.ipynb", "source": "before_restart = 1"})

	oldSession := cs.ID()
	u, err := url.Parse(lab.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	stopping := time.Now()
	lab.Stop()
	stopped = true
	restarted := time.Now()
	t.Logf("the lab stopped in %.1f s", restarted.Sub(stopping).Seconds())
	lab, err = labtest.StartFrom(labtest.Setup{Path: sidecarBin + string(os.PathListSeparator) + os.Getenv("PATH"), Port: port}, dir, "restart-token")
	if err != nil {
		t.Fatal(err)
	}
	stopped = false
	t.Logf("the lab answered again %.1f s after it stopped", time.Since(restarted).Seconds())

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_notebook", Arguments: map[string]any{"path": "kept.ipynb"}})
	if ctx.Err() != nil {
		t.Fatal("the old session's call still hangs 60 s after the lab restarted")
	}
	if err == nil && !res.IsError {
		t.Fatalf("the old session's call succeeded against the restarted lab: %s", labtest.ResultText(res))
	}
	t.Logf("the old session's call failed: %v", err)
	// What any client sends on: its old session id. The new sidecar answers
	// 404, which the MCP spec tells clients to take as "start a new session".
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_notebook","arguments":{"path":"kept.ipynb"}}}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, lab.URL+"mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "token "+lab.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", oldSession)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the old session's POST: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the old session's POST to the restarted lab: %s %.300s, want 404", resp.Status, answer)
	}
	t.Logf("the old session's POST: %s %.200s", resp.Status, answer)

	fresh, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		t.Fatalf("reconnect after the restart: %v", err)
	}
	defer fresh.Close()
	read := labtest.Call[readOut](t, fresh, "read_notebook", map[string]any{"path": "kept.ipynb"})
	if n := len(read.Cells); n == 0 || read.Cells[n-1].Source != "before_restart = 1" {
		t.Fatalf("the notebook after the restart = %+v", read.Cells)
	}
	labtest.Call[insertOut](t, fresh, "insert_cell", map[string]any{"path": "kept.ipynb", "source": "after_restart = 1"})
	validateLabNotebook(t, lab, "kept.ipynb")
}

// The client's connection to the lab reset mid-call (its network, or a
// proxy in between, fails): under the 2025 protocols that cancels nothing.
// The cell runs on, and the client, reconnecting with Last-Event-ID as
// go-sdk's does, receives the progress it missed and the call's result on
// the same call.
func TestFaultClientConnectionDroppedMidCall(t *testing.T) {
	path := faultPath("client-dropped")
	lab, err := url.Parse(shared.URL)
	if err != nil {
		t.Fatal(err)
	}
	link := newCuttableLink(t, lab.Host)
	resumed := &lastEventIDs{base: labtest.AuthClient("token " + shared.Token).Transport}
	events := make(chan progressEvent, 1000)
	client := mcp.NewClient(&mcp.Implementation{Name: "fault-test", Version: "v0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			events <- progressEvent{at: time.Now(), message: r.Params.Message}
		},
	})
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:   "http://" + link.Addr() + lab.Path + "mcp",
		HTTPClient: &http.Client{Transport: resumed},
		MaxRetries: 5,
	}, &mcp.ClientSessionOptions{ProtocolVersion: labtest.SessionProtocol})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	g := newGate(t)
	t.Cleanup(func() { g.open(t, 0); g.open(t, 1) }) // a failed test must not leave the kernel waiting
	codeNotebook(t, path, g.code("step", 2))
	done := callAsync(t.Context(), cs, "execute_cell", map[string]any{"path": path, "cell_id": "c0", "timeout": 120})
	waitProgress := func(line string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case ev := <-events:
				if strings.Contains(ev.message, "last: "+line) {
					return
				}
			case r := <-done:
				t.Fatalf("execute_cell ended before the cell printed %q: %v %+v", line, r.err, r.res)
			case <-deadline:
				t.Fatalf("no progress naming %q within 60 s", line)
			}
		}
	}
	waitProgress("step 0")

	if n := link.cut(); n == 0 {
		t.Fatal("the client had no connection to cut")
	}
	g.open(t, 0) // the cell goes on while the client reconnects
	waitProgress("step 1")
	g.open(t, 1)
	select {
	case r := <-done:
		if r.err != nil || r.res.IsError {
			t.Fatalf("the call whose connection was reset: %v %s", r.err, labtest.ResultText(r.res))
		}
		out := decode[execOut](t, r.res)
		if text := labtest.ResultText(r.res); out.Status != "ok" || !strings.Contains(text, "step 0") || !strings.Contains(text, "step 1") {
			t.Fatalf("result %+v %s; want the cell run to the end, both lines in its outputs", out, text)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the call never returned after its connection was reset")
	}
	if resumed.count() == 0 {
		t.Fatal("the client never resumed a stream with Last-Event-ID; the test proves nothing")
	}
}

// cuttableLink forwards TCP connections to target (host:port); cut resets
// every connection open through it, as a failing network does.
type cuttableLink struct {
	net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func newCuttableLink(t *testing.T, target string) *cuttableLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &cuttableLink{Listener: ln}
	t.Cleanup(func() { ln.Close(); l.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c.(*net.TCPConn), up.(*net.TCPConn))
			l.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return l
}

// Addr is where clients connect: 127.0.0.1:<port>.
func (l *cuttableLink) Addr() string { return l.Listener.Addr().String() }

func (l *cuttableLink) cut() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	for _, c := range l.conns {
		_ = c.SetLinger(0) // close with a reset, not a goodbye
		_ = c.Close()
	}
	l.conns = nil
	return n
}

// lastEventIDs counts the requests that resume a stream (Last-Event-ID).
type lastEventIDs struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (r *lastEventIDs) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Last-Event-ID") != "" {
		r.n.Add(1)
	}
	return r.base.RoundTrip(req)
}

func (r *lastEventIDs) count() int64 { return r.n.Load() }
