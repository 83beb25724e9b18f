package embed

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func next(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	default:
		t.Fatal("no event")
		return Event{}
	}
}

func TestHubLinksViewsAndSessions(t *testing.T) {
	var moved [][2]string
	h := &Hub{OnViewChange: func(s, p string) { moved = append(moved, [2]string{s, p}) }}
	events, cancel := h.subscribe("v1", "p1")
	defer cancel()

	h.AgentSwitched("s1", "a.ipynb") // not linked yet: nothing for v1
	if len(events) != 0 {
		t.Fatalf("unlinked session reached the view: %v", next(t, events))
	}
	if showing, moves := h.Link("v1", "s1"); showing != "" || !moves {
		t.Fatalf("Link = %q, %v", showing, moves)
	}
	if e := next(t, events); e.Type != "linked" {
		t.Fatalf("event %+v", e)
	}
	if e := next(t, events); e.Type != "show" || e.Path != "a.ipynb" {
		t.Fatalf("after link: %+v, want show a.ipynb", e)
	}
	h.AgentSwitched("s2", "other.ipynb") // another session
	h.AgentSwitched("s1", "b.ipynb")
	if e := next(t, events); e.Path != "b.ipynb" {
		t.Fatalf("event %+v, want show b.ipynb only", e)
	}
	h.ViewShows("v1", "p1", "c.ipynb")
	if len(moved) != 1 || moved[0] != [2]string{"s1", "c.ipynb"} {
		t.Fatalf("view change moved %v", moved)
	}
	if e := next(t, events); e.Type != "current" || e.Path != "c.ipynb" {
		t.Fatalf("after the person's switch: %+v, want current c.ipynb", e)
	}
	if id, p := h.Showing("s1"); id != "v1" || p != "c.ipynb" {
		t.Fatalf("Showing = %s %s", id, p)
	}
	h.ViewShows("v1", "p1", "") // the person closed the tab: shown nothing, same session notebook
	if len(moved) != 1 {
		t.Fatalf("a page showing nothing moved the session: %v", moved)
	}
	if id, p := h.Showing("s1"); id != "v1" || p != "" {
		t.Fatalf("Showing after the tab closed = %s %q", id, p)
	}
	if len(events) != 0 {
		t.Fatalf("a page showing nothing changed the session's notebook: %+v", next(t, events))
	}
	h.ViewShows("v1", "p1", "c.ipynb")
	h.ViewShows("v2", "p2", "d.ipynb") // an unlinked view moves no session
	if len(moved) != 2 {
		t.Fatalf("unlinked view moved a session: %v", moved)
	}
	h.Forget("s1")
	if id, _ := h.Showing("s1"); id != "" {
		t.Fatal("forgotten session still linked")
	}
}

// A page that connects after the agent switched still learns the notebook.
func TestLateSubscriberCatchesUp(t *testing.T) {
	h := &Hub{}
	h.Link("v", "s")
	h.AgentSwitched("s", "x.ipynb")
	events, cancel := h.subscribe("v", "p")
	defer cancel()
	if e := next(t, events); e.Type != "show" || e.Path != "x.ipynb" {
		t.Fatalf("first event %+v", e)
	}
}

// A session without a notebook that links to a page adopts the page's
// notebook, and the page is told.
func TestLinkAdoptsShownNotebook(t *testing.T) {
	h := &Hub{}
	events, cancel := h.subscribe("v", "p")
	defer cancel()
	h.ViewShows("v", "p", "p.ipynb")
	if showing, _ := h.Link("v", "s"); showing != "p.ipynb" {
		t.Fatalf("Link = %q", showing)
	}
	if e := next(t, events); e.Type != "linked" {
		t.Fatalf("event %+v", e)
	}
	if e := next(t, events); e.Type != "current" || e.Path != "p.ipynb" {
		t.Fatalf("event %+v, want current p.ipynb", e)
	}
}

// Views nothing uses are forgotten: the table does not grow with every page
// ever opened.
func TestHubForgetsIdleViews(t *testing.T) {
	h := &Hub{}
	_, cancel := h.subscribe("page", "p1")
	h.ViewShows("page", "p1", "a.ipynb")
	cancel()                              // the page closed, nobody linked it
	h.ViewShows("stray", "p2", "b.ipynb") // a report from a page that never listened
	h.Link("linked", "s1")                // linked: kept until the session ends
	if _, ok := h.views["page"]; ok {
		t.Error("a closed, unlinked page's view was kept")
	}
	if _, ok := h.views["stray"]; ok {
		t.Error("a view nobody listens to was kept")
	}
	if _, ok := h.views["linked"]; !ok {
		t.Fatal("a linked view was dropped")
	}
	h.Forget("s1")
	if n := len(h.views); n != 0 {
		t.Errorf("%d views left after every session and page went away", n)
	}
}

