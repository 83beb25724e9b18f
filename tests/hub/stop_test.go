package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// stopBound is how soon after SIGTERM nothing of the hub may be left.
const stopBound = 3 * time.Second

// Given SIGTERM with a call running code in flight through the hub URL,
// the hub stops within stopBound with nothing of it left: no process of
// it (the hub, configurable-http-proxy, the culler, the MCP router), no
// port listening. The call is handed back with its execution handle (the
// router's default drain is short), and once the hub is back its run has
// gone on to the end.
func TestHubStop(t *testing.T) {
	h := ownHub(t, "stop")
	token := h.user(t, "stan")
	cs := h.connect(t, "/services/mcp", "token "+token)
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "stop.ipynb"})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	call := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{
			"path": "stop.ipynb", "code": h.gatedCell("stan", "stop"), "timeout": 240,
		}})
		call <- outcome{res, err}
	}()
	if err := h.cellStarted("stan", "stop"); err != nil {
		t.Fatal(err)
	}

	procs, ports := h.processes(), h.ports()
	if len(procs) < 4 {
		t.Fatalf("the hub's processes: %v, want the hub, its proxy, the culler and the router", procs)
	}
	start := time.Now()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var left []string
	err := poll(time.Minute, func() (bool, error) {
		left = h.leftOf(procs, ports)
		return len(left) == 0, nil
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a minute after SIGTERM, left of the hub: %v", left)
	}
	fmt.Fprintf(os.Stderr, "figure: hub stop (SIGTERM, a call running code in flight): nothing of it left after %s (%d processes, %d ports)\n", took.Round(10*time.Millisecond), len(procs), len(ports))
	if took > stopBound {
		t.Errorf("the hub took %s to stop, want within %s:\n%s", took.Round(10*time.Millisecond), stopBound, stopLog(h.Log()))
	}

	var handle struct {
		ExecutionID string `json:"execution_id"`
		Status      string `json:"status"`
	}
	select {
	case o := <-call:
		if o.err != nil || o.res.IsError || !strings.Contains(labtest.ResultText(o.res), "the hub's MCP service is restarting") {
			t.Fatalf("the call in flight: %v %v; want it handed back with its handle", o.err, o.res)
		}
		data, _ := json.Marshal(o.res.StructuredContent)
		if err := json.Unmarshal(data, &handle); err != nil || handle.ExecutionID == "" || handle.Status != "running" {
			t.Fatalf("the handed-back call's result %s: want a running execution's id", data)
		}
	case <-ctx.Done():
		t.Fatal("the call in flight hung")
	}

	if err := h.inContainer("stan", "touch", workDir+"stop-go"); err != nil {
		t.Fatal(err)
	}
	if err := h.launch(); err != nil {
		t.Fatal(err)
	}
	after := h.connect(t, "/services/mcp", "token "+token)
	res, err := after.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_execution", Arguments: map[string]any{"execution_id": handle.ExecutionID, "timeout": 120}})
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), "stop finished") {
		t.Fatalf("get_execution of the handed-back run after the hub's stop: %v %s; want it finished", err, labtest.ResultText(res))
	}
}

// Killed (SIGKILL: a supervisor, a second ^C, an OOM kill), the hub stops
// nothing: its proxy, culler and router run on in sessions of their own.
// The culler and the router exit by themselves once their hub is gone; the
// next start on the same state and ports replaces the proxy (JupyterHub's
// pid file) and works at once: a call through <hub>/services/mcp succeeds
// and nothing of the killed hub is left. A router that could not notice
// (stopped, here) is replaced by the next one through its pid file.
func TestHubKilled(t *testing.T) {
	h := ownHub(t, "killed")
	token := h.user(t, "kim")
	labtest.Call[map[string]any](t, h.connect(t, "/services/mcp", "token "+token), "list_notebooks", nil)

	kill := func(t *testing.T) map[int]string {
		t.Helper()
		procs := h.processes()
		if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-h.exited:
			h.exited <- err
		case <-time.After(time.Minute):
			t.Fatal("the hub did not die of SIGKILL within a minute")
		}
		return procs
	}
	restart := func(t *testing.T, old map[int]string) {
		t.Helper()
		start := time.Now()
		if err := h.launch(); err != nil {
			t.Fatal(err)
		}
		cs := h.connect(t, "/services/mcp", "token "+token)
		labtest.Call[map[string]any](t, cs, "list_notebooks", nil)
		fmt.Fprintf(os.Stderr, "figure: hub started again after a SIGKILL: a call through the hub URL answered after %s\n", time.Since(start).Round(10*time.Millisecond))
		for pid, cmd := range old {
			if running(pid) {
				t.Errorf("left of the killed hub: %d %s", pid, cmd)
			}
		}
	}

	t.Run("the culler and the router exit by themselves", func(t *testing.T) {
		old := kill(t)
		killed := time.Now()
		for pid, cmd := range old {
			what := "the culler"
			switch {
			case strings.Contains(cmd, "jupyter-mcp-hub"):
				what = "the router"
			case !strings.Contains(cmd, "culler.py"):
				continue
			}
			if err := poll(30*time.Second, func() (bool, error) { return !running(pid), nil }); err != nil {
				t.Fatalf("%s (%d) still runs 30 s after its hub was killed", what, pid)
			}
			fmt.Fprintf(os.Stderr, "figure: %s exited by itself %s after its hub was killed\n", what, time.Since(killed).Round(10*time.Millisecond))
		}
		restart(t, old)
	})

	t.Run("a router left running is replaced", func(t *testing.T) {
		var routerPID int
		for pid, cmd := range h.processes() {
			if strings.Contains(cmd, "jupyter-mcp-hub") {
				routerPID = pid
			}
		}
		if routerPID == 0 {
			t.Fatal("no router among the hub's processes")
		}
		// Stopped, it cannot see its hub go.
		if err := syscall.Kill(routerPID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if running(routerPID) && strings.Contains(commandOf(routerPID), "jupyter-mcp-hub") {
				_ = syscall.Kill(routerPID, syscall.SIGKILL) // the test failed: not left stopped
			}
		})
		from := len(h.Log())
		old := kill(t)
		restart(t, old)
		if !bytes.Contains(h.Log()[from:], []byte("stopped the router before this one")) {
			t.Errorf("the new router's log does not say it replaced the one before:\n%s", labtest.Tail(h.Log()[from:], 4<<10))
		}
	})
}

