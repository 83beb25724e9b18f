package rtc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// idleLeave is how long the sidecar stays in a room it no longer uses.
const idleLeave = 10 * time.Minute

// namesFor is how long a room, once seen to be the one its path names
// (by the server's file id), is trusted to be before the next use checks
// again: a notebook renamed, deleted or replaced on disk, which the server
// announces to no one, is found out within that time. Renames and deletions
// through the server, and notebooks the sidecar creates, are checked at
// once (Moved).
const namesFor = time.Second

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

	// failed holds the background saves that failed, by notebook, until
	// the agent is told (Unsaved); kept apart from the rooms, which may be
	// left meanwhile.
	failMu sync.Mutex
	failed map[string][]error

	// reloads counts, by notebook, the reloads of a file changed on disk
	// the server announced (Reloaded); reloaded is closed and replaced on
	// each.
	reloadMu sync.Mutex
	reloads  map[string]uint64
	reloaded chan struct{}
}

// Rooms is the live documents.Backend, a Holder (a resource subscription
// keeps the notebook's room, so that others' changes are told), a Reporter
// (files are written in the background), a Saver (written on demand) and a
// Mover (rooms are kept by path, and a path may come to name another
// notebook).
var (
	_ documents.Backend  = (*Rooms)(nil)
	_ documents.Holder   = (*Rooms)(nil)
	_ documents.Reporter = (*Rooms)(nil)
	_ documents.Saver    = (*Rooms)(nil)
	_ documents.Mover    = (*Rooms)(nil)
)

