package hub

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// idleTimeout is the culler's timeout on the hub of TestCullAndRestart.
const idleTimeout = 12 * time.Second

// An agent working alone through the hub URL keeps its server past the
// idle timeout; left idle, the culler stops the server; the next call
// through the hub URL starts it again, with the notebooks kept in the
// user's volume. On a hub of its own, with a short timeout and activity
// reported every 2 s.
func TestCullAndRestart(t *testing.T) {
	h, err := startHub(filepath.Join(t.TempDir(), "hub"), router,
		fmt.Sprintf("HUB_IDLE_TIMEOUT=%d", int(idleTimeout.Seconds())), "HUB_CULL_EVERY=2", "HUB_ACTIVITY_INTERVAL=2")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("hub log (last 8 KiB):\n%s", labtest.Tail(h.Log(), 8<<10))
		}
		h.Stop()
	}()
	if err := h.createUser("carol"); err != nil {
		t.Fatal(err)
	}
	token, err := h.userToken("carol")
	if err != nil {
		t.Fatal(err)
	}

	cs := h.connect(t, "/services/mcp", "token "+token)
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "kept.ipynb"})
	labtest.Call[map[string]any](t, cs, "insert_cell", map[string]any{"path": "kept.ipynb", "source": "x = 'still here'"})

	// Working: a call a second for twice the timeout; the server stays.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for end := time.Now().Add(2 * idleTimeout); time.Now().Before(end); <-tick.C {
		labtest.Call[map[string]any](t, cs, "list_notebooks", nil)
		if s, err := h.serverState("carol"); err != nil || s != "ready" {
			t.Fatalf("carol's server while an agent works: %q %v", s, err)
		}
	}
	cs.Close()

	// Idle: culled after the timeout (plus the activity report and the
	// culler's period).
	idleFrom := time.Now()
	if err := h.waitState("carol", "", idleTimeout+time.Minute); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "figure: idle server culled %s after the last call (timeout %s)\n", time.Since(idleFrom).Round(100*time.Millisecond), idleTimeout)

	// The next call starts it again; the notebook is there.
	start := time.Now()
	cs = h.connect(t, "/services/mcp", "token "+token)
	type listOut struct {
		Entries []struct {
			Path string `json:"path"`
		} `json:"entries"`
	}
	var paths []string
	for _, e := range labtest.Call[listOut](t, cs, "list_notebooks", nil).Entries {
		paths = append(paths, e.Path)
	}
	fmt.Fprintf(os.Stderr, "figure: hub URL after a cull: first tool result after %s\n", time.Since(start).Round(10*time.Millisecond))
	if !slices.Contains(paths, "kept.ipynb") {
		t.Fatalf("notebooks after the restart: %v", paths)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: map[string]any{"path": "kept.ipynb"}})
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res)+fmt.Sprint(res.StructuredContent), "still here") {
		t.Fatalf("read_notebook after the restart: %v %v", err, res)
	}
}