// routerRestartBound is how soon a router that died answers again: the
// hub looks for its services' exits every second, and starts them again.
const routerRestartBound = 10 * time.Second

// A router that dies (a crash, an OOM kill) is started again by the hub at
// once, not at JupyterHub's usual look at its processes 30 s later, while
// the proxy answers every MCP request with its own 503; calls through
// <hub>/services/mcp then work as before.
func TestHubRestartsItsRouter(t *testing.T) {
	h := ownHub(t, "router")
	token := h.user(t, "rita")
	old := routerPIDs(h)
	if len(old) != 1 {
		t.Fatalf("want one router process of the hub, found %v", old)
	}
	start := time.Now()
	if err := syscall.Kill(old[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := h.routerBack(old[0]); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "figure: router killed (SIGKILL): the hub's new one answers after %s\n", took.Round(10*time.Millisecond))
	if took > routerRestartBound {
		t.Errorf("the router answered again after %s, want within %s", took.Round(10*time.Millisecond), routerRestartBound)
	}
	cs := h.connect(t, "/services/mcp", "token "+token)
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "back.ipynb"})
}

// ownHub starts a hub of the test's own (state in testDir/name, its own
// ports and names), stopped at the end.
func ownHub(t *testing.T, name string) *hubProcess {
	t.Helper()
	h, err := startHub(filepath.Join(testDir, name), router)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return h
}

// user creates name on h and returns a token of theirs.
func (h *hubProcess) user(t *testing.T, name string) string {
	t.Helper()
	if err := h.createUser(name); err != nil {
		t.Fatal(err)
	}
	token, err := h.userToken(name)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// processes are the hub's process and its descendants, pid → command line.
func (h *hubProcess) processes() map[int]string {
	parents := map[int][]int{} // pid → children
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			parents[ppid] = append(parents[ppid], pid)
		}
	}
	out := map[int]string{}
	for next := []int{h.cmd.Process.Pid}; len(next) > 0; {
		pid := next[0]
		next = append(next[1:], parents[pid]...)
		out[pid] = commandOf(pid)
	}
	return out
}

// commandOf is pid's command line, its arguments joined by spaces.
func commandOf(pid int) string {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
}

// statFields are the fields of /proc/<pid>/stat after the command: state,
// ppid, …
func statFields(pid int) []string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

func parentOf(pid int) (int, bool) {
	f := statFields(pid)
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// running reports whether pid runs (an exited process not yet reaped, a
// zombie, does not).
func running(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// ports are the TCP ports the hub was given: the proxy's public and API
// ports, the hub's API, the MCP router's.
func (h *hubProcess) ports() []int {
	var out []int
	for _, kv := range h.env {
		name, value, _ := strings.Cut(kv, "=")
		if slices.Contains([]string{"HUB_PORT", "HUB_API_PORT", "HUB_PROXY_API_PORT", "HUB_MCP_PORT"}, name) {
			p, _ := strconv.Atoi(value)
			out = append(out, p)
		}
	}
	return out
}

// leftOf is what still runs of procs, and which of ports something listens
// on, the hub's process counted as gone once it exited.
func (h *hubProcess) leftOf(procs map[int]string, ports []int) []string {
	var left []string
	for pid, cmd := range procs {
		if pid == h.cmd.Process.Pid {
			select {
			case err := <-h.exited:
				h.exited <- err
				continue
			default:
			}
		} else if !running(pid) {
			continue
		}
		left = append(left, fmt.Sprintf("process %d %s", pid, cmd))
	}
	listening := listeningPorts()
	for _, p := range ports {
		if listening[p] {
			left = append(left, fmt.Sprintf("port %d", p))
		}
	}
	return left
}

// listeningPorts are the local TCP ports in the LISTEN state.
func listeningPorts() map[int]bool {
	out := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, port, ok := strings.Cut(fields[1], ":")
			if n, err := strconv.ParseInt(port, 16, 32); ok && err == nil {
				out[int(n)] = true
			}
		}
		f.Close()
	}
	return out
}

// stopLog is the hub's log from its last SIGTERM on.
func stopLog(log []byte) string {
	if i := bytes.LastIndex(log, []byte("Received signal SIGTERM")); i >= 0 {
		return string(labtest.Tail(log[i:], 6<<10))
	}
	return string(labtest.Tail(log, 6<<10))
}
