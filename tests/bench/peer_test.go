package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// BenchmarkPeer compares the sidecar with datalayer's jupyter-mcp-server
// (pinned in datalayer-requirements.txt, installed by `make bench-deps` into
// .venv-bench), run standalone on streamable HTTP against the same lab and
// a same-sized copy of the same notebook, both driven by go-sdk's client.
// Calls alternate between the two servers so both see the same load.
func BenchmarkPeer(b *testing.B) {
	lab, ours := benchLab(b)
	writeNotebook(b, lab, "ours.ipynb")
	writeNotebook(b, lab, "theirs.ipynb")
	theirs, peerPID := startDatalayer(b, lab, "theirs.ipynb")
	// Their tools act on a notebook registered by use_notebook.
	mustCall(b, theirs, "use_notebook", map[string]any{"notebook_name": "bench", "notebook_path": "theirs.ipynb"})

	ops := []struct {
		name         string
		ours, theirs func(i int)
	}{
		{"execute_code 1+1",
			func(int) { mustCall(b, ours, "execute_code", map[string]any{"path": "ours.ipynb", "code": "1+1"}) },
			func(int) { mustCall(b, theirs, "execute_code", map[string]any{"code": "1+1"}) }},
		{"read_notebook 200 cells",
			func(int) { mustCall(b, ours, "read_notebook", map[string]any{"path": "ours.ipynb", "limit": cells}) },
			func(int) {
				mustCall(b, theirs, "read_notebook", map[string]any{"notebook_name": "bench", "limit": cells})
			}},
		{"insert_cell (append)",
			func(i int) {
				mustCall(b, ours, "insert_cell", map[string]any{"path": "ours.ipynb", "source": fmt.Sprintf("y = %d", i)})
			},
			func(i int) {
				mustCall(b, theirs, "insert_cell", map[string]any{"notebook_name": "bench", "cell_index": -1, "cell_type": "code", "cell_source": fmt.Sprintf("y = %d", i)})
			}},
		{"edit_cell (whole source)",
			func(i int) {
				mustCall(b, ours, "edit_cell", map[string]any{"path": "ours.ipynb", "index": 1, "source": fmt.Sprintf("z = %d", i)})
			},
			func(i int) {
				mustCall(b, theirs, "overwrite_cell_source", map[string]any{"notebook_name": "bench", "cell_index": 1, "cell_source": fmt.Sprintf("z = %d", i)})
			}},
	}
	for _, op := range ops { // warm both: kernels started, rooms joined
		op.ours(-1)
		op.theirs(-1)
	}
	for range b.N {
		fmt.Printf("\nsidecar /mcp vs datalayer jupyter-mcp-server %s (standalone, streamable HTTP), same lab, %d-cell notebooks, %d interleaved samples each\n",
			peerVersion(), cells, samples)
		fmt.Printf("%-28s %10s %10s   %-28s %10s %10s\n", "ours", "p50", "p95", "datalayer", "p50", "p95")
		var goals []string
		for _, op := range ops {
			var o, t []time.Duration
			for i := range samples {
				o = append(o, timed(func() { op.ours(i) }))
				t = append(t, timed(func() { op.theirs(i) }))
			}
			slices.Sort(o)
			slices.Sort(t)
			fmt.Printf("%s   %s\n", row(op.name, o), row("", t))
			// "ours >= 3x faster": ours / theirs <= 1/3.
			goals = append(goals, labtest.GoalLine(op.name+" p50 /mcp vs datalayer", "ms", ms(p50(o)), ms(p50(t)), "<=", 1.0/3))
		}
		ourRSS, theirRSS := rssMB(lab.SidecarPID()), rssMB(peerPID)
		fmt.Printf("resident memory: sidecar %.1f MB, datalayer %.1f MB\n", ourRSS, theirRSS)
		for _, g := range goals {
			fmt.Println(g)
		}
		fmt.Println()
	}
}

// startDatalayer runs datalayer's jupyter-mcp-server on a free loopback
// port against lab (its token, the notebook doc), waits until it answers,
// and returns a go-sdk session to it and its pid.
func startDatalayer(b *testing.B, lab *labtest.Lab, doc string) (*mcp.ClientSession, int) {
	bin := filepath.Join(labtest.RepoRoot(), ".venv-bench", "bin", "jupyter-mcp-server")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s is missing: run `make bench-deps`", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	mcpToken := "bench-peer-token"
	logPath := filepath.Join(b.TempDir(), "datalayer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--transport", "streamable-http", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = append(os.Environ(),
		"JUPYTER_URL="+strings.TrimSuffix(lab.URL, "/"), "JUPYTER_TOKEN="+lab.Token,
		"DOCUMENT_ID="+doc, "MCP_TOKEN="+mcpToken, "JUPYTERLAB=false")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(90 * time.Second); ; {
		if resp, err := http.Get(base + "/api/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(logPath)
			b.Fatalf("datalayer's server not answering after 90 s:\n%s", labtest.Tail(data, 4<<10))
		}
		time.Sleep(100 * time.Millisecond) // polling for readiness, not synchronising a test
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench-peer", Version: "v0"}, nil)
	cs, err := c.Connect(b.Context(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: labtest.AuthClient("Bearer " + mcpToken), MaxRetries: -1}, nil)
	if err != nil {
		data, _ := os.ReadFile(logPath)
		b.Fatalf("connect to datalayer's server: %v\n%s", err, labtest.Tail(data, 4<<10))
	}
	b.Cleanup(func() { cs.Close() })
	return cs, cmd.Process.Pid
}

// peerVersion is the datalayer version pinned for the benchmark.
func peerVersion() string {
	data, _ := os.ReadFile(filepath.Join(labtest.RepoRoot(), "tests", "bench", "datalayer-requirements.txt"))
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("jupyter_mcp_server==")); ok {
			return string(v)
		}
	}
	return "(version unknown)"
}

// mustCall calls a tool that must succeed.
func mustCall(b *testing.B, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		b.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		b.Fatalf("%s: %s", tool, labtest.ResultText(res))
	}
	return res
}
