package hub

import (
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// A user's container gets the hub's memory and CPU limits; a kernel that
// needs more memory dies (kernel_died, with a note), the server stays and
// the next run works.
func TestMemoryLimit(t *testing.T) {
	h := limited(t)
	if err := h.createUser("dave"); err != nil {
		t.Fatal(err)
	}
	token, err := h.userToken("dave")
	if err != nil {
		t.Fatal(err)
	}
	cs := h.connect(t, "/services/mcp", "token "+token)
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "big.ipynb"})

	out, err := exec.Command("docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}}", h.Prefix+"-dave").Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	if got := strings.Fields(string(out)); len(got) != 3 || got[0] != "629145600" || got[1] != "50000" {
		t.Fatalf("limits of dave's container (memory, cpu quota, period) = %q, want 600M and 0.5 CPU", out)
	}

	type execOut struct {
		Status string `json:"status"`
		Cells  []struct {
			Note string `json:"note"`
		} `json:"cells"`
	}
	// 2 GB written byte by byte: far above the limit.
	died := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": "big.ipynb", "code": "b = b'x' * (2 * 1024**3)", "timeout": 120})
	if died.Status != "kernel_died" || len(died.Cells) == 0 || !strings.Contains(died.Cells[0].Note, "died") {
		t.Fatalf("allocating 2 GB under a 600 MB limit: %+v", died)
	}
	// Jupyter restarts a dead kernel by itself and fails a second restart
	// meanwhile; restart_kernel lets that settle and asks again (three
	// times). The test asks until one goes through, within a minute.
	var last string
	err = poll(time.Minute, func() (bool, error) {
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "restart_kernel", Arguments: map[string]any{"path": "big.ipynb"}})
		if err != nil {
			return false, err
		}
		last = labtest.ResultText(res)
		return !res.IsError, nil
	})
	if err != nil {
		t.Fatalf("restart_kernel after the kernel died: %v (last: %s)", err, last)
	}
	if after := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": "big.ipynb", "code": "print(6 * 7)"}); after.Status != "ok" {
		t.Fatalf("the run after the kernel died: %+v", after)
	}
	if s, err := h.serverState("dave"); err != nil || s != "ready" {
		t.Fatalf("dave's server after the kernel died: %q %v", s, err)
	}
}

// A hub at its active-server limit refuses the next start through the hub
// URL at once, with "at capacity" and Retry-After, and starts nothing.
func TestCapacity(t *testing.T) {
	h, err := startHub(filepath.Join(testDir, "capacity"), router, "HUB_ACTIVE_SERVER_LIMIT=1")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	tok := map[string]string{}
	for _, name := range []string{"frank", "grace"} {
		if err := h.createUser(name); err != nil {
			t.Fatal(err)
		}
		if tok[name], err = h.userToken(name); err != nil {
			t.Fatal(err)
		}
	}
	cs := h.connect(t, "/services/mcp", "token "+tok["frank"])
	labtest.Call[map[string]any](t, cs, "list_notebooks", nil)

	start := time.Now()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.URL+"/services/mcp", strings.NewReader(initialize))
	req.Header.Set("Authorization", "token "+tok["grace"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "at capacity") {
		t.Fatalf("a start beyond capacity: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the refusal took %s", took)
	}
	if s, err := h.serverState("grace"); err != nil || s != "" {
		t.Fatalf("grace's server after the refusal: %q %v", s, err)
	}
}

// The first call through the hub URL picks a profile with ?profile=; its
// limits are on the container. An unknown profile is refused and starts
// nothing.
func TestProfiles(t *testing.T) {
	h := limited(t)
	tok := map[string]string{}
	for _, name := range []string{"heidi", "ivan"} {
		if err := h.createUser(name); err != nil {
			t.Fatal(err)
		}
		var err error
		if tok[name], err = h.userToken(name); err != nil {
			t.Fatal(err)
		}
	}
	cs := h.connect(t, "/services/mcp?profile=large", "token "+tok["heidi"])
	labtest.Call[map[string]any](t, cs, "list_notebooks", nil)
	out, err := exec.Command("docker", "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}}", h.Prefix+"-heidi").Output()
	if err != nil {
		t.Fatalf("docker inspect: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != "1073741824 100000" {
		t.Fatalf("limits of heidi's container with the large profile = %q, want 1 GiB and 1 CPU", got)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, h.URL+"/services/mcp?profile=huge", strings.NewReader(initialize))
	req.Header.Set("Authorization", "token "+tok["ivan"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 400 || !strings.Contains(string(body), "unknown profile 'huge'") {
		t.Fatalf("an unknown profile: %d %s", resp.StatusCode, body)
	}
	if s, err := h.serverState("ivan"); err != nil || s != "" {
		t.Fatalf("ivan's server after an unknown profile: %q %v", s, err)
	}
}