type entry struct {
	join    sync.Mutex // one join at a time per notebook
	room    *Room
	lastUse time.Time
	holds   int // Hold calls not yet released: the room is not left idle
	// named is when the room was last seen to be the one the path names;
	// guarded by rs.mu.
	named time.Time

	mu sync.Mutex // guards saveState
	saveState
	// gate holds the sidecar's edits of the notebook (read-locked while
	// applied) while Save has the room save it (locked).
	gate sync.RWMutex
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
	if e.room != nil && e.room.Err() == nil && rs.stillNamed(ctx, path, e) {
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
	rs.mu.Lock()
	e.named = time.Now()
	rs.mu.Unlock()
	return r, nil
}

// stillNamed reports whether the room of entry e is still that of the
// notebook at path, asking the server's file ids at most once per namesFor.
// A path that names another file now (the notebook was renamed away and
// another put there) must not reach the renamed notebook's room. If the
// server cannot tell, the room is kept.
func (rs *Rooms) stillNamed(ctx context.Context, path string, e *entry) bool {
	rs.mu.Lock()
	fresh := time.Since(e.named) < namesFor
	rs.mu.Unlock()
	if fresh {
		return true
	}
	id, err := rs.Jupyter.FileID(ctx, path)
	if err != nil {
		return true
	}
	if id != e.room.FileID() {
		rs.Log.Info().Str("notebook", path).Msg("the path names another notebook now: leaving the room of the one that was there")
		return false
	}
	rs.mu.Lock()
	e.named = time.Now()
	rs.mu.Unlock()
	return true
}

// FileID is the file id of the room open for path, "" if none is.
func (rs *Rooms) FileID(path string) string {
	rs.mu.Lock()
	e := rs.rooms[path]
	rs.mu.Unlock()
	if e == nil {
		return ""
	}
	if !e.join.TryLock() { // being joined: the caller asks the server
		return ""
	}
	defer e.join.Unlock()
	if e.room == nil {
		return ""
	}
	return e.room.FileID()
}

// Moved is told that the notebook at path, or those under the folder path,
// may be another now (renamed, deleted, or created there): the next use of
// their rooms checks which notebook the path names.
func (rs *Rooms) Moved(path string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for p, e := range rs.rooms {
		if p == path || strings.HasPrefix(p, path+"/") {
			e.named = time.Time{}
		}
	}
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
			e.mu.Lock()
			saving := e.saving
			e.mu.Unlock()
			if e.holds == 0 && !saving && time.Since(e.lastUse) > idleLeave && e.join.TryLock() {
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

// Close writes the edits not saved yet (waiting at most flushTimeout),
// then leaves every room and stops leaving idle ones.
func (rs *Rooms) Close() {
	var rooms []*Room
	var entries []*entry
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
		entries = append(entries, e)
		delete(rs.rooms, path)
	}
	rs.mu.Unlock()
	rs.flushSaves(entries)
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

// Update edits the live notebook and returns once the room's server has
// applied the edit, so every open view has it. The file is written in the
// background once the agent's edits settle (saver.go): within about a
// second, or the failure is reported on the next call (Unsaved).
//
// Before the edit, the file must exist and be writable, or nothing is
// changed: the room would take the edit but could never write it. That is
// checked with the server at most once per writableFor.
func (rs *Rooms) Update(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	r, e, err := rs.roomEntry(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := rs.checkWritable(ctx, e, path); err != nil {
		return nil, err
	}
	edits := r.Edits()
	reloads := rs.reloadsOf(r, path)
	var before map[string]*notebook.Cell
	var order []string
	nb, err := rs.Progress(ctx, path, func(nb *notebook.Notebook) error {
		before = make(map[string]*notebook.Cell, len(nb.Cells))
		order = make([]string, len(nb.Cells))
		for i, c := range nb.Cells {
			cp := *c
			before[c.ID], order[i] = &cp, c.ID
		}
		return edit(nb)
	})
	if err != nil {
		return nil, err
	}
	if r.Edits() == edits {
		return nb, nil // the edit changed nothing: nothing to write
	}
	idsBefore := make(map[string]bool, len(order))
	for _, id := range order {
		idsBefore[id] = true
	}
	idsAfter := cellIDs(nb)
	seq := e.recordLocal(idsBefore, idsAfter)
	// The server handles a peer's messages in order, so the answer to a
	// barrier sent after the edit means it has applied it, and queued it
	// for every other peer before the answer (pycrdt-websocket's YRoom.serve
	// applies a sync update before it reads the next message; the document
	// observer puts the update on the broadcast stream as it is applied).
	// Barrier waits out a reconnection, whose sync hands the server the edit.
	if err := r.Barrier(ctx); err != nil {
		e.mu.Lock()
		e.checked = time.Time{}
		e.mu.Unlock()
		return nil, fmt.Errorf("the edit is in the sidecar's copy of %q but the room's server did not confirm it: %w; read the notebook before trying again", path, err)
	}
	rs.queueSave(path, e, unsavedEdit{at: time.Now(), seq: seq, reloads: reloads, room: r, what: describeEdit(before, order, nb),
		idsBefore: idsBefore, idsAfter: idsAfter})
	return nb, nil
}

// roomEntry is the room of the notebook at path, joined if needed, and its
// entry (for saving).
func (rs *Rooms) roomEntry(ctx context.Context, path string) (*Room, *entry, error) {
	r, err := rs.Room(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	e := rs.entryOf(path)
	if e == nil {
		return nil, nil, errors.New("the sidecar is shutting down")
	}
	return r, e, nil
}

// entryOf is the entry of a joined notebook, nil once the rooms are closed.
func (rs *Rooms) entryOf(path string) *entry {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.rooms[path]
}

func cellIDs(nb *notebook.Notebook) map[string]bool {
	ids := make(map[string]bool, len(nb.Cells))
	for _, c := range nb.Cells {
		ids[c.ID] = true
	}
	return ids
}

// Progress edits the live notebook without waiting for a save: people
// watching see the change at once (used for outputs as they arrive).
func (rs *Rooms) Progress(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	r, e, err := rs.roomEntry(ctx, path)
	if err != nil {
		return nil, err
	}
	e.gate.RLock()
	defer e.gate.RUnlock()
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
