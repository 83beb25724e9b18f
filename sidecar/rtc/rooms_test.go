package rtc

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// saved waits until the notebook's background save goroutine has ended
// (nothing is left to save).
func saved(t *testing.T, rs *Rooms, path string) {
	t.Helper()
	e := rs.entryOf(path)
	if e == nil {
		t.Fatal("the notebook has no room")
	}
	e.mu.Lock()
	done := e.done
	e.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the background save did not end within 30 s")
	}
}

// openRooms is Rooms with the fake room's notebook n.ipynb open, left
// when the test ends.
func openRooms(t *testing.T) (*fakeRoom, *Rooms) {
	f, jc := newFakeRoom(t, sample)
	rs := &Rooms{Jupyter: jc, Log: zerolog.Nop()}
	t.Cleanup(rs.Close)
	if _, err := rs.Load(t.Context(), "n.ipynb"); err != nil {
		t.Fatal(err)
	}
	return f, rs
}

func insertCell(src string) func(nb *notebook.Notebook) error {
	return func(nb *notebook.Notebook) error {
		_, _, err := nb.Insert(notebook.Position{}, notebook.Code, src)
		return err
	}
}

// An edit returns once the room's server has it; the file is written in
// the background, and a write that fails is reported once, by Unsaved,
// naming the edit. A file that is read-only or gone when the edit comes is
// refused with nothing changed.
func TestRoomsUpdateSavesInBackground(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before: the file's state when the edit comes (no check made yet);
		// after: its state changed right after the edit returned.
		before, after func(f *fakeRoom)
		refused       string // the edit's error, if refused
		reported      string // what Unsaved reports, if anything
	}{
		{name: "written"},
		{name: "written after the server failed to answer for a while", after: func(f *fakeRoom) { f.file.unavailable = 5 }},
		{name: "disk full", after: func(f *fakeRoom) { f.file.full = true },
			reported: "the server could not write the file"},
		{name: "made read-only after the check", after: func(f *fakeRoom) { f.file.readOnly = true },
			reported: "read-only on disk"},
		{name: "renamed after the check", after: func(f *fakeRoom) { f.file.path = "m.ipynb" }},
		{name: "deleted after the check", after: func(f *fakeRoom) { f.file.gone = true },
			reported: "no longer exists: it was deleted or renamed after the edit"},
		{name: "read-only", before: func(f *fakeRoom) { f.file.readOnly = true },
			refused: "read-only on disk, so the server cannot save it; nothing was changed"},
		{name: "deleted", before: func(f *fakeRoom) { f.file.gone = true },
			refused: "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rs := openRooms(t)
			if tc.before != nil {
				f.mu.Lock()
				tc.before(f)
				f.mu.Unlock()
			}
			nb, err := rs.Update(t.Context(), "n.ipynb", insertCell("added = 1"))
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("Update = %v, want refused with %q", err, tc.refused)
				}
				if got := f.notebook(t); len(got.Cells) != 3 {
					t.Fatalf("the refused edit reached the room: %d cells", len(got.Cells))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Returned: the server has the edit.
			if got := f.notebook(t); len(got.Cells) != 4 || got.Cells[3].Source != "added = 1" {
				t.Fatalf("the server has %d cells when Update returned, want the new one", len(got.Cells))
			}
			if tc.after != nil {
				f.mu.Lock()
				tc.after(f)
				f.mu.Unlock()
			}
			saved(t, rs, "n.ipynb")
			err = rs.Unsaved("n.ipynb")
			if tc.reported == "" {
				if err != nil {
					t.Fatalf("Unsaved = %v after a save that worked", err)
				}
				f.mu.Lock()
				version := f.file.version
				f.mu.Unlock()
				if version == 0 {
					t.Fatal("the file was not written")
				}
				return
			}
			if err == nil {
				t.Fatal("the failed save was not reported")
			}
			for _, want := range []string{tc.reported, "inserted cell " + nb.Cells[3].ID, "this call did nothing"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Unsaved = %q, want it to say %q", err, want)
				}
			}
			if err := rs.Unsaved("n.ipynb"); err != nil {
				t.Fatalf("the failure was reported twice: %v", err)
			}
		})
	}
}

