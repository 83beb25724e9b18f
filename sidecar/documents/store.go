// Package documents is where notebooks are read and edited: the Backend
// interface the tools work through, and the backends that are not live
// collaboration rooms (those are rtc.Rooms): Store, the files through the
// Contents API, and ReadOnly, for servers whose rooms cannot be joined.
package documents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	pathpkg "path"
	"sync"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Backend is where notebooks are read and edited: the files, through the
// Contents API (Store), or the live collaboration rooms (rtc.Rooms).
type Backend interface {
	// Load reads a notebook.
	Load(ctx context.Context, path string) (*notebook.Notebook, error)
	// Update applies edit to the notebook and saves it; an error from edit
	// changes nothing.
	Update(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error)
	// Live reports whether people see changes as they are made; then
	// executions also write outputs as they arrive, with Progress.
	Live() bool
	// Progress is Update without waiting for a save (live documents only).
	Progress(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error)
}

// Store reads and writes notebooks through the Jupyter Contents API.
//
// A write never overwrites a change it has not seen: Update reads the
// notebook, applies the edit, and before saving checks that the file's
// last_modified is still the one it read. If the file changed meanwhile
// (a person saved, another tool wrote) the edit is re-applied to the new
// content; edits address cells by id, so re-applying is safe.
type Store struct {
	Jupyter *jupyter.Client
	// OnChange, if set, is told the path of each notebook the Store wrote.
	// Files have no change feed: that is all a files backend can report
	// without polling.
	OnChange func(path string)

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// maxAttempts bounds re-applying an edit to a notebook that keeps changing.
const maxAttempts = 3

// lock serialises this process's writes to one path.
func (s *Store) lock(path string) func() {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l, ok := s.locks[path]
	if !ok {
		l = &sync.Mutex{}
		s.locks[path] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Load reads and parses a notebook.
func (s *Store) Load(ctx context.Context, path string) (*notebook.Notebook, error) {
	nb, _, err := s.load(ctx, path)
	return nb, err
}

func (s *Store) load(ctx context.Context, path string) (*notebook.Notebook, *jupyter.Entry, error) {
	e, err := s.Jupyter.Get(ctx, path, true)
	if err != nil {
		return nil, nil, jupyter.NotebookError(path, err)
	}
	if e.Type != "notebook" {
		return nil, nil, fmt.Errorf("%q is a %s, not a notebook", path, e.Type)
	}
	nb, err := notebook.Parse(e.Content)
	if err != nil {
		return nil, nil, fmt.Errorf("notebook %q cannot be read: %w; nothing was changed", path, err)
	}
	return nb, e, nil
}

// Update applies edit to the notebook at path and saves it. edit must only
// change the notebook it is given; an error from edit leaves the file as it
// was. It returns the notebook as saved.
func (s *Store) Update(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	unlock := s.lock(path)
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		nb, read, err := s.load(ctx, path)
		if err != nil {
			return nil, err
		}
		if !read.Writable {
			return nil, fmt.Errorf("notebook %q is read-only on disk; nothing was changed", path)
		}
		nb.Normalize() // nbformat 4.5: every cell has an id to address
		if err := edit(nb); err != nil {
			return nil, err
		}
		now, err := s.Jupyter.Get(ctx, path, false)
		if err != nil {
			return nil, jupyter.NotebookError(path, err)
		}
		if !now.LastModified.Equal(read.LastModified) {
			continue // changed since read: re-apply to the new content
		}
		data, err := json.Marshal(nb)
		if err != nil {
			return nil, err
		}
		if _, err := s.Jupyter.SaveNotebook(ctx, path, data); err != nil {
			return nil, fmt.Errorf("save %q: %w", path, err)
		}
		s.changed(path)
		return nb, nil
	}
	return nil, fmt.Errorf("notebook %q changed on disk %d times while the edit was applied; nothing was changed, try again", path, maxAttempts)
}

// Live is false: people see file changes only when they reload.
func (s *Store) Live() bool { return false }

// Progress is Update: files have no cheaper intermediate write.
func (s *Store) Progress(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return s.Update(ctx, path, edit)
}

// Save returns the file's metadata: every Update wrote the file before it
// returned, so there is nothing left to write.
func (s *Store) Save(ctx context.Context, path string) (*jupyter.Entry, error) {
	e, err := s.Jupyter.Get(ctx, path, false)
	if err != nil {
		return nil, jupyter.NotebookError(path, err)
	}
	if e.Type != "notebook" {
		return nil, fmt.Errorf("%q is a %s, not a notebook", path, e.Type)
	}
	return e, nil
}

// Create writes a new notebook, refusing to replace an existing file.
func (s *Store) Create(ctx context.Context, path string, nb *notebook.Notebook) error {
	unlock := s.lock(path)
	defer unlock()
	if _, err := s.Jupyter.Get(ctx, path, false); err == nil {
		return fmt.Errorf("%q already exists; choose another path, or use_notebook to open it", path)
	} else if !jupyter.IsNotFound(err) {
		return fmt.Errorf("check %q: %w", path, err)
	}
	if dir := pathpkg.Dir(path); dir != "." {
		if e, err := s.Jupyter.Get(ctx, dir, false); err != nil || e.Type != "directory" {
			return fmt.Errorf("folder %q does not exist; create notebooks in an existing folder", dir)
		}
	}
	data, err := json.Marshal(nb)
	if err != nil {
		return err
	}
	if _, err := s.Jupyter.SaveNotebook(ctx, path, data); err != nil {
		return fmt.Errorf("create %q: %w", path, err)
	}
	s.changed(path)
	return nil
}

func (s *Store) changed(path string) {
	if s.OnChange != nil {
		s.OnChange(path)
	}
}

// ReadOnly serves reads from the Backend it wraps and refuses every edit with reason: for a
// server whose notebooks live in rooms the sidecar cannot join, where a
// file write would overwrite what open views hold.
type ReadOnly struct {
	Backend
	Reason string
}

// Update refuses the edit.
func (r ReadOnly) Update(context.Context, string, func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return nil, errors.New(r.Reason + "; nothing was changed")
}

// Save refuses: the live notebook is in a room the sidecar cannot join,
// so it cannot have the server write it.
func (r ReadOnly) Save(context.Context, string) (*jupyter.Entry, error) {
	return nil, errors.New(r.Reason + "; the sidecar made no edits to save (save from JupyterLab)")
}

// Progress refuses the edit.
func (r ReadOnly) Progress(ctx context.Context, path string, edit func(*notebook.Notebook) error) (*notebook.Notebook, error) {
	return r.Update(ctx, path, edit)
}

// Reporter is a Backend that writes files in the background (rtc.Rooms):
// an edit returns before its file is written, so a write that fails is
// reported later. Unsaved returns, once, the failed writes of the notebook
// at path; the tools call it whenever an agent's call touches the notebook.
type Reporter interface {
	Unsaved(path string) error
}

// Saver is a Backend that can be asked to write a notebook's file now.
// Save returns once the file holds every edit made before the call, with
// the file's metadata (no content).
type Saver interface {
	Save(ctx context.Context, path string) (*jupyter.Entry, error)
}

// Mover is a Backend that keeps notebooks open by path (rtc.Rooms): told
// that the notebook at path, or those under the folder path, may be another
// now (renamed, deleted or created there), it checks before serving them.
// FileID is the server's file id of the notebook it serves at path ("" if
// none is open): the notebook its last edit there went to.
type Mover interface {
	Moved(path string)
	FileID(path string) string
}

// Holder is a Backend that must be told to keep watching a notebook, so
// that changes made by others reach its change hook (rtc.Rooms: the room
// is otherwise left when unused).
type Holder interface {
	Hold(ctx context.Context, path string) (release func(), err error)
}
