package review

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// newHandler serves a record of two changes to a.ipynb (the first one
// undone) through the real tools code.
func newHandler(t *testing.T) (*Handler, *changes.Log) {
	t.Helper()
	log := &changes.Log{Dir: t.TempDir()}
	for _, src := range []string{"x = 1", "y = 2"} {
		if _, err := log.Record(changes.Change{Path: "a.ipynb", Tool: "edit_cell", Client: "c", Session: "s1",
			Cells: []changes.Cell{{Op: changes.Edit, CellID: "c0", Diff: "+ " + src}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := log.Undo("a.ipynb", changes.Selection{IDs: []int{1}}, func([]*changes.Change) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return &Handler{Changes: &tools.Tools{Changes: log}}, log
}

// undone is the record's undone change ids, to see that nothing changed.
func undone(t *testing.T, log *changes.Log) string {
	t.Helper()
	cs, _, err := log.List("a.ipynb", changes.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		if !c.Undone.IsZero() {
			ids = append(ids, fmt.Sprint(c.ID))
		}
	}
	return strings.Join(ids, ",")
}

func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		want                       string // in the body
	}{
		{"list", "GET", "/changes?path=a.ipynb", "", 200, `"changes":[{"id":2,`},
		{"list shows undone", "GET", "/changes?path=a.ipynb&limit=1&before=2", "", 200, `"id":1,`},
		{"list without path", "GET", "/changes", "", 400, "path is missing"},
		{"list outside the root", "GET", "/changes?path=../a.ipynb", "", 400, `leaves the Jupyter root`},
		{"list of a non-notebook", "GET", "/changes?path=a.txt", "", 400, `is not a notebook`},
		{"list with a bad limit", "GET", "/changes?path=a.ipynb&limit=x", "", 400, `limit \"x\" is not a positive integer`},
		{"list with a limit too big", "GET", "/changes?path=a.ipynb&limit=201", "", 400, "limit 201 is out of range"},
		{"list by POST", "POST", "/changes?path=a.ipynb", "", 405, "GET only"},
		{"undo by GET", "GET", "/changes/undo", "", 405, "POST only"},
		{"unknown endpoint", "GET", "/changes/x", "", 404, "no such endpoint"},
		{"bad JSON", "POST", "/changes/undo", `{"path":`, 400, "expected JSON"},
		{"unknown field", "POST", "/changes/undo", `{"path":"a.ipynb","ids":[2]}`, 400, `unknown field \"ids\"`},
		{"two objects", "POST", "/changes/undo", `{"path":"a.ipynb","change_ids":[2]} {}`, 400, "nothing after it"},
		{"missing path", "POST", "/changes/undo", `{"change_ids":[2]}`, 400, "path is missing"},
		{"nothing named", "POST", "/changes/undo", `{"path":"a.ipynb"}`, 400, "name the changes to undo"},
		{"both named", "POST", "/changes/undo", `{"path":"a.ipynb","change_ids":[2],"since_change_id":2}`, 400, "not both"},
		{"zero id", "POST", "/changes/undo", `{"path":"a.ipynb","change_ids":[0]}`, 400, "change id 0 is not a change id"},
		{"negative since", "POST", "/changes/undo", `{"path":"a.ipynb","since_change_id":-1}`, 400, "since_change_id -1 is not a change id"},
		{"unknown id", "POST", "/changes/undo", `{"path":"a.ipynb","change_ids":[99]}`, 409, `notebook \"a.ipynb\" has no change 99 (its recorded changes are 1 to 2`},
		{"unknown since", "POST", "/changes/undo", `{"path":"a.ipynb","since_change_id":99}`, 409, "has no change 99"},
		{"already undone", "POST", "/changes/undo", `{"path":"a.ipynb","change_ids":[1]}`, 409, "change 1 of \\\"a.ipynb\\\" was already undone at"},
		{"undo outside the root", "POST", "/changes/undo", `{"path":"/etc/a.ipynb","change_ids":[2]}`, 400, "is absolute"},
		{"undo of a non-notebook", "POST", "/changes/undo", `{"path":"a.txt","change_ids":[2]}`, 400, "is not a notebook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, log := newHandler(t)
			before := undone(t, log)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body)))
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%s %s: %d %s\nwant %d with %s", tc.method, tc.target, w.Code, w.Body, tc.status, tc.want)
			}
			if w.Code != http.StatusOK {
				var e struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Fatalf("an error is not {\"error\": message}: %s", w.Body)
				}
			}
			if after := undone(t, log); after != before {
				t.Fatalf("the record changed: undone %q, was %q", after, before)
			}
		})
	}
}
