package embed

import (
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
	events, cancel := h.subscribe("v1")
	defer cancel()

	h.AgentSwitched("s1", "a.ipynb") // not linked yet: nothing for v1
	if len(events) != 0 {
		t.Fatalf("unlinked session reached the view: %v", next(t, events))
	}
	if showing := h.Link("v1", "s1"); showing != "" {
		t.Fatalf("Link = %q", showing)
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
	h.ViewShows("v1", "c.ipynb")
	if len(moved) != 1 || moved[0] != [2]string{"s1", "c.ipynb"} {
		t.Fatalf("view change moved %v", moved)
	}
	if e := next(t, events); e.Type != "current" || e.Path != "c.ipynb" {
		t.Fatalf("after the person's switch: %+v, want current c.ipynb", e)
	}
	if id, p := h.Showing("s1"); id != "v1" || p != "c.ipynb" {
		t.Fatalf("Showing = %s %s", id, p)
	}
	h.ViewShows("v1", "") // the person closed the tab: shown nothing, same session notebook
	if len(moved) != 1 {
		t.Fatalf("a page showing nothing moved the session: %v", moved)
	}
	if id, p := h.Showing("s1"); id != "v1" || p != "" {
		t.Fatalf("Showing after the tab closed = %s %q", id, p)
	}
	if len(events) != 0 {
		t.Fatalf("a page showing nothing changed the session's notebook: %+v", next(t, events))
	}
	h.ViewShows("v1", "c.ipynb")
	h.ViewShows("v2", "d.ipynb") // an unlinked view moves no session
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
	events, cancel := h.subscribe("v")
	defer cancel()
	if e := next(t, events); e.Type != "show" || e.Path != "x.ipynb" {
		t.Fatalf("first event %+v", e)
	}
}

// A session without a notebook that links to a page adopts the page's
// notebook, and the page is told.
func TestLinkAdoptsShownNotebook(t *testing.T) {
	h := &Hub{}
	events, cancel := h.subscribe("v")
	defer cancel()
	h.ViewShows("v", "p.ipynb")
	if showing := h.Link("v", "s"); showing != "p.ipynb" {
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
	_, cancel := h.subscribe("page")
	h.ViewShows("page", "a.ipynb")
	cancel()                        // the page closed, nobody linked it
	h.ViewShows("stray", "b.ipynb") // a report from a page that never listened
	h.Link("linked", "s1")          // linked: kept until the session ends
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
	events, cancel := h.subscribe("v1")
	defer cancel()
	if len(events) != 0 {
		t.Fatalf("an unlinked view was sent %+v", next(t, events))
	}
}
