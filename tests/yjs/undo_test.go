package yjs_test

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// splice is a text edit as the oracle takes it (UTF-16 units; the texts
// here are ASCII).
type splice struct {
	Index  int    `json:"index"`
	Delete int    `json:"delete"`
	Insert string `json:"insert"`
}

// spliceOf is the smallest single splice turning a into b, as the sidecar's
// room writer makes it (common head and tail kept).
func spliceOf(a, b string) splice {
	head, tail := notebook.CommonEnds([]byte(a), []byte(b))
	return splice{Index: head, Delete: len(a) - head - tail, Insert: b[head : len(b)-tail]}
}

// region is the range of lines of a that differ from b, by common head and
// tail (exact here: every line is unique).
func region(a, b []string) (int, int) {
	head, tail := notebook.CommonEnds(a, b)
	return head, len(a) - tail
}

// lineEdit makes one random line-level edit: replace, insert or delete a
// line, or change a line's end.
func lineEdit(r *rand.Rand, lines []string, word func() string) []string {
	out := slices.Clone(lines)
	i := r.Intn(len(out))
	switch r.Intn(4) {
	case 0:
		out[i] = word()
	case 1:
		out = slices.Insert(out, r.Intn(len(out)+1), word())
	case 2:
		if len(out) > 1 {
			return slices.Delete(out, i, i+1)
		}
		out[i] = word()
	default:
		out[i] += " " + word()
	}
	return out
}

// Undoing an agent's edit of a text with changes.Revert gives what Yjs's
// UndoManager, scoped to the agent's origin, gives on the same history,
// wherever the person's later edits leave at least one line untouched
// between them and the agent's: there both keep the person's edits and put
// the agent's lines back. Closer than that, Revert works on whole lines and
// either reports a conflict (the person changed the agent's lines) or
// merges by lines; those cases are counted, not compared. (Where the merge
// differs, UndoManager interleaves characters of the two sides: e.g. the
// agent replaced line "w6" by "w7xx", the person inserted "w9xx" above it;
// Revert gives "...\nw9xx\nw6", UndoManager "...\nw69xx\nw".)
func TestRevertAgainstYjsUndoManager(t *testing.T) {
	o := yjsOracle(t)
	const seeds = 3000
	var compared, conflicts, nearby, nearbySame int
	for seed := int64(1); seed <= seeds; seed++ {
		r := rand.New(rand.NewSource(seed))
		n := 0
		word := func() string {
			n++
			return fmt.Sprintf("w%d%s", n, strings.Repeat("x", r.Intn(3)))
		}
		var base []string
		for range 2 + r.Intn(7) {
			base = append(base, word())
		}
		agent := lineEdit(r, base, word)
		if slices.Equal(agent, base) {
			continue
		}
		person := agent
		var personSplices []splice
		for range 1 + r.Intn(2) {
			next := lineEdit(r, person, word)
			personSplices = append(personSplices, spliceOf(strings.Join(person, "\n"), strings.Join(next, "\n")))
			person = next
		}
		before, after, now := strings.Join(base, "\n"), strings.Join(agent, "\n"), strings.Join(person, "\n")
		var reply struct {
			Text string `json:"text"`
		}
		o.call(t, map[string]any{"op": "undo", "text": before, "agent": []splice{spliceOf(before, after)}, "person": personSplices}, &reply)

		got, conflict := changes.Revert(before, after, now)
		a0, a1 := region(agent, base)
		p0, p1 := region(agent, person)
		separated := p1 < a0 || p0 > a1
		switch {
		case separated && len(conflict) > 0:
			t.Fatalf("seed %d: a conflict though the person's edits are away from the agent's\nbefore %q\nafter  %q\nnow    %q\nconflict %v", seed, before, after, now, conflict)
		case separated && got != reply.Text:
			t.Fatalf("seed %d: Revert and Yjs's UndoManager differ\nbefore %q\nafter  %q\nnow    %q\nRevert %q\nYjs    %q", seed, before, after, now, got, reply.Text)
		case separated:
			compared++
		case len(conflict) > 0:
			conflicts++
		default:
			nearby++
			if got == reply.Text {
				nearbySame++
			}
		}
	}
	t.Logf("%d histories: %d compared with Yjs and equal; %d conflicts; %d merged next to the agent's lines, %d of them as Yjs does", seeds, compared, conflicts, nearby, nearbySame)
	if compared < seeds/4 {
		t.Fatalf("only %d of %d histories were compared; the generator no longer exercises the rule", compared, seeds)
	}
}
