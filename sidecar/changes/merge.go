package changes

import (
	"fmt"
	"strings"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// maxCells bounds the line-alignment table (lines of one x lines of the
// other, after the common head and tail are trimmed). Past it the middle is
// left unaligned, which makes a revert there a conflict rather than a guess.
const maxCells = 1 << 22

// align returns, for each line of a, the index of the same line in b in a
// longest common subsequence of the two, or -1 when the line is not kept.
func align(a, b []string) []int {
	m := make([]int, len(a))
	for i := range m {
		m[i] = -1
	}
	head, tail := notebook.CommonEnds(a, b)
	for i := range head {
		m[i] = i
	}
	for k := range tail {
		m[len(a)-1-k] = len(b) - 1 - k
	}
	x, y := a[head:len(a)-tail], b[head:len(b)-tail]
	if len(x) == 0 || len(y) == 0 || len(x)*len(y) > maxCells {
		return m
	}
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

// hunk is one changed region: lines a[A0:A1] became b[B0:B1].
type hunk struct{ A0, A1, B0, B1 int }

// hunks lists the changed regions between a and b, given align(a, b).
func hunks(a, b []string, m []int) []hunk {
	var hs []hunk
	i, j := 0, 0
	for i <= len(a) {
		// Skip lines kept in place.
		for i < len(a) && m[i] == j {
			i++
			j++
		}
		if i == len(a) && j == len(b) {
			break
		}
		// The region runs to the next kept line (or the ends).
		i1 := i
		for i1 < len(a) && m[i1] < 0 {
			i1++
		}
		j1 := len(b)
		if i1 < len(a) {
			j1 = m[i1]
		}
		hs = append(hs, hunk{A0: i, A1: i1, B0: j, B1: j1})
		i, j = i1, j1
	}
	return hs
}

func lines(s string) []string { return strings.Split(s, "\n") }

// Conflict says why an agent's edit of a cell cannot be reverted: the text
// it wrote has been changed since.
type Conflict struct {
	// Lines is the 1-based line range, in the agent's version, that has
	// been changed since.
	From, To int
	// Wrote is the agent's text there; Now what the cell holds there now.
	Wrote, Now string
}

func (c Conflict) String() string {
	where := fmt.Sprintf("line %d", c.From)
	if c.To > c.From {
		where = fmt.Sprintf("lines %d-%d", c.From, c.To)
	}
	return fmt.Sprintf("%s, which the change made %q, now read %q", where, c.Wrote, c.Now)
}

// Revert undoes an edit that turned before into after, on current: the
// same text that has since been edited elsewhere. It is a three-way merge
// by lines: each region the edit changed is put back to before's text,
// provided the region still reads exactly as the edit left it and nothing
// was inserted inside it; lines changed since elsewhere — even in the same
// cell — are kept. If any region was changed since, Revert returns the
// conflicts and current unchanged.
func Revert(before, after, current string) (string, []Conflict) {
	a, b, c := lines(before), lines(after), lines(current)
	bc := align(b, c)
	type splice struct {
		C0, C1 int
		text   []string
	}
	var splices []splice
	var conflicts []Conflict
	for _, h := range hunks(a, b, align(a, b)) {
		c0, c1, ok := place(h, bc, len(b), len(c))
		if !ok {
			conflicts = append(conflicts, conflictAt(h, b, c, bc))
			continue
		}
		splices = append(splices, splice{c0, c1, a[h.A0:h.A1]})
	}
	if len(conflicts) > 0 {
		return current, conflicts
	}
	out := append([]string(nil), c...)
	for k := len(splices) - 1; k >= 0; k-- {
		s := splices[k]
		out = append(out[:s.C0], append(append([]string(nil), s.text...), out[s.C1:]...)...)
	}
	return strings.Join(out, "\n"), nil
}

// place finds where hunk h's lines of b are in c: every line of b[B0:B1]
// must still be there, consecutive; for an empty region (the edit only
// removed lines) the lines on both sides must still be adjacent.
func place(h hunk, bc []int, nb, nc int) (int, int, bool) {
	if h.B1 > h.B0 {
		for k := h.B0; k < h.B1; k++ {
			if bc[k] < 0 || (k > h.B0 && bc[k] != bc[k-1]+1) {
				return 0, 0, false
			}
		}
		return bc[h.B0], bc[h.B1-1] + 1, true
	}
	at := 0
	if h.B0 > 0 {
		if bc[h.B0-1] < 0 {
			return 0, 0, false
		}
		at = bc[h.B0-1] + 1
	}
	if h.B0 < nb && bc[h.B0] != at {
		return 0, 0, false
	}
	if h.B0 == nb && at != nc && h.B0 > 0 {
		return 0, 0, false // lines were added after the end the edit cut
	}
	return at, at, true
}

// conflictAt describes what became of hunk h's region of b in c: the
// lines of c between the nearest lines kept on either side.
func conflictAt(h hunk, b, c []string, bc []int) Conflict {
	lo := h.B0 - 1
	for lo >= 0 && bc[lo] < 0 {
		lo--
	}
	hi := h.B1
	for hi < len(b) && bc[hi] < 0 {
		hi++
	}
	c0, c1 := 0, len(c)
	if lo >= 0 {
		c0 = bc[lo] + 1
	}
	if hi < len(b) {
		c1 = bc[hi]
	}
	return Conflict{
		From:  h.B0 + 1,
		To:    max(h.B1, h.B0+1),
		Wrote: strings.Join(b[h.B0:h.B1], "\n"),
		Now:   strings.Join(c[c0:c1], "\n"),
	}
}
