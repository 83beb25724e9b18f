package bench

import (
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

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// coldStarts is the number of fresh labs BenchmarkColdStart starts.
const coldStarts = 3

// BenchmarkColdStart starts fresh labs and times, from the moment the lab's
// API answers, the first MCP session's first tool result (list_files):
// jupyter-server-proxy starts the sidecar on that first request. The total
// splits at the sidecar's exec (its /proc start time, 10 ms resolution):
// before it is the proxy's own process start, after it what the goal
// bounds. The sidecar's exec → listening comes from the ctime of the unix
// socket it binds.
func BenchmarkColdStart(b *testing.B) {
	binDir := buildShipped(b, filepath.Join(b.TempDir(), "bin"))
	for range b.N {
		var total, spawn, afterExec, listening, firstRead []time.Duration
		eager := false
		for i := range coldStarts {
			lab, err := labtest.Start(binDir, filepath.Join(b.TempDir(), fmt.Sprint("lab", i)), "bench-token")
			if err != nil {
				b.Fatal(err)
			}
			eager = eager || lab.SidecarPID() != 0
			start := time.Now()
			cs, err := lab.Connect(b.Context(), "mcp", "token "+lab.Token)
			if err != nil {
				b.Fatal(err)
			}
			mustCall(b, cs, "list_files", nil)
			done := time.Now()
			pid := lab.SidecarPID()
			exec := procStart(b, pid)
			writeNotebook(b, lab, "cold.ipynb")
			firstRead = append(firstRead, timed(func() {
				mustCall(b, cs, "read_notebook", map[string]any{"path": "cold.ipynb", "limit": cells})
			}))
			total = append(total, done.Sub(start))
			spawn = append(spawn, exec.Sub(start))
			afterExec = append(afterExec, done.Sub(exec))
			listening = append(listening, socketCreated(b, pid).Sub(exec))
			cs.Close()
			lab.Stop()
		}
		for _, d := range [][]time.Duration{total, spawn, afterExec, listening, firstRead} {
			slices.Sort(d)
		}
		fmt.Printf("\ncold start, %d fresh labs: lab API answering → first tool result (list_files) of the first MCP session;\n", coldStarts)
		fmt.Println("the sidecar's exec time is read from /proc (10 ms resolution)")
		if eager {
			fmt.Println("(the sidecar was running before the first request)")
		}
		fmt.Printf("%-28s %10s %10s\n", "phase", "p50", "max")
		for _, r := range []struct {
			name string
			d    []time.Duration
		}{{"total", total}, {"proxy: request → sidecar exec", spawn}, {"sidecar exec → listening", listening}, {"sidecar exec → tool result", afterExec},
			{"then read_notebook (joins)", firstRead}} {
			fmt.Printf("%-28s %7.1f ms %7.1f ms\n", r.name, ms(p50(r.d)), ms(r.d[len(r.d)-1]))
		}
		fmt.Println(labtest.GoalLine("cold start p50, sidecar exec → first tool result vs 300 ms", "ms", ms(p50(afterExec)), 300, "<=", 1))
		fmt.Println()
	}
}

// procStart is when process pid started, from /proc (clock ticks since
// boot, 100 per second) against /proc/uptime: 10 ms resolution.
func procStart(b *testing.B, pid int) time.Time {
	now := time.Now()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		b.Fatal(err)
	}
	// starttime is field 22; fields after the ")" that ends the command name start at field 3.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ticks, _ := strconv.ParseFloat(fields[19], 64)
	up, _ := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	return now.Add(-time.Duration((up - ticks/100) * float64(time.Second)))
}

// socketCreated is when the sidecar bound its unix socket (the path is on
// its command line): the ctime of the socket file.
func socketCreated(b *testing.B, pid int) time.Time {
	var st syscall.Stat_t
	if err := syscall.Stat(sidecarSocket(b, pid), &st); err != nil {
		b.Fatal(err)
	}
	return time.Unix(st.Ctim.Unix())
}

// BenchmarkMemory prints the sidecar's resident memory idle (after one
// session's first call) and loaded (50 MCP sessions, 10 notebooks' rooms
// open), with the goroutines and Go heap from <lab>/mcp/stats.
func BenchmarkMemory(b *testing.B) {
	lab, cs := benchLab(b)
	const sessions, rooms = 50, 10
	for i := range rooms {
		writeNotebook(b, lab, fmt.Sprintf("mem%d.ipynb", i))
	}
	for range b.N {
		mustCall(b, cs, "list_files", nil)
		pid := lab.SidecarPID()
		idle, idleStats := rssMB(pid), labStats(b, lab)
		// What the idle figure is made of: the binary's pages (file) and the heap, stacks, runtime (anon).
		idleFile, idleAnon := labtest.ProcStatusMB(pid, "RssFile"), labtest.ProcStatusMB(pid, "RssAnon")
		for i := range sessions {
			s, err := lab.Connect(b.Context(), "mcp", "token "+lab.Token)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			// Every session reads a notebook; the first ten open the rooms.
			mustCall(b, s, "read_notebook", map[string]any{"path": fmt.Sprintf("mem%d.ipynb", i%rooms), "limit": cells})
		}
		loaded, loadedStats := rssMB(pid), labStats(b, lab)
		fmt.Printf("\nsidecar memory: idle, then with %d MCP sessions and %d open rooms (%d-cell notebooks)\n", sessions, rooms, cells)
		fmt.Printf("%-10s %10s %12s %10s\n", "", "RSS", "Go heap", "goroutines")
		fmt.Printf("%-10s %7.1f MB %9.1f MB %10d\n", "idle", idle, idleStats.heapMB(), idleStats.Goroutines)
		fmt.Printf("%-10s %7.1f MB %9.1f MB %10d\n", "loaded", loaded, loadedStats.heapMB(), loadedStats.Goroutines)
		fmt.Printf("idle RSS: %.1f MB of the binary's pages (RssFile), %.1f MB anonymous (RssAnon)\n", idleFile, idleAnon)
		fmt.Println(labtest.GoalLine("sidecar RSS idle vs 15 MB", "MB", idle, 15, "<=", 1))
		fmt.Println(labtest.GoalLine(fmt.Sprintf("sidecar RSS with %d sessions, %d rooms vs 50 MB", sessions, rooms), "MB", loaded, 50, "<=", 1))
		fmt.Println()
	}
}

type stats struct {
	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`
}

func (s stats) heapMB() float64 { return float64(s.HeapBytes) / (1 << 20) }

// labStats reads the sidecar's <lab>/mcp/stats.
func labStats(b *testing.B, lab *labtest.Lab) stats {
	resp, err := labtest.AuthClient("token " + lab.Token).Get(lab.URL + "mcp/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var s stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		b.Fatalf("mcp/stats: %v", err)
	}
	return s
}
