// Package bench measures the sidecar through the real proxy against direct
// Contents API calls on the same lab, and prints the figures.
//
//	make bench
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

const (
	cells   = 200
	samples = 100
)

// BenchmarkNotebookOps prints p50/p95 latency of read_notebook, edit_cell
// and insert_cell on a 200-cell notebook through <lab>/mcp, the same work done
// with direct Contents API calls, insert_cell on a second lab whose sidecar
// uses the files backend, and the sidecar's resident memory.
func BenchmarkNotebookOps(b *testing.B) {
	lab, cs := benchLab(b)
	filesLab, filesCS := benchLab(b, "JUPYTER_MCP_DOCUMENTS=files")
	writeNotebook(b, filesLab, "files.ipynb")
	writeNotebook(b, lab, "mcp.ipynb")
	writeNotebook(b, lab, "direct.ipynb")
	callTool := func(name string, args map[string]any) {
		res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil || res.IsError {
			b.Fatalf("%s: %v %v", name, err, res)
		}
	}
	hc := labtest.AuthClient("token " + lab.Token)
	contents := lab.URL + "api/contents/direct.ipynb"

	var rows []string
	edits := 0
	for range b.N {
		rows = []string{
			row("read_notebook via /mcp", measure(func() {
				callTool("read_notebook", map[string]any{"path": "mcp.ipynb", "limit": cells})
			})),
			row("GET contents (direct)", measure(func() { getNotebook(b, hc, contents) })),
			row("edit_cell via /mcp", measure(func() {
				edits++
				callTool("edit_cell", map[string]any{"path": "mcp.ipynb", "index": 0, "source": fmt.Sprintf("print(%d)", edits)})
			})),
			row("insert_cell via /mcp", measure(func() {
				callTool("insert_cell", map[string]any{"path": "mcp.ipynb", "source": "print('bench')"})
			})),
			row("GET+PUT contents (direct)", measure(func() {
				nb := getNotebook(b, hc, contents)
				nb["cells"] = append(nb["cells"].([]any), map[string]any{"cell_type": "code", "source": "print('bench')", "metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil})
				putNotebook(b, hc, contents, nb)
			})),
			row("insert_cell, files backend", measure(func() {
				res, err := filesCS.CallTool(b.Context(), &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{"path": "files.ipynb", "source": "print('bench')"}})
				if err != nil || res.IsError {
					b.Fatalf("insert_cell (files backend): %v %v", err, res)
				}
			})),
		}
	}
	rss := sidecarRSS(lab.PID)
	fmt.Printf("\n%d-cell notebook, %d samples each, through jupyter-server-proxy on 127.0.0.1\n", cells, samples)
	fmt.Printf("%-28s %10s %10s\n", "operation", "p50", "p95")
	for _, r := range rows {
		fmt.Println(r)
	}
	fmt.Printf("sidecar resident memory: %s\n\n", rss)
}

// BenchmarkExecute prints the round trip of execute_code("1+1") through
// <lab>/mcp next to the independent baseline, a plain websocket client
// written in this package (rawkernel_test.go) executing on the same kernel:
// each with calls spaced 150 ms apart and back to back, execSamples each.
// Back-to-back calls are where TCP stalls (Nagle against delayed ACK) show.
// A last row calls the sidecar's unix socket directly, without the Jupyter
// server and its proxy, to split /mcp's cost between the proxy hop and the
// sidecar.
//
// For a CPU profile of the sidecar (it runs as the lab's child), set
// JUPYTER_MCP_CPUPROFILE=<file> and run only this benchmark: the sidecar
// writes the profile when the lab stops it.
func BenchmarkExecute(b *testing.B) {
	lab, cs := benchLab(b)
	writeNotebook(b, lab, "exec.ipynb")
	viaMCP := func() {
		res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{"path": "exec.ipynb", "code": "1+1"}})
		if err != nil || res.IsError {
			b.Fatalf("execute_code: %v %v", err, res)
		}
	}
	viaMCP() // starts the kernel
	raw := dialRawKernel(b, lab, kernelOf(b, lab, "exec.ipynb"))
	viaRaw := func() { raw.execute(b, "1+1") }
	direct := sidecarDirect(b, lab)
	viaSocket := func() {
		res, err := direct.CallTool(b.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{"path": "exec.ipynb", "code": "1+1"}})
		if err != nil || res.IsError {
			b.Fatalf("execute_code on the sidecar's socket: %v %v", err, res)
		}
	}
	for range 5 { // warm every path
		viaRaw()
		viaMCP()
		viaSocket()
	}

	for range b.N {
		// Spaced: interleaved, so both see the same machine load.
		var rawSpaced, mcpSpaced []time.Duration
		for range execSamples {
			time.Sleep(spacing)
			rawSpaced = append(rawSpaced, timed(viaRaw))
			time.Sleep(spacing)
			mcpSpaced = append(mcpSpaced, timed(viaMCP))
		}
		rawB2B := measureN(execSamples, viaRaw)
		mcpB2B := measureN(execSamples, viaMCP)
		socketB2B := measureN(execSamples, viaSocket)
		slices.Sort(rawSpaced)
		slices.Sort(mcpSpaced)
		fmt.Printf("\nexecute 1+1 on one kernel, %d samples each; spaced = %v apart\n", execSamples, spacing)
		fmt.Printf("%-28s %10s %10s\n", "operation", "p50", "p95")
		fmt.Println(row("raw websocket, spaced", rawSpaced))
		fmt.Println(row("raw websocket, back to back", rawB2B))
		fmt.Println(row("execute_code /mcp, spaced", mcpSpaced))
		fmt.Println(row("execute_code /mcp, b2b", mcpB2B))
		fmt.Println(row("sidecar socket, b2b", socketB2B))
		ratio := func(a, b []time.Duration) float64 { return float64(a[len(a)/2]) / float64(b[len(b)/2]) }
		fmt.Printf("p50 ratio /mcp : raw spaced, spaced calls:        %.2f (goal <= 1.3)\n", ratio(mcpSpaced, rawSpaced))
		fmt.Printf("p50 ratio /mcp : raw spaced, back-to-back calls:  %.2f (goal <= 1.3)\n", ratio(mcpB2B, rawSpaced))
		fmt.Printf("p50 ratio raw back to back : raw spaced:          %.2f\n", ratio(rawB2B, rawSpaced))
		fmt.Printf("p50 ratio sidecar socket : raw, back to back:     %.2f (the sidecar's own cost)\n", ratio(socketB2B, rawB2B))
		fmt.Printf("p50 /mcp - sidecar socket, back to back:          %.1f ms (Jupyter server + jupyter-server-proxy hop)\n",
			float64((mcpB2B[len(mcpB2B)/2]-socketB2B[len(socketB2B)/2]).Microseconds())/1000)
		fmt.Printf("sidecar resident memory: %s\n\n", sidecarRSS(lab.PID))
	}
}

