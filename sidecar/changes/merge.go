package changes

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// maxMiddle bounds the text around an agent's splice, between the nearest
// lines kept on either side, that Revert searches; past it, a conflict.
const maxMiddle = 1 << 14

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
// that gives what Yjs's UndoManager, scoped to the edit, gives in a shared
// document (tests/yjs checks it against Yjs):
//
//   - The edit is what the sidecar writes into the document:
//     notebook.Splices, one splice per changed region of lines, from its
//     first to its last changed character. Undoing a splice removes the
//     text it inserted and puts the text it deleted back right after the
//     character before it.
//   - The edit's lines, and every character of the text it inserted, must
//     still read as the edit left them, with nothing typed inside;
//     otherwise the person has rewritten that very text and it is a
//     conflict.
//   - Where the texts cannot tell what the person did next to a splice
//     (e.g. a line typed just above a line the edit replaced from its
//     start reads the same as one typed at the end of the line before,
//     but Yjs puts the old text back in different places) it is a
//     conflict too, never a guess.
//
// Lines changed since elsewhere — even in the same cell, between the
// edit's regions — are kept. If anything conflicts, Revert returns the
// conflicts and current unchanged.
func Revert(before, after, current string) (string, []Conflict) {
	a, b, c := notebook.Lines(before), notebook.Lines(after), notebook.Lines(current)
	bc := notebook.Align(b, c)
	var conflicts []Conflict
	for _, h := range notebook.Hunks(notebook.Align(a, b), len(b)) {
		if _, _, ok := place(h, bc, len(b), len(c)); !ok {
			conflicts = append(conflicts, conflictAt(h, b, c, bc))
		}
	}
	if len(conflicts) > 0 || before == after {
		return current, conflicts
	}
	// Undo the splices last first, each on the text with the ones after it
	// undone: the lines before a splice keep their numbers, and their
	// alignment with current's (bc) holds up to the middle of the splice
	// undone last (valid); past it, it is aligned again.
	s, cur := []rune(after+"\n"), []rune(current+"\n")
	bc = append(bc, len(c))
	valid := len(bc)
	for _, sp := range runeSplices(before, after) {
		ia, ib := middle(s, bc, sp.at, sp.at+len(sp.ins))
		if ib >= valid {
			bc = append(notebook.Align(notebook.Lines(string(s[:len(s)-1])), notebook.Lines(string(cur[:len(cur)-1]))), strings.Count(string(cur), "\n"))
			ia, ib = middle(s, bc, sp.at, sp.at+len(sp.ins))
		}
		out, ok := undoSplice(s, cur, bc, sp, ia, ib)
		if !ok {
			bs, cs := notebook.Lines(string(s[:len(s)-1])), notebook.Lines(string(cur[:len(cur)-1]))
			conflicts = append(conflicts, conflictAt(spanOf(s, sp), bs, cs, notebook.Align(bs, cs)))
			continue
		}
		s = slices.Concat(s[:sp.at], sp.deleted, s[sp.at+len(sp.ins):])
		cur, valid = out, ia+1
	}
	if len(conflicts) > 0 {
		slices.Reverse(conflicts) // first to last
		return current, conflicts
	}
	return strings.TrimSuffix(string(cur), "\n"), nil
}

// runeSplice is a splice of the edit in runes: at at, in after, the edit
// inserted ins in place of deleted.
type runeSplice struct {
	at           int
	ins, deleted []rune
}

// runeSplices returns notebook.Splices(before, after) in runes, last
// first, each at its place in after.
func runeSplices(before, after string) []runeSplice {
	ss := notebook.Splices(before, after)
	b16 := utf16.Encode([]rune(before))
	out := make([]runeSplice, len(ss))
	shift, from, at := 0, 0, 0 // runes inserted less deleted so far; b16[from:] starts at rune at
	for k := len(ss) - 1; k >= 0; k-- {
		sp := ss[k]
		at += len(utf16.Decode(b16[from:sp.Index]))
		deleted := utf16.Decode(b16[sp.Index : sp.Index+sp.Delete])
		ins := []rune(sp.Insert)
		out[k] = runeSplice{at: at + shift, ins: ins, deleted: deleted}
		at, from = at+len(deleted), sp.Index+sp.Delete
		shift += len(ins) - len(deleted)
	}
	return out
}

// spanOf returns the lines of after (s) that splice sp spans.
func spanOf(s []rune, sp runeSplice) notebook.Hunk {
	as := lineStarts(s)
	lineOf := func(i int) int { return sort.SearchInts(as, i+1) - 1 }
	e := sp.at + len(sp.ins)
	return notebook.Hunk{B0: lineOf(sp.at), B1: lineOf(max(e-1, sp.at)) + 1}
}

// middle returns the lines of after, ia before and ib after the splice
// after[h:e], kept wholly (bc aligns them with current's): the middle
// runs between them. There is one after: the extra last line.
func middle(after []rune, bc []int, h, e int) (ia, ib int) {
	as := lineStarts(after)
	lineOf := func(i int) int { return sort.SearchInts(as, i+1) - 1 }
	ia = lineOf(h) - 1
	for ia >= 0 && bc[ia] < 0 {
		ia--
	}
	ib = lineOf(e)
	if as[ib] < e {
		ib++
	}
	for bc[ib] < 0 {
		ib++
	}
	return ia, ib
}

