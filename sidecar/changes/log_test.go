package changes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rec(t *testing.T, l *Log, path, session string) *Change {
	t.Helper()
	c, err := l.Record(Change{Path: path, Tool: "edit_cell", Session: session, Cells: []Cell{{Op: Edit, CellID: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLogSurvivesRestartAndCompacts(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Dir: dir, Keep: 3}
	for range 4 {
		rec(t, l, "a.ipynb", "s1")
	}
	rec(t, l, "b.ipynb", "s2")
	if _, err := l.Undo("a.ipynb", Selection{IDs: []int{4}}, func([]*Change) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for range 3 { // 4 changes + 1 undo line + 3: past 2*Keep, compacted
		rec(t, l, "a.ipynb", "s1")
	}
	again := &Log{Dir: dir, Keep: 3} // a restarted sidecar
	got, more, err := again.List("a.ipynb", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if len(ids) != 3 || ids[0] != 7 || ids[2] != 5 || more {
		t.Fatalf("after restart: ids %v (more %v), want [7 6 5]", ids, more)
	}
	if b, _, _ := again.List("b.ipynb", Filter{}); len(b) != 1 || b[0].Session != "s2" {
		t.Fatalf("b.ipynb's record: %+v", b)
	}
	// Undone marks survive a restart too (before compaction dropped 4).
	l2 := &Log{Dir: t.TempDir()}
	rec(t, l2, "x.ipynb", "s")
	l2.Undo("x.ipynb", Selection{IDs: []int{1}}, func([]*Change) error { return nil })
	if got, _, _ := (&Log{Dir: l2.Dir}).List("x.ipynb", Filter{}); got[0].Undone.IsZero() {
		t.Fatal("undone mark lost on restart")
	}
}

func TestLogListFilters(t *testing.T) {
	l := &Log{Dir: t.TempDir()}
	for _, s := range []string{"s1", "s2", "s1", "s1"} {
		rec(t, l, "n.ipynb", s)
	}
	tests := []struct {
		name string
		f    Filter
		want string
		more bool
	}{
		{"all newest first", Filter{}, "4 3 2 1", false},
		{"session", Filter{Session: "s1"}, "4 3 1", false},
		{"since id", Filter{SinceID: 3}, "4 3", false},
		{"page", Filter{Limit: 2}, "4 3", true},
		{"next page", Filter{Limit: 2, Before: 3}, "2 1", false},
		{"since time", Filter{Since: time.Now().Add(time.Hour)}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more, err := l.List("n.ipynb", tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, strconv.Itoa(c.ID))
			}
			if s := strings.Join(ids, " "); s != tt.want || more != tt.more {
				t.Fatalf("got %q more=%v, want %q more=%v", s, more, tt.want, tt.more)
			}
		})
	}
}

func TestLogUndoBadInput(t *testing.T) {
	l := &Log{Dir: t.TempDir()}
	rec(t, l, "n.ipynb", "me")
	rec(t, l, "n.ipynb", "other")
	rec(t, l, "n.ipynb", "me")
	if _, err := l.Undo("n.ipynb", Selection{IDs: []int{3}}, func([]*Change) error { return nil }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sel  Selection
		err  string
	}{
		{"unknown id", Selection{IDs: []int{9}}, `notebook "n.ipynb" has no change 9 (its recorded changes are 1 to 3`},
		{"already undone", Selection{IDs: []int{1, 3}}, "change 3 of \"n.ipynb\" was already undone at"},
		{"named twice", Selection{IDs: []int{1, 1}}, "change 1 is named twice"},
		{"another session's since", Selection{SinceID: 2, Session: "me"}, "change 2 was made by session other, not by this session"},
		{"nothing left", Selection{SinceID: 3, Session: "me"}, "this session has no change"},
		{"both", Selection{IDs: []int{1}, SinceID: 1}, "not both"},
		{"neither", Selection{}, "name the changes to undo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			_, err := l.Undo("n.ipynb", tt.sel, func([]*Change) error { called = true; return nil })
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("error %v, want one saying %q and that nothing was changed", err, tt.err)
			}
			if called {
				t.Fatal("the undo was applied despite the error")
			}
		})
	}
	// since_change_id takes this session's standing changes only.
	got, err := l.Undo("n.ipynb", Selection{SinceID: 1, Session: "me"}, func(cs []*Change) error { return nil })
	if err != nil || len(got) != 1 || got[0].ID != 1 {
		t.Fatalf("since 1 for me: %v %v", got, err)
	}
}

// Without a session, since_change_id takes the session of that change: a
// person reverting an agent's changes from that one on.
func TestLogUndoSinceTheirs(t *testing.T) {
	l := &Log{Dir: t.TempDir()}
	rec(t, l, "n.ipynb", "a")
	rec(t, l, "n.ipynb", "b")
	rec(t, l, "n.ipynb", "a")
	rec(t, l, "n.ipynb", "b")
	got, err := l.Undo("n.ipynb", Selection{SinceID: 2}, func(cs []*Change) error { return nil })
	if err != nil || len(got) != 2 || got[0].ID != 2 || got[1].ID != 4 {
		t.Fatalf("since 2 of its own session: %v %v", got, err)
	}
}

// Records follow a renamed notebook, and every notebook of a renamed folder.
func TestLogRename(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Dir: dir}
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "d/x.ipynb", "s")
	rec(t, l, "d/y.ipynb", "s")
	rec(t, l, "dx.ipynb", "s") // not under d/
	rec(t, l, "b.ipynb", "old")
	l.Undo("a.ipynb", Selection{IDs: []int{1}}, func([]*Change) error { return nil })
	if err := l.Rename("a.ipynb", "b.ipynb"); err != nil {
		t.Fatal(err)
	}
	if err := l.Rename("d", "e/f"); err != nil {
		t.Fatal(err)
	}
	fresh := &Log{Dir: dir}
	for _, tt := range []struct {
		path string
		want int
	}{{"a.ipynb", 0}, {"b.ipynb", 2}, {"d/x.ipynb", 0}, {"e/f/x.ipynb", 1}, {"e/f/y.ipynb", 1}, {"dx.ipynb", 1}} {
		for _, lg := range []*Log{l, fresh} {
			got, _, err := lg.List(tt.path, Filter{})
			if err != nil || len(got) != tt.want {
				t.Fatalf("%s: %d changes (%v), want %d", tt.path, len(got), err, tt.want)
			}
			for _, c := range got {
				if c.Path != tt.path || c.Session != "s" {
					t.Fatalf("%s holds %+v", tt.path, c)
				}
			}
		}
	}
	if got, _, _ := fresh.List("b.ipynb", Filter{}); got[1].Undone.IsZero() {
		t.Fatal("the undone mark was lost in the move")
	}
}

