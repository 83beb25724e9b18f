package rtc

// Saving in the background. An edit returns once the room's server has
// applied it (every open view then has it); writing the file is the room's
// job, and costs a write of the whole notebook, so it is asked for once the
// agent's edits settle, and checked: the room answers a save request
// "success" even when it could not write the file. A save that fails is
// logged at once and reported to the agent on its next call touching the
// notebook (Rooms.Unsaved), naming the edits it concerns.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

const (
	// saveSettle is how long the agent's edits must pause before the room
	// is asked to save: a burst of edits is written once, not once per edit.
	saveSettle = 100 * time.Millisecond
	// saveMaxDelay bounds how long an edit waits for its save while edits
	// keep coming, unless the server is slow to save (savePace).
	saveMaxDelay = time.Second
	// savePace spaces a notebook's saves: the next one starts no sooner
	// than savePace times the server's answer to the last one took, after
	// it ended (at most saveMaxPause), so saves take at most a fifth of the
	// server's time. That answer includes the wait behind other rooms'
	// saves: ten agents streaming edits into ten notebooks space their
	// saves out, rather than keep the server writing whole notebooks while
	// their edits wait behind the writes, which made the edits slower and
	// the saves more frequent still.
	savePace     = 4
	saveMaxPause = 10 * time.Second
	// writableFor is how long a check that the file exists and is writable
	// is trusted before the next edit checks again. A file made read-only
	// (or deleted) within that time takes the edit live, and the failed
	// save is reported on the next call; any failure drops the check.
	writableFor = time.Second
	// saveTimeout bounds one background save and its checks.
	saveTimeout = time.Minute
	// transientFor is how long a background save asks again while the
	// server cannot answer (a hub restart takes seconds).
	transientFor = 30 * time.Second
	// flushTimeout bounds how long Close waits for pending saves (the
	// proxy extension holds the lab's stop for the sidecar up to 8 s).
	flushTimeout = 5 * time.Second
)

// quietSaveRounds is how many saves in a quiet room must leave the file
// unchanged before the save is reported failed.
const quietSaveRounds = 3

// reloadGrace is how long a check that finds an edit undone by someone
// else waits for the server's announcement of a reload (Reloaded), which
// comes over another connection than the room's changes.
const reloadGrace = 2 * time.Second

// unsavedEdit is an edit in the live notebook whose write to the file is
// not confirmed yet.
type unsavedEdit struct {
	at        time.Time
	seq       uint64 // the entry's count of local edits, this one included
	reloads   uint64 // reloads announced before it (reloadsOf)
	room      *Room
	what      string          // what it did, for the agent: "inserted cell abc"
	idsBefore map[string]bool // cell ids before and after it, to tell that
	idsAfter  map[string]bool // a reload of the file undid it
}

// saveState is an entry's part in background saving; the entry's mu
// guards it.
type saveState struct {
	checked time.Time // when the file was last seen to exist and be writable
	unsaved []unsavedEdit
	// seq counts the local edits; removed and added say which local edit
	// last removed or added a cell, by id, so that a check can tell an edit
	// the agents undid themselves (a cell inserted, then deleted) from one
	// the server undid. Kept while edits up to them may still be checked.
	seq            uint64
	removed, added map[string]uint64
	// saved is the last local edit Save found in the file: a background
	// check of it that fails afterwards (the file was renamed or deleted
	// since) reports nothing lost.
	saved    uint64
	lastEdit time.Time
	// lastSaveEnd and lastSaveTook: when the last save ended and how long
	// the server took to answer it (for savePace).
	lastSaveEnd  time.Time
	lastSaveTook time.Duration
	saving       bool          // a save goroutine runs
	flush        chan struct{} // closed to skip the settling delay (Close)
	done         chan struct{} // closed when the save goroutine ends
}

// recordLocal numbers a local edit just applied and records the cells it
// removed and added.
func (e *entry) recordLocal(before, after map[string]bool) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	if e.removed == nil {
		e.removed, e.added = map[string]uint64{}, map[string]uint64{}
	}
	for id := range before {
		if !after[id] {
			e.removed[id] = e.seq
		}
	}
	for id := range after {
		if !before[id] {
			e.added[id] = e.seq
		}
	}
	return e.seq
}

// forgetLocal drops the record of local edits older than every edit left
// to check: nothing asks about them any more. Call with e.mu held.
func (e *entry) forgetLocal() {
	oldest := e.seq + 1
	if len(e.unsaved) > 0 {
		oldest = e.unsaved[0].seq
	}
	for _, m := range []map[string]uint64{e.removed, e.added} {
		for id, seq := range m {
			if seq < oldest {
				delete(m, id)
			}
		}
	}
}

