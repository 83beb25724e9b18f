// Package embed serves the embed page (<lab>/mcp/embed): JupyterLab in an
// iframe beside a small panel, kept in step with an MCP session. When the
// agent switches notebooks the page shows the new one; when the person
// opens another notebook in the page, the agent's session follows.
//
// A page has a view id (in its URL). An MCP session links itself to a view
// with the link_view tool; only linked sessions move a view, and a view
// moves only the session linked to it.
//
// Whoever knows a view id can send the person to a page of that view (with
// a notebook of their choosing in its URL), so a page may move a session
// only when its id is a secret or the page was there when the session
// linked: the sidecar issues ids of 128 random bits, which any page holding
// one may use, and an id an embedder chose is bound, at each link, to the
// pages (by their instance key) that show it then.
package embed

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Event is something a page is told: a notebook to show, the session's
// current notebook (which the page shows already), or agent activity.
type Event struct {
	Type string `json:"type"` // "show", "current", "activity", "linked"
	Path string `json:"path,omitempty"`
	// Activity
	Tool       string `json:"tool,omitempty"`
	OK         bool   `json:"ok,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	At         string `json:"at,omitempty"`
}

// Hub links views and MCP sessions.
type Hub struct {
	// OnViewChange is called when a view linked to session starts showing
	// path (the person opened it); it makes path the session's current
	// notebook.
	OnViewChange func(session, path string)

	mu      sync.Mutex
	key     []byte // signs the view ids the hub issues
	views   map[string]*view
	linkOf  map[string]link   // view -> its session
	current map[string]string // session -> the agent's current notebook
}

type view struct {
	showing string
	subs    map[chan Event]string // -> the listening page's instance key
}

type link struct {
	session string
	// pages are the instance keys of the pages that may move the session:
	// those that showed the view when it was linked. Nil for an id the hub
	// issued, which every page holding it may use.
	pages map[string]bool
}

func (l link) movableBy(page string) bool { return l.pages == nil || l.pages[page] }

// ErrPageNotLinked is ViewShows' answer to a page that may not move the
// session linked to its view.
var ErrPageNotLinked = errors.New("this page did not show the view when its session linked it")

func (h *Hub) initLocked() {
	if h.views == nil {
		h.views, h.linkOf, h.current = map[string]*view{}, map[string]link{}, map[string]string{}
		h.key = make([]byte, 32)
		_, _ = rand.Read(h.key) // never fails (crypto/rand panics if it cannot read)
	}
}

// Issued view ids: 16 random bytes and 8 bytes of their HMAC under the
// hub's key, 32 URL-safe characters. The MAC lets the hub tell its ids from
// chosen ones without keeping a list; after a restart (a new key) an old
// id counts as chosen.
const randomLen, macLen = 16, 8

// NewViewID issues a view id: whoever holds it may move the session linked
// to it from any page.
func (h *Hub) NewViewID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	id := make([]byte, randomLen, randomLen+macLen)
	_, _ = rand.Read(id)
	return base64.RawURLEncoding.EncodeToString(append(id, h.macLocked(id)...))
}

func (h *Hub) macLocked(random []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(random)
	return m.Sum(nil)[:macLen]
}

// issuedLocked tells whether the hub issued id.
func (h *Hub) issuedLocked(id string) bool {
	b, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil && len(b) == randomLen+macLen && hmac.Equal(b[randomLen:], h.macLocked(b[:randomLen]))
}

func (h *Hub) viewLocked(id string) *view {
	h.initLocked()
	v, ok := h.views[id]
	if !ok {
		v = &view{subs: map[chan Event]string{}}
		h.views[id] = v
	}
	return v
}

// Link makes session the one that view follows (a view follows one session;
// a later link replaces an earlier one). It returns what the view shows; a
// session without a notebook adopts it. personMoves tells whether any page
// may move the session: always for an issued id; for a chosen one, only
// the pages showing it now may, so none if no page does.
func (h *Hub) Link(viewID, session string) (showing string, personMoves bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.viewLocked(viewID)
	l := link{session: session}
	if !h.issuedLocked(viewID) {
		l.pages = map[string]bool{}
		for _, page := range v.subs {
			l.pages[page] = true
		}
	}
	h.linkOf[viewID] = l
	h.sendLocked(v, Event{Type: "linked"})
	if cur := h.current[session]; cur != "" {
		h.sendLocked(v, Event{Type: "show", Path: cur})
	} else if v.showing != "" {
		h.current[session] = v.showing
		h.sendLinkedLocked(session, Event{Type: "current", Path: v.showing})
	}
	return v.showing, l.pages == nil || len(l.pages) > 0
}

// Showing reports what the views linked to session show, or "".
func (h *Hub) Showing(session string) (viewID, path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	for id, l := range h.linkOf {
		if l.session == session {
			return id, h.views[id].showing
		}
	}
	return "", ""
}

// AgentSwitched tells the views linked to session to show path. A call
// without a session (protocol 2026-07-28) has nothing a view could follow.
func (h *Hub) AgentSwitched(session, path string) {
	if session == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	h.current[session] = path
	h.sendLinkedLocked(session, Event{Type: "show", Path: path})
}

// Activity reports an agent's tool call to the views linked to session.
func (h *Hub) Activity(session, tool, path string, ok bool, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLinkedLocked(session, Event{Type: "activity", Tool: tool, Path: path, OK: ok,
		DurationMS: d.Milliseconds(), At: time.Now().UTC().Format(time.RFC3339)})
}

// ViewShows records that a page (its instance key) now shows path and
// moves the linked session's current notebook there. An empty path means
// the page shows no notebook (the person closed its tab): the session keeps
// its notebook. A page that may not move the linked session changes
// nothing and gets ErrPageNotLinked.
func (h *Hub) ViewShows(viewID, page, path string) error {
	h.mu.Lock()
	l, linked := h.linkOf[viewID]
	if linked && !l.movableBy(page) {
		h.mu.Unlock()
		return fmt.Errorf("view %s: %w", viewID, ErrPageNotLinked)
	}
	v := h.viewLocked(viewID)
	v.showing = path
	session := l.session
	if path == "" {
		session = ""
	}
	if session != "" {
		h.current[session] = path
		// Every page linked to the session names its new notebook.
		h.sendLinkedLocked(session, Event{Type: "current", Path: path})
	}
	h.forgetIdleLocked(viewID) // a report from a page that listens to nothing
	h.mu.Unlock()
	if session != "" && h.OnViewChange != nil {
		h.OnViewChange(session, path)
	}
	return nil
}

// Forget drops a closed session's links, and the views nothing uses any
// more.
func (h *Hub) Forget(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, l := range h.linkOf {
		if l.session == session {
			delete(h.linkOf, id)
			h.forgetIdleLocked(id)
		}
	}
	delete(h.current, session)
}

// forgetIdleLocked drops a view that no page listens to and no session is
// linked to, so the table does not grow with every page ever opened. A page
// that comes back starts afresh and reports what it shows.
func (h *Hub) forgetIdleLocked(id string) {
	if _, linked := h.linkOf[id]; linked {
		return
	}
	if v, ok := h.views[id]; ok && len(v.subs) == 0 {
		delete(h.views, id)
	}
}

// subscribe returns a channel of a view's events for a page (its instance
// key), starting with the notebook the linked session uses (a page that
// connects late still catches up); cancel ends it.
func (h *Hub) subscribe(viewID, page string) (<-chan Event, func()) {
	ch := make(chan Event, 64)
	h.mu.Lock()
	v := h.viewLocked(viewID)
	v.subs[ch] = page
	if l, linked := h.linkOf[viewID]; linked && h.current[l.session] != "" {
		ch <- Event{Type: "show", Path: h.current[l.session]}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(v.subs, ch)
		h.forgetIdleLocked(viewID)
		h.mu.Unlock()
	}
}

// sendLinkedLocked sends e to the views linked to session.
func (h *Hub) sendLinkedLocked(session string, e Event) {
	for id, l := range h.linkOf {
		if l.session == session {
			h.sendLocked(h.views[id], e)
		}
	}
}

// sendLocked delivers an event without blocking: a page that does not read
// loses activity lines, never the hub.
func (h *Hub) sendLocked(v *view, e Event) {
	for ch := range v.subs {
		select {
		case ch <- e:
		default:
		}
	}
}
