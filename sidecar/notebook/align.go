package notebook

import (
	"strings"
	"unicode/utf16"
)

// maxCells bounds the line-alignment table (lines of one x lines of the
// other, after the common head and tail are trimmed). Past it the middle is
// left unaligned: one changed region from the first changed line to the
// last.
const maxCells = 1 << 22

// Lines splits a source into its lines, without their newlines.
func Lines(s string) []string { return strings.Split(s, "\n") }

// Align returns, for each line of a, the index of the same line in b in a
// longest common subsequence of the two, or -1 when the line is not kept.
func Align(a, b []string) []int {
	m := make([]int, len(a))
	for i := range m {
		m[i] = -1
	}
	head, tail := CommonEnds(a, b)
	for i := range head {
		m[i] = i
	}
	for k := range tail {
		m[len(a)-1-k] = len(b) - 1 - k
	}
	if len(a)-head-tail == 0 || len(b)-head-tail == 0 || (len(a)-head-tail)*(len(b)-head-tail) > maxCells {
		return m
	}
	// Compare numbers, not strings, in the table.
	ids := map[string]int32{}
	intern := func(ls []string) []int32 {
		out := make([]int32, len(ls))
		for i, l := range ls {
			id, ok := ids[l]
			if !ok {
				id = int32(len(ids))
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	x, y := intern(a[head:len(a)-tail]), intern(b[head:len(b)-tail])
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	w := len(y) + 1
	lcs := make([]int32, (len(x)+1)*w)
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	for i, j := 0, 0; i < len(x) && j < len(y); {
		switch {
		case x[i] == y[j]:
			m[head+i] = head + j
			i++
			j++
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	return m
}

// Hunk is one changed region: lines a[A0:A1] became b[B0:B1].
type Hunk struct{ A0, A1, B0, B1 int }

// Hunks lists the changed regions between a and a b of nb lines, given
// m = Align(a, b), first to last.
func Hunks(m []int, nb int) []Hunk {
	var hs []Hunk
	i, j := 0, 0
	for i <= len(m) {
		// Skip lines kept in place.
		for i < len(m) && m[i] == j {
			i++
			j++
		}
		if i == len(m) && j == nb {
			break
		}
		// The region runs to the next kept line (or the ends).
		i1 := i
		for i1 < len(m) && m[i1] < 0 {
			i1++
		}
		j1 := nb
		if i1 < len(m) {
			j1 = m[i1]
		}
		hs = append(hs, Hunk{A0: i, A1: i1, B0: j, B1: j1})
		i, j = i1, j1
	}
	return hs
}

// Splice is one edit of a text in UTF-16 code units, as Yjs counts them:
// Delete units from Index are removed and Insert put in their place.
type Splice struct {
	Index  int    `json:"index"`
	Delete int    `json:"delete"`
	Insert string `json:"insert"`
}

// Splices returns the edits that turn before into after, as the room
// writer puts them into a shared document: one per changed region of lines
// (Align), each keeping the characters its region's old and new text share
// at either end, last region first so that each index holds when they are
// applied in order. Edits a person makes meanwhile in lines between the
// regions stay outside the agent's text. A splice never splits a surrogate
// pair, and two splices never touch (they would be one).
func Splices(before, after string) []Splice {
	if before == after {
		return nil
	}
	a, b := Lines(before), Lines(after)
	hs := Hunks(Align(a, b), len(b))
	a16, b16 := utf16.Encode([]rune(before)), utf16.Encode([]rune(after))
	as, bs := lineStarts16(a), lineStarts16(b)
	// Each region's window runs from the end of the splice before it to the
	// first line of the next region; outside the windows the texts agree.
	type span struct{ a0, a1, b0, b1 int }
	var spans []span
	pa, pb := 0, 0
	for k := range hs {
		ea, eb := len(a16), len(b16)
		if k+1 < len(hs) {
			n := hs[k+1]
			ea, eb = as[n.A0], bs[n.B0]
			if n.A0 == len(a) || n.B0 == len(b) {
				// Lines added or cut at the end: the newline before them is
				// theirs.
				ea, eb = ea-1, eb-1
			}
		}
		x, y := a16[pa:ea], b16[pb:eb]
		head, tail := CommonEnds(x, y)
		// Never split a surrogate pair.
		if head > 0 && utf16.IsSurrogate(rune(x[head-1])) && x[head-1] < 0xdc00 {
			head--
		}
		if tail > 0 && utf16.IsSurrogate(rune(x[len(x)-tail])) && x[len(x)-tail] >= 0xdc00 {
			tail--
		}
		s := span{pa + head, ea - tail, pb + head, eb - tail}
		if s.a0 == s.a1 && s.b0 == s.b1 {
			continue
		}
		if n := len(spans); n > 0 && spans[n-1].a1 == s.a0 {
			spans[n-1].a1, spans[n-1].b1 = s.a1, s.b1
		} else {
			spans = append(spans, s)
		}
		pa, pb = s.a1, s.b1
	}
	out := make([]Splice, 0, len(spans))
	for k := len(spans) - 1; k >= 0; k-- {
		s := spans[k]
		out = append(out, Splice{Index: s.a0, Delete: s.a1 - s.a0, Insert: string(utf16.Decode(b16[s.b0:s.b1]))})
	}
	return out
}

// lineStarts16 returns the UTF-16 offset of each line's start in the text
// the lines make, joined by newlines, and one past its end.
func lineStarts16(lines []string) []int {
	starts := make([]int, len(lines)+1)
	at := 0
	for i, l := range lines {
		for _, r := range l {
			at += utf16.RuneLen(r)
		}
		at++
		starts[i+1] = at
	}
	return starts
}

// Apply applies splices, in order, to a text.
func Apply(text string, splices []Splice) string {
	t := utf16.Encode([]rune(text))
	for _, s := range splices {
		t = append(t[:s.Index:s.Index], append(utf16.Encode([]rune(s.Insert)), t[s.Index+s.Delete:]...)...)
	}
	return string(utf16.Decode(t))
}
