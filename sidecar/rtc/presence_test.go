package rtc

import (
	"reflect"
	"testing"
)

// The agent's entry lists the notebooks whose rooms it is in, in the order
// it joined them, and marks the one it used last as current.
func TestPresenceListsDocuments(t *testing.T) {
	p := &Presence{}
	check := func(docs []string, current any) {
		t.Helper()
		s := p.state()
		if !reflect.DeepEqual(s["documents"], docs) || s["current"] != current {
			t.Fatalf("state = documents %v current %v, want %v %v", s["documents"], s["current"], docs, current)
		}
	}
	check([]string{}, nil)
	p.Working("a.ipynb")
	p.Working("dir/b.ipynb")
	p.Working("a.ipynb")
	check([]string{"a.ipynb", "dir/b.ipynb"}, "notebook:a.ipynb")
	p.Left("a.ipynb")
	check([]string{"dir/b.ipynb"}, "notebook:dir/b.ipynb")
	p.Left("gone.ipynb")
	p.Left("dir/b.ipynb")
	check([]string{}, nil)
}
