package changes

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultKeep is how many changes a notebook's record keeps.
const DefaultKeep = 500

// DefaultMaxBytes bounds a notebook's record in bytes as well: a change
// holds whole sources and outputs, so 500 of them could be large.
const DefaultMaxBytes = 32 << 20

// Log is the record of agents' changes, one JSON-lines file per notebook
// in Dir, named by a hash of the notebook's path. The last Keep changes are
// kept, fewer if they take more than MaxBytes. A file is only appended
// to (a change, or a line marking changes undone) and rewritten with its
// last Keep changes once it has grown to twice that, so a crash loses at
// most the line being written.
type Log struct {
	Dir      string
	Keep     int
	MaxBytes int // 0 means DefaultMaxBytes
	// IDs, if set, names notebooks by the Jupyter server's file ids, so
	// that records follow renames the sidecar did not see (nil: only those
	// passed to Rename) and a new notebook at a record's path does not
	// inherit it.
	IDs FileIDs

	mu    sync.Mutex
	books map[string]*book
	// byID is the path of the record of each file id, read from the
	// records' first changes on first use and kept up to date since.
	byID    map[string]string
	indexed sync.Once
}

// FileIDs are the Jupyter server's file ids (jupyter_server_fileid, which
// jupyter-collaboration installs): a file keeps its id when it is renamed
// through the server, also while no sidecar runs — jupyter-server-proxy
// starts the sidecar only at the first request to it.
type FileIDs interface {
	// ID is the file's id at path; "" if the server has none.
	ID(path string) (string, error)
	// Path is where the file with id is now; "" if it is gone or unknown.
	Path(id string) (string, error)
}

// book is one notebook's record; its lock also serialises undos.
type book struct {
	mu      sync.Mutex
	loaded  bool
	changes []*Change // oldest first
	sizes   []int     // each change's line in the file, in bytes
	lines   int
	bytes   int // the file's size
}

// line is one line of a record file.
type line struct {
	Change *Change    `json:"change,omitempty"`
	Undone []int      `json:"undone,omitempty"`
	At     *time.Time `json:"at,omitempty"`
}

func (l *Log) keep() int {
	if l.Keep > 0 {
		return l.Keep
	}
	return DefaultKeep
}

func (l *Log) maxBytes() int {
	if l.MaxBytes > 0 {
		return l.MaxBytes
	}
	return DefaultMaxBytes
}

// trim drops the oldest changes past Keep or MaxBytes (the newest stays).
func (l *Log) trim(b *book) {
	total := 0
	for _, n := range b.sizes {
		total += n
	}
	drop := max(len(b.changes)-l.keep(), 0)
	for ; drop < len(b.changes)-1 && total > l.maxBytes(); drop++ {
		total -= b.sizes[drop]
	}
	if drop > 0 {
		b.changes = append([]*Change(nil), b.changes[drop:]...)
		b.sizes = append([]int(nil), b.sizes[drop:]...)
	}
}

func (l *Log) file(path string) string {
	sum := sha256.Sum256([]byte(path))
	return filepath.Join(l.Dir, hex.EncodeToString(sum[:12])+".jsonl")
}

// open returns path's record, locked, read from its file on first use,
// and the file id of the notebook at path now: id if given, else asked
// ("" if unknown). First the record is checked against the server's file
// ids (see follow).
func (l *Log) open(path, id string) (*book, string, error) {
	l.indexed.Do(l.index)
	id = l.follow(path, id)
	b, err := l.load(path)
	return b, id, err
}

// index reads which file id each record is of.
func (l *Log) index() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID = map[string]string{}
	if l.IDs == nil {
		return
	}
	entries, _ := os.ReadDir(l.Dir) // none yet: nothing to index
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		if head := recordHead(filepath.Join(l.Dir, e.Name())); head != nil && head.FileID != "" {
			l.byID[head.FileID] = head.Path
		}
	}
}

