package documents

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// fakeContents is a Contents API for one notebook whose file a "person"
// changes (touch) whenever the test says so.
type fakeContents struct {
	mu       sync.Mutex
	source   string // the one cell's source on "disk"
	modified time.Time
	// onMetaGet runs on every content=0 GET: the moment between the
	// sidecar's read and its write.
	onMetaGet func(f *fakeContents)
	puts      []string
}

func (f *fakeContents) notebookJSON() string {
	return fmt.Sprintf(`{"cells":[{"cell_type":"code","id":"c1","metadata":{},"outputs":[],"execution_count":null,"source":%q}],"metadata":{},"nbformat":4,"nbformat_minor":5}`, f.source)
}

func (f *fakeContents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("content") == "0":
		if f.onMetaGet != nil {
			f.onMetaGet(f)
		}
		fmt.Fprintf(w, `{"name":"n.ipynb","path":"n.ipynb","type":"notebook","writable":true,"last_modified":%q}`, f.modified.Format(time.RFC3339Nano))
	case r.Method == http.MethodGet:
		fmt.Fprintf(w, `{"name":"n.ipynb","path":"n.ipynb","type":"notebook","writable":true,"last_modified":%q,"content":%s}`, f.modified.Format(time.RFC3339Nano), f.notebookJSON())
	case r.Method == http.MethodPut:
		var body struct {
			Content json.RawMessage `json:"content"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		nb, err := notebook.Parse(body.Content)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.puts = append(f.puts, string(body.Content))
		f.source = nb.Cells[0].Source
		f.modified = f.modified.Add(time.Second)
		fmt.Fprintf(w, `{"name":"n.ipynb","path":"n.ipynb","type":"notebook","writable":true,"last_modified":%q}`, f.modified.Format(time.RFC3339Nano))
	}
}

func newStore(t *testing.T, f *fakeContents) *Store {
	t.Helper()
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	c, err := jupyter.NewClient(&jupyter.ServerInfo{URL: ts.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	return &Store{Jupyter: c}
}

// appendLine is an edit that keeps whatever is in the cell.
func appendLine(nb *notebook.Notebook) error {
	_, err := nb.SetSource(notebook.Ref{ID: "c1"}, nb.Cells[0].Source+"\nagent")
	return err
}

func TestUpdateReappliesEditAfterConcurrentChange(t *testing.T) {
	f := &fakeContents{source: "v1", modified: time.Unix(1000, 0)}
	changed := false
	f.onMetaGet = func(f *fakeContents) {
		if !changed { // a person saves once, between the sidecar's read and write
			changed = true
			f.source = "person"
			f.modified = f.modified.Add(time.Second)
		}
	}
	s := newStore(t, f)
	if _, err := s.Update(t.Context(), "n.ipynb", appendLine); err != nil {
		t.Fatal(err)
	}
	if len(f.puts) != 1 || f.source != "person\nagent" {
		t.Fatalf("puts %d, source on disk %q: want the person's change kept and the edit re-applied", len(f.puts), f.source)
	}
}

func TestUpdateGivesUpOnAlwaysChangingFile(t *testing.T) {
	f := &fakeContents{source: "v1", modified: time.Unix(1000, 0)}
	f.onMetaGet = func(f *fakeContents) { f.modified = f.modified.Add(time.Second) }
	s := newStore(t, f)
	_, err := s.Update(t.Context(), "n.ipynb", appendLine)
	if err == nil || !strings.Contains(err.Error(), "changed on disk 3 times") {
		t.Fatalf("Update error = %v", err)
	}
	if len(f.puts) != 0 {
		t.Fatal("wrote a notebook that kept changing")
	}
}

func TestUpdateEditErrorWritesNothing(t *testing.T) {
	f := &fakeContents{source: "v1", modified: time.Unix(1000, 0)}
	s := newStore(t, f)
	_, err := s.Update(t.Context(), "n.ipynb", func(nb *notebook.Notebook) error {
		_, err := nb.SetSource(notebook.Ref{ID: "nope"}, "x")
		return err
	})
	if err == nil || len(f.puts) != 0 {
		t.Fatalf("err %v, puts %d", err, len(f.puts))
	}
}

func TestReadOnlyRefusesEdits(t *testing.T) {
	f := &fakeContents{source: "v1", modified: time.Unix(1000, 0)}
	docs := ReadOnly{Backend: newStore(t, f), Reason: "rooms cannot be joined"}
	if nb, err := docs.Load(t.Context(), "n.ipynb"); err != nil || nb.Cells[0].Source != "v1" {
		t.Fatalf("Load = %v, %v", nb, err)
	}
	for _, write := range []func(context.Context, string, func(*notebook.Notebook) error) (*notebook.Notebook, error){docs.Update, docs.Progress} {
		if _, err := write(t.Context(), "n.ipynb", appendLine); err == nil || !strings.Contains(err.Error(), "rooms cannot be joined; nothing was changed") {
			t.Fatalf("write error = %v", err)
		}
	}
	if len(f.puts) != 0 {
		t.Fatal("a read-only store wrote the file")
	}
}
