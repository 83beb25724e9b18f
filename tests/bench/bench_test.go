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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const (
	cells   = 200
	samples = 40 // per operation and path
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

	for range b.N {
		read := measure(func() { callTool("read_notebook", map[string]any{"path": "mcp.ipynb", "limit": cells}) })
		get := measure(func() { getNotebook(b, hc, contents) })
		insert := measure(func() { callTool("insert_cell", map[string]any{"path": "mcp.ipynb", "source": "print('bench')"}) })
		n := 0
		edit := measure(func() {
			n++
			callTool("edit_cell", map[string]any{"path": "mcp.ipynb", "index": 1, "source": fmt.Sprintf("print(%d)", n)})
		})
		getPut := measure(func() {
			nb := getNotebook(b, hc, contents)
			nb["cells"] = append(nb["cells"].([]any), map[string]any{"cell_type": "code", "source": "print('bench')", "metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil})
			putNotebook(b, hc, contents, nb)
		})
		filesInsert := measure(func() {
			res, err := filesCS.CallTool(b.Context(), &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{"path": "files.ipynb", "source": "print('bench')"}})
			if err != nil || res.IsError {
				b.Fatalf("insert_cell (files backend): %v %v", err, res)
			}
		})
		printTable(fmt.Sprintf("%d-cell notebook, %d samples each, through jupyter-server-proxy on 127.0.0.1", cells, samples),
			series{"read_notebook via /mcp", read}, series{"GET contents (direct)", get},
			series{"insert_cell via /mcp", insert}, series{"edit_cell via /mcp", edit},
			series{"GET+PUT contents (direct)", getPut}, series{"insert_cell, files backend", filesInsert})
		fmt.Printf("sidecar resident memory: %.1f MB\n", rssMB(lab.SidecarPID()))
		fmt.Println(labtest.GoalLine("insert_cell p50 /mcp vs direct GET", "ms", ms(p50(insert)), ms(p50(get)), "<=", 1.5))
		fmt.Println(labtest.GoalLine("edit_cell p50 /mcp vs direct GET", "ms", ms(p50(edit)), ms(p50(get)), "<=", 1.5))
		fmt.Println()
	}
}

// BenchmarkExecute prints the round trip of execute_code("1+1") through
// <lab>/mcp next to the independent baseline, a plain websocket client
// written in this package (rawkernel_test.go) executing on the same kernel:
// each with calls spaced 150 ms apart and back to back, samples each.
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
		// Interleaved, spaced and back to back, so every path sees the
		// same machine load; more samples than elsewhere, as these p50s
		// are a few milliseconds apart.
		var rawSpaced, mcpSpaced, rawB2B, mcpB2B, socketB2B []time.Duration
		for range executeSamples {
			time.Sleep(spacing)
			rawSpaced = append(rawSpaced, timed(viaRaw))
			time.Sleep(spacing)
			mcpSpaced = append(mcpSpaced, timed(viaMCP))
		}
		for range executeSamples {
			rawB2B = append(rawB2B, timed(viaRaw))
			mcpB2B = append(mcpB2B, timed(viaMCP))
			socketB2B = append(socketB2B, timed(viaSocket))
		}
		for _, s := range [][]time.Duration{rawSpaced, mcpSpaced, rawB2B, mcpB2B, socketB2B} {
			slices.Sort(s)
		}
		printTable(fmt.Sprintf("execute 1+1 on one kernel, %d samples each; spaced = %v apart, back to back = the three paths in turn", executeSamples, spacing),
			series{"raw websocket, spaced", rawSpaced}, series{"raw websocket, back to back", rawB2B},
			series{"execute_code /mcp, spaced", mcpSpaced}, series{"execute_code /mcp, b2b", mcpB2B},
			series{"sidecar socket, b2b", socketB2B})
		ratio := func(a, b []time.Duration) float64 { return float64(p50(a)) / float64(p50(b)) }
		fmt.Printf("p50 ratio raw back to back : raw spaced:          %.2f\n", ratio(rawB2B, rawSpaced))
		fmt.Printf("p50 ratio sidecar socket : raw, back to back:     %.2f (the sidecar's own cost)\n", ratio(socketB2B, rawB2B))
		fmt.Printf("p50 /mcp - sidecar socket, back to back:          %.1f ms (Jupyter server + jupyter-server-proxy hop)\n",
			ms(p50(mcpB2B)-p50(socketB2B)))
		fmt.Printf("sidecar resident memory: %.1f MB\n", rssMB(lab.SidecarPID()))
		fmt.Println(labtest.GoalLine("execute_code p50 /mcp spaced vs raw websocket spaced", "ms", ms(p50(mcpSpaced)), ms(p50(rawSpaced)), "<=", 1.3))
		fmt.Println(labtest.GoalLine("execute_code p50 /mcp back to back vs raw websocket spaced", "ms", ms(p50(mcpB2B)), ms(p50(rawSpaced)), "<=", 1.3))
		fmt.Println()
	}
}

