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