// follow makes path's record the record of the notebook at path now, by
// the server's file ids, and returns that notebook's id: a record whose
// notebook has another id now moves to where its notebook is, or is set
// aside if its notebook is gone (a new notebook at its path must not
// inherit it); then a notebook without a record gets the one kept under
// its id elsewhere (it was renamed where the sidecar did not see it, e.g.
// on disk, and the server's file ids followed). It acts only on answers:
// if the server cannot be asked, the record stays as it is. now, if given,
// is the id of the notebook at path, known to the caller.
func (l *Log) follow(path, now string) string {
	if l.IDs == nil {
		return now
	}
	if now == "" {
		var err error
		if now, err = l.IDs.ID(path); err != nil {
			return ""
		}
	}
	l.mu.Lock()
	var recorded string
	for id, p := range l.byID {
		if p == path {
			recorded = id
		}
	}
	from := l.byID[now]
	l.mu.Unlock()
	if recorded != "" && recorded != now {
		to, err := l.IDs.Path(recorded)
		switch {
		case err != nil:
			return now
		case to != "" && to != path:
			// A failure leaves the record where it was, as without ids.
			_ = l.move(path, to)
		case to == "" && now != "":
			_ = l.retire(path)
		default:
			// The notebook was deleted and nothing new is known at its
			// path: its record stays, for undo to say it is gone.
			return now
		}
	}
	if now != "" && from != "" && from != path {
		if b, err := l.load(path); err == nil {
			empty := len(b.changes) == 0
			b.mu.Unlock()
			if empty {
				_ = l.move(from, path)
			}
		}
	}
	return now
}

// RetiredKeep is how long a record set aside stays on disk: the log no
// longer reads it, but it may hold the only copy of what an agent wrote
// in a notebook that is gone, for a person to look up by hand.
const RetiredKeep = 7 * 24 * time.Hour

