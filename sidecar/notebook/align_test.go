package notebook

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestSplices(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		want          []Splice
	}{
		{"same", "a\nb", "a\nb", nil},
		{"one line, mid-line", "x = 1\ny = 2", "x = 1\ny = 3", []Splice{{Index: 10, Delete: 1, Insert: "3"}}},
		// Two regions: two splices, the later one first; line 3 between
		// them is not in either.
		{"two separate lines", "1\n2\n3\n4\n5", "1\nX\n3\n4\nY", []Splice{{Index: 8, Delete: 1, Insert: "Y"}, {Index: 2, Delete: 1, Insert: "X"}}},
		{"line inserted and one deleted", "a\nb\nc\nd", "a\nnew\nb\nc", []Splice{{Index: 5, Delete: 2}, {Index: 2, Insert: "new\n"}}},
		{"append a line", "a", "a\nb", []Splice{{Index: 1, Insert: "\nb"}}},
		{"from empty", "", "x\ny", []Splice{{Index: 0, Insert: "x\ny"}}},
		{"to empty", "x\ny", "", []Splice{{Index: 0, Delete: 3}}},
		// Units are UTF-16's; a kept emoji either side is not split (a
		// high and a low surrogate meet at the boundary of two pairs).
		{"emoji kept either side", "😀😀", "😀x😀", []Splice{{Index: 2, Insert: "x"}}},
		{"emoji changed to one sharing its high surrogate", "a😀b", "a😁b", []Splice{{Index: 1, Delete: 2, Insert: "😁"}}},
		{"after an emoji line", "😀\nb\nc\nd", "😀\nB\nc\nD", []Splice{{Index: 7, Delete: 1, Insert: "D"}, {Index: 3, Delete: 1, Insert: "B"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Splices(tt.before, tt.after)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Splices = %+v, want %+v", got, tt.want)
			}
			if out := Apply(tt.before, got); out != tt.after {
				t.Fatalf("applied: %q, want %q", out, tt.after)
			}
		})
	}
}

// Random line edits: the splices give after, never split a surrogate pair,
// never touch, go last first, and are one per changed region.
func TestSplicesRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	words := []string{"", "a", "b", "x = 1", "😀", "中", "a😀", "😁b"}
	text := func() []string {
		var ls []string
		for range r.Intn(8) + 1 {
			ls = append(ls, words[r.Intn(len(words))])
		}
		return ls
	}
	for range 20000 {
		a := text()
		b := append([]string(nil), a...)
		for range 1 + r.Intn(3) {
			i := r.Intn(len(b) + 1)
			switch r.Intn(3) {
			case 0:
				b = append(b[:i], append([]string{words[r.Intn(len(words))]}, b[i:]...)...)
			case 1:
				if i < len(b) {
					b = append(b[:i], b[i+1:]...)
				}
			default:
				if i < len(b) {
					b[i] += words[r.Intn(len(words))]
				}
			}
		}
		before, after := strings.Join(a, "\n"), strings.Join(b, "\n")
		ss := Splices(before, after)
		if got := Apply(before, ss); got != after {
			t.Fatalf("Splices(%q, %q) = %+v gives %q", before, after, ss, got)
		}
		hs := Hunks(Align(Lines(before), Lines(after)), len(Lines(after)))
		if len(ss) > len(hs) {
			t.Fatalf("Splices(%q, %q) = %+v: more splices than the %d changed regions", before, after, ss, len(hs))
		}
		b16 := utf16.Encode([]rune(before))
		for k, s := range ss {
			for _, at := range []int{s.Index, s.Index + s.Delete} {
				if at > 0 && at < len(b16) && utf16.IsSurrogate(rune(b16[at])) && b16[at] >= 0xdc00 {
					t.Fatalf("Splices(%q, %q) = %+v splits a surrogate pair", before, after, ss)
				}
			}
			if k > 0 && s.Index+s.Delete >= ss[k-1].Index {
				t.Fatalf("Splices(%q, %q) = %+v: not last first, or touching", before, after, ss)
			}
		}
	}
}

// Past the alignment table's bound the middle is one region: one splice.
func TestSplicesPastTheBound(t *testing.T) {
	var a, b []string
	for i := range 2100 {
		a = append(a, "line", "a"+string(rune('0'+i%10)))
		b = append(b, "line", "b"+string(rune('0'+i%10)))
	}
	if ss := Splices(strings.Join(a, "\n"), strings.Join(b, "\n")); len(ss) != 1 {
		t.Fatalf("%d splices, want 1", len(ss))
	}
	if ss := Splices(strings.Join(a[:200], "\n"), strings.Join(b[:200], "\n")); len(ss) != 100 {
		t.Fatalf("%d splices, want 100", len(ss))
	}
}

func TestDiffRegions(t *testing.T) {
	got := Diff("1\n2\n3\n4\n5\n6\n7\n8", "1\nX\n3\n4\n5\n6\nY\n8", 1)
	want := "@@ line 1 @@\n  1\n- 2\n+ X\n  3\n@@ line 6 @@\n  6\n- 7\n+ Y\n  8"
	if got != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", got, want)
	}
	got = Diff("1\n2\n3\n4", "1\nX\n3\nY", 1)
	want = "@@ line 1 @@\n  1\n- 2\n+ X\n  3\n- 4\n+ Y"
	if got != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", got, want)
	}
}

// A long cell (1500 lines) where the agent changed a line near each end:
// the alignment table spans the lines between them.
func BenchmarkSplices(b *testing.B) {
	var ls []string
	for i := range 1500 {
		ls = append(ls, "    value_"+strings.Repeat("x", i%40)+" = compute(value)")
	}
	before := strings.Join(ls, "\n")
	ls[10], ls[1490] = "# changed", "# changed too"
	after := strings.Join(ls, "\n")
	for b.Loop() {
		if ss := Splices(before, after); len(ss) != 2 {
			b.Fatalf("%d splices", len(ss))
		}
	}
}
