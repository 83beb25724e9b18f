package hub

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// idleTimeout is the culler's timeout on the limited hub.
const idleTimeout = 12 * time.Second

// limitedHub is a second hub, started by the first test that needs it:
// a short idle timeout with activity reported every 2 s, per-user memory
// and CPU limits, and two profiles; its router fetches client metadata
// documents from loopback addresses too, and trusts the certificate of
// metadataDocs, the test's https server of them. Stopped at the end of
// the run.
var (
	limitedHub     *hubProcess
	metadataDocs   *documents
	limitedStarted = sync.OnceValue(func() (err error) {
		dir := filepath.Join(testDir, "limited")
		if metadataDocs, err = serveDocuments(dir); err != nil {
			return err
		}
		limitedHub, err = startHub(dir, router,
			fmt.Sprintf("HUB_IDLE_TIMEOUT=%d", int(idleTimeout.Seconds())), "HUB_CULL_EVERY=2", "HUB_ACTIVITY_INTERVAL=2",
			"HUB_MEM_LIMIT=600M", "HUB_CPU_LIMIT=0.5", "HUB_PROFILES=small=600M:0.5,large=1G:1",
			"HUB_OAUTH_PRIVATE_CLIENT_METADATA=1", "SSL_CERT_FILE="+metadataDocs.certFile)
		return err
	})
)

func limited(t *testing.T) *hubProcess {
	t.Helper()
	if err := limitedStarted(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("limited hub log (last 8 KiB):\n%s", labtest.Tail(limitedHub.Log(), 8<<10))
		}
	})
	return limitedHub
}

// An agent working alone through the hub URL keeps its server past the
// idle timeout; left idle, the culler stops the server; the agent's next
// call through the hub URL (the same client: under 2026-07-28 it holds no
// session) starts it again, tells the agent how the start goes through
// progress notifications, and finds the notebooks kept in the user's
// volume.
func TestCullAndRestart(t *testing.T) {
	h := limited(t)
	if err := h.createUser("carol"); err != nil {
		t.Fatal(err)
	}
	token, err := h.userToken("carol")
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var progress []string
	cs := h.connectWith(t, "/services/mcp", "token "+token, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, r.Params.Message)
		},
	})
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %q, want the stateless 2026-07-28", v)
	}
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

	// Idle: culled after the timeout (plus the activity report and the
	// culler's period).
	idleFrom := time.Now()
	if err := h.waitState("carol", "", idleTimeout+time.Minute); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "figure: idle server culled %s after the last call (timeout %s)\n", time.Since(idleFrom).Round(100*time.Millisecond), idleTimeout)

	// The next call starts it again, with progress; the notebook is there.
	start := time.Now()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook",
		Arguments: map[string]any{"path": "kept.ipynb"}, Meta: mcp.Meta{"progressToken": "restart"}})
	fmt.Fprintf(os.Stderr, "figure: hub URL after a cull: first tool result after %s\n", time.Since(start).Round(10*time.Millisecond))
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res)+fmt.Sprint(res.StructuredContent), "still here") {
		t.Fatalf("read_notebook after the restart: %v %v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 || !strings.HasPrefix(progress[0], "starting carol's server") {
		t.Fatalf("progress while the server started: %q; want the hub's start events", progress)
	}
	fmt.Fprintf(os.Stderr, "figure: progress while the server started: %q\n", progress)
}
