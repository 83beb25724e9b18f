package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
)

// fakeRoom plays jupyter-collaboration for one notebook: the session
// endpoint and a room that syncs, broadcasts updates and awareness to every
// peer (the sender too) and answers save requests.
type fakeRoom struct {
	t       *testing.T
	mu      sync.Mutex
	doc     *yjs.Doc
	session string
	conns   map[*websocket.Conn]*sync.Mutex
	saves   int
	stalled chan struct{} // while set, the server reads nothing more from peers
	// held, while set, keeps the answers to save requests until it is
	// closed; asked is told of each save request as it comes.
	held   chan struct{}
	asked  chan struct{}
	refuse bool   // while set, joining (the session request) fails
	url    string // the server's base URL
	// The notebook's file: written (version++) by a save unless it is
	// read-only, gone, or the disk is full (a save then still answers
	// "success", as jupyter-collaboration does).
	file struct {
		path                 string // where it is; "" is n.ipynb
		version              int
		content              []byte // the notebook as last written
		readOnly, gone, full bool
		// skip is how many of the next save requests write nothing and
		// answer "success", as a save a change cancelled does.
		skip int
		// unavailable is how many of the next reads answer 500, as a
		// single-user server does while JupyterHub, which checks its
		// tokens, restarts.
		unavailable int
	}
}

func newFakeRoom(t *testing.T, src string) (*fakeRoom, *jupyter.Client) {
	f := &fakeRoom{t: t, conns: map[*websocket.Conn]*sync.Mutex{}}
	f.reset("s1", src)
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	jc, err := jupyter.NewClient(&jupyter.ServerInfo{URL: ts.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	return f, jc
}

// reset starts a new server session with the document loaded from src,
// as a restarted server does.
func (f *fakeRoom) reset(session, src string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.session = session
	f.doc = yjs.NewDoc()
	load(f.t, f.doc, src)
	f.doc.OnUpdate(func(u []byte, _ *yjs.Transaction) { f.broadcastLocked(yproto.EncodeUpdate(u)) })
}

func (f *fakeRoom) broadcastLocked(msg []byte) {
	for c, wmu := range f.conns {
		wmu.Lock()
		_ = c.WriteMessage(websocket.BinaryMessage, msg)
		wmu.Unlock()
	}
}

// dropAll cuts every peer's connection without a close frame.
func (f *fakeRoom) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.UnderlyingConn().Close()
		delete(f.conns, c)
	}
}