// checkWritable refuses an edit, changing nothing, when the file is gone or
// read-only, asking the server at most once per writableFor.
func (rs *Rooms) checkWritable(ctx context.Context, e *entry, path string) error {
	e.mu.Lock()
	fresh := !e.checked.IsZero() && time.Since(e.checked) < writableFor
	e.mu.Unlock()
	if fresh {
		return nil
	}
	st, err := rs.Jupyter.Stat(ctx, path)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", jupyter.NotebookError(path, err))
	}
	if !st.Writable {
		return readOnlyError(path)
	}
	e.mu.Lock()
	e.checked = time.Now()
	e.mu.Unlock()
	return nil
}

func readOnlyError(path string) error {
	return fmt.Errorf("notebook %q is read-only on disk, so the server cannot save it; nothing was changed (make the file writable, or work on a copy)", path)
}

// queueSave records an edit the room has applied and makes sure a save
// goroutine will write it.
func (rs *Rooms) queueSave(path string, e *entry, u unsavedEdit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unsaved = append(e.unsaved, u)
	e.lastEdit = u.at
	if e.saving {
		return
	}
	e.saving = true
	e.flush = make(chan struct{})
	e.done = make(chan struct{})
	go rs.saveLoop(path, e, e.flush, e.done)
}

// saveLoop saves the entry's unsaved edits once they settle, until none
// are left.
func (rs *Rooms) saveLoop(path string, e *entry, flush, done chan struct{}) {
	defer close(done)
	flushing := false // once flush is closed, save without waiting
	for {
		e.mu.Lock()
		if len(e.unsaved) == 0 {
			e.saving = false
			e.mu.Unlock()
			return
		}
		wait := e.saveWait(time.Now())
		e.mu.Unlock()
		if wait > 0 && !flushing {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-flush:
				t.Stop()
				flushing = true
			}
			continue
		}
		e.mu.Lock()
		batch := e.unsaved
		e.unsaved = nil
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
		took, err := rs.saveBatch(ctx, path, e, batch)
		cancel()
		e.mu.Lock()
		e.forgetLocal()
		e.lastSaveEnd, e.lastSaveTook = time.Now(), took
		if err != nil && batch[len(batch)-1].seq <= e.saved {
			err = nil
		}
		if err == nil {
			e.checked = time.Now() // the file was just written, so it is writable
		} else {
			e.checked = time.Time{}
		}
		e.mu.Unlock()
		if err != nil {
			rs.Log.Error().Err(err).Str("notebook", path).Msg("an edit was not saved; the agent is told on its next call")
			rs.failMu.Lock()
			if rs.failed == nil {
				rs.failed = map[string][]error{}
			}
			rs.failed[path] = append(rs.failed[path], err)
			rs.failMu.Unlock()
		}
	}
}

// saveWait is how long the save of the unsaved edits waits: until the
// agent's edits settle, or the oldest has waited saveMaxDelay; and in any
// case until the pause after the last save is over (savePace). Call with
// the entry's mu held and edits unsaved.
func (s *saveState) saveWait(now time.Time) time.Duration {
	wait := min(saveSettle-now.Sub(s.lastEdit), saveMaxDelay-now.Sub(s.unsaved[0].at))
	pause := min(savePace*s.lastSaveTook, saveMaxPause)
	return max(wait, s.lastSaveEnd.Add(pause).Sub(now))
}

