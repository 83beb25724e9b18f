// Package rtc makes the sidecar a peer in jupyter-collaboration's notebook
// rooms: it joins a notebook's Yjs room over loopback, keeps the document in
// sync, shows the agent's presence, reads and edits the live notebook, and
// asks the server to save.
package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
)

// ErrRoomGone is returned once the server has closed a room for good (the
// file was deleted or renamed).
var ErrRoomGone = errors.New("the notebook's collaboration room is closed (was the file deleted or renamed?)")

// agentState is how the agent appears to people (awareness state).
var agentState = map[string]any{
	"user": map[string]any{
		"username":     "jupyter-mcp-sidecar",
		"name":         "AI agent",
		"display_name": "AI agent",
		"initials":     "AI",
		"color":        "#7c3aed",
	},
}

// awarenessRenew keeps the presence alive (states expire after 30 s).
const awarenessRenew = 15 * time.Second

// syncTimeout bounds joining a room.
const syncTimeout = 30 * time.Second

// Room is the sidecar's connection to one notebook room. All access to the
// document goes through its methods, which hold the room's lock.
type Room struct {
	Path string

	jc  *jupyter.Client
	log zerolog.Logger

	mu        sync.Mutex
	doc       *yjs.Doc
	awareness *yproto.Awareness
	ws        *websocket.Conn
	lost      chan struct{} // closed when ws is lost; replaced with each connection
	sessionID string        // the server session the document belongs to
	fileID    string        // the server's id of the notebook, which names the room
	synced    chan struct{}
	changed   chan struct{} // closed and replaced on every change
	barriers  []barrier     // asked, in the order their questions were queued
	saves     map[uint64]chan string
	nextID    uint64
	edits     uint64 // local transactions that changed the document
	updates   uint64 // all transactions that changed it, remote ones too
	reloads   uint64 // remote transactions that replaced it with the file's content (onUpdate)
	err       error  // set when the room is gone for good
	closed    bool
	// life ends with Close: it stops the room's goroutines and any
	// reconnection under way.
	life context.Context
	end  context.CancelFunc
	// outbox holds the updates of local transactions, made under mu, until
	// send writes them outside it: a slow socket must never keep readers
	// of the document waiting.
	outbox [][]byte

	// writeMu orders writes to the socket; it is taken before mu, never
	// while holding it.
	writeMu sync.Mutex

	// onChange, if set, is told after the document changed (a remote
	// update or a local edit); dirty records a change not yet told. It is
	// called outside mu, from the goroutine that made the change.
	onChange func()
	dirty    bool

	// read is the document read into the model (notebookOf), kept until
	// the document changes: reading a large notebook is most of the cost
	// of read_notebook, and reads far outnumber changes. Never changed
	// once set: readers get clones (see Notebook).
	read *notebook.Notebook
	// cells are the conversions of the document's cells, by their map: a
	// transaction forgets those of the cells it changed, so reading after
	// an edit converts the edited cells only. Shared like read.
	cells map[*yjs.Branch]*notebook.Cell
}

// Join connects to the room of the notebook at path and waits until the
// document is in sync.
func Join(ctx context.Context, jc *jupyter.Client, path string, log zerolog.Logger) (*Room, error) {
	r := &Room{Path: path, jc: jc, log: log.With().Str("room", path).Logger(),
		changed: make(chan struct{}), saves: map[uint64]chan string{}}
	r.life, r.end = context.WithCancel(context.Background())
	if err := r.connect(ctx); err != nil {
		r.end()
		return nil, err
	}
	go r.renewPresence()
	return r, nil
}

// connect opens the websocket and runs the sync handshake. A new server
// session (the server restarted) means the room was rebuilt from the file:
// the old document is dropped rather than merged into it twice.
func (r *Room) connect(ctx context.Context) error {
	s, err := r.jc.CollaborationSession(ctx, r.Path)
	if err != nil {
		return err
	}
	ws, err := r.jc.DialWebsocket(ctx, "api/collaboration/room/json:notebook:"+url.PathEscape(s.FileID),
		url.Values{"sessionId": {s.SessionID}}, nil)
	if err != nil {
		return fmt.Errorf("join the collaboration room of %q: %w", r.Path, err)
	}
	ws.SetReadLimit(1 << 30)

	r.mu.Lock()
	if r.closed { // closed while this (re)connection was being made
		r.mu.Unlock()
		_ = ws.Close()
		return errors.New("the room was closed")
	}
	if r.doc == nil || r.sessionID != s.SessionID {
		r.setDoc(yjs.NewDoc())
		r.dirty = true // a new document: what it holds may differ from the old one
	}
	r.sessionID = s.SessionID
	r.fileID = s.FileID
	r.ws = ws
	r.lost = make(chan struct{})
	r.synced = make(chan struct{})
	synced := r.synced
	presence, _ := r.awareness.SetLocalState(agentState)
	step1 := yproto.SyncStep1For(r.doc)
	r.mu.Unlock()

	go r.readLoop(ws)
	if err := r.send(ws, step1, presence); err != nil {
		r.drop(ws)
		return err
	}
	timer := time.NewTimer(syncTimeout)
	defer timer.Stop()
	select {
	case <-synced:
		return nil
	case <-timer.C:
		r.drop(ws)
		return fmt.Errorf("the collaboration room of %q did not sync within %s", r.Path, syncTimeout)
	case <-ctx.Done():
		r.drop(ws)
		return ctx.Err()
	}
}