// undoSplice undoes splice sp on current, given after (both end with an
// extra newline, so that every line has one; bc aligns their lines, and
// ia and ib are the middle's bounds). It answers the result, or false
// when the splice cannot be undone unambiguously.
//
// Yjs puts the deleted text back right after the character before the
// splice, ahead of anything typed since between the two; and the texts
// cannot tell text typed next to the splice from the same text typed
// inside it when it could slide in (its edge character is the splice's).
// So with the person's edits placed as close to the splice as they can
// go, nothing may touch it from before if text comes back, and nothing
// that could slide into the inserted text may touch it.
func undoSplice(after, current []rune, bc []int, sp runeSplice, ia, ib int) ([]rune, bool) {
	h, e := sp.at, sp.at+len(sp.ins)
	ins, deleted := sp.ins, sp.deleted
	as, cs := lineStarts(after), lineStarts(current)
	a0, c0 := as[ia+1], 0
	if ia >= 0 {
		c0 = cs[bc[ia]+1]
	}
	ma, mc := after[a0:as[ib]], current[c0:cs[bc[ib]]]
	preA, postA := ma[:h-a0], ma[e-a0:]
	// Each candidate place below costs a pass over the middle.
	if len(mc) > maxMiddle || len(ma) > maxMiddle {
		return nil, false
	}
	// Each place the inserted text is (for a deletion, each place between
	// two characters) that the person's edits do not touch; all must give
	// the same text.
	var results []string
	for p := 0; p+len(ins) <= len(mc); p++ {
		if !slices.Equal(mc[p:p+len(ins)], ins) {
			continue
		}
		preC, postC := mc[:p], mc[p+len(ins):]
		if len(deleted) > 0 && len(preA) > 0 && (len(preC) == 0 || preC[len(preC)-1] != preA[len(preA)-1]) {
			continue // the character before the splice is not right before it
		}
		if q, x := edge(reversed(preA), reversed(preC)); len(q)+len(x) > 0 && (len(deleted) > 0 || len(ins) == 0 || slides(q, x, ins[0])) {
			continue
		}
		if q, x := edge(postA, postC); len(q)+len(x) > 0 && (len(ins) == 0 || slides(q, x, ins[len(ins)-1])) {
			continue
		}
		results = append(results, string(preC)+string(deleted)+string(postC))
	}
	for _, r := range results[min(1, len(results)):] {
		if r != results[0] {
			return nil, false
		}
	}
	if len(results) == 0 {
		return nil, false
	}
	out := append(append([]rune(nil), current[:c0]...), []rune(results[0])...)
	return append(out, current[cs[bc[ib]]:]...), true
}

// edge returns what the person's edits insert and remove between the
// splice and the first character kept after it — given what followed the
// splice (a) and what follows it now (c) — if they can reach the splice:
// start at it, or slide to it across characters equal to their own
// (several edits next to each other read as one here). Before the splice,
// both are given reversed.
func edge(a, c []rune) (inserted, removed []rune) {
	k, tl := notebook.CommonEnds(a, c)
	x, q := a[k:len(a)-tl], c[k:len(c)-tl]
	switch {
	case len(x) == 0 && len(q) == 0:
		return nil, nil
	case k == 0:
		return q, x
	case len(x) == 0 || len(q) == 0:
		// One insertion or deletion: slide it toward the splice.
		moved := slices.Clone(q)
		if len(q) == 0 {
			moved = slices.Clone(x)
		}
		j := k
		for j > 0 && moved[len(moved)-1] == a[j-1] {
			copy(moved[1:], moved[:len(moved)-1])
			moved[0] = a[j-1]
			j--
		}
		// Or it is several edits, read as one.
		if j == 0 || severalReach(q, x, a[:k]) || severalReach(moved, nil, a[:j]) {
			return q, x
		}
	case severalReach(q, x, a[:k]):
		return q, x
	}
	return nil, nil
}

// severalReach says whether edits that insert q and remove x after the
// text between them and the splice, gap, could be several, one of which
// ends with gap and so slides to the splice.
func severalReach(q, x, gap []rune) bool {
	return contains(q, gap) || contains(x, gap)
}

// contains says whether t occurs in s.
func contains(s, t []rune) bool {
	for i := 0; i+len(t) <= len(s); i++ {
		if slices.Equal(s[i:i+len(t)], t) {
			return true
		}
	}
	return false
}

// slides says whether an edit at the splice, inserting q and removing x,
// could as well be, in part, inside the inserted text, whose character next
// to it is at: whether any piece of it ends with at. The texts cannot tell
// then which it was.
func slides(q, x []rune, at rune) bool {
	return slices.Contains(q, at) || slices.Contains(x, at)
}

func reversed(s []rune) []rune {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// lineStarts returns the index of each line's first rune.
func lineStarts(s []rune) []int {
	starts := []int{0}
	for i, r := range s {
		if r == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// place finds where hunk h's lines of b are in c: every line of b[B0:B1]
// must still be there, consecutive; for an empty region (the edit only
// removed lines) the lines on both sides must still be adjacent.
func place(h notebook.Hunk, bc []int, nb, nc int) (int, int, bool) {
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
func conflictAt(h notebook.Hunk, b, c []string, bc []int) Conflict {
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
