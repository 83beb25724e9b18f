package yjs_test

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// splice is a text edit as the oracle takes it (UTF-16 units; the texts
// here are ASCII).
type splice struct {
	Index  int    `json:"index"`
	Delete int    `json:"delete"`
	Insert string `json:"insert"`
}

func (s splice) apply(text string) string {
	return text[:s.Index] + s.Insert + text[s.Index+s.Delete:]
}

// spliceOf is the smallest single splice turning a into b, as the sidecar's
// room writer makes it (common head and tail kept).
func spliceOf(a, b string) splice {
	head, tail := notebook.CommonEnds([]byte(a), []byte(b))
	return splice{Index: head, Delete: len(a) - head - tail, Insert: b[head : len(b)-tail]}
}

// region is the range of lines of a that differ from b, by common head and
// tail.
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

// agentEdit makes an agent change of before: one or two line edits,
// written as the very splices the sidecar's room writer makes.
func agentEdit(r *rand.Rand, before string, word func() string) (string, []splice) {
	after := before
	for after == before {
		ls := lineEdit(r, strings.Split(before, "\n"), word)
		if r.Intn(4) == 0 { // two line edits in one change
			ls = lineEdit(r, ls, word)
		}
		after = strings.Join(ls, "\n")
	}
	var sps []splice
	for _, sp := range notebook.Splices(before, after) {
		sps = append(sps, splice(sp))
	}
	return after, sps
}

// step is one transaction of the history: an agent change (origin
// "agent1", "agent2", ...) or one of the person's (origin "person").
type step struct {
	Origin  string   `json:"origin"`
	Splices []splice `json:"splices"`
}

// history is a seeded editing session on one cell's text.
type history struct {
	base   string
	steps  []step
	now    string
	agents []*changes.Change // each agent change with the texts around it
	kinds  map[string]int    // the person's actions by kind
	// deletedBy[a] are the origins of later steps that deleted some of the
	// text agent change a (1-based) inserted; nearBy[a] those that deleted
	// the character before its splice or typed right after it.
	deletedBy, nearBy map[int]map[string]bool
}

// words returns a source of distinct words: w1, w2x, w3xx, ...
func words(r *rand.Rand) func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("w%d%s", n, strings.Repeat("x", r.Intn(3)))
	}
}

// baseText is a cell's text of two to eight lines, some indented, some
// empty.
func baseText(r *rand.Rand, word func() string) string {
	var base []string
	for range 2 + r.Intn(7) {
		w := word()
		switch r.Intn(6) {
		case 0:
			w = "    " + w
		case 1:
			w = ""
		}
		base = append(base, w)
	}
	return strings.Join(base, "\n")
}

// personAction is one thing a person does in the cell editor (CodeMirror
// in JupyterLab, synced by y-codemirror: one transaction per keystroke or
// per replaced selection).
func personAction(r *rand.Rand, text string, word func() string) (string, [][]splice) {
	var txns [][]splice
	typeAt := func(at int, s string) { // typed key by key
		for k := range len(s) {
			txns = append(txns, []splice{{Index: at + k, Insert: s[k : k+1]}})
		}
	}
	ls := strings.Split(text, "\n")
	line := r.Intn(len(ls))
	start := len(strings.Join(ls[:line], "\n"))
	if line > 0 {
		start++
	}
	end := start + len(ls[line])
	kind := []string{"type", "backspace", "line below", "line above", "line above (enter first)", "selection", "delete line", "paste", "minimal splice"}[r.Intn(9)]
	switch kind {
	case "type":
		typeAt(r.Intn(len(text)+1), word())
	case "backspace":
		at := r.Intn(len(text) + 1)
		for k := range min(at, 1+r.Intn(4)) {
			txns = append(txns, []splice{{Index: at - 1 - k, Delete: 1}})
		}
	case "line below": // Enter at a line's end, then type
		typeAt(end, "\n"+word())
	case "line above": // type at a line's start, then Enter
		typeAt(start, word()+"\n")
	case "line above (enter first)": // Enter at a line's start, Up, type
		txns = append(txns, []splice{{Index: start, Insert: "\n"}})
		typeAt(start, word())
	case "selection": // select part of a line (or all of it) and type over it
		i := start + r.Intn(len(ls[line])+1)
		j := i + r.Intn(end-i+1)
		txns = append(txns, []splice{{Index: i, Delete: j - i, Insert: word()}})
	case "delete line":
		if len(ls) == 1 {
			txns = append(txns, []splice{{Index: 0, Delete: len(text)}})
		} else if line == len(ls)-1 {
			txns = append(txns, []splice{{Index: start - 1, Delete: end - start + 1}})
		} else {
			txns = append(txns, []splice{{Index: start, Delete: end - start + 1}})
		}
	case "paste":
		txns = append(txns, []splice{{Index: r.Intn(len(text) + 1), Insert: word() + "\n" + word()}})
	default: // the smallest splice of a line-level edit
		next := strings.Join(lineEdit(r, ls, word), "\n")
		txns = append(txns, []splice{spliceOf(text, next)})
	}
	var kept [][]splice
	for _, t := range txns {
		if t[0].Delete == 0 && t[0].Insert == "" {
			continue
		}
		text = t[0].apply(text)
		kept = append(kept, t)
	}
	return kind, kept
}

