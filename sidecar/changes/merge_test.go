package changes

import (
	"strings"
	"testing"
)

func TestRevert(t *testing.T) {
	tests := []struct {
		name                   string
		before, after, current string
		want                   string
		conflict               string // part of the conflict's text, if one
	}{
		{"nothing since", "a\nb\nc", "a\nB\nc", "a\nB\nc", "a\nb\nc", ""},
		{"person edited another line", "a\nb\nc", "a\nB\nc", "A!\nB\nc", "A!\nb\nc", ""},
		{"person added lines before and after", "x = 1\ny = 2", "x = 1\ny = 3", "# top\nx = 1\ny = 3\nprint(y)", "# top\nx = 1\ny = 2\nprint(y)", ""},
		{"person rewrote the agent's line", "a\nb\nc", "a\nB\nc", "a\nmine\nc", "", `now read "mine"`},
		{"person typed inside the agent's lines", "a\nz", "a\nB1\nB2\nz", "a\nB1\nmine\nB2\nz", "", "lines 2-3"},
		{"agent removed a line, nothing since", "a\nb\nc", "a\nc", "a\nc\nd", "a\nb\nc\nd", ""},
		{"agent removed a line, person inserted there", "a\nb\nc", "a\nc", "a\nmine\nc", "", "line 2"},
		{"agent appended, person edited first line", "a", "a\nb", "A\nb", "A", ""},
		// The agent inserted "b\n"; "bb\n" typed above it reads as "b\nb"
		// typed inside it, which Yjs's UndoManager would undo differently.
		{"line typed above an inserted line, starting like it", "a\nc", "a\nb\nc", "a\nbb\nb\nc", "", "line 2"},
		{"line typed above an inserted line", "a\nc", "a\nb\nc", "a\nz\nb\nc", "a\nz\nc", ""},
		{"agent appended, person edited the start of the line before", "ab", "ab\nc", "Xab\nc", "Xab", ""},
		// The change is two splices, one per changed line, as the sidecar
		// writes it: the person's line between them is outside both.
		{"two hunks, person between them", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nX\n3 edited\n4\nY", "1\n2\n3 edited\n4\n5", ""},
		{"two hunks, person added lines between them", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nX\n3\nmine\n4\nY", "1\n2\n3\nmine\n4\n5", ""},
		{"two hunks, person rewrote both", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nmine\n3\n4\nmine too", "", `line 2, which the change made "X", now read "mine"; line 5`},
		// "w\n" typed at the start of the replaced line reads as "\nw" typed
		// at the end of the line before; Yjs puts "b" back after the first.
		{"line typed just above a line replaced from its start", "a\nb\nc", "a\nX\nc", "a\nw\nX\nc", "", "line 2"},
		{"line typed just below a replaced line", "a\nb\nc", "a\nX\nc", "a\nX\nw\nc", "a\nb\nw\nc", ""},
		{"line typed above a line edited mid-line", "a\nx = 1\nc", "a\nx = 2\nc", "a\nw\nx = 2\nc", "a\nw\nx = 1\nc", ""},
		// The line the change wrote reads otherwise: a conflict, by lines,
		// even where Yjs would give "x = 5  # ten".
		{"text typed after the change that could be inside it", "x = 5", "x = 10", "x = 100", "", "line 1"},
		{"text typed after the change, on its line", "x = 5", "x = 10", "x = 10  # ten", "", "line 1"},
		{"agent appended a line, person typed at its end", "a", "a\nb", "a\nb!", "", "line 2"},
		{"agent appended a line, person added one after", "a", "a\nb", "a\nb\nc", "a\nc", ""},
		{"two hunks, one clashes", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nX\n3\n4\nmine", "", `now read "mine"`},
		// The agent's splice is "8\nw" after the first "w"; "w10\n" typed
		// before its last "w" and "w9\n" below read as "10\nw" typed right
		// after it (inside, for Yjs), or as "0\nw1\nw9" typed after "w1".
		{"lines typed inside a line inserted at the top, read as after it", "w1\nw2", "w8\nw1\nw2", "w8\nw10\nw1\nw9\nw2", "", "lines 1-2"},
		{"whole source replaced, untouched", "old", "new\ntext", "new\ntext", "old", ""},
		{"from empty", "", "x", "x", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, conflicts := Revert(tt.before, tt.after, tt.current)
			if tt.conflict != "" {
				if len(conflicts) == 0 {
					t.Fatalf("no conflict; got %q", got)
				}
				var msgs []string
				for _, c := range conflicts {
					msgs = append(msgs, c.String())
				}
				if !strings.Contains(strings.Join(msgs, "; "), tt.conflict) {
					t.Fatalf("conflict %q does not say %q", msgs, tt.conflict)
				}
				if got != tt.current {
					t.Fatalf("a conflict changed the text to %q", got)
				}
				return
			}
			if len(conflicts) > 0 {
				t.Fatalf("unexpected conflicts %v", conflicts)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// With nothing changed since, reverting gives back before exactly.
func TestRevertRoundTrip(t *testing.T) {
	srcs := []string{"", "a", "a\n", "a\nb\nc", "\n\n", "x\ny\nx\ny", "def f():\n    return 1\n"}
	for _, b := range srcs {
		for _, a := range srcs {
			if got, c := Revert(b, a, a); len(c) > 0 || got != b {
				t.Errorf("Revert(%q, %q, %q) = %q, %v", b, a, a, got, c)
			}
		}
	}
}

// A long cell (1500 lines: the line alignment's table bounds how far apart
// the person's edits may be) where the agent changed a line in the middle
// and the person lines near both ends.
func BenchmarkRevert(b *testing.B) {
	var ls []string
	for i := range 1500 {
		ls = append(ls, "    value_"+strings.Repeat("x", i%40)+" = compute(value)")
	}
	before := strings.Join(ls, "\n")
	ls[750] = "    changed = True"
	after := strings.Join(ls, "\n")
	ls[10], ls[1490] = "# mine", "# mine too"
	current := strings.Join(ls, "\n")
	for b.Loop() {
		if _, c := Revert(before, after, current); len(c) > 0 {
			b.Fatalf("%d conflicts", len(c))
		}
	}
}