func (f *fakeRoom) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/api/collaboration/session/"):
		f.mu.Lock()
		if f.refuse {
			f.mu.Unlock()
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"format":"json","type":"notebook","fileId":"f1","sessionId":%q}`, f.session)
		f.mu.Unlock()
	case r.Method == http.MethodGet && r.URL.Path == "/api/fileid/id":
		f.mu.Lock()
		here := r.URL.Query().Get("path") == f.filePath() && !f.file.gone
		f.mu.Unlock()
		if !here {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"id":"f1"}`)
	case r.Method == http.MethodGet && r.URL.Path == "/api/fileid/path":
		f.mu.Lock()
		path, gone := f.filePath(), f.file.gone
		f.mu.Unlock()
		if gone || r.URL.Query().Get("id") != "f1" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"id":"f1","path":%q}`, path)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/contents/"):
		f.mu.Lock()
		file := f.file
		here := strings.TrimPrefix(r.URL.Path, "/api/contents/") == f.filePath()
		if f.file.unavailable > 0 {
			f.file.unavailable--
		}
		f.mu.Unlock()
		if file.unavailable > 0 {
			http.Error(w, `{"message": "Failed to connect to Hub API"}`, http.StatusInternalServerError)
			return
		}
		if file.gone || !here {
			http.NotFound(w, r)
			return
		}
		content := "null"
		if r.URL.Query().Get("content") == "1" && file.content != nil {
			content = string(file.content)
		}
		fmt.Fprintf(w, `{"name":"n.ipynb","path":"n.ipynb","type":"notebook","format":"json","content":%s,"writable":%t,"hash":"v%d","last_modified":"2026-01-01T00:00:%02dZ"}`,
			content, !file.readOnly, file.version, file.version%60)
	case r.URL.Path == "/api/collaboration/room/json:notebook:f1":
		f.serveRoom(w, r)
	default:
		http.NotFound(w, r)
	}
}

// filePath is where the notebook's file is; f.mu must be held.
func (f *fakeRoom) filePath() string {
	if f.file.path == "" {
		return "n.ipynb"
	}
	return f.file.path
}

func (f *fakeRoom) serveRoom(w http.ResponseWriter, r *http.Request) {
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	wmu := &sync.Mutex{}
	f.conns[c] = wmu
	step1 := yproto.SyncStep1For(f.doc)
	f.mu.Unlock()
	send := func(msg []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = c.WriteMessage(websocket.BinaryMessage, msg)
	}
	send(step1)
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		f.mu.Lock()
		stalled := f.stalled
		f.mu.Unlock()
		if stalled != nil {
			<-stalled
		}
		m, err := yproto.Decode(data)
		if err != nil {
			continue
		}
		switch m.Type {
		case yproto.MessageSync:
			f.mu.Lock()
			reply, err := yproto.HandleSync(f.doc, m, c)
			f.mu.Unlock()
			if err != nil {
				f.t.Errorf("server: apply update: %v", err)
			}
			if reply != nil {
				send(reply)
			}
		case yproto.MessageAwareness:
			f.mu.Lock()
			f.broadcastLocked(data)
			f.mu.Unlock()
		case yproto.MessageRaw:
			d := yjs.NewDecoder(m.Payload)
			if s, _ := d.ReadVarString(); s == "save" {
				id, _ := d.ReadVarUint()
				f.mu.Lock()
				f.saves++
				if f.file.skip > 0 {
					f.file.skip--
				} else if !f.file.readOnly && !f.file.gone && !f.file.full {
					// Written: the room records the file's hash, as
					// jupyter-collaboration does after each save.
					f.file.version++
					nb, err := notebookOf(f.doc)
					if err != nil {
						f.t.Errorf("server: read the document to save it: %v", err)
					}
					f.file.content, _ = json.Marshal(nb)
					state := f.doc.GetMap("state")
					f.doc.Transact(func(*yjs.Transaction) { _ = state.Set("hash", fmt.Sprintf("v%d", f.file.version)) })
				}
				held, asked := f.held, f.asked
				f.mu.Unlock()
				e := yjs.NewEncoder()
				e.WriteVarUint(yproto.MessageRaw)
				e.WriteVarString(fmt.Sprintf(`{"type":"save","responseTo":%d,"status":"success"}`, id))
				if asked != nil {
					asked <- struct{}{}
				}
				go func() { // held answers wait without stopping the room
					if held != nil {
						<-held
					}
					send(e.Bytes())
				}()
			}
		}
	}
}

func (f *fakeRoom) notebook(t *testing.T) *notebook.Notebook {
	f.mu.Lock()
	defer f.mu.Unlock()
	nb, err := notebookOf(f.doc)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// waitFor waits until the room's document satisfies ok.
func waitFor(t *testing.T, r *Room, what string, ok func(nb *notebook.Notebook) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		changed := r.changed
		nb, err := notebookOf(r.doc)
		r.mu.Unlock()
		if err == nil && ok(nb) {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			data, _ := json.Marshal(nb)
			t.Fatalf("the room never got %s; it holds %s", what, data)
		}
	}
}

func TestRoomSyncsEditsAndSaves(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	nb, err := r.Notebook()
	if err != nil || len(nb.Cells) != 3 || nb.Cells[1].Source != "x = 1\nprint(x)" {
		t.Fatalf("joined document: %v %v", nb, err)
	}
	if _, err := r.Edit(func(nb *notebook.Notebook) error {
		_, _, err := nb.Insert(notebook.Position{}, notebook.Code, "from agent")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Save returns after the barrier: the server has the edit.
	if got := f.notebook(t); len(got.Cells) != 4 || got.Cells[3].Source != "from agent" || f.saves != 1 {
		t.Fatalf("server after save: %d cells, %d saves", len(got.Cells), f.saves)
	}
}

// openTab joins the room as a browser tab does and returns its socket,
// past the server's greeting (its sync step 1).
func (f *fakeRoom) openTab(t *testing.T) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.url, "http")+"/api/collaboration/room/json:notebook:f1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	return ws
}

// A barrier is a question for the room's server alone: an open tab gets
// the agent's edits and nothing more, one message per edit, so that each
// edit costs the person's page as little as it can.
func TestBarrierReachesNoOtherPeer(t *testing.T) {
	f, r := joined(t)
	tab := f.openTab(t)
	const edits = 5
	for i := range edits {
		if _, err := r.Edit(func(nb *notebook.Notebook) error {
			_, err := nb.SetSource(notebook.Ref{ID: "c2"}, fmt.Sprintf("agent %d", i))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := r.Barrier(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// The person's edit closes the tab's count: the server broadcasts in
	// order, so what the tab got before it is everything the agent caused.
	personTypes(f, 0, "person ")
	tabDoc := yjs.NewDoc()
	if err := tab.WriteMessage(websocket.BinaryMessage, yproto.SyncStep1For(tabDoc)); err != nil {
		t.Fatal(err)
	}
	_ = tab.SetReadDeadline(time.Now().Add(10 * time.Second))
	counts := map[string]int{}
	for {
		_, data, err := tab.ReadMessage()
		if err != nil {
			t.Fatalf("the tab never got the person's edit; it got %v: %v", counts, err)
		}
		m, err := yproto.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Type == yproto.MessageSync && m.SyncType == yproto.SyncStep2: // the tab's own question
			if err := tabDoc.ApplyUpdate(m.Payload, nil); err != nil {
				t.Fatal(err)
			}
		case m.Type == yproto.MessageSync && m.SyncType == yproto.SyncUpdate:
			counts["update"]++
			if err := tabDoc.ApplyUpdate(m.Payload, nil); err != nil {
				t.Fatal(err)
			}
		case m.Type == yproto.MessageAwareness:
			counts["awareness"]++
		default:
			counts[fmt.Sprintf("type %d/%d", m.Type, m.SyncType)]++
		}
		if c, ok := cellAt(tabDoc.GetArray("cells"), 0); ok {
			if src, _ := c.GetText("source"); src != nil && strings.HasPrefix(src.String(), "person ") {
				break
			}
		}
	}
	if want := map[string]int{"update": edits + 1}; !maps.Equal(counts, want) {
		t.Fatalf("the tab got %v for %d agent edits and the person's, want %v", counts, edits, want)
	}
}

// Barriers asked at once, from many callers, all return, each once the
// server has its caller's edit.
func TestBarriersAskedAtOnce(t *testing.T) {
	f, r := joined(t)
	f.mu.Lock()
	f.stalled = make(chan struct{})
	f.mu.Unlock()
	const callers = 20
	done := make(chan error, callers)
	for i := range callers {
		go func() {
			if _, err := r.Edit(func(nb *notebook.Notebook) error {
				_, _, err := nb.Insert(notebook.Position{}, notebook.Code, fmt.Sprintf("caller %d", i))
				return err
			}); err != nil {
				done <- err
				return
			}
			if err := r.Barrier(t.Context()); err != nil {
				done <- err
				return
			}
			f.mu.Lock()
			nb, err := notebookOf(f.doc)
			f.mu.Unlock()
			if err != nil {
				done <- err
				return
			}
			for _, c := range nb.Cells {
				if c.Source == fmt.Sprintf("caller %d", i) {
					done <- nil
					return
				}
			}
			done <- fmt.Errorf("caller %d's barrier returned before the server had its edit", i)
		}()
	}
	// The server stalls on the first message it reads, so the callers'
	// questions queue up behind it.
	f.mu.Lock()
	close(f.stalled)
	f.stalled = nil
	f.mu.Unlock()
	for range callers {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.notebook(t); len(got.Cells) != 3+callers {
		t.Fatalf("the server has %d cells after every barrier returned, want %d", len(got.Cells), 3+callers)
	}
}

// A sync step 2 answers the oldest question asked on the connection it
// came on, if that is the room's current one: the handshake's while it
// syncs, else the oldest barrier's, dropping those of lost connections.
func TestRoomSyncAnswered(t *testing.T) {
	old, cur := &websocket.Conn{}, &websocket.Conn{}
	tests := []struct {
		name    string
		on      *websocket.Conn
		syncing bool
		queued  []*websocket.Conn // the barriers' connections, oldest first
		want    []bool            // which barriers are answered
		left    int               // how many stay queued
		synced  bool              // whether the handshake completed
	}{
		{name: "the oldest barrier", on: cur, queued: []*websocket.Conn{cur, cur}, want: []bool{true, false}, left: 1},
		{name: "past a lost connection's", on: cur, queued: []*websocket.Conn{old, cur, cur}, want: []bool{false, true, false}, left: 1},
		{name: "the handshake first", on: cur, syncing: true, queued: []*websocket.Conn{cur}, want: []bool{false}, left: 1, synced: true},
		{name: "none, from a replaced connection", on: old, queued: []*websocket.Conn{cur}, want: []bool{false}, left: 1},
		{name: "none, from a replaced connection while syncing", on: old, syncing: true, queued: []*websocket.Conn{cur}, want: []bool{false}, left: 1},
		{name: "nothing asked", on: cur},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Room{ws: cur}
			var synced chan struct{}
			if tc.syncing {
				synced = make(chan struct{})
				r.synced = synced
			}
			var bs []barrier
			for _, ws := range tc.queued {
				bs = append(bs, barrier{ws: ws, answered: make(chan struct{})})
			}
			r.barriers = slices.Clone(bs)
			r.syncAnswered(tc.on)
			if len(r.barriers) != tc.left {
				t.Errorf("%d barriers left queued, want %d", len(r.barriers), tc.left)
			}
			for i, b := range bs {
				select {
				case <-b.answered:
					if !tc.want[i] {
						t.Errorf("barrier %d answered", i)
					}
				default:
					if tc.want[i] {
						t.Errorf("barrier %d not answered", i)
					}
				}
			}
			if tc.syncing {
				select {
				case <-synced:
					if !tc.synced {
						t.Error("the handshake completed")
					}
				default:
					if tc.synced {
						t.Error("the handshake did not complete")
					}
				}
			}
		})
	}
}

// After a dropped connection the room reconnects and both sides catch up
// on what happened meanwhile.
func TestRoomResyncsAfterReconnect(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.dropAll()
	// Meanwhile: a person edits on the server, the agent edits offline.
	f.mu.Lock()
	f.doc.Transact(func(*yjs.Transaction) {
		c, _ := cellAt(f.doc.GetArray("cells"), 0)
		src, _ := c.GetText("source")
		_ = src.Insert(0, "person ")
	})
	f.mu.Unlock()
	if _, err := r.Edit(func(nb *notebook.Notebook) error {
		_, err := nb.SetSource(notebook.Ref{ID: "c2"}, "agent offline")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "the person's edit", func(nb *notebook.Notebook) bool { return nb.Cells[0].Source == "person # Title" })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.notebook(t); got.Cells[2].Source != "agent offline" || got.Cells[0].Source != "person # Title" {
		t.Fatalf("server after resync: %q, %q", got.Cells[0].Source, got.Cells[2].Source)
	}
}

// An edit made while the connection is down is saved once the room is back:
// Save waits out the reconnection instead of failing, since a failure
// would make the agent make an edit twice that lands anyway.
func TestSaveWaitsOutADroppedConnection(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.mu.Lock()
	f.refuse = true
	f.mu.Unlock()
	f.dropAll()
	for { // the room has seen the drop (and cannot reconnect yet)
		r.mu.Lock()
		down := r.ws == nil
		r.mu.Unlock()
		if down {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a condition; the test's timeout bounds it
	}
	if _, err := r.Edit(func(nb *notebook.Notebook) error {
		_, _, err := nb.Insert(notebook.Position{}, notebook.Code, "while down")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	saved := make(chan error, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	go func() { saved <- r.Save(ctx) }()
	f.mu.Lock()
	f.refuse = false
	f.mu.Unlock()
	if err := <-saved; err != nil {
		t.Fatalf("Save across a dropped connection: %v", err)
	}
	got := f.notebook(t)
	n := 0
	for _, c := range got.Cells {
		if c.Source == "while down" {
			n++
		}
	}
	if n != 1 || f.saves != 1 {
		t.Fatalf("server after the reconnection: the edit %d times, %d saves", n, f.saves)
	}
}

// A restarted server rebuilds the room from the file: the room starts from
// that document instead of merging its old one into it (which would double
// every cell).
func TestRoomStartsOverAfterServerRestart(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.reset("s2", strings.Replace(sample, "# Title", "# Reloaded", 1))
	f.dropAll()
	waitFor(t, r, "the reloaded document", func(nb *notebook.Notebook) bool {
		return len(nb.Cells) == 3 && nb.Cells[0].Source == "# Reloaded"
	})
	if got := f.notebook(t); len(got.Cells) != 3 {
		t.Fatalf("the server's document has %d cells after the room rejoined, want 3", len(got.Cells))
	}
}

// A server that stops reading blocks the write of an edit, and only that:
// readers of the live document go on (the update is written after the
// room's lock is released), and the edit reaches the server once it reads
// again.
func TestStalledSocketDoesNotBlockReaders(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Small socket buffers on both ends, so that a few MiB fill them.
	r.mu.Lock()
	if err := r.ws.UnderlyingConn().(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	r.mu.Unlock()
	f.mu.Lock()
	for c := range f.conns {
		if err := c.UnderlyingConn().(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
	}
	f.stalled = make(chan struct{})
	f.mu.Unlock()
	// The server reads this one message, then stops: everything after it
	// stays in the socket buffers.
	if err := r.send(nil, yproto.EncodeUpdate(yjs.EmptyUpdate)); err != nil {
		t.Fatal(err)
	}
	// 4 cells of almost 1 MiB (a cell's limit): more than the socket
	// buffers hold.
	const added = 4
	src := strings.Repeat("x", 1<<20-1)
	edited := make(chan error, 1)
	go func() {
		_, err := r.Edit(func(nb *notebook.Notebook) error {
			for range added {
				if _, _, err := nb.Insert(notebook.Position{}, notebook.Code, src); err != nil {
					return err
				}
			}
			return nil
		})
		edited <- err
	}()
	read := make(chan struct{})
	go func() {
		defer close(read)
		for {
			r.mu.Lock()
			changed := r.changed
			r.mu.Unlock()
			if nb, err := r.Notebook(); err == nil && len(nb.Cells) == 3+added {
				return
			}
			<-changed
		}
	}()
	// The write blocks until its 30 s deadline; a reader that waited for it
	// would not get through in 25 (which leaves the edit's own work, slow
	// under the race detector, plenty of time).
	select {
	case <-read:
	case err := <-edited:
		t.Fatalf("the edit returned (%v) while the server was not reading", err)
	case <-time.After(25 * time.Second):
		t.Fatal("a reader could not read the document while an edit's write was blocked")
	}
	f.mu.Lock()
	close(f.stalled)
	f.stalled = nil
	f.mu.Unlock()
	if err := <-edited; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := r.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.notebook(t); len(got.Cells) != 3+added || got.Cells[3+added-1].Source != src {
		t.Fatalf("the server has %d cells, want %d with the agent's sources", len(got.Cells), 3+added)
	}
}

// roomGoroutines counts the goroutines running the package's own loops.
func roomGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, loop := range []string{"rtc.(*Room).readLoop", "rtc.(*Room).renewPresence", "rtc.(*Rooms).leaveIdle", "rtc.(*Room).disconnected"} {
			if strings.Contains(g, loop) {
				n++
				break
			}
		}
	}
	return n
}

// waitGoroutines waits until roomGoroutines is want (goroutines start and
// end asynchronously).
func waitGoroutines(t *testing.T, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for roomGoroutines() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d room goroutines %s, want %d", roomGoroutines(), when, want)
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
}

// Closing the rooms ends every goroutine they started: the read loop, the
// presence renewal and the idle sweep; a join after Close is refused.
func TestRoomsCloseStopsGoroutines(t *testing.T) {
	_, jc := newFakeRoom(t, sample)
	rs := &Rooms{Jupyter: jc, Log: zerolog.Nop()}
	if _, err := rs.Load(t.Context(), "n.ipynb"); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, 3, "while joined (read loop, presence, idle sweep)")
	rs.Close()
	waitGoroutines(t, 0, "after Close")
	if _, err := rs.Load(t.Context(), "n.ipynb"); err == nil {
		t.Fatal("a join after Close was accepted")
	}
}

// The change hook hears of a person's edit and of the agent's own, each
// after it is in the document, and not of the room's saved/dirty state.
func TestRoomTellsChanges(t *testing.T) {
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The hook runs before the room applies its next update, so what it
	// reads is the document as the change left it.
	told := make(chan string, 16)
	r.watch(func() {
		nb, err := r.Notebook()
		if err != nil {
			told <- err.Error()
			return
		}
		told <- nb.Cells[0].Source
	})
	f.mu.Lock()
	f.doc.Transact(func(*yjs.Transaction) { _ = f.doc.GetMap("state").Set("dirty", true) })
	f.doc.Transact(func(*yjs.Transaction) {
		c, _ := cellAt(f.doc.GetArray("cells"), 0)
		src, _ := c.GetText("source")
		_ = src.Insert(0, "person ")
	})
	f.mu.Unlock()
	select {
	case got := <-told:
		if got != "person # Title" {
			t.Fatalf("the first change told was not the person's edit: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the person's edit was not told")
	}
	if _, err := r.Edit(func(nb *notebook.Notebook) error {
		_, err := nb.SetSource(notebook.Ref{ID: "m1"}, "agent")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-told:
		if got != "agent" {
			t.Fatalf("told %q after the agent's edit", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's edit was not told")
	}
}

// joined is a room joined to a fake server holding sample.
func joined(t *testing.T) (*fakeRoom, *Room) {
	t.Helper()
	f, jc := newFakeRoom(t, sample)
	r, err := Join(t.Context(), jc, "n.ipynb", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return f, r
}

// readOf is the room's kept read of its document (nil if none).
func readOf(r *Room) *notebook.Notebook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.read
}

// waitUpdates waits until the room has applied more than n updates.
func waitUpdates(t *testing.T, r *Room, n uint64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		changed, got := r.changed, r.updates
		r.mu.Unlock()
		if got > n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("the room applied no update after the %dth", n)
		}
	}
}

// personTypes is a person inserting text at the start of cell i's source.
func personTypes(f *fakeRoom, i int, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doc.Transact(func(*yjs.Transaction) {
		c, _ := cellAt(f.doc.GetArray("cells"), i)
		src, _ := c.GetText("source")
		_ = src.Insert(0, text)
	})
}

// A read of the live notebook is kept until the document changes, and
// every change, whoever makes it and however it arrives, is in the next
// read: the kept read is never stale.
func TestRoomNotebookReadSeesEveryChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fakeRoom, r *Room)
		want   func(nb *notebook.Notebook) bool
	}{
		{"a person's edit", func(t *testing.T, f *fakeRoom, r *Room) {
			personTypes(f, 0, "person ")
		}, func(nb *notebook.Notebook) bool { return nb.Cells[0].Source == "person # Title" }},
		{"the agent's edit", func(t *testing.T, f *fakeRoom, r *Room) {
			if _, err := r.Edit(func(nb *notebook.Notebook) error {
				_, err := nb.SetSource(notebook.Ref{ID: "c2"}, "agent")
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}, func(nb *notebook.Notebook) bool { return nb.Cells[2].Source == "agent" }},
		{"a person's edit while disconnected, synced on reconnecting", func(t *testing.T, f *fakeRoom, r *Room) {
			f.dropAll()
			personTypes(f, 1, "# offline\n")
		}, func(nb *notebook.Notebook) bool { return nb.Cells[1].Source == "# offline\nx = 1\nprint(x)" }},
		{"a restarted server's new document", func(t *testing.T, f *fakeRoom, r *Room) {
			f.reset("s2", strings.Replace(sample, "# Title", "# Reloaded", 1))
			f.dropAll()
		}, func(nb *notebook.Notebook) bool { return len(nb.Cells) == 3 && nb.Cells[0].Source == "# Reloaded" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, r := joined(t)
			before, err := r.Notebook()
			if err != nil || tc.want(before) {
				t.Fatalf("before the change: %v, or it is already there", err)
			}
			tc.change(t, f, r)
			waitFor(t, r, "the change", tc.want) // in the document (read without the kept read)
			nb, err := r.Notebook()
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(nb) {
				data, _ := json.Marshal(nb)
				t.Fatalf("the document has the change, the read does not: %s", data)
			}
		})
	}
}

// Reads of an unchanged document, and changes to the room's own state (its
// saved/dirty flag), do not read the document again.
func TestRoomNotebookReadIsKept(t *testing.T) {
	f, r := joined(t)
	first, err := r.Notebook()
	if err != nil {
		t.Fatal(err)
	}
	kept := readOf(r)
	second, err := r.Notebook()
	if err != nil {
		t.Fatal(err)
	}
	if kept == nil || readOf(r) != kept {
		t.Fatal("a second read of an unchanged document read it again")
	}
	if first == second || first == kept || !sameNotebook(first, second) {
		t.Fatal("two reads share a notebook, or differ")
	}
	n := r.Updates()
	f.mu.Lock()
	f.doc.Transact(func(*yjs.Transaction) { _ = f.doc.GetMap("state").Set("dirty", true) })
	f.mu.Unlock()
	waitUpdates(t, r, n)
	if readOf(r) != kept {
		t.Fatal("a change of the room's state dropped the read of the notebook")
	}
	n = r.Updates()
	personTypes(f, 0, "person ")
	waitUpdates(t, r, n)
	if readOf(r) != nil {
		t.Fatal("a change of a cell kept the read of the notebook")
	}
}

// scribble changes every part of nb in place, as a careless caller might.
func scribble(nb *notebook.Notebook) {
	nb.Metadata[0] = ' '
	for _, c := range nb.Cells {
		c.Source += "!"
		c.Metadata[0] = ' '
		for _, o := range c.Outputs {
			o[0] = ' '
		}
		if c.ExecutionCount != nil {
			*c.ExecutionCount = 99
		}
	}
	nb.Cells[0] = &notebook.Cell{ID: "x", Type: notebook.Raw}
	nb.Cells = append(nb.Cells, &notebook.Cell{ID: "y", Type: notebook.Raw})
}

// No reader can change what another reads: each read, and each edit's
// notebook, is its own copy, also while others read and edit at the same
// time (run with -race).
func TestRoomNotebookReadsAreNotShared(t *testing.T) {
	f, r := joined(t)
	want := f.notebook(t)
	nb, err := r.Notebook()
	if err != nil {
		t.Fatal(err)
	}
	scribble(nb)
	failed := errors.New("refused")
	if _, err := r.Edit(func(nb *notebook.Notebook) error {
		scribble(nb)
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("a failed edit returned %v", err)
	}
	if got, err := r.Notebook(); err != nil || !sameNotebook(got, want) {
		t.Fatalf("a read after others changed their copies differs from the document: %v", err)
	}

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				nb, err := r.Notebook()
				if err != nil {
					t.Error(err)
					return
				}
				scribble(nb)
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			if _, err := r.Edit(func(nb *notebook.Notebook) error {
				_, err := nb.SetSource(notebook.Ref{ID: "c2"}, fmt.Sprint("edit ", i))
				return err
			}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	got, err := r.Notebook()
	if err != nil {
		t.Fatal(err)
	}
	want.Cells[2].Source = "edit 9"
	if !sameNotebook(got, want) {
		data, _ := json.Marshal(got)
		t.Fatalf("after concurrent reads and edits the notebook is %s", data)
	}
}