// newHistory makes 1–3 agent changes (line-level edits written as
// notebook.Splices, one splice per changed region, as the sidecar writes
// them) with the person's editor actions
// before, between and after them.
func newHistory(r *rand.Rand) *history {
	word := words(r)
	hs := &history{base: baseText(r, word), kinds: map[string]int{}, deletedBy: map[int]map[string]bool{}, nearBy: map[int]map[string]bool{}}
	text := hs.base
	owner := make([]int, len(text))    // which agent change wrote each byte (0: none)
	before := make([]uint8, len(text)) // bit a-1: the byte before change a's splice
	note := func(m map[int]map[string]bool, a int, origin string) {
		if m[a] == nil {
			m[a] = map[string]bool{}
		}
		m[a][origin] = true
	}
	record := func(st step, agent int) {
		for _, sp := range st.Splices {
			for k := sp.Index; k < sp.Index+sp.Delete; k++ {
				if owner[k] > 0 {
					note(hs.deletedBy, owner[k], st.Origin)
				}
				for a := range 8 {
					if before[k]&(1<<a) != 0 {
						note(hs.nearBy, a+1, st.Origin)
					}
				}
			}
			for a := range 8 {
				if sp.Insert != "" && sp.Index > 0 && before[sp.Index-1]&(1<<a) != 0 {
					note(hs.nearBy, a+1, st.Origin)
				}
			}
			owner = slices.Replace(owner, sp.Index, sp.Index+sp.Delete, slices.Repeat([]int{agent}, len(sp.Insert))...)
			before = slices.Replace(before, sp.Index, sp.Index+sp.Delete, make([]uint8, len(sp.Insert))...)
			if agent > 0 && sp.Index > 0 {
				before[sp.Index-1] |= 1 << (agent - 1)
			}
		}
		hs.steps = append(hs.steps, st)
	}
	person := func(actions int) {
		for range actions {
			kind, txns := personAction(r, text, word)
			if len(txns) == 0 {
				continue
			}
			hs.kinds[kind]++
			for _, t := range txns {
				text = t[0].apply(text)
				record(step{Origin: "person", Splices: t}, 0)
			}
		}
	}
	agents := 1 + r.Intn(3)
	person(r.Intn(2))
	for a := range agents {
		before := text
		var sps []splice
		text, sps = agentEdit(r, before, word)
		record(step{Origin: fmt.Sprintf("agent%d", a+1), Splices: sps}, a+1)
		hs.agents = append(hs.agents, &changes.Change{ID: a + 1, Cells: []changes.Cell{{Op: changes.Edit, CellID: "c", Before: before, After: text}}})
		if a < agents-1 {
			person(r.Intn(3))
		}
	}
	person(1 + r.Intn(3))
	hs.now = text
	return hs
}