// setDoc makes doc the room's document, observed for the room's
// bookkeeping. Call with r.mu held.
func (r *Room) setDoc(doc *yjs.Doc) {
	r.doc = doc
	r.read, r.cells = nil, nil
	r.awareness = yproto.NewAwareness(doc.ClientID())
	doc.OnUpdate(r.onLocalUpdate)
	doc.OnUpdate(r.onUpdate)
}

// onUpdate records what a transaction changed. The "state" root is the
// room's own bookkeeping (dirty flag, path, the hash of the file it last
// wrote), which changes on every save: not a change to the notebook.
// Anything else drops the notebook read so far, and a change inside a cell
// the conversion of that cell; a change whose types are not known drops
// every conversion. It runs with r.mu held.
//
// A remote transaction that removes the state's hash is the server
// replacing the document with the file's content (jupyter_ydoc's set,
// which a reload of a file changed on disk uses, drops every state key but
// dirty, path and document_id in the same transaction as the cells it
// changes); the server's saves only ever set the hash.
func (r *Room) onUpdate(_ []byte, txn *yjs.Transaction) {
	changes := txn.Changes()
	if len(changes) == 0 {
		r.read, r.cells = nil, nil
	}
	for _, c := range changes {
		if len(c.Path) > 0 && c.Path[0] == "state" {
			if !txn.Local && len(c.Path) == 1 && slices.Contains(c.Keys, "hash") && !r.doc.GetMap("state").Has("hash") {
				r.reloads++
			}
			continue
		}
		r.dirty = true
		r.read = nil
		if len(c.Path) > 1 && c.Path[0] == "cells" {
			r.forgetCell(c.Path[1])
		}
	}
}

// forgetCell drops the conversion of the cell at index (as of the end of
// the transaction); anything unexpected drops them all.
func (r *Room) forgetCell(index any) {
	i, ok := index.(int)
	if !ok {
		r.cells = nil
		return
	}
	v, _ := r.doc.GetArray("cells").Get(i)
	m, ok := v.(*yjs.Map)
	if !ok {
		r.cells = nil
		return
	}
	delete(r.cells, m.Branch())
}

// drop closes a connection that failed to sync; its read loop then ends
// without reconnecting.
func (r *Room) drop(ws *websocket.Conn) {
	r.mu.Lock()
	if r.ws == ws {
		r.ws = nil
		close(r.lost)
	}
	r.mu.Unlock()
	_ = ws.Close()
}

// onLocalUpdate queues the update of every local transaction for the room
// (send writes it). It runs with r.mu held (inside a transaction). While
// disconnected nothing is queued: the sync handshake of the reconnection
// sends the server whatever it lacks.
func (r *Room) onLocalUpdate(update []byte, txn *yjs.Transaction) {
	r.updates++
	if txn.Local {
		r.edits++
	}
	if !txn.Local || r.ws == nil {
		return
	}
	r.log.Debug().Int("bytes", len(update)).Msg("room local update")
	r.outbox = append(r.outbox, yproto.EncodeUpdate(update))
}

// send writes the queued updates, then msgs, to ws, in that order; ws nil
// means the room's current socket. Callers must not hold r.mu. Taking the
// queue under writeMu keeps updates in the order they were made, and puts
// them before anything written after them, such as a barrier's awareness.
func (r *Room) send(ws *websocket.Conn, msgs ...[]byte) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	queued := r.outbox
	r.outbox = nil
	if ws == nil {
		ws = r.ws
	}
	r.mu.Unlock()
	all := append(queued, msgs...)
	if len(all) == 0 {
		return nil
	}
	if ws == nil {
		return errors.New("not connected to the room")
	}
	for _, m := range all {
		_ = ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if err := ws.WriteMessage(websocket.BinaryMessage, m); err != nil {
			return err
		}
	}
	return nil
}