// executeSamples is BenchmarkExecute's samples per path. The goal compares
// two p50s about 3 ms apart on a machine whose calls vary by several ms:
// with 100 samples the ratio moved by up to 0.1 between runs of the same
// build; the spread of a p50 shrinks with the square root of the samples.
const executeSamples = 300

// spacing separates "spaced" calls.
const spacing = 150 * time.Millisecond

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
	binDir := buildShipped(b, filepath.Join(tmp, "bin"))
	return labtest.Open(b, binDir, filepath.Join(tmp, "lab"), "bench-token", env...)
}

// buildShipped builds the sidecar into dir as `make build` and the wheels
// do (static, stripped): its memory and start-up are what users run, not a
// dynamically linked build with debug info (about 5 MB more).
func buildShipped(b *testing.B, dir string) string {
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "jupyter-mcp-sidecar"), "./sidecar/cmd/jupyter-mcp-sidecar")
	build.Dir = labtest.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build sidecar: %v\n%s", err, out)
	}
	return dir
}

// measure times back-to-back calls of op, sorted.
func measure(op func()) []time.Duration {
	d := make([]time.Duration, samples)
	for i := range d {
		d[i] = timed(op)
	}
	slices.Sort(d)
	return d
}

// series is a named set of sorted durations.
type series struct {
	name string
	d    []time.Duration
}

// printTable prints title, then each series' p50 and p95.
func printTable(title string, rows ...series) {
	fmt.Printf("\n%s\n%-28s %10s %10s\n", title, "operation", "p50", "p95")
	for _, r := range rows {
		fmt.Println(row(r.name, r.d))
	}
}

func row(name string, d []time.Duration) string {
	p := func(q float64) string { return fmt.Sprintf("%.1f ms", ms(quantile(d, q))) }
	return fmt.Sprintf("%-28s %10s %10s", name, p(0.50), p(0.95))
}

func writeNotebook(b *testing.B, lab *labtest.Lab, name string) { writeNotebookOf(b, lab, name, cells) }

// writeNotebookOf writes a notebook of n code cells, c0 to c<n-1>, each
// with a stream output.
func writeNotebookOf(b *testing.B, lab *labtest.Lab, name string, n int) {
	var cs []string
	for i := range n {
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

// rssMB is the resident memory (VmRSS) of process pid in MB, 0 if unknown.
func rssMB(pid int) float64 { return labtest.ProcStatusMB(pid, "VmRSS") }

// quantile is the q-quantile of sorted durations d.
func quantile(d []time.Duration, q float64) time.Duration { return d[int(q*float64(len(d)-1))] }

func p50(d []time.Duration) time.Duration { return quantile(d, 0.5) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sidecarDirect opens an MCP session straight to the sidecar's unix
// socket (read from its command line), skipping the Jupyter server and
// jupyter-server-proxy: the difference to /mcp is the proxy hop's cost.
func sidecarDirect(b *testing.B, lab *labtest.Lab) *mcp.ClientSession {
	return socketClient(b, sidecarSocket(b, lab.SidecarPID()), lab.Token)
}

// websocketSidecar starts a second sidecar, the lab's own binary, on the
// lab with --kernel-transport websocket, and connects to its socket.
func websocketSidecar(b *testing.B, lab *labtest.Lab) (int, *mcp.ClientSession) {
	bin, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", lab.SidecarPID()))
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "ws.sock")
	cmd := exec.Command(bin, "--listen", "unix:"+sock, "--jupyter-url", lab.URL, "--kernel-transport", "websocket")
	cmd.Env = append(os.Environ(), "JUPYTER_TOKEN="+lab.Token)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// It listens once it has reached the server: wait for the socket.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the second sidecar did not listen within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid, socketClient(b, sock, lab.Token)
}

// socketClient is an MCP session on a sidecar's unix socket.
func socketClient(b *testing.B, sock, token string) *mcp.ClientSession {
	// The Authorization header the proxy would forward: the sidecar wants
	// one on POSTs (else it asks for a cookie's XSRF token).
	hc := &http.Client{Transport: authTransport{"token " + token, &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
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

// sidecarSocket is the unix socket path on the command line of the
// sidecar process pid.
func sidecarSocket(b *testing.B, pid int) string {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if p, ok := strings.CutPrefix(arg, "unix:"); ok {
			return p
		}
	}
	b.Fatalf("no unix socket on the sidecar's command line %q", cmdline)
	return ""
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