// An edit undone before its save is checked is reported not saved only if
// the server reloaded the notebook from its file: not when the agents
// themselves, or a person, deleted the cell it inserted. The reload is seen
// in the document (the server's reload drops the state's hash) or
// announced on the server's event bus (Reloaded).
func TestRoomsEditUndoneBeforeItsSave(t *testing.T) {
	deleteCell := func(f *fakeRoom, alsoHash bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.doc.Transact(func(*yjs.Transaction) {
			_ = f.doc.GetArray("cells").Delete(3, 1)
			if alsoHash {
				f.doc.GetMap("state").Delete("hash")
			}
		})
	}
	for _, tc := range []struct {
		name     string
		undo     func(t *testing.T, f *fakeRoom, rs *Rooms, id string)
		reported bool
	}{
		{name: "deleted by a later edit of the agents", undo: func(t *testing.T, _ *fakeRoom, rs *Rooms, id string) {
			if _, err := rs.Update(t.Context(), "n.ipynb", func(nb *notebook.Notebook) error {
				_, err := nb.Delete([]notebook.Ref{{ID: id}})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "deleted by a person", undo: func(_ *testing.T, f *fakeRoom, _ *Rooms, _ string) { deleteCell(f, false) }},
		{name: "taken out by a reload seen in the document", reported: true,
			undo: func(_ *testing.T, f *fakeRoom, _ *Rooms, _ string) { deleteCell(f, true) }},
		{name: "taken out by a reload announced on the event bus", reported: true,
			undo: func(_ *testing.T, f *fakeRoom, rs *Rooms, _ string) { deleteCell(f, false); rs.Reloaded("n.ipynb") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rs := openRooms(t)
			// A first edit saved: the room records the file's hash.
			if _, err := rs.Update(t.Context(), "n.ipynb", func(nb *notebook.Notebook) error { nb.Cells[0].Source = "# Saved"; return nil }); err != nil {
				t.Fatal(err)
			}
			saved(t, rs, "n.ipynb")
			// The next save is held while the cell it writes is undone.
			held := make(chan struct{})
			f.mu.Lock()
			f.held, f.asked = held, make(chan struct{}, 10)
			asked := f.asked
			f.mu.Unlock()
			nb, err := rs.Update(t.Context(), "n.ipynb", insertCell("added = 1"))
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-asked:
			case <-time.After(10 * time.Second):
				t.Fatal("the edit's save was never asked for")
			}
			tc.undo(t, f, rs, nb.Cells[3].ID)
			close(held)
			saved(t, rs, "n.ipynb")
			err = rs.Unsaved("n.ipynb")
			if !tc.reported {
				if err != nil {
					t.Fatalf("Unsaved = %v; the edit was saved, then undone by the notebook's users", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "did not last") || !strings.Contains(err.Error(), "inserted cell "+nb.Cells[3].ID) ||
				!strings.Contains(err.Error(), "reloaded the notebook from its file") {
				t.Fatalf("Unsaved = %v; want the edit reported undone by the reload", err)
			}
		})
	}
}

// Edits in a burst are written by one save, and Close writes what is not
// saved yet before it leaves the room.
func TestRoomsSaveBurstAndFlushOnClose(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	rs := &Rooms{Jupyter: jc, Log: zerolog.Nop()}
	const n = 20
	for i := range n {
		if _, err := rs.Update(t.Context(), "n.ipynb", insertCell("burst")); err != nil {
			t.Fatal(i, err)
		}
	}
	saved(t, rs, "n.ipynb")
	f.mu.Lock()
	saves := f.saves
	f.mu.Unlock()
	if saves == 0 || saves >= n {
		t.Fatalf("%d edits in a burst took %d saves, want fewer than one each", n, saves)
	}
	if _, err := rs.Update(t.Context(), "n.ipynb", insertCell("last")); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	f.mu.Lock()
	after := f.saves
	f.mu.Unlock()
	if after == saves {
		t.Fatal("Close left the last edit unsaved")
	}
}

// A save waits for the agent's edits to settle, or for the oldest to have
// waited saveMaxDelay; and after a save the server was slow to answer, for
// a pause of savePace times that answer's time (at most saveMaxPause).
func TestSaveWait(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name            string
		firstEdit, last time.Duration // ago: the oldest unsaved edit, the latest
		saveEnded       time.Duration // ago; 0: no save yet
		saveTook        time.Duration
		want            time.Duration
	}{
		{name: "one edit, just made", firstEdit: 0, last: 0, want: saveSettle},
		{name: "edits settled", firstEdit: 300 * time.Millisecond, last: 150 * time.Millisecond, want: -50 * time.Millisecond},
		{name: "edits keep coming: the oldest waits at most saveMaxDelay", firstEdit: 950 * time.Millisecond, last: 0, want: 50 * time.Millisecond},
		{name: "after a quick save", firstEdit: 0, last: 0, saveEnded: 10 * time.Millisecond, saveTook: 20 * time.Millisecond, want: saveSettle},
		{name: "after a slow save: paced", firstEdit: 950 * time.Millisecond, last: 0, saveEnded: 100 * time.Millisecond, saveTook: 500 * time.Millisecond,
			want: savePace*500*time.Millisecond - 100*time.Millisecond},
		{name: "pause over", firstEdit: 500 * time.Millisecond, last: 200 * time.Millisecond, saveEnded: 3 * time.Second, saveTook: 500 * time.Millisecond,
			want: -100 * time.Millisecond},
		{name: "after a save that timed out: at most saveMaxPause", firstEdit: 0, last: 0, saveEnded: time.Second, saveTook: saveTimeout,
			want: saveMaxPause - time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := saveState{unsaved: []unsavedEdit{{at: ago(tc.firstEdit)}}, lastEdit: ago(tc.last), lastSaveTook: tc.saveTook}
			if tc.saveEnded != 0 {
				s.lastSaveEnd = ago(tc.saveEnded)
			}
			if got := s.saveWait(now); got != tc.want {
				t.Errorf("saveWait = %v, want %v", got, tc.want)
			}
		})
	}
}

// Save returns once the file holds the edits made before it, asking again
// while the server answers "success" without writing; a file it cannot
// write is a precise error.
func TestRoomsSaveNow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeRoom) // the file, once the edit is live
		err   string            // Save's error, if any
		saves int               // save requests Save makes, at least
	}{
		{name: "written", saves: 1},
		{name: "saves that wrote nothing are asked again", setup: func(f *fakeRoom) { f.file.skip = 2 }, saves: 3},
		{name: "read-only", setup: func(f *fakeRoom) { f.file.readOnly = true }, err: `notebook "n.ipynb" is read-only on disk, so the server cannot save it`},
		{name: "deleted", setup: func(f *fakeRoom) { f.file.gone = true }, err: "the file no longer exists: it was deleted or renamed while the notebook was open"},
		{name: "disk full", setup: func(f *fakeRoom) { f.file.full = true }, err: "the server could not write the file (is the disk full?), and the file on disk is unchanged after 3 saves"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rs := openRooms(t)
			// The background save waits for the edits to settle: hold it
			// off, so that only Save writes.
			e := rs.entryOf("n.ipynb")
			e.mu.Lock()
			e.lastSaveEnd, e.lastSaveTook = time.Now(), saveMaxPause
			e.mu.Unlock()
			nb, err := rs.Update(t.Context(), "n.ipynb", insertCell("now = 1"))
			if err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			if tc.setup != nil {
				tc.setup(f)
			}
			f.mu.Unlock()
			entry, err := rs.Save(t.Context(), "n.ipynb")
			f.mu.Lock()
			saves, content, version := f.saves, string(f.file.content), f.file.version
			f.mu.Unlock()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Save = %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(content, nb.Cells[3].ID) || saves < tc.saves {
				t.Fatalf("Save returned after %d save requests with the file %s; want the new cell %s, after at least %d", saves, content, nb.Cells[3].ID, tc.saves)
			}
			if entry.LastModified.Second() != version%60 {
				t.Errorf("Save's last_modified %v is not the file's (version %d)", entry.LastModified, version)
			}
			e.mu.Lock()
			left := len(e.unsaved)
			e.mu.Unlock()
			if left != 0 {
				t.Errorf("%d edits still wait for the background save after Save", left)
			}
		})
	}
}