// retire sets path's record aside, in a file the log no longer reads: it
// belongs to a notebook no longer there. Records set aside more than
// RetiredKeep ago are removed meanwhile.
func (l *Log) retire(path string) error {
	b, err := l.load(path)
	if err != nil {
		return err
	}
	defer b.mu.Unlock()
	l.forget(path)
	b.changes, b.sizes, b.lines, b.bytes = nil, nil, 0, 0
	f := l.file(path)
	now := time.Now()
	l.pruneRetired(now)
	err = os.Rename(f, fmt.Sprintf("%s%s%d", f, retiredSuffix, now.UnixNano()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// retiredSuffix marks a record set aside, followed by when (Unix ns).
const retiredSuffix = ".retired-"

// pruneRetired removes the records set aside more than RetiredKeep
// before now; failures leave them for the next time.
func (l *Log) pruneRetired(now time.Time) {
	old, _ := filepath.Glob(filepath.Join(l.Dir, "*.jsonl"+retiredSuffix+"*"))
	for _, f := range old {
		_, at, _ := strings.Cut(filepath.Base(f), retiredSuffix)
		ns, err := strconv.ParseInt(at, 10, 64)
		if err == nil && now.Sub(time.Unix(0, ns)) > RetiredKeep {
			_ = os.Remove(f)
		}
	}
}

// forget drops path from the index of file ids.
func (l *Log) forget(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, p := range l.byID {
		if p == path {
			delete(l.byID, id)
		}
	}
}

// Created is told that a new notebook was made at path: a record still
// kept there is of an earlier notebook, which goes where its notebook
// went, if the server knows, and is set aside otherwise.
func (l *Log) Created(path string) error {
	l.indexed.Do(l.index)
	l.follow(path, "")
	return l.retire(path)
}

// load returns path's record, locked, read from its file on first use.
func (l *Log) load(path string) (*book, error) {
	l.mu.Lock()
	if l.books == nil {
		l.books = map[string]*book{}
	}
	b, ok := l.books[path]
	if !ok {
		b = &book{}
		l.books[path] = b
	}
	l.mu.Unlock()
	b.mu.Lock()
	if !b.loaded {
		if err := l.read(path, b); err != nil {
			b.mu.Unlock()
			return nil, err
		}
		b.loaded = true
	}
	return b, nil
}

func (l *Log) read(path string, b *book) error {
	f, err := os.Open(l.file(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the change record of %q: %w", path, err)
	}
	defer f.Close()
	byID := map[int]*Change{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20) // a line holds whole sources and outputs
	for sc.Scan() {
		var ln line
		if json.Unmarshal(sc.Bytes(), &ln) != nil {
			continue // a line cut short by a crash
		}
		b.lines++
		b.bytes += len(sc.Bytes()) + 1
		switch {
		case ln.Change != nil && ln.Change.Path == path:
			b.changes = append(b.changes, ln.Change)
			b.sizes = append(b.sizes, len(sc.Bytes())+1)
			byID[ln.Change.ID] = ln.Change
		case ln.At != nil:
			for _, id := range ln.Undone {
				if c := byID[id]; c != nil {
					c.Undone = *ln.At
				}
			}
		}
	}
	l.trim(b)
	return sc.Err()
}

func (l *Log) append(path string, b *book, ln line) error {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(ln)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l.file(path), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	b.lines++
	b.bytes += len(data) + 1
	if ln.Change != nil {
		b.sizes = append(b.sizes, len(data)+1)
		l.trim(b)
	}
	if b.lines > 2*l.keep() || b.bytes > 2*l.maxBytes() {
		return l.compact(path, b)
	}
	return nil
}

// compact rewrites the file with the changes kept (the last Keep).
func (l *Log) compact(path string, b *book) error {
	tmp, err := os.CreateTemp(l.Dir, "compact-*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	b.sizes = b.sizes[:0]
	for _, c := range b.changes {
		data, _ := json.Marshal(line{Change: c})
		w.Write(append(data, '\n'))
		b.sizes = append(b.sizes, len(data)+1)
	}
	err = w.Flush()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), l.file(path))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	b.lines = len(b.changes)
	b.bytes = 0
	for _, n := range b.sizes {
		b.bytes += n
	}
	return nil
}

// Record adds c to its notebook's record, numbering it after the last one;
// a change of no cell is not recorded.
func (l *Log) Record(c Change) (*Change, error) {
	if len(c.Cells) == 0 {
		return nil, nil
	}
	// The caller may know the notebook's file id (the room it edited):
	// then the server is not asked.
	b, id, err := l.open(c.Path, c.FileID)
	if err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	c.ID = 1
	if n := len(b.changes); n > 0 {
		c.ID = b.changes[n-1].ID + 1
	}
	if c.Time.IsZero() {
		c.Time = time.Now().UTC()
	}
	// Records carrying the notebook's file id follow it through renames
	// the sidecar does not see.
	if c.FileID == "" {
		c.FileID = id
	}
	rec := &c
	b.changes = append(b.changes, rec)
	if err := l.append(c.Path, b, line{Change: rec}); err != nil {
		if len(b.sizes) < len(b.changes) { // not written: not recorded
			b.changes = b.changes[:len(b.changes)-1]
		}
		return nil, fmt.Errorf("record change %d of %q: %w", c.ID, c.Path, err)
	}
	if c.FileID != "" {
		l.mu.Lock()
		l.byID[c.FileID] = c.Path
		l.mu.Unlock()
	}
	return rec, nil
}

// Filter selects changes for List.
type Filter struct {
	Session string    // only this session's, if set
	SinceID int       // only changes with an id at least this
	Since   time.Time // only changes made at or after this
	Before  int       // only changes with an id below this (paging), if > 0
	Limit   int       // at most this many (default 50)
}

// List returns the changes of path's record that pass f, newest first,
// and whether older ones passed too (then page with Before).
func (l *Log) List(path string, f Filter) ([]Change, bool, error) {
	b, _, err := l.open(path, "")
	if err != nil {
		return nil, false, err
	}
	defer b.mu.Unlock()
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var out []Change
	for i := len(b.changes) - 1; i >= 0; i-- {
		c := b.changes[i]
		if (f.Session != "" && c.Session != f.Session) || c.ID < f.SinceID || c.Time.Before(f.Since) || (f.Before > 0 && c.ID >= f.Before) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, *c)
	}
	return out, false, nil
}

// Selection names the changes to undo: IDs, or every standing change of
// Session from SinceID on.
type Selection struct {
	IDs     []int
	SinceID int
	// Session is whose changes SinceID undoes; empty: the session that made
	// change SinceID (a person reviewing every agent's changes).
	Session string
}

// Undo undoes the selected changes of path's record: apply must make the
// live edit that inverts them (given oldest first) and fail with nothing
// changed if it cannot. On success they are marked undone. The record stays
// locked meanwhile, so a change is never undone twice.
func (l *Log) Undo(path string, sel Selection, apply func([]*Change) error) ([]*Change, error) {
	b, _, err := l.open(path, "")
	if err != nil {
		return nil, err
	}
	defer b.mu.Unlock()
	cs, err := b.pick(path, sel)
	if err != nil {
		return nil, err
	}
	if err := apply(cs); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	ids := make([]int, len(cs))
	for i, c := range cs {
		c.Undone = now
		ids[i] = c.ID
	}
	if err := l.append(path, b, line{Undone: ids, At: &now}); err != nil {
		return cs, fmt.Errorf("the changes were undone, but marking them undone in the record failed: %w", err)
	}
	return cs, nil
}

// pick resolves a selection to standing changes, oldest first.
func (b *book) pick(path string, sel Selection) ([]*Change, error) {
	byID := map[int]*Change{}
	for _, c := range b.changes {
		byID[c.ID] = c
	}
	// A notebook renamed where neither the sidecar nor the server's file
	// ids saw it (on disk, with the server's default file ids) left its
	// record under its old path.
	span := "it has no recorded changes; the changes of a notebook renamed outside Jupyter (on disk) stay under its old path, where list_changes shows them"
	if n := len(b.changes); n > 0 {
		span = fmt.Sprintf("its recorded changes are %d to %d", b.changes[0].ID, b.changes[n-1].ID)
	}
	unknown := func(id int) error {
		return fmt.Errorf("notebook %q has no change %d (%s; list_changes shows them); nothing was changed", path, id, span)
	}
	switch {
	case len(sel.IDs) > 0 && sel.SinceID > 0:
		return nil, errors.New("give change_ids or since_change_id, not both; nothing was changed")
	case len(sel.IDs) > 0:
		var out []*Change
		seen := map[int]bool{}
		for _, id := range sel.IDs {
			c := byID[id]
			switch {
			case c == nil:
				return nil, unknown(id)
			case seen[id]:
				return nil, fmt.Errorf("change %d is named twice; nothing was changed", id)
			case !c.Undone.IsZero():
				return nil, fmt.Errorf("change %d of %q was already undone at %s; nothing was changed", id, path, c.Undone.Format(time.RFC3339))
			}
			seen[id] = true
			out = append(out, c)
		}
		slices.SortFunc(out, func(x, y *Change) int { return x.ID - y.ID })
		return out, nil
	case sel.SinceID > 0:
		first := byID[sel.SinceID]
		if first == nil {
			return nil, unknown(sel.SinceID)
		}
		if sel.Session == "" {
			sel.Session = first.Session
		}
		if first.Session != sel.Session {
			return nil, fmt.Errorf("change %d was made by %s, not by this session: since_change_id undoes this session's own changes; name another session's changes with change_ids; nothing was changed", first.ID, who(first))
		}
		var out []*Change
		for _, c := range b.changes {
			if c.ID >= sel.SinceID && c.Session == sel.Session && c.Undone.IsZero() {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("this session has no change of %q left to undo from change %d on (all undone already); nothing was changed", path, sel.SinceID)
		}
		return out, nil
	}
	return nil, errors.New("name the changes to undo: change_ids, or since_change_id for all of this session's changes from that one on; nothing was changed")
}

func who(c *Change) string {
	s := "session " + c.Session
	if c.Session == Stateless {
		s = "a stateless request"
	}
	if c.Client != "" {
		s += " (client " + c.Client + ")"
	}
	return s
}

// Stateless is the session recorded for requests without an MCP session
// (protocol 2026-07-28).
const Stateless = "stateless"

// Rename moves the records of the notebook from, or of every notebook under
// the folder from, to the new path, so that they follow a notebook renamed
// through Jupyter. A record already kept for a new path is replaced: it
// belonged to a notebook no longer there.
func (l *Log) Rename(from, to string) error {
	entries, err := os.ReadDir(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		head := recordHead(filepath.Join(l.Dir, e.Name()))
		if head == nil {
			continue
		}
		path := head.Path
		var moved string
		switch {
		case path == from:
			moved = to
		case strings.HasPrefix(path, from+"/"):
			moved = to + strings.TrimPrefix(path, from)
		default:
			continue
		}
		if err := l.move(path, moved); err != nil {
			errs = append(errs, fmt.Errorf("move the change record of %q to %q: %w", path, moved, err))
		}
	}
	return errors.Join(errs...)
}

// recordHead is the first change of a record file (its path is the
// notebook's), nil if it holds none.
func recordHead(file string) *Change {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var ln line
		if json.Unmarshal(sc.Bytes(), &ln) == nil && ln.Change != nil {
			return ln.Change
		}
	}
	return nil
}

func (l *Log) move(from, to string) error {
	if from == to {
		return nil
	}
	b, err := l.load(from)
	if err != nil {
		return err
	}
	defer b.mu.Unlock()
	dst, err := l.load(to)
	if err != nil {
		return err
	}
	defer dst.mu.Unlock()
	dst.changes = nil
	for _, c := range b.changes {
		cp := *c
		cp.Path = to
		dst.changes = append(dst.changes, &cp)
	}
	if err := l.compact(to, dst); err != nil {
		return err
	}
	b.changes, b.sizes, b.lines, b.bytes = nil, nil, 0, 0
	l.mu.Lock()
	for id, p := range l.byID {
		switch p {
		case to:
			delete(l.byID, id)
		case from:
			l.byID[id] = to
		}
	}
	l.mu.Unlock()
	return os.Remove(l.file(from))
}