func (r *Room) readLoop(ws *websocket.Conn) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			r.disconnected(ws, err)
			return
		}
		m, err := yproto.Decode(data)
		if err != nil {
			continue
		}
		switch m.Type {
		case yproto.MessageSync:
			r.log.Debug().Uint64("sync_type", m.SyncType).Int("bytes", len(m.Payload)).Msg("room sync message")
			r.mu.Lock()
			reply, err := yproto.HandleSync(r.doc, m, r)
			if m.SyncType == yproto.SyncStep2 {
				r.syncAnswered(ws)
			}
			r.touch()
			r.mu.Unlock()
			if err != nil {
				r.log.Warn().Err(err).Msg("apply update from the room")
			}
			r.mu.Lock()
			pending := r.doc.HasPending()
			r.mu.Unlock()
			if pending {
				r.log.Warn().Uint64("sync_type", m.SyncType).Msg("room update waits for missing structs")
			}
			r.notify()
			if reply != nil {
				if err := r.send(ws, reply); err != nil {
					r.log.Warn().Err(err).Msg("answer the room's sync message")
				}
			}
		case yproto.MessageAwareness:
			r.onAwareness(m.Payload)
		case yproto.MessageRaw:
			r.onRaw(m)
		}
	}
}

// onAwareness applies the other peers' presence updates.
func (r *Room) onAwareness(payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _, _, _ = r.awareness.ApplyUpdate(payload)
}

// barrier is a question Barrier asked on a connection: a sync step 1,
// which the server answers with a sync step 2 to the asker alone.
type barrier struct {
	ws       *websocket.Conn
	answered chan struct{}
}

// syncAnswered handles a sync step 2 that came on ws, the answer to a
// sync step 1 of ours: the handshake's, which completes the connection,
// or a barrier's. A connection replaced since (dropped, reconnected) may
// still hand over a message it had read: it answers nothing now. Call
// with r.mu held.
func (r *Room) syncAnswered(ws *websocket.Conn) {
	switch {
	case ws != r.ws:
	case r.synced != nil:
		close(r.synced)
		r.synced = nil
	default:
		r.answered(ws)
	}
}

// answered releases the oldest barrier asked on ws, the room's current
// connection, after a sync step 2 came on it (call with r.mu held). The server answers a peer's messages
// in order, so the n-th answer on a connection is the n-th question's.
// Barriers are queued before their question is written, and each one's
// edits before that: whichever question the answer is for, every edit of
// the oldest barrier was written before it. Barriers of a lost
// connection are dropped; their callers ask again on the next one.
func (r *Room) answered(ws *websocket.Conn) {
	for len(r.barriers) > 0 {
		b := r.barriers[0]
		r.barriers = r.barriers[1:]
		if b.ws == ws {
			close(b.answered)
			return
		}
	}
}

func (r *Room) onRaw(m yproto.Message) {
	s, err := yproto.DecodeRaw(m)
	if err != nil {
		return
	}
	var msg struct {
		Type       string `json:"type"`
		ResponseTo uint64 `json:"responseTo"`
		Status     string `json:"status"`
	}
	if json.Unmarshal([]byte(s), &msg) != nil {
		return
	}
	switch msg.Type {
	case "save":
		r.mu.Lock()
		if ch, ok := r.saves[msg.ResponseTo]; ok {
			ch <- msg.Status
			delete(r.saves, msg.ResponseTo)
		}
		r.mu.Unlock()
	case "conflict":
		r.log.Warn().Msg("the room reported a conflict; resyncing")
	}
}

// disconnected handles the end of a websocket: a deliberate close, a room
// that is gone, or a drop that is worth reconnecting after.
func (r *Room) disconnected(ws *websocket.Conn, err error) {
	r.mu.Lock()
	if r.ws != ws || r.closed {
		r.mu.Unlock()
		return
	}
	r.ws = nil
	close(r.lost)
	r.mu.Unlock()
	var ce *websocket.CloseError
	if errors.As(err, &ce) && (ce.Code == 4404 || ce.Code == 4400 || ce.Code == 4500) {
		r.fail(fmt.Errorf("%w: code %d %s", ErrRoomGone, ce.Code, ce.Text))
		return
	}
	r.log.Info().Err(err).Msg("room connection lost; reconnecting")
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(r.life, syncTimeout)
		err = r.connect(ctx)
		cancel()
		if err == nil {
			return
		}
		select { // back off before retrying the server, unless the room is closed
		case <-time.After(time.Duration(attempt+1) * time.Second):
		case <-r.life.Done():
			return
		}
	}
	r.fail(fmt.Errorf("%w: %v", ErrRoomGone, err))
}

func (r *Room) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	r.touch()
	for _, b := range r.barriers {
		close(b.answered)
	}
	r.barriers = nil
}

// watch sets the change hook (see onChange).
func (r *Room) watch(fn func()) {
	r.mu.Lock()
	r.onChange = fn
	r.dirty = false // joining is no change
	r.mu.Unlock()
}

