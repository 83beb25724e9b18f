package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const (
	agents         = 10
	insertsEach    = 20
	sustainedEach  = 100 // inserts each in the sustained burst
	executionsEach = 5
)

// BenchmarkThroughput runs agents MCP sessions at once, each on a notebook
// of its own: insertsEach insert_cell calls each, then executionsEach
// execute_code("1+1") each (one kernel per notebook), then sustainedEach
// inserts each, long enough for the rooms to save while the edits go on.
// For each burst it prints the calls' latency, the CPU time the sidecar,
// the Jupyter server and the kernels spent in it (from /proc) and how many
// times the rooms wrote their notebook (from the server's log): the
// sidecar is not the bottleneck when it spends less CPU than the server it
// waits on. Then it prints how many collaboration store errors the lab
// logged and the top frames of the sidecar's CPU profile of the whole run.
func BenchmarkThroughput(b *testing.B) {
	profile := filepath.Join(b.TempDir(), "sidecar.pprof")
	lab, _ := benchLab(b, "JUPYTER_MCP_CPUPROFILE="+profile)
	sessions := make([]*mcp.ClientSession, agents)
	for i := range sessions {
		writeNotebook(b, lab, fmt.Sprintf("agent%d.ipynb", i))
		s, err := lab.Connect(b.Context(), "mcp", "token "+lab.Token)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		sessions[i] = s
	}
	for range b.N {
		// Each agent's notebook's room joined and kernel started first.
		burst(b, lab, sessions, 1, "execute_code", func(int) map[string]any { return map[string]any{"code": "0"} })
		fmt.Printf("\nthroughput: %d agents at once, each on its own %d-cell notebook\n", agents, cells)
		fmt.Printf("%-30s %8s %10s %10s %10s %12s %10s %10s %6s\n", "burst", "calls/s", "p50", "p95", "wall", "sidecar CPU", "server CPU", "kernel CPU", "saves")
		var goals []string
		for _, c := range []struct {
			name string
			tool string
			n    int
			args func(i int) map[string]any
		}{
			{fmt.Sprintf("%d×%d insert_cell", agents, insertsEach), "insert_cell", insertsEach,
				func(i int) map[string]any { return map[string]any{"source": fmt.Sprintf("y = %d", i)} }},
			{fmt.Sprintf("%d×%d execute_code 1+1", agents, executionsEach), "execute_code", executionsEach,
				func(int) map[string]any { return map[string]any{"code": "1+1"} }},
			{fmt.Sprintf("%d×%d insert_cell", agents, sustainedEach), "insert_cell", sustainedEach,
				func(i int) map[string]any { return map[string]any{"source": fmt.Sprintf("z = %d", i)} }},
		} {
			r := burst(b, lab, sessions, c.n, c.tool, c.args)
			fmt.Printf("%-30s %8.1f %7.1f ms %7.1f ms %8.2f s %10.2f s %8.2f s %8.2f s %6d\n", c.name,
				float64(len(r.latency))/r.wall.Seconds(), ms(p50(r.latency)), ms(quantile(r.latency, 0.95)),
				r.wall.Seconds(), r.sidecar.Seconds(), r.server.Seconds(), r.kernels.Seconds(), r.saves)
			goals = append(goals, labtest.GoalLine(c.name+": sidecar CPU vs Jupyter server CPU", "s", r.sidecar.Seconds(), r.server.Seconds(), "<=", 1))
		}
		lab.Stop() // the sidecar writes its profile as it stops
		// Rooms opened at once on a new lab (the first burst) race to
		// create jupyter-collaboration's SQLite store unless the proxy
		// extension created it first: count the errors such a race leaves.
		log, _ := os.ReadFile(lab.LogPath)
		fmt.Printf("collaboration store errors in the lab's log (sqlite3.OperationalError): %d\n", bytes.Count(log, []byte("sqlite3.OperationalError")))
		fmt.Printf("sidecar CPU profile, whole run (warm-up included), top frames:\n%s", pprofTop(b, profile, "-nodecount=12"))
		// Which of the sidecar's own functions the time above is spent under.
		fmt.Printf("the same, the sidecar's own functions by cumulative time:\n%s",
			pprofTop(b, profile, "-cum", "-nodecount=12", "-show=jupyter-mcp-sidecar/sidecar/"))
		for _, g := range goals {
			fmt.Println(g)
		}
		fmt.Println()
	}
}

// pprofTop is `go tool pprof -top` of profile with flags, from its
// "Duration:" line on (the lines before name the file and build).
func pprofTop(b *testing.B, profile string, flags ...string) string {
	out, err := exec.Command("go", append(append([]string{"tool", "pprof", "-top"}, flags...), profile)...).CombinedOutput()
	if err != nil {
		b.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	if i := strings.Index(string(out), "Duration:"); i >= 0 {
		out = out[i:]
	}
	// Shorter frame names: without the module path and generics' shapes.
	top := strings.ReplaceAll(string(out), "github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/", "")
	return goShape.ReplaceAllString(top, "[…]")
}

// goShape matches the type arguments pprof prints for a generic function.
var goShape = regexp.MustCompile(`\[go\.shape.*?\}\]`)

type burstResult struct {
	latency                  []time.Duration // sorted
	wall                     time.Duration
	sidecar, server, kernels time.Duration // CPU time (user+system) during the burst
	saves                    int           // notebook writes by the rooms during the burst
}

// burst has every session call tool n times on its own notebook, all
// sessions at once, and measures the calls and the CPU spent meanwhile.
func burst(b *testing.B, lab *labtest.Lab, sessions []*mcp.ClientSession, n int, tool string, args func(i int) map[string]any) burstResult {
	sidecarPID := lab.SidecarPID()
	cpu := func() (sidecar, server, kernels time.Duration) {
		for _, pid := range labtest.ChildPIDs(lab.PID) {
			if pid != sidecarPID {
				kernels += labtest.CPUTime(pid)
			}
		}
		return labtest.CPUTime(sidecarPID), labtest.CPUTime(lab.PID), kernels
	}
	// jupyter-collaboration logs each write of a room's notebook.
	saves := func() int {
		log, _ := os.ReadFile(lab.LogPath)
		return bytes.Count(log, []byte("Saving the content from room"))
	}
	s0, j0, k0 := cpu()
	w0 := saves()
	start := time.Now()
	var mu sync.Mutex
	var latency []time.Duration
	var wg sync.WaitGroup
	for a, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				in := args(i)
				in["path"] = fmt.Sprintf("agent%d.ipynb", a)
				d := timed(func() {
					// Not mustCall: b.Fatal must not be called from another goroutine.
					res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: tool, Arguments: in})
					if err != nil || res.IsError {
						b.Errorf("%s: %v %s", tool, err, labtest.ResultText(res))
					}
				})
				mu.Lock()
				latency = append(latency, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	s1, j1, k1 := cpu()
	slices.Sort(latency)
	return burstResult{latency: latency, wall: wall, sidecar: s1 - s0, server: j1 - j0, kernels: k1 - k0, saves: saves() - w0}
}
