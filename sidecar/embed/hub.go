// Package embed serves the embed page (<lab>/mcp/embed): JupyterLab in an
// iframe beside a small panel, kept in step with an MCP session. When the
// agent switches notebooks the page shows the new one; when the person
// opens another notebook in the page, the agent's session follows.
//
// A page has a view id (in its URL). An MCP session links itself to a view
// with the link_view tool; only linked sessions move a view, and a view
// moves only the session linked to it.
package embed

import (
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
	views   map[string]*view
	linkOf  map[string]string // view -> session
	current map[string]string // session -> the agent's current notebook
}

type view struct {
	showing string
	subs    map[chan Event]struct{}
}

func (h *Hub) initLocked() {
	if h.views == nil {
		h.views, h.linkOf, h.current = map[string]*view{}, map[string]string{}, map[string]string{}
	}
}

func (h *Hub) viewLocked(id string) *view {
	h.initLocked()
	v, ok := h.views[id]
	if !ok {
		v = &view{subs: map[chan Event]struct{}{}}
		h.views[id] = v
	}
	return v
}

// Link makes session the one that view follows (a view follows one session;
// a later link replaces an earlier one). It returns what the view shows; a
// session without a notebook adopts it.
func (h *Hub) Link(viewID, session string) (showing string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.viewLocked(viewID)
	h.linkOf[viewID] = session
	h.sendLocked(v, Event{Type: "linked"})
	if cur := h.current[session]; cur != "" {
		h.sendLocked(v, Event{Type: "show", Path: cur})
	} else if v.showing != "" {
		h.current[session] = v.showing
		h.sendLinkedLocked(session, Event{Type: "current", Path: v.showing})
	}
	return v.showing
}

// Showing reports what the views linked to session show, or "".
func (h *Hub) Showing(session string) (viewID, path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.initLocked()
	for id, s := range h.linkOf {
		if s == session {
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

// ViewShows records that a page now shows path and moves the linked
// session's current notebook there. An empty path means the page shows no
// notebook (the person closed its tab): the session keeps its notebook.
func (h *Hub) ViewShows(viewID, path string) {
	h.mu.Lock()
	v := h.viewLocked(viewID)
	v.showing = path
	session := h.linkOf[viewID]
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
}

// Forget drops a closed session's links, and the views nothing uses any
// more.
func (h *Hub) Forget(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.linkOf {
		if s == session {
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
	if v, ok := h.views[id]; ok && len(v.subs) == 0 && h.linkOf[id] == "" {
		delete(h.views, id)
	}
}

// subscribe returns a channel of a view's events, starting with the
// notebook its linked session uses (a page that connects late still
// catches up); cancel ends it.
func (h *Hub) subscribe(viewID string) (<-chan Event, func()) {
	ch := make(chan Event, 64)
	h.mu.Lock()
	v := h.viewLocked(viewID)
	v.subs[ch] = struct{}{}
	if session, linked := h.linkOf[viewID]; linked && h.current[session] != "" {
		ch <- Event{Type: "show", Path: h.current[session]}
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
	for id, s := range h.linkOf {
		if s == session {
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