// Large changes are dropped oldest first past MaxBytes, the newest always
// kept, in memory and after a restart alike.
func TestLogMaxBytes(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Dir: dir, MaxBytes: 3000}
	big := strings.Repeat("x", 1000)
	for range 5 {
		if _, err := l.Record(Change{Path: "n.ipynb", Session: "s", Cells: []Cell{{Op: Edit, CellID: "a", After: big}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, lg := range []*Log{l, {Dir: dir, MaxBytes: 3000}} {
		got, _, err := lg.List("n.ipynb", Filter{})
		if err != nil || len(got) != 2 || got[0].ID != 5 || got[1].ID != 4 {
			t.Fatalf("kept %d changes (%v), want 5 and 4", len(got), err)
		}
	}
	if fi, err := os.Stat(l.file("n.ipynb")); err != nil || fi.Size() > 2*3000+1100 {
		t.Fatalf("the record file is %v bytes (%v)", fi.Size(), err)
	}
	huge := &Log{Dir: t.TempDir(), MaxBytes: 10}
	if _, err := huge.Record(Change{Path: "n.ipynb", Cells: []Cell{{Op: Edit, After: big}}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := huge.List("n.ipynb", Filter{}); len(got) != 1 {
		t.Fatalf("a change larger than MaxBytes is not kept: %v", got)
	}
}

// fakeIDs is a Jupyter server's file ids: path → id now; down fails
// every lookup.
type fakeIDs struct {
	ids  map[string]string
	down bool
	asks int // ID calls
}

var errDown = errors.New("the server does not answer")

func (f *fakeIDs) ID(path string) (string, error) {
	f.asks++
	if f.down {
		return "", errDown
	}
	return f.ids[path], nil
}

func (f *fakeIDs) Path(id string) (string, error) {
	if f.down {
		return "", errDown
	}
	for p, i := range f.ids {
		if i == id {
			return p, nil
		}
	}
	return "", nil
}

// A record carries its notebook's file id, and a log started later finds
// the records of notebooks renamed meanwhile — while no sidecar ran —
// under their new paths; the record of a notebook now gone, or of one
// without an id, stays where it was.
func TestLogFollowsFileIDs(t *testing.T) {
	dir := t.TempDir()
	ids := &fakeIDs{ids: map[string]string{"a.ipynb": "f-a", "gone.ipynb": "f-gone"}}
	l := &Log{Dir: dir, IDs: ids}
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "gone.ipynb", "s")
	rec(t, l, "plain.ipynb", "s") // no id: the server has none for it
	if got, _, _ := l.List("a.ipynb", Filter{}); len(got) != 2 || got[0].FileID != "f-a" || got[1].FileID != "f-a" {
		t.Fatalf("a.ipynb's changes: %+v", got)
	}

	// Renamed through Jupyter while no sidecar ran; gone.ipynb deleted.
	ids.ids = map[string]string{"sub/b.ipynb": "f-a"}
	fresh := &Log{Dir: dir, IDs: ids}
	for _, tt := range []struct {
		path string
		want int
	}{{"sub/b.ipynb", 2}, {"a.ipynb", 0}, {"gone.ipynb", 1}, {"plain.ipynb", 1}} {
		got, _, err := fresh.List(tt.path, Filter{})
		if err != nil || len(got) != tt.want {
			t.Fatalf("%s: %d changes (%v), want %d", tt.path, len(got), err, tt.want)
		}
		for _, c := range got {
			if c.Path != tt.path {
				t.Fatalf("%s holds a change of %q", tt.path, c.Path)
			}
		}
	}
	if c := rec(t, fresh, "sub/b.ipynb", "s"); c.ID != 3 || c.FileID != "f-a" {
		t.Fatalf("the next change of the renamed notebook: %+v", c)
	}
	// A change whose file id the caller knows (the room it edited) is
	// recorded without asking the server.
	asks := ids.asks
	c, err := fresh.Record(Change{Path: "sub/b.ipynb", FileID: "f-a", Session: "s", Cells: []Cell{{Op: Edit, CellID: "a"}}})
	if err != nil || c.ID != 4 || ids.asks != asks {
		t.Fatalf("a change given its file id: %+v %v, %d asks", c, err, ids.asks-asks)
	}
}

// While the log runs, a record follows its notebook wherever the server's
// file id says it went, asked from the old path or the new one; a new
// notebook at the old path (another id) starts a record of its own; a
// record whose notebook is gone while another is at its path is set
// aside; nothing moves on the server's silence or failure.
func TestLogFollowsNotebooks(t *testing.T) {
	tests := []struct {
		name  string
		after map[string]string // the server's ids after a.ipynb's two changes
		down  bool
		ask   string         // the path asked first
		want  map[string]int // changes listed per path
	}{
		{"renamed, asked at the new path", map[string]string{"b.ipynb": "f-a"}, false, "b.ipynb", map[string]int{"b.ipynb": 2, "a.ipynb": 0}},
		{"renamed, asked at the old path", map[string]string{"b.ipynb": "f-a"}, false, "a.ipynb", map[string]int{"a.ipynb": 0, "b.ipynb": 2}},
		{"renamed, a new notebook at the old path", map[string]string{"b.ipynb": "f-a", "a.ipynb": "f-new"}, false, "a.ipynb", map[string]int{"a.ipynb": 0, "b.ipynb": 2}},
		{"gone, a new notebook at its path", map[string]string{"a.ipynb": "f-new"}, false, "a.ipynb", map[string]int{"a.ipynb": 0}},
		{"deleted, nothing at its path", map[string]string{}, false, "a.ipynb", map[string]int{"a.ipynb": 2}},
		{"the server does not answer", map[string]string{"b.ipynb": "f-a", "a.ipynb": "f-new"}, true, "a.ipynb", map[string]int{"a.ipynb": 2, "b.ipynb": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := &fakeIDs{ids: map[string]string{"a.ipynb": "f-a"}}
			l := &Log{Dir: t.TempDir(), IDs: ids}
			rec(t, l, "a.ipynb", "s")
			rec(t, l, "a.ipynb", "s")
			ids.ids, ids.down = tt.after, tt.down
			if _, _, err := l.List(tt.ask, Filter{}); err != nil {
				t.Fatal(err)
			}
			for path, want := range tt.want {
				got, _, err := l.List(path, Filter{})
				if err != nil || len(got) != want {
					t.Fatalf("%s: %d changes (%v), want %d", path, len(got), err, want)
				}
			}
			if tt.after["a.ipynb"] == "f-new" && !tt.down {
				if c := rec(t, l, "a.ipynb", "s"); c.ID != 1 || c.FileID != "f-new" {
					t.Fatalf("the new notebook's first change: %+v", c)
				}
				if _, err := l.Undo("a.ipynb", Selection{IDs: []int{2}}, func([]*Change) error { return nil }); err == nil || !strings.Contains(err.Error(), "has no change 2") {
					t.Fatalf("undoing the old notebook's change at the new one: %v", err)
				}
			}
		})
	}
}

// A notebook created where a record is kept starts with none: the record
// goes where its notebook went if the server knows, and is set aside
// otherwise — also when the server gives the new notebook the old one's
// id (its default file ids follow only renames made through Jupyter).
func TestLogCreated(t *testing.T) {
	ids := &fakeIDs{ids: map[string]string{"a.ipynb": "f-a", "c.ipynb": "f-c"}}
	l := &Log{Dir: t.TempDir(), IDs: ids}
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "c.ipynb", "s")
	ids.ids = map[string]string{"b.ipynb": "f-a", "a.ipynb": "f-new", "c.ipynb": "f-c"}
	for _, p := range []string{"a.ipynb", "c.ipynb"} {
		if err := l.Created(p); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]int{"a.ipynb": 0, "b.ipynb": 1, "c.ipynb": 0} {
		if got, _, _ := l.List(path, Filter{}); len(got) != want {
			t.Fatalf("%s: %d changes, want %d", path, len(got), want)
		}
	}
	if c := rec(t, l, "c.ipynb", "s"); c.ID != 1 {
		t.Fatalf("the new c.ipynb's first change is %d", c.ID)
	}
	if got, _, _ := (&Log{Dir: l.Dir, IDs: ids}).List("c.ipynb", Filter{}); len(got) != 1 {
		t.Fatalf("after a restart c.ipynb lists %d changes, want its own 1", len(got))
	}
}

// Records set aside are removed once they are older than RetiredKeep, at
// the next record set aside; younger ones and live records stay.
func TestLogPrunesRetiredRecords(t *testing.T) {
	ids := &fakeIDs{ids: map[string]string{"a.ipynb": "f-a"}}
	l := &Log{Dir: t.TempDir(), IDs: ids}
	rec(t, l, "a.ipynb", "s")
	rec(t, l, "b.ipynb", "s")
	now := time.Now()
	aged := map[string]time.Duration{"old": RetiredKeep + time.Hour, "young": RetiredKeep - time.Hour}
	for name, age := range aged {
		f := filepath.Join(l.Dir, fmt.Sprintf("%s.jsonl%s%d", name, retiredSuffix, now.Add(-age).UnixNano()))
		if err := os.WriteFile(f, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids.ids = map[string]string{"a.ipynb": "f-new"} // a new notebook where a.ipynb was
	if err := l.Created("a.ipynb"); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(l.Dir, "*"))
	var names []string
	for _, f := range left {
		name, at, retired := strings.Cut(filepath.Base(f), retiredSuffix)
		if retired && name != "young.jsonl" {
			name = "a's record, set aside"
			if _, err := strconv.ParseInt(at, 10, 64); err != nil {
				t.Fatalf("a record set aside as %s", filepath.Base(f))
			}
		}
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"a's record, set aside", filepath.Base(l.file("b.ipynb")), "young.jsonl"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("left in the log's folder: %q, want %q", names, want)
	}
}