// A file holds the live notebook as of the first state recorded when each
// of its cells, and each cell it lacks, is at a version recorded since:
// edits interleaved otherwise than the sidecar saw them pass, a cell older
// than the first state does not.
func TestStateLogHolds(t *testing.T) {
	cell := func(id, src string) *notebook.Cell { return &notebook.Cell{ID: id, Type: notebook.Code, Source: src} }
	nbOf := func(cells ...*notebook.Cell) *notebook.Notebook { return &notebook.Notebook{Cells: cells} }
	// At the call: a (edited by the agent), b. Then a person types in b,
	// an agent inserts c, another deletes a.
	states := []*notebook.Notebook{
		nbOf(cell("a", "agent edit"), cell("b", "")),
		nbOf(cell("a", "agent edit"), cell("b", "p"), cell("c", "new")),
		nbOf(cell("b", "p_1"), cell("c", "new")),
	}
	for _, tc := range []struct {
		name string
		file *notebook.Notebook
		want bool
	}{
		{name: "the first state", file: states[0], want: true},
		{name: "the last state", file: states[2], want: true},
		{name: "interleaved: typing seen, insert not yet", file: nbOf(cell("a", "agent edit"), cell("b", "p_1")), want: true},
		{name: "a cell older than the call", file: nbOf(cell("a", "before the edit"), cell("b", "p")), want: false},
		{name: "a cell deleted before the call", file: nbOf(cell("a", "agent edit"), cell("b", ""), cell("z", "deleted before")), want: false},
		{name: "a cell there at the call missing", file: nbOf(cell("a", "agent edit")), want: false},
		{name: "a version never live", file: nbOf(cell("b", "p_1 typo"), cell("c", "new")), want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l stateLog
			for _, s := range states {
				l.record(s)
			}
			if got := l.holds(tc.file); got != tc.want {
				t.Errorf("holds = %v, want %v", got, tc.want)
			}
		})
	}
}