// saveBatch has the room save the edits of batch and checks that the file
// was written and still holds them. took is how long the server took to
// answer the save requests.
//
// The server answers a save "success" even when it wrote nothing: a newer
// change cancelled it (its autosave cancels the save in progress on every
// change), the file is read-only (skipped), or writing failed (a full
// disk, a file deleted behind it: only logged); and "skipped" while another
// save runs. So each round looks at the file before and after the save:
// after a round during which nobody changed the document, a file still
// unchanged means the server cannot write it. A round during which someone
// else changed the document proves nothing either way; the edit is in the
// room and the server's autosave writes it once the room pauses, so the
// save is taken as done rather than retried against a person's typing.
func (rs *Rooms) saveBatch(ctx context.Context, path string, e *entry, batch []unsavedEdit) (took time.Duration, err error) {
	r := batch[len(batch)-1].room
	for quiet := 0; ; {
		before, err := rs.stat(ctx, path)
		if err != nil {
			if to := rs.renamedTo(ctx, r, path, err); to != "" {
				path = to
				continue
			}
			return took, unsavedError(path, batch, statFailure(path, err))
		}
		if !before.Writable {
			return took, unsavedError(path, batch, "the file is read-only on disk, so the server cannot save it (make it writable: the next save then writes the edit)")
		}
		seen := r.Updates()
		start := time.Now()
		err = r.Save(ctx)
		took += time.Since(start)
		if err != nil {
			if errors.Is(err, ErrRoomGone) {
				return took, unsavedError(path, batch, err.Error())
			}
			return took, unsavedError(path, batch, "asking the server to save failed: "+err.Error())
		}
		after, err := rs.stat(ctx, path)
		if err != nil {
			if to := rs.renamedTo(ctx, r, path, err); to != "" {
				path = to
				continue
			}
			return took, unsavedError(path, batch, statFailure(path, err))
		}
		written := after.Hash != before.Hash || !after.LastModified.Equal(before.LastModified)
		if written || r.Updates() != seen {
			// Unless the server reloaded the file meanwhile (it changed on
			// disk), which takes edits back out of the live notebook. The
			// reload's updates reach the room before a barrier's answer.
			if err := r.Barrier(ctx); err != nil {
				return took, unsavedError(path, batch, err.Error())
			}
			return took, rs.survived(ctx, e, batch, path)
		}
		if quiet++; quiet == quietSaveRounds {
			return took, unsavedError(path, batch, "the server could not write the file (is the disk full, or did the file change on disk meanwhile?), and the file on disk is unchanged")
		}
	}
}

// stat reads the file's metadata, asking again while the server cannot
// answer — a dropped connection, or a 5xx: a single-user server answers 500
// while JupyterHub, which checks its tokens, restarts — for up to
// transientFor. An answer about the file (404, 403) is final.
func (rs *Rooms) stat(ctx context.Context, path string) (*jupyter.Entry, error) {
	give := time.Now().Add(transientFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		e, err := rs.Jupyter.Stat(ctx, path)
		var answer *jupyter.APIError
		if err == nil || (errors.As(err, &answer) && answer.Status < 500) || time.Now().After(give) {
			return e, err
		}
		retry := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			retry.Stop()
			return e, err
		case <-retry.C:
		}
	}
}

// renamedTo is where the notebook of room r is now, if the file at path is
// gone (err is the server's answer) because the notebook was renamed: its
// room follows it (the server's file id names the room), and so does the
// check of its save. "" if it was not renamed, or the server cannot tell.
func (rs *Rooms) renamedTo(ctx context.Context, r *Room, path string, err error) string {
	if !jupyter.IsNotFound(err) {
		return ""
	}
	to, err := rs.Jupyter.FilePath(ctx, r.FileID())
	if err != nil || to == path {
		return ""
	}
	return to
}

// statFailure says why the file could not be looked at. It existed when
// the edit came (the edit checked), so a 404 means it was deleted or
// renamed since, maybe right after the room wrote the edit to it.
func statFailure(path string, err error) string {
	if jupyter.IsNotFound(err) {
		return fmt.Sprintf("notebook %q no longer exists: it was deleted or renamed after the edit", path)
	}
	return jupyter.NotebookError(path, err).Error()
}

// unsavedError tells the agent which edits did not reach the file, why, and
// what to do.
func unsavedError(path string, batch []unsavedEdit, why string) error {
	return fmt.Errorf("%s was not saved to %q: %s. The live notebook (what read_notebook shows and people see) still holds it, and the next save that succeeds writes it; read the notebook before deciding what to do",
		describeBatch(batch), path, why)
}

// survived checks that the cells the edits added are still in the live
// notebook and the ones they deleted still gone, unless a later local edit
// did that (an agent deleting a cell it inserted a moment ago). The server
// reloading a file that changed on disk takes edits back out: that is a
// failure to save them, reported. A cell removed or brought back by a
// person is not: the edit reached the room, and the notebook as people
// left it is what gets saved. So an edit undone by someone else is
// reported only if the server reloaded the notebook since the edit (a
// text change undone that way cannot be told from a person's typing, and
// is not checked).
func (rs *Rooms) survived(ctx context.Context, e *entry, batch []unsavedEdit, path string) error {
	r := batch[len(batch)-1].room
	live, err := r.Notebook()
	if err != nil {
		return err
	}
	now := cellIDs(live)
	e.mu.Lock()
	var undone []unsavedEdit
	for _, u := range batch {
		if !lasted(u, now, e.removed, e.added) {
			undone = append(undone, u)
		}
	}
	e.mu.Unlock()
	if len(undone) == 0 || !rs.reloadedSince(ctx, path, undone) {
		return nil
	}
	return fmt.Errorf("%s did not last in %q: before it was saved, the server reloaded the notebook from its file, which changed on disk, and a cell it added is gone or one it deleted came back; read the notebook before deciding whether to make it again",
		describeBatch(undone), path)
}

