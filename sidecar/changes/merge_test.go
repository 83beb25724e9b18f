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
		{"two hunks, person between them", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nX\n3 edited\n4\nY", "1\n2\n3 edited\n4\n5", ""},
		{"two hunks, one clashes", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", "1\nX\n3\n4\nmine", "", `now read "mine"`},
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
