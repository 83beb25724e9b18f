package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// One SIGTERM (what docker stop, JupyterHub and process managers send) ends
// a lab whose sidecar has joined a notebook's collaboration room: the lab
// exits by itself instead of hanging until it is killed, and the agent's
// last edit, sent just before the signal and not saved yet, is in the file
// (the sidecar writes it before it exits, and the proxy extension holds the
// lab's stop, which closes the rooms, until it has). (Without the proxy extension's thread-exit hook
// the lab hangs for ever in threading._shutdown; the grace here only bounds
// the test.) The signal takes Jupyter's own shutdown path: jupyter-server-proxy's
// supervisor would otherwise raise SystemExit wherever the main thread is,
// and Tornado swallows it in some callbacks (the lab then never exits).
func TestLabExitsOnSIGTERM(t *testing.T) {
	lab, err := labtest.Start(sidecarBin, filepath.Join(labsDir, "sigterm-lab"), "sigterm-token")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		lab.Stop()
		t.Fatal(err)
	}
	labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": "bye.ipynb"})
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": "bye.ipynb", "source": "last_edit = 1"})
	cs.Close()
	signalled := time.Now()
	if killed := lab.Terminate(30 * time.Second); killed {
		t.Fatalf("the lab did not exit within 30 s of SIGTERM and was killed; log: %s", lab.LogPath)
	}
	t.Logf("the lab exited %.1f s after SIGTERM", time.Since(signalled).Seconds())
	log, err := os.ReadFile(lab.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "received signal 15, stopping") {
		t.Fatalf("the lab did not stop through Jupyter's shutdown path; log: %s", lab.LogPath)
	}
	if disk := readLabFile(t, lab, "bye.ipynb"); !strings.Contains(disk, "last_edit = 1") {
		t.Fatalf("the file lacks the last edit:\n%s", disk)
	}
	validateLabNotebook(t, lab, "bye.ipynb")
}
