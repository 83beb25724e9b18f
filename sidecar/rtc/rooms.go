package rtc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// idleLeave is how long the sidecar stays in a room it no longer uses.
const idleLeave = 10 * time.Minute

// Rooms holds the rooms the sidecar has joined, one per notebook, and
// serves notebooks from them: it is the live counterpart of reading and
// writing files through the Contents API.
type Rooms struct {
	Jupyter *jupyter.Client
	Log     zerolog.Logger
	// Presence, if set, lists the agent among the online collaborators with
	// the notebook it works on.
	Presence *Presence
	// OnChange, if set, is told the path of a notebook whose live document
	// changed, whoever changed it (a person in JupyterLab, the sidecar's own
	// edits). It is called from the room's goroutines and must not block.
	OnChange func(path string)

	mu     sync.Mutex
	rooms  map[string]*entry
	closed chan struct{} // closed by Close: stops leaveIdle, refuses joins
}

// Rooms is the live documents.Backend, and a Holder: a resource
// subscription keeps the notebook's room, so that others' changes are told.
var (
	_ documents.Backend = (*Rooms)(nil)
	_ documents.Holder  = (*Rooms)(nil)
)

type entry struct {
	join    sync.Mutex // one join at a time per notebook
	room    *Room
	lastUse time.Time
	holds   int // Hold calls not yet released: the room is not left idle
}

// Room returns the joined room of the notebook at path, joining it if
// needed (again, if the previous connection is gone).
func (rs *Rooms) Room(ctx context.Context, path string) (*Room, error) {
	r, err := rs.join(ctx, path)
	// Listed among the agent's notebooks only once it is in the room, so a
	// path that fails to open never is.
	if err == nil && rs.Presence != nil {
		rs.Presence.Working(path)
	}
	return r, err
}

func (rs *Rooms) join(ctx context.Context, path string) (*Room, error) {
	rs.mu.Lock()
	if rs.closed == nil {
		rs.rooms = map[string]*entry{}
		rs.closed = make(chan struct{})
		go rs.leaveIdle(rs.closed)
	}
	select {
	case <-rs.closed:
		rs.mu.Unlock()
		return nil, errors.New("the sidecar is shutting down")
	default:
	}
	e, ok := rs.rooms[path]
	if !ok {
		e = &entry{}
		rs.rooms[path] = e
	}
	e.lastUse = time.Now()
	rs.mu.Unlock()

	e.join.Lock()
	defer e.join.Unlock()
	if e.room != nil && e.room.Err() == nil {
		return e.room, nil
	}
	if e.room != nil {
		e.room.Close()
	}
	// A missing or corrupt file would only time the join out: check first.
	if e, err := rs.Jupyter.Get(ctx, path, true); err != nil {
		return nil, jupyter.NotebookError(path, err)
	} else if e.Type != "notebook" {
		return nil, fmt.Errorf("%q is a %s, not a notebook", path, e.Type)
	}
	r, err := Join(ctx, rs.Jupyter, path, rs.Log)
	if err != nil {
		return nil, err
	}
	if fn := rs.OnChange; fn != nil {
		r.watch(func() { fn(path) })
	}
	e.room = r
	return r, nil
}

// Hold joins the room of the notebook at path and stays in it, however long
// it is unused, until release is called: someone wants to hear of changes
// made by others, which the sidecar sees only while in the room. It does not
// list the notebook among the agent's (the agent only watches it).
func (rs *Rooms) Hold(ctx context.Context, path string) (release func(), err error) {
	if _, err := rs.join(ctx, path); err != nil {
		return nil, err
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	e, ok := rs.rooms[path]
	if !ok { // closed meanwhile
		return nil, errors.New("the sidecar is shutting down")
	}
	e.holds++
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			e.holds--
			e.lastUse = time.Now() // left idleLeave after the last release
		})
	}, nil
}

// leaveIdle leaves the rooms not used for idleLeave, until closed.
func (rs *Rooms) leaveIdle(closed <-chan struct{}) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-closed:
			return
		case <-t.C:
		}
		var idle []*Room
		var left []string
		rs.mu.Lock()
		for path, e := range rs.rooms {
			if e.holds == 0 && time.Since(e.lastUse) > idleLeave && e.join.TryLock() {
				if e.room != nil {
					idle = append(idle, e.room)
				}
				delete(rs.rooms, path)
				e.join.Unlock()
				left = append(left, path)
			}
		}
		rs.mu.Unlock()
		for _, r := range idle { // Close writes to the socket: not under rs.mu
			r.Close()
		}
		for _, path := range left { // announced outside the lock: it writes to the network
			rs.mu.Lock()
			_, back := rs.rooms[path] // joined again meanwhile: still worked on
			rs.mu.Unlock()
			if rs.Presence != nil && !back {
				rs.Presence.Left(path)
			}
		}
	}
}

// Close leaves every room and stops leaving idle ones.
func (rs *Rooms) Close() {
	var rooms []*Room
	rs.mu.Lock()
	if rs.closed == nil {
		rs.closed = make(chan struct{})
	}
	select {
	case <-rs.closed:
	default:
		close(rs.closed)
	}
	for path, e := range rs.rooms {
		if e.room != nil {
			rooms = append(rooms, e.room)
		}
		delete(rs.rooms, path)
	}
	rs.mu.Unlock()
	for _, r := range rooms {
		r.Close()
	}
}

