package container

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// sidecarMemory is the sidecar's resident memory and its peak so far, from
// /proc/<pid>/status in the container.
func sidecarMemory(t testing.TB, l *lab) (rss, peak string) {
	t.Helper()
	script := `for d in /proc/[0-9]*; do
	case "$(readlink "$d/exe")" in */jupyter_mcp_sidecar_proxy/bin/jupyter-mcp-sidecar) grep -E '^(VmRSS|VmHWM):' "$d/status";; esac
done; true`
	code, out, err := l.Exec(t.Context(), "sh", "-c", script)
	if err != nil || code != 0 {
		t.Fatalf("read the sidecar's memory: %d %v %s", code, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			kb, _ := strconv.Atoi(f[1])
			v := fmt.Sprintf("%.1f MB", float64(kb)/1000)
			switch f[0] {
			case "VmRSS:":
				rss = v
			case "VmHWM:":
				peak = v
			}
		}
	}
	if rss == "" {
		t.Fatalf("no sidecar process in the container:\n%s", out)
	}
	return rss, peak
}

// BenchmarkImage prints, for a fresh container of the image, the figures
// quoted in docs/benchmarks.md: image size and what the sidecar binary and the proxy
// extension add, time from `docker run` to Jupyter answering and to the
// first MCP tool call done, the sidecar's memory idle and after 20
// executed cells, and how long docker stop takes. `make bench` runs it.
func BenchmarkImage(b *testing.B) {
	for range b.N {
		l, err := startLab(b.Context(), labOptions{token: randomToken()})
		if err != nil {
			b.Fatal(err)
		}
		cs := l.session(b) // the first request starts the sidecar
		notebooks(b, cs)
		firstCall := time.Now()
		idleRSS, _ := sidecarMemory(b, l)

		// A run: a notebook with 20 executed cells, read back whole.
		labtest.Call[map[string]any](b, cs, "create_notebook", map[string]any{"path": "figures.ipynb"})
		firstExec := time.Now()
		for i := range 20 {
			ins := labtest.Call[insertOut](b, cs, "insert_cell", map[string]any{"path": "figures.ipynb", "execute": true, "timeout": 120,
				"source": fmt.Sprintf("import numpy as np\nprint(np.arange(%d).sum())", 1000*(i+1))})
			if ins.Execution.Status != "ok" {
				b.Fatalf("cell %d: %+v", i, ins)
			}
			if i == 0 {
				firstExec = time.Now()
			}
		}
		labtest.Call[map[string]any](b, cs, "read_notebook", map[string]any{"path": "figures.ipynb"})
		runRSS, peakRSS := sidecarMemory(b, l)

		size, err := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", image).Output()
		if err != nil {
			b.Fatal(err)
		}
		imageBytes, _ := strconv.ParseFloat(strings.TrimSpace(string(size)), 64)
		_, binSize, _ := l.Exec(b.Context(), "stat", "-L", "-c", "%s", "/usr/local/bin/jupyter-mcp-sidecar")
		binBytes, _ := strconv.ParseFloat(strings.TrimSpace(binSize), 64)
		// The installed wheel (its package and its dist-info) without the binary in it.
		_, extSize, _ := l.Exec(b.Context(), "sh", "-c", "du -sb /opt/venv/lib/python3*/site-packages/jupyter_mcp_sidecar* | awk '{s+=$1} END {print s}'")
		extBytes, _ := strconv.ParseFloat(strings.TrimSpace(extSize), 64)
		extBytes -= binBytes
		// docker stop of a lab whose sidecar is in a notebook's room.
		grace := 30 * time.Second
		stopStart := time.Now()
		if err := l.c.Stop(b.Context(), &grace); err != nil {
			b.Fatal(err)
		}
		stopped := time.Since(stopStart)
		st, err := l.c.State(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		l.Terminate()

		fmt.Printf("\nimage %s: %.0f MB; the sidecar binary adds %.1f MB, the proxy extension %.2f MB\n", image, imageBytes/1e6, binBytes/1e6, extBytes/1e6)
		fmt.Printf("docker run -> Jupyter answering: %s; -> first MCP tool call done: %s; first executed cell (kernel start) %s later\n",
			l.Ready.Sub(l.Started).Round(10*time.Millisecond), firstCall.Sub(l.Started).Round(10*time.Millisecond),
			firstExec.Sub(firstCall).Round(10*time.Millisecond))
		fmt.Printf("sidecar resident memory: %s idle after the first call; %s after 20 executed cells and a read (peak %s)\n", idleRSS, runRSS, peakRSS)
		fmt.Printf("docker stop: %s, exit code %d\n\n", stopped.Round(10*time.Millisecond), st.ExitCode)
	}
}