func TestValidNotebookPath(t *testing.T) {
	for p, want := range map[string]bool{
		"a.ipynb": true, "dir/a b.ipynb": true,
		"/etc/a.ipynb": false, "../a.ipynb": false, "a/../b.ipynb": false, "./a.ipynb": false,
		"a//b.ipynb": false, `a\b.ipynb`: false, "a.txt": false, "a.ipynb\x00": false,
	} {
		if got := validNotebookPath(p); got != want {
			t.Errorf("validNotebookPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// A call without a session (protocol 2026-07-28) moves no view: a page that
// is not linked yet, opening, is not sent the notebook of such a call.
func TestSessionlessCallsMoveNoView(t *testing.T) {
	h := &Hub{}
	h.AgentSwitched("", "stateless.ipynb")
	events, cancel := h.subscribe("v1", "p1")
	defer cancel()
	if len(events) != 0 {
		t.Fatalf("an unlinked view was sent %+v", next(t, events))
	}
}

// A page moves the linked session when its view id is one the hub issued,
// or when the page (its instance key, which survives a reload) showed the
// view as the session linked it; any other page, e.g. one a site opened
// with a view id it knew and a notebook of its choosing, changes nothing.
func TestWhichPagesMoveASession(t *testing.T) {
	for _, tc := range []struct {
		name     string
		issued   bool
		atLink   []string // pages listening when the session links
		reload   bool     // the reporting page reconnects first
		reporter string
		moves    bool // what Link says
		moved    bool
	}{
		{name: "chosen id, a page there at the link", atLink: []string{"p1", "p2"}, reporter: "p2", moves: true, moved: true},
		{name: "chosen id, that page reloaded", atLink: []string{"p1"}, reload: true, reporter: "p1", moves: true, moved: true},
		{name: "chosen id, a page opened after the link", atLink: []string{"p1"}, reporter: "p3", moves: true},
		{name: "chosen id, no page at the link", reporter: "p3"},
		{name: "issued id, no page at the link", issued: true, reporter: "p3", moves: true, moved: true},
		{name: "issued id, a page opened after the link", issued: true, atLink: []string{"p1"}, reporter: "p3", moves: true, moved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var moved []string
			h := &Hub{OnViewChange: func(_, p string) { moved = append(moved, p) }}
			id := "chat-42"
			if tc.issued {
				id = h.NewViewID()
			}
			var bound []<-chan Event
			var reloads func()
			for _, p := range tc.atLink {
				ch, cancel := h.subscribe(id, p)
				if tc.reload && p == tc.reporter {
					reloads = cancel
					continue
				}
				defer cancel()
				bound = append(bound, ch)
			}
			if _, moves := h.Link(id, "s"); moves != tc.moves {
				t.Fatalf("Link says the person moves the session: %v, want %v", moves, tc.moves)
			}
			if reloads != nil {
				reloads()
			}
			if !slices.Contains(tc.atLink, tc.reporter) || tc.reload {
				_, cancel := h.subscribe(id, tc.reporter)
				defer cancel()
			}
			for _, ch := range bound {
				for len(ch) > 0 {
					<-ch // "linked"
				}
			}
			err := h.ViewShows(id, tc.reporter, "other.ipynb")
			if errors.Is(err, ErrPageNotLinked) == tc.moved {
				t.Fatalf("ViewShows = %v", err)
			}
			if _, showing := h.Showing("s"); (showing == "other.ipynb") != tc.moved {
				t.Errorf("the session's view shows %q", showing)
			}
			if (len(moved) == 1) != tc.moved {
				t.Errorf("the session moved to %v", moved)
			}
			for _, ch := range bound {
				if (len(ch) > 0) != tc.moved {
					t.Errorf("%d events for the linked pages", len(ch))
				}
			}
		})
	}
}

// Issued ids are 32 URL-safe characters (128 random bits and a MAC); the
// hub knows its own from any other.
func TestIssuedViewIDs(t *testing.T) {
	h, other := &Hub{}, &Hub{}
	id := h.NewViewID()
	if len(id) != 32 || !validView.MatchString(id) {
		t.Fatalf("NewViewID = %q", id)
	}
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == c {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	if h.NewViewID() == id {
		t.Error("two issued ids are equal")
	}
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{id, true},
		{"chat-42", false},
		{other.NewViewID(), false},
		{flip(id, 0), false},         // another random part
		{flip(id, len(id)-2), false}, // another MAC
		{id[:31], false},             // too short
		{strings.Repeat("A", 32), false},
	} {
		h.mu.Lock()
		got := h.issuedLocked(tc.id)
		h.mu.Unlock()
		if got != tc.want {
			t.Errorf("issued(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
