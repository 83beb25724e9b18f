package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// BenchmarkExecuteBreakdown splits a spaced execute_code("1+1") into its
// hops, for judging where the time over the raw websocket goes: the raw
// websocket client (the baseline), the sidecar's own unix socket (skipping
// the Jupyter server and jupyter-server-proxy), the same with a second
// sidecar that reaches the kernel through the server's kernel websocket
// (--kernel-transport websocket) instead of the kernel's own sockets, and
// /mcp, one call of each
// per round, each call spacing after the one before, so all three see the
// same load. Besides wall time it prints the CPU each call cost the
// Jupyter server, the sidecar and the kernel, from schedstat (ns, summed
// over threads): a load on the machine stretches wall times but hardly
// CPU. Then the same for a call that does no work (get_execution of an
// unknown id) back to back, on the socket and through /mcp: the proxy
// hop's own cost per request; beside it GET /api/status, the Jupyter
// server's own cheapest authenticated request, for what any request
// through it costs. -benchtime Nx runs N×40 rounds (after a first run of
// 40).
func BenchmarkExecuteBreakdown(b *testing.B) {
	lab, cs := benchLab(b)
	writeNotebook(b, lab, "exec.ipynb")
	call := func(cs *mcp.ClientSession, tool string, args map[string]any) func() {
		return func() {
			res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
			// The no-op asks for an unknown execution: a tool error.
			if err != nil || res.IsError != (tool == "get_execution") {
				b.Fatalf("%s: %v %v", tool, err, res)
			}
		}
	}
	execute := map[string]any{"path": "exec.ipynb", "code": "1+1"}
	call(cs, "execute_code", execute)() // starts the kernel
	raw := dialRawKernel(b, lab, kernelOf(b, lab, "exec.ipynb"))
	direct := sidecarDirect(b, lab)
	sidecar := lab.SidecarPID()
	wsPID, wsDirect := websocketSidecar(b, lab)
	call(wsDirect, "execute_code", execute)()
	// CPU columns: the server, the sidecars, the kernel.
	procs := [][]int{{lab.PID}, {sidecar, wsPID}, nil}
	for _, pid := range labtest.ChildPIDs(lab.PID) {
		if pid != sidecar {
			procs[2] = []int{pid}
		}
	}

	executes := []path{
		{name: "raw websocket", op: func() { raw.execute(b, "1+1") }},
		{name: "sidecar socket", op: call(direct, "execute_code", execute)},
		{name: "socket, ws kernel", op: call(wsDirect, "execute_code", execute)},
		{name: "/mcp", op: call(cs, "execute_code", execute)},
	}
	noop := map[string]any{"execution_id": "x0"}
	hc := &http.Client{Transport: authTransport{"token " + lab.Token, http.DefaultTransport}}
	status := func() {
		resp, err := hc.Get(lab.URL + "api/status")
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET /api/status: %v %v", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hops := []path{
		{name: "no-op, socket", op: call(direct, "get_execution", noop)},
		{name: "no-op, /mcp", op: call(cs, "get_execution", noop)},
		{name: "GET /api/status", op: status},
	}
	for range 5 { // warm every path
		for _, p := range append(executes, hops...) {
			p.op()
		}
	}
	rounds := samples * b.N
	for range rounds {
		for i := range executes {
			time.Sleep(spacing)
			executes[i].run(procs)
		}
	}
	for range 5 * rounds {
		for i := range hops {
			hops[i].run(procs)
		}
	}
	fmt.Printf("\nexecute 1+1, spaced %v, %d rounds; then a no-op tool call back to back, %d rounds\n", spacing, rounds, 5*rounds)
	fmt.Printf("%-16s %9s %9s %11s %11s %11s\n", "path", "p50", "p95", "server CPU", "sidecar CPU", "kernel CPU")
	for _, p := range append(executes, hops...) {
		p.print()
	}
	ratio := func(a, b path) float64 { return float64(p50(a.wall)) / float64(p50(b.wall)) }
	fmt.Printf("p50 ratios: /mcp / raw %.2f, socket / raw %.2f, socket with the kernel through the server's websocket / raw %.2f; /mcp - socket %.1f ms (the Jupyter server and jupyter-server-proxy)\n",
		ratio(executes[3], executes[0]), ratio(executes[1], executes[0]), ratio(executes[2], executes[0]), ms(p50(executes[3].wall)-p50(executes[1].wall)))
	perCall := func(p path) float64 { return ms(p.cpu[0] / time.Duration(len(p.wall))) }
	fmt.Printf("Jupyter server CPU per request: no-op through /mcp %.2f ms, its own GET /api/status %.2f ms (the proxy hop above that: %.2f ms)\n\n",
		perCall(hops[1]), perCall(hops[2]), perCall(hops[1])-perCall(hops[2]))
}

// path is one way of making a call, with its wall times and the CPU its
// calls cost each process.
type path struct {
	name string
	op   func()
	wall []time.Duration
	cpu  [3]time.Duration
}

func (p *path) run(procs [][]int) {
	before := cpuNanos(procs)
	p.wall = append(p.wall, timed(p.op))
	after := cpuNanos(procs)
	for i := range procs {
		p.cpu[i] += after[i] - before[i]
	}
}

func (p *path) print() {
	slices.Sort(p.wall)
	per := func(i int) string { return fmt.Sprintf("%.2f ms", ms(p.cpu[i]/time.Duration(len(p.wall)))) }
	fmt.Printf("%-16s %6.1f ms %6.1f ms %11s %11s %11s\n", p.name, ms(p50(p.wall)), ms(quantile(p.wall, 0.95)), per(0), per(1), per(2))
}

// cpuNanos is the CPU time each group of processes has run, summed over
// their threads (the first field of /proc/<pid>/task/<tid>/schedstat, in
// ns).
func cpuNanos(groups [][]int) []time.Duration {
	out := make([]time.Duration, len(groups))
	for i, pids := range groups {
		var tasks []string
		for _, pid := range pids {
			t, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
			tasks = append(tasks, t...)
		}
		for _, t := range tasks {
			data, err := os.ReadFile(t)
			if err != nil {
				continue // the thread ended
			}
			if f := strings.Fields(string(data)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				out[i] += time.Duration(n)
			}
		}
	}
	return out
}