// notify calls the change hook if the document changed since the last
// call. Callers must not hold r.mu: the hook may read the room.
func (r *Room) notify() {
	r.mu.Lock()
	fn, dirty := r.onChange, r.dirty
	r.dirty = false
	r.mu.Unlock()
	if dirty && fn != nil {
		fn()
	}
}

// touch wakes waiters for a change; call with r.mu held.
func (r *Room) touch() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Room) renewPresence() {
	t := time.NewTicker(awarenessRenew)
	defer t.Stop()
	for {
		select {
		case <-r.life.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		ws, msg := r.ws, r.awareness.Renew()
		r.mu.Unlock()
		if ws != nil {
			if err := r.send(ws, msg); err != nil {
				r.log.Debug().Err(err).Msg("renew presence") // the read loop reconnects
			}
		}
	}
}

// Barrier returns once the room's server has applied everything this peer
// sent so far. It asks with a sync step 1, which the server answers to this
// peer alone after applying what came before it (see answered); an
// awareness update would do too, but the server forwards those to every
// open tab, whose page then has one more message to handle per edit.
// A connection lost meanwhile is waited out: the reconnection's sync
// handshake hands the server what it missed, and the barrier is then
// asked again on the new connection, so an edit made across a drop is
// confirmed rather than reported failed (which would make the agent apply
// it twice).
func (r *Room) Barrier(ctx context.Context) error {
	for {
		ws, lost, err := r.connected(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		question := yproto.SyncStep1For(r.doc)
		b := barrier{ws: ws, answered: make(chan struct{})}
		r.barriers = append(r.barriers, b)
		r.mu.Unlock()
		if err := r.send(ws, question); err != nil {
			if err := abandon(ctx, ws, lost); err != nil {
				return err
			}
			continue
		}
		select {
		case <-b.answered:
			return r.Err()
		case <-lost:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// connected waits until the room has a synced connection and returns it
// with the channel closed when it is lost; it fails once the room is gone.
func (r *Room) connected(ctx context.Context) (*websocket.Conn, chan struct{}, error) {
	for {
		r.mu.Lock()
		ws, lost, err, changed := r.ws, r.lost, r.err, r.changed
		syncing := r.synced != nil
		if err == nil && r.closed {
			err = errors.New("the room was closed")
		}
		r.mu.Unlock()
		switch {
		case err != nil:
			return nil, nil, err
		case ws != nil && !syncing:
			return ws, lost, nil
		}
		// Reconnecting: the sync that completes it, or the room failing
		// for good, touches changed.
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// abandon closes a connection a write failed on, so the read loop
// reconnects, and waits until it is gone.
func abandon(ctx context.Context, ws *websocket.Conn, lost <-chan struct{}) error {
	_ = ws.Close()
	select {
	case <-lost:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Save asks the server to write the document to disk now, after it has
// applied this peer's edits, and waits for the answer (asking again on a
// new connection if the one it asked on is lost).
func (r *Room) Save(ctx context.Context) error {
	for {
		if err := r.Barrier(ctx); err != nil {
			return err
		}
		ws, lost, err := r.connected(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.nextID++
		id := r.nextID
		ch := make(chan string, 1)
		r.saves[id] = ch
		r.mu.Unlock()
		if err := r.send(ws, yproto.EncodeSaveRequest(id)); err != nil {
			if err := abandon(ctx, ws, lost); err != nil {
				return err
			}
			continue
		}
		select {
		case status := <-ch:
			if status == "failed" {
				return errors.New("the server could not save the notebook")
			}
			return nil // "skipped": a save was already running and includes our edits
		case <-lost:
			r.mu.Lock()
			delete(r.saves, id)
			r.mu.Unlock()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Updates counts every change made to the document so far, by anyone.
func (r *Room) Updates() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.updates
}

// Reloads counts the times the server replaced the document with the
// file's content since the room was joined (see onUpdate). A reload before
// the room's first save leaves no such mark: the server's event bus tells
// those (Rooms.Reloaded).
func (r *Room) Reloads() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloads
}

// Edits counts the local changes made to the document so far.
func (r *Room) Edits() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.edits
}

// FileID is the server's id of the notebook whose room this is.
func (r *Room) FileID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fileID
}

// Err is the reason the room is gone, or nil.
func (r *Room) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close leaves the room, removing the agent's presence.
func (r *Room) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.end()
	ws := r.ws
	r.ws = nil
	if ws != nil {
		close(r.lost)
	}
	var bye []byte
	if r.awareness != nil {
		bye, _ = r.awareness.SetLocalState(nil)
	}
	r.mu.Unlock()
	if ws != nil {
		if bye != nil {
			_ = r.send(ws, bye) // best effort: the server drops our state when the socket closes
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = ws.Close()
	}
}