// Load reads the live notebook.
func (rs *Rooms) Load(ctx context.Context, path string) (*notebook.Notebook, error) {
	r, err := rs.Room(ctx, path)
	if err != nil {
		return nil, err
	}
	return r.Notebook()
}

// Update edits the live notebook and has the server save it, so the file
// on disk holds the edit when Update returns.
//
// The room answers a save request with success even when the server could
// not write the file (it only logs the error: a full disk, a file deleted
// behind it) or skipped it (a read-only file), so Update checks the file
// itself: before the edit, that it exists and is writable (otherwise
// nothing is changed); after the save, that it was written.
func (rs *Rooms) Update(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	r, err := rs.Room(ctx, path)
	if err != nil {
		return nil, err
	}
	before, err := rs.Jupyter.Stat(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("%w; nothing was changed", jupyter.NotebookError(path, err))
	}
	if !before.Writable {
		return nil, fmt.Errorf("notebook %q is read-only on disk, so the server cannot save it; nothing was changed (make the file writable, or work on a copy)", path)
	}
	edits := r.Edits()
	var idsBefore map[string]bool
	nb, err := rs.Progress(ctx, path, func(nb *notebook.Notebook) error {
		idsBefore = cellIDs(nb)
		return edit(nb)
	})
	if err != nil {
		return nil, err
	}
	if r.Edits() == edits {
		if err := r.Save(ctx); err != nil {
			return nil, fmt.Errorf("the edit is in the live notebook but saving it failed: %w", err)
		}
		return nb, nil // the edit changed nothing: nothing to write
	}
	// The server answers a save "success" even when a newer change
	// cancelled it before it wrote anything (its autosave cancels the save
	// in progress on every change), and "skipped" while another save runs.
	// So the file is checked, and the save asked for again: after a round
	// during which nobody changed the document, a file still unchanged
	// means the server cannot write it. A round during which someone else
	// changed the document proves nothing either way; the edit is live and
	// the server writes it once the room pauses, so it is reported done
	// rather than keep the agent waiting on a person's typing.
	for quiet := 0; ; {
		seen := r.Updates()
		if err := r.Save(ctx); err != nil {
			return nil, fmt.Errorf("the edit is in the live notebook but saving it failed: %w", err)
		}
		after, err := rs.Jupyter.Stat(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("the edit is in the live notebook but was not saved: %w", jupyter.NotebookError(path, err))
		}
		written := after.Hash != before.Hash || !after.LastModified.Equal(before.LastModified)
		if written || r.Updates() != seen { // written, or a busy room that writes it when it pauses
			// Unless the server reloaded the file meanwhile (it changed on
			// disk), which takes the edit back out of the live notebook.
			return nb, survived(r, idsBefore, nb, path)
		}
		if quiet++; quiet == quietSaveRounds {
			return nil, fmt.Errorf("the edit was not saved: the server could not write %q (is the disk full, or did the file change on disk meanwhile?), and the file on disk is unchanged; "+
				"read the notebook before trying again: the live notebook may still hold the edit", path)
		}
	}
}

// survived checks that the cells an edit added are still in the live
// notebook and the ones it deleted still gone: the server reloading a file
// that changed on disk takes the edit back out (a text change undone that
// way cannot be told from a person's typing, and is not checked).
func survived(r *Room, idsBefore map[string]bool, edited *notebook.Notebook, path string) error {
	live, err := r.Notebook()
	if err != nil {
		return err
	}
	now, after := cellIDs(live), cellIDs(edited)
	for id := range after {
		if !idsBefore[id] && !now[id] {
			return undoneError(path)
		}
	}
	for id := range idsBefore {
		if !after[id] && now[id] {
			return undoneError(path)
		}
	}
	return nil
}

func undoneError(path string) error {
	return fmt.Errorf("the edit did not last in %q: before it was saved, a cell it added was removed or one it deleted came back (the server reloads a notebook whose file changed on disk, and people edit it too); read the notebook before deciding whether to make it again", path)
}

func cellIDs(nb *notebook.Notebook) map[string]bool {
	ids := make(map[string]bool, len(nb.Cells))
	for _, c := range nb.Cells {
		ids[c.ID] = true
	}
	return ids
}

// quietSaveRounds is how many saves in a quiet room must leave the file
// unchanged before Update reports that it cannot be written.
const quietSaveRounds = 3

// Progress edits the live notebook without waiting for a save: people
// watching see the change at once (used for outputs as they arrive).
func (rs *Rooms) Progress(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	r, err := rs.Room(ctx, path)
	if err != nil {
		return nil, err
	}
	nb, err := r.Edit(func(nb *notebook.Notebook) error {
		nb.Normalize()
		return edit(nb)
	})
	if err != nil {
		return nil, err
	}
	return nb, nil
}

// Live reports that changes are seen by people as they happen.
func (rs *Rooms) Live() bool { return true }