type historyReply struct {
	Updates         []string `json:"updates"`
	Now             string   `json:"now"`
	Text            string   `json:"text"`
	Stack           int      `json:"stack"`
	UndoUpdates     []string `json:"undoUpdates"`
	Delivered       string   `json:"delivered"`
	DeliveredUndone string   `json:"deliveredUndone"`
	PendingSeen     int      `json:"pendingSeen"`
	StillPending    bool     `json:"stillPending"`
}

// undoCounts tallies one kind of undo query.
type undoCounts struct {
	queries, compared, conflicts, retyped, near, separated int
	// several: queries undoing a change written as several splices; of
	// them, severalCompared equal to Yjs's.
	several, severalCompared int
}

// Undoing agents' changes with changes.Undo (changes.Revert per cell) gives
// what Yjs's UndoManager gives on the same history, unless Revert reports a
// conflict; and a conflict never comes from later edits a line (with text)
// or more away from the lines the agent's splice touches.
//
// Each history has one to three agent changes, each its own transaction
// origin ("agent1", ...) written as the sidecar writes it (a splice per
// changed region of lines, notebook.Splices) on the agent's peer, and the
// person's editor actions (keystrokes, Enter at a line's start or end,
// selections typed over, lines deleted, pastes, and smallest splices) on a
// second peer before, between and after them. Two queries per history:
// undo one chosen change (an UndoManager tracking only its origin: the
// person's edits and the other changes stay), and undo every change since
// change k (an UndoManager tracking those origins, undone until its stack is
// empty: newest first, one stack item per change, the order changes.Undo
// inverts them in).
//
// Every update (the initial text's and each step's) is also delivered to a
// fresh document in a seeded random order, in Yjs and in sidecar/yjs, where
// updates that arrive before what they build on wait as pending structs:
// both must reach the same text as the peers ("now"), and then the
// UndoManager's own updates must bring both to its result. The UndoManager
// itself runs on the agent's peer, which saw every transaction in order with
// its origin: a document that received updates out of order integrates a
// pending update inside a later one's transaction, so it cannot tell whose
// it was. The sidecar's undo is state-based (the texts before and after
// each change, and the text now), so the delivery order matters to it only
// through "now"; what this shows is that out-of-order delivery converges on
// the "now" it reverts. (Yjs 13.6.33 itself once kept pending structs after
// the whole order, where sidecar/yjs converged: logged and counted.)
func TestRevertAgainstYjsUndoManager(t *testing.T) {
	o := yjsOracle(t)
	seeds := envInt("UNDO_SEEDS", 2000)
	var one, since undoCounts
	kinds := map[string]int{}
	pending, mismatches, yjsStuck := 0, 0, 0
	for seed := int64(1); seed <= int64(seeds); seed++ {
		r := rand.New(rand.NewSource(seed))
		hs := newHistory(r)
		for kind, n := range hs.kinds {
			kinds[kind] += n
		}
		type query struct {
			counts *undoCounts
			undo   []*changes.Change
		}
		j := r.Intn(len(hs.agents))
		queries := []query{{&one, hs.agents[j : j+1]}}
		if len(hs.agents) > 1 {
			k := r.Intn(len(hs.agents))
			queries = append(queries, query{&since, hs.agents[k:]})
		}
		for _, q := range queries {
			var origins []string
			for _, c := range q.undo {
				origins = append(origins, fmt.Sprintf("agent%d", c.ID))
			}
			clients := []int{1 + r.Intn(1<<30), 0, 0} // distinct, varied IDs
			for k := 1; k < 3; k++ {
				for clients[k] == 0 || slices.Contains(clients[:k], clients[k]) {
					clients[k] = 1 + r.Intn(1<<30)
				}
			}
			order := r.Perm(len(hs.steps) + 1)
			var rep historyReply
			o.call(t, map[string]any{"op": "history", "text": hs.base, "clients": clients, "steps": hs.steps, "undo": origins, "order": order}, &rep)
			where := fmt.Sprintf("seed %d, undo %v", seed, origins)
			if deliverInOrder(t, where, rep, order, hs.now) {
				pending++
			}
			if rep.StillPending {
				yjsStuck++
				t.Logf("%s: Yjs's out-of-order document still holds pending structs after every update (sidecar/yjs converged): reads %q, want %q", where, rep.Delivered, hs.now)
			} else if rep.Delivered != hs.now || rep.DeliveredUndone != rep.Text {
				t.Fatalf("%s: Yjs's out-of-order document reads %q then %q after the undo; want %q then %q", where, rep.Delivered, rep.DeliveredUndone, hs.now, rep.Text)
			}
			if rep.Now != hs.now {
				t.Fatalf("%s: Yjs's peers read %q; the history's text is %q", where, rep.Now, hs.now)
			}
			if rep.Stack != len(q.undo) {
				t.Fatalf("%s: the UndoManager holds %d stack items, want one per change (%d)", where, rep.Stack, len(q.undo))
			}

			nb := notebook.New(nil)
			nb.Cells = []*notebook.Cell{{ID: "c", Type: notebook.Code, Source: hs.now}}
			err := changes.Undo(nb, q.undo)
			q.counts.queries++
			sep := len(q.undo) == 1 && separated(q.undo[0].Cells[0], hs.now)
			if sep {
				q.counts.separated++
			}
			several := slices.ContainsFunc(q.undo, func(c *changes.Change) bool {
				return len(notebook.Splices(c.Cells[0].Before, c.Cells[0].After)) > 1
			})
			if several {
				q.counts.several++
			}
			// Whether a later step outside the undo deleted some of the text
			// an undone change inserted (the person rewrote it), or deleted
			// the character before its splice or typed right after that
			// character. Revert then reports a conflict unless the texts read
			// as something else (the text typed back as it was, or a shorter
			// edit elsewhere), which they cannot tell, while Yjs's UndoManager
			// follows the characters.
			rewritten, near := false, false
			for _, c := range q.undo {
				for origin := range hs.deletedBy[c.ID] {
					rewritten = rewritten || !slices.Contains(origins, origin)
				}
				for origin := range hs.nearBy[c.ID] {
					near = near || !slices.Contains(origins, origin)
				}
			}
			switch {
			case err != nil && sep:
				t.Fatalf("%s: a conflict though the later edits are a line with text or more away from the lines the change's splice touches\nbefore %q\nafter  %q\nnow    %q\n%v", where, q.undo[0].Cells[0].Before, q.undo[0].Cells[0].After, hs.now, err)
			case err != nil:
				q.counts.conflicts++
			case nb.Cells[0].Source == rep.Text:
				q.counts.compared++
				if several {
					q.counts.severalCompared++
				}
			case rewritten:
				q.counts.retyped++
			case near:
				q.counts.near++
			default:
				mismatches++
				if mismatches <= 5 {
					var texts []string
					for _, c := range hs.agents {
						texts = append(texts, fmt.Sprintf("change %d: %q -> %q", c.ID, c.Cells[0].Before, c.Cells[0].After))
					}
					t.Errorf("%s: changes.Undo and Yjs's UndoManager differ\n%s\nsteps %+v\nnow    %q\nUndo   %q\nYjs    %q", where, strings.Join(texts, "\n"), hs.steps, hs.now, nb.Cells[0].Source, rep.Text)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d queries where changes.Undo and Yjs's UndoManager differ", mismatches)
	}
	t.Logf("%d histories; person's actions: %v", seeds, kinds)
	t.Logf("%d delivery orders of %d left updates pending on the way; sidecar/yjs converged on every one, Yjs on all but %d", pending, one.queries+since.queries, yjsStuck)
	for _, c := range []struct {
		name string
		n    undoCounts
	}{{"undo one change", one}, {"undo all since change k", since}} {
		t.Logf("%s: %d queries: %d equal to Yjs's UndoManager, %d conflicts; differing, where the texts cannot show what a later edit did: %d where it deleted some of the agent's text and typed it back, %d where it deleted the character before the agent's splice or typed right after it; %d queries with every later edit a line with text or more away from the splice's lines, none a conflict", c.name, c.n.queries, c.n.compared, c.n.conflicts, c.n.retyped, c.n.near, c.n.separated)
		t.Logf("%s: %d queries undo a change written as several splices (one per changed region of lines), %d of them equal to Yjs's UndoManager", c.name, c.n.several, c.n.severalCompared)
		// Every query without a conflict is compared with Yjs; at least 90%
		// of them must be equal (the rest are the histories above), and the
		// floors keep the generator exercising the rule.
		if clean := c.n.queries - c.n.conflicts; c.n.compared*10 < clean*9 || c.n.compared < c.n.queries/4 || c.n.separated < c.n.queries/20 || c.n.several < c.n.queries/20 || c.n.severalCompared*10 < c.n.several {
			t.Errorf("%s: too few queries equal to Yjs's (%d of %d, %d without a conflict, %d separated, %d of %d changes of several splices equal); the generator no longer exercises the rule", c.name, c.n.compared, c.n.queries, clean, c.n.separated, c.n.severalCompared, c.n.several)
		}
	}
	if pending < (one.queries+since.queries)/2 {
		t.Errorf("only %d delivery orders left updates pending; out-of-order delivery is barely exercised", pending)
	}
	checked(t, "undo, sequential", seeds)
}

// deliverInOrder applies the history's updates to a fresh sidecar/yjs
// document in the given order, checks it reads now, then applies the
// UndoManager's updates and checks it reads Yjs's result. It reports
// whether updates were pending on the way.
func deliverInOrder(t *testing.T, where string, rep historyReply, order []int, now string) bool {
	t.Helper()
	d := yjs.NewDoc()
	pending := false
	for _, i := range order {
		if err := d.ApplyUpdate(unb64(t, rep.Updates[i]), nil); err != nil {
			t.Fatalf("%s: update %d: %v", where, i, err)
		}
		pending = pending || d.HasPending()
	}
	if got := d.GetText("t").String(); got != now || d.HasPending() {
		t.Fatalf("%s: sidecar/yjs, delivered in order %v, reads %q (pending %v), want %q", where, order, got, d.HasPending(), now)
	}
	for _, u := range rep.UndoUpdates {
		if err := d.ApplyUpdate(unb64(t, u), nil); err != nil {
			t.Fatalf("%s: the undo's update: %v", where, err)
		}
	}
	if got := d.GetText("t").String(); got != rep.Text {
		t.Fatalf("%s: sidecar/yjs reads %q after the undo's updates, Yjs %q", where, got, rep.Text)
	}
	return pending
}

// separated says whether every edit since change c (all of after -> now)
// is at least one untouched line away from the lines each of c's splices
// touches, with the characters either side of it (a splice, as the sidecar
// writes it, may take in the start or end of a line c did not change), and
// a line with text in it: an empty line is only a newline, which an
// insertion next to it can slide across. An edit between two splices
// counts when it is that far from both.
func separated(c changes.Cell, now string) bool {
	after := strings.Split(c.After, "\n")
	p0, p1 := region(after, strings.Split(now, "\n"))
	gap := func(lines []string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return l != "" })
	}
	// The splices go last first, in before's units; shift gives after's.
	ss := notebook.Splices(c.Before, c.After)
	shift := 0
	for k := len(ss) - 1; k >= 0; k-- {
		sp := ss[k]
		at, end := sp.Index+shift, sp.Index+shift+len(sp.Insert)
		shift += len(sp.Insert) - sp.Delete
		lineOf := func(i int) int { return strings.Count(c.After[:i], "\n") }
		a0, a1 := lineOf(max(at-1, 0)), lineOf(min(end, len(c.After)))+1
		if !(p1 < a0 && gap(after[p1:a0])) && !(p0 > a1 && gap(after[a1:p0])) {
			return false
		}
	}
	return true
}