// A notebook renamed away is no longer served at its old path once the
// rooms are told (Moved), though the sidecar is still in its room: the
// path names no notebook now, or another one.
func TestRoomsMovedNotebook(t *testing.T) {
	f, rs := openRooms(t)
	f.mu.Lock()
	f.file.path = "m.ipynb"
	f.mu.Unlock()
	rs.Moved("n.ipynb")
	if _, err := rs.Load(t.Context(), "n.ipynb"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Load at the old path = %v, want that it does not exist", err)
	}
	if nb, err := rs.Load(t.Context(), "m.ipynb"); err != nil || len(nb.Cells) != 3 {
		t.Fatalf("Load at the new path = %v, %v", nb, err)
	}
}

// A background check of edits that Save has since found in the file
// reports nothing lost when the file is gone by the time the check looks
// (renamed or deleted after the save): the edits were written.
func TestRoomsSavedEditsAreNotReportedLost(t *testing.T) {
	f, rs := openRooms(t)
	held, asked := make(chan struct{}), make(chan struct{}, 1)
	f.mu.Lock()
	f.held, f.asked = held, asked
	f.mu.Unlock()
	if _, err := rs.Update(t.Context(), "n.ipynb", insertCell("kept = 1")); err != nil {
		t.Fatal(err)
	}
	select { // the background save has asked the room to save
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("no background save within 10 s")
	}
	f.mu.Lock()
	f.held, f.asked = nil, nil
	f.mu.Unlock()
	if _, err := rs.Save(t.Context(), "n.ipynb"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.file.gone = true
	f.mu.Unlock()
	close(held)
	saved(t, rs, "n.ipynb")
	if err := rs.Unsaved("n.ipynb"); err != nil {
		t.Fatalf("edits Save found in the file are reported lost: %v", err)
	}
}