// lasted tells whether the cells u added are still there and the ones it
// deleted still gone, or were deleted or added again by a later local edit
// (removed and added: the local edit that last did, by cell id).
func lasted(u unsavedEdit, now map[string]bool, removed, added map[string]uint64) bool {
	for id := range u.idsAfter {
		if !u.idsBefore[id] && !now[id] && removed[id] <= u.seq {
			return false
		}
	}
	for id := range u.idsBefore {
		if !u.idsAfter[id] && now[id] && added[id] <= u.seq {
			return false
		}
	}
	return true
}

// reloadedSince tells whether the server reloaded the notebook from its
// file after any of the edits, waiting up to reloadGrace for the
// announcement when nothing says so yet.
func (rs *Rooms) reloadedSince(ctx context.Context, path string, edits []unsavedEdit) bool {
	grace := time.NewTimer(reloadGrace)
	defer grace.Stop()
	for {
		rs.reloadMu.Lock()
		if rs.reloaded == nil {
			rs.reloaded = make(chan struct{})
		}
		signal := rs.reloaded
		rs.reloadMu.Unlock()
		for _, u := range edits {
			if rs.reloadsOf(u.room, path) > u.reloads {
				return true
			}
		}
		select {
		case <-signal:
		case <-grace.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Reloaded records that the server reloaded the notebook at path from its
// file, which changed on disk (jupyter-collaboration announces it on the
// server's event bus: jupyter.CollaborationEvent "overwrite").
func (rs *Rooms) Reloaded(path string) {
	rs.reloadMu.Lock()
	defer rs.reloadMu.Unlock()
	if rs.reloads == nil {
		rs.reloads = map[string]uint64{}
	}
	rs.reloads[path]++
	if rs.reloaded != nil {
		close(rs.reloaded)
	}
	rs.reloaded = make(chan struct{})
}

// reloadsOf counts the reloads of the notebook at path seen so far: those
// the server announced and those seen in room r's document.
func (rs *Rooms) reloadsOf(r *Room, path string) uint64 {
	rs.reloadMu.Lock()
	n := rs.reloads[path]
	rs.reloadMu.Unlock()
	return n + r.Reloads()
}

func describeBatch(batch []unsavedEdit) string {
	var parts []string
	for _, u := range batch {
		parts = append(parts, fmt.Sprintf("the edit of %s UTC (%s)", u.at.UTC().Format("15:04:05.000"), u.what))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts, ", ")
}

// describeEdit says what an edit did, by cell id: inserted, deleted,
// changed (source, outputs, type or metadata) and moved cells.
func describeEdit(before map[string]*notebook.Cell, beforeOrder []string, after *notebook.Notebook) string {
	var inserted, changed, deleted []string
	seen := map[string]bool{}
	for _, c := range after.Cells {
		seen[c.ID] = true
		old, ok := before[c.ID]
		switch {
		case !ok:
			inserted = append(inserted, c.ID)
		case old.Source != c.Source || old.Type != c.Type || len(old.Outputs) != len(c.Outputs) ||
			string(old.Metadata) != string(c.Metadata) || !sameCount(old.ExecutionCount, c.ExecutionCount):
			changed = append(changed, c.ID)
		}
	}
	for _, id := range beforeOrder {
		if !seen[id] {
			deleted = append(deleted, id)
		}
	}
	var parts []string
	for _, p := range []struct {
		verb string
		ids  []string
	}{{"inserted", inserted}, {"changed", changed}, {"deleted", deleted}} {
		if len(p.ids) == 0 {
			continue
		}
		sort.Strings(p.ids)
		noun := "cell"
		if len(p.ids) > 1 {
			noun = "cells"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", p.verb, noun, strings.Join(p.ids, ", ")))
	}
	if len(parts) == 0 {
		return "moved cells or changed the notebook's metadata"
	}
	return strings.Join(parts, "; ")
}

func sameCount(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// Unsaved reports, once, the saves of the notebook at path that failed
// since the last call: the tools call it when an agent's call touches the
// notebook, so that no failed write goes unnoticed.
func (rs *Rooms) Unsaved(path string) error {
	rs.failMu.Lock()
	errs := rs.failed[path]
	delete(rs.failed, path)
	rs.failMu.Unlock()
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("an earlier edit of %q was not saved, so this call did nothing (call it again to go on): %w", path, errors.Join(errs...))
}

// flushSaves asks every pending save to go now and waits for them, at most
// flushTimeout: the sidecar is stopping, and no edit may be left unwritten.
func (rs *Rooms) flushSaves(entries []*entry) {
	var waits []chan struct{}
	for _, e := range entries {
		e.mu.Lock()
		if e.saving {
			select {
			case <-e.flush:
			default:
				close(e.flush)
			}
			waits = append(waits, e.done)
		}
		e.mu.Unlock()
	}
	deadline := time.NewTimer(flushTimeout)
	defer deadline.Stop()
	for _, done := range waits {
		select {
		case <-done:
		case <-deadline.C:
			rs.Log.Error().Msg("pending saves did not finish before the sidecar stopped")
			return
		}
	}
}

// saveNowLimit bounds Save: a save rarely takes more than a few rounds;
// the limit matters only while the notebook keeps changing so fast that no
// file written can be matched with the versions of its cells (see Save).
const saveNowLimit = 30 * time.Second

// Save writes the live notebook at path to its file now and returns once
// the file holds every edit made before the call (the sidecar's, and those
// of people the room had when it was called), with the file's metadata
// (Content nil). The pending background save of those edits is then done.
//
// The server answers a save request "success" whether or not it wrote (see
// saveBatch), and a write in progress when it was asked may hold an older
// state; so the proof is the file itself: each round asks the room to
// save, then reads the file back and checks that each of its cells, and
// each it lacks, is at a version the live notebook's cell had since the
// call (type, source, execution count and outputs; stateLog). A person
// typing makes new versions while the file is written and read, and
// cancels saves; the round then goes again, at most until saveNowLimit.
// The sidecar's own edits of the notebook wait while a round's save is
// under way (a few hundred milliseconds at most on a busy server).
func (rs *Rooms) Save(ctx context.Context, path string) (*jupyter.Entry, error) {
	r, e, err := rs.roomEntry(ctx, path)
	if err != nil {
		return nil, err
	}
	bounded, cancel := context.WithTimeout(ctx, saveNowLimit)
	defer cancel()
	// What the sidecar sent before is in the room: the edits of calls
	// that returned, and of calls under way.
	if err := r.Barrier(bounded); err != nil {
		return nil, saveNowError(ctx, bounded, path, fmt.Errorf("the room's server did not answer: %w", err))
	}
	e.mu.Lock()
	seq := e.seq
	e.mu.Unlock()
	states, stop := r.liveStates()
	defer stop()
	for quiet := 0; ; {
		before, err := rs.stat(bounded, path)
		if err != nil {
			return nil, saveNowError(ctx, bounded, path, saveStatFailure(path, err))
		}
		if !before.Writable {
			return nil, fmt.Errorf("notebook %q is read-only on disk, so the server cannot save it; the live notebook (what read_notebook shows and people see) holds the edits: make the file writable and save again, or work on a copy", path)
		}
		seen := r.Updates()
		// The server cancels a save on every change to the room, until it
		// starts writing: the sidecar's own edits wait while the save is
		// under way, so that only people's changes can cancel it.
		e.gate.Lock()
		err = r.Save(bounded)
		e.gate.Unlock()
		if err != nil {
			if errors.Is(err, ErrRoomGone) {
				return nil, fmt.Errorf("notebook %q cannot be saved: %w", path, err)
			}
			return nil, saveNowError(ctx, bounded, path, fmt.Errorf("asking the server to save failed: %w", err))
		}
		file, err := rs.Jupyter.Get(bounded, path, true)
		if err != nil && !isUnreadable(err) { // unreadable: caught half written, go again
			return nil, saveNowError(ctx, bounded, path, saveStatFailure(path, err))
		}
		if err == nil {
			if nb, perr := notebook.Parse(file.Content); perr == nil && states.holds(nb) {
				e.mu.Lock()
				e.unsaved = slices.DeleteFunc(e.unsaved, func(u unsavedEdit) bool { return u.seq <= seq })
				e.saved = max(e.saved, seq)
				e.checked = time.Now()
				e.mu.Unlock()
				file.Content = nil
				return file, nil
			}
			if file.LastModified.Equal(before.LastModified) && r.Updates() == seen {
				if quiet++; quiet == quietSaveRounds {
					return nil, fmt.Errorf("notebook %q was not saved: the server could not write the file (is the disk full?), and the file on disk is unchanged after %d saves; the live notebook (what read_notebook shows and people see) still holds the edits", path, quiet)
				}
				continue
			}
		}
		quiet = 0
	}
}

// saveNowError is why Save gave up; bounded is ctx limited to
// saveNowLimit.
func saveNowError(ctx, bounded context.Context, path string, err error) error {
	if ctx.Err() == nil && errors.Is(bounded.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("notebook %q: the file did not hold the live notebook within %s: it kept changing faster than the server wrote it (the room writes it once changes pause for a second); the live notebook holds every edit", path, saveNowLimit)
	}
	return fmt.Errorf("notebook %q was not saved: %w", path, err)
}

// saveStatFailure says why Save could not look at the file.
func saveStatFailure(path string, err error) error {
	if jupyter.IsNotFound(err) {
		return fmt.Errorf("the file no longer exists: it was deleted or renamed while the notebook was open (the live notebook, what read_notebook shows and people see, still holds the edits)")
	}
	return jupyter.NotebookError(path, err)
}

func isUnreadable(err error) bool {
	var ae *jupyter.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusBadRequest
}

// cellSum sums what a save must carry of a cell from the live notebook to
// the file: its type, source, execution count and outputs.
func cellSum(c *notebook.Cell) [sha256.Size]byte {
	h := sha256.New()
	count := -1
	if c.ExecutionCount != nil {
		count = *c.ExecutionCount
	}
	fmt.Fprintf(h, "%q %q %d %d\n", c.Type, c.Source, count, len(c.Outputs))
	for _, o := range c.Outputs {
		fmt.Fprintf(h, "%q\n", notebook.OutputText(o))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// absent stands for a cell not in the notebook, among a cell's versions.
var absent [sha256.Size]byte

// stateLog holds, cell by cell, the versions the live notebook had since
// it started: a file whose every cell (and every cell it lacks) is at one
// of those versions was written from a state at least as new as the first,
// cell by cell. Cell by cell, because the states the server writes
// interleave the sidecar's edits under way with others' differently than
// the sidecar saw them: while three agents edit and a person types, the
// file hardly ever equals a whole state the sidecar saw.
type stateLog struct {
	mu       sync.Mutex
	versions map[string]map[[sha256.Size]byte]bool // by cell id
	present  map[string]bool                       // in the last state recorded
	known    map[*notebook.Cell]bool               // cells recorded (a read shares unchanged cells)
}

func (l *stateLog) record(nb *notebook.Notebook) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.versions == nil
	if first {
		l.versions, l.known = map[string]map[[sha256.Size]byte]bool{}, map[*notebook.Cell]bool{}
	}
	present := make(map[string]bool, len(nb.Cells))
	for _, c := range nb.Cells {
		present[c.ID] = true
		if l.known[c] {
			continue
		}
		l.known[c] = true
		vs := l.versions[c.ID]
		if vs == nil {
			vs = map[[sha256.Size]byte]bool{}
			if !first { // inserted since: absent at first
				vs[absent] = true
			}
			l.versions[c.ID] = vs
		}
		vs[cellSum(c)] = true
	}
	for id := range l.present {
		if !present[id] {
			l.versions[id][absent] = true
		}
	}
	l.present = present
}

// holds tells whether every cell of file, and every cell file lacks, is at
// a version recorded.
func (l *stateLog) holds(file *notebook.Notebook) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := make(map[string]bool, len(file.Cells))
	for _, c := range file.Cells {
		in[c.ID] = true
		if !l.versions[c.ID][cellSum(c)] {
			return false
		}
	}
	for id, vs := range l.versions {
		if !in[id] && !vs[absent] {
			return false
		}
	}
	return true
}

// liveStates records the versions of the live notebook's cells from now
// on, after each change, until stop. Changes that come together may be
// read as one.
func (r *Room) liveStates() (*stateLog, func()) {
	l := &stateLog{}
	record := func() <-chan struct{} {
		r.mu.Lock()
		changed := r.changed
		nb, err := r.notebook() // shared, never changed: read outside the lock
		r.mu.Unlock()
		if err == nil {
			l.record(nb)
		}
		return changed
	}
	changed := record()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-changed:
				changed = record()
			}
		}
	}()
	return l, func() { close(done) }
}