const (
	execSamples = 40
	spacing     = 150 * time.Millisecond
)

func timed(op func()) time.Duration {
	start := time.Now()
	op()
	return time.Since(start)
}

// benchLab starts a lab with a fresh (non-race) sidecar and an MCP
// session to it, both ended with the benchmark; env goes to the lab and the
// sidecar.
func benchLab(b *testing.B, env ...string) (*labtest.Lab, *mcp.ClientSession) {
	tmp := b.TempDir()
	binDir, err := labtest.BuildSidecar(filepath.Join(tmp, "bin"), false)
	if err != nil {
		b.Fatal(err)
	}
	lab, err := labtest.Start(binDir, filepath.Join(tmp, "lab"), "bench-token", env...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lab.Stop)
	cs, err := lab.Connect(b.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return lab, cs
}

func measure(op func()) []time.Duration { return measureN(samples, op) }

// measureN times n back-to-back calls of op, sorted.
func measureN(n int, op func()) []time.Duration {
	d := make([]time.Duration, n)
	for i := range d {
		d[i] = timed(op)
	}
	slices.Sort(d)
	return d
}

func row(name string, d []time.Duration) string {
	p := func(q float64) string {
		return fmt.Sprintf("%.1f ms", float64(d[int(q*float64(len(d)-1))].Microseconds())/1000)
	}
	return fmt.Sprintf("%-28s %10s %10s", name, p(0.50), p(0.95))
}

func writeNotebook(b *testing.B, lab *labtest.Lab, name string) {
	var cs []string
	for i := range cells {
		cs = append(cs, fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"execution_count":%d,"outputs":[{"output_type":"stream","name":"stdout","text":"line %d\n"}],"source":"x%d = %d\nprint(x%d)"}`, i, i+1, i, i, i, i))
	}
	doc := `{"cells":[` + strings.Join(cs, ",") + `],"metadata":{"kernelspec":{"name":"python3","display_name":"Python 3","language":"python"}},"nbformat":4,"nbformat_minor":5}`
	if err := os.WriteFile(filepath.Join(lab.Root, name), []byte(doc), 0o644); err != nil {
		b.Fatal(err)
	}
}

func getNotebook(b *testing.B, hc *http.Client, u string) map[string]any {
	resp, err := hc.Get(u + "?content=1")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Content map[string]any `json:"content"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		b.Fatal(err)
	}
	return m.Content
}

func putNotebook(b *testing.B, hc *http.Client, u string, nb map[string]any) {
	body, _ := json.Marshal(map[string]any{"type": "notebook", "format": "json", "content": nb})
	req, _ := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("PUT: %v %v", err, resp)
	}
	resp.Body.Close()
}

// sidecarProc returns the /proc directory of the lab's child process
// running the sidecar, or "".
func sidecarProc(labPID int) string {
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, stat := range procs {
		data, err := os.ReadFile(stat)
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ..."; comm is cut to 15 bytes.
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < 0 || !strings.HasPrefix(s[open+1:close], "jupyter-mcp-si") {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if ppid, _ := strconv.Atoi(fields[1]); ppid == labPID {
			return filepath.Dir(stat)
		}
	}
	return ""
}

// sidecarRSS reads VmRSS of the lab's child process running the sidecar.
func sidecarRSS(labPID int) string {
	dir := sidecarProc(labPID)
	if dir == "" {
		return "unknown (sidecar process not found)"
	}
	status, _ := os.ReadFile(filepath.Join(dir, "status"))
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// sidecarDirect opens an MCP session straight to the sidecar's unix
// socket (read from its command line), skipping the Jupyter server and
// jupyter-server-proxy: the difference to /mcp is the proxy hop's cost.
func sidecarDirect(b *testing.B, lab *labtest.Lab) *mcp.ClientSession {
	cmdline, _ := os.ReadFile(filepath.Join(sidecarProc(lab.PID), "cmdline"))
	var sock string
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if p, ok := strings.CutPrefix(arg, "unix:"); ok {
			sock = p
		}
	}
	if sock == "" {
		b.Fatalf("no unix socket on the sidecar's command line %q", cmdline)
	}
	// The Authorization header the proxy would forward: the sidecar wants
	// one on POSTs (else it asks for a cookie's XSRF token).
	hc := &http.Client{Transport: authTransport{"token " + lab.Token, &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-direct", Version: "v0"}, nil)
	cs, err := c.Connect(b.Context(), &mcp.StreamableClientTransport{Endpoint: "http://localhost/", HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

type authTransport struct {
	auth string
	base http.RoundTripper
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", a.auth)
	return a.base.RoundTrip(r)
}
