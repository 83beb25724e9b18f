package yjs_test

import (
	"encoding/base64"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// delivery is how a history's updates reach the other peer.
type delivery int

const (
	inOrder    delivery = iota // as sent, late
	shuffled                   // in any order: some wait as pending structs
	duplicated                 // in any order, some more than once
)

func (d delivery) String() string { return [...]string{"in order", "shuffled", "duplicated"}[d] }

// simPeer is one side of a concurrent history on sidecar/yjs: the agent's
// peer (the sidecar's document) or the person's (the browser's).
type simPeer struct {
	name  string
	doc   *yjs.Doc
	inbox []int // updates sent to it and not yet delivered, oldest first
	got   []int // updates delivered to it
	has   map[int]bool
	order []int // every update it integrated, its own too, in order
	// pending: an update delivered to it waited for another.
	pending bool
	last    []byte
}

// concurrent is a seeded history of several agent changes and a person's
// editor actions on two peers whose updates reach each other late, in
// order, shuffled or duplicated: the person types while the agent's change
// is on its way and the agent writes while the person's keystrokes are.
type concurrent struct {
	base    string
	mode    delivery
	updates [][]byte // the initial text's, then each step's
	// Per local transaction (a step): its origin ("person", "agent1",
	// ...), the ids it inserted, and what its peer had integrated before.
	origins  []string
	inserted []idRange
	seen     []yjs.StateVector
	recvd    []map[int]bool    // the updates delivered to its peer before it
	agents   []*changes.Change // each with the agent's texts around it
	stepOf   []int             // the step of each agent change
	now      string
	agent    *simPeer
	person   *simPeer
	kinds    map[string]int
}

// idRange is a client's clocks [clock, clock+len).
type idRange struct{ client, clock, len uint64 }

func (r idRange) has(id charID) bool {
	return id.client == r.client && id.clock >= r.clock && id.clock < r.clock+r.len
}

func newConcurrent(r *rand.Rand, mode delivery) *concurrent {
	word := words(r)
	h := &concurrent{base: baseText(r, word), mode: mode, kinds: map[string]int{}}
	clients := []uint64{uint64(1 + r.Intn(1<<30)), 0, 0}
	for k := 1; k < 3; k++ {
		for clients[k] == 0 || slices.Contains(clients[:k], clients[k]) {
			clients[k] = uint64(1 + r.Intn(1<<30))
		}
	}
	init := yjs.NewDocWithClientID(clients[0])
	if err := init.GetText("t").Insert(0, h.base); err != nil {
		panic(err)
	}
	h.updates = [][]byte{init.EncodeStateAsUpdate(nil)}
	agent := &simPeer{name: "agent", doc: yjs.NewDocWithClientID(clients[1]), has: map[int]bool{}}
	person := &simPeer{name: "person", doc: yjs.NewDocWithClientID(clients[2]), has: map[int]bool{}}
	for _, p := range []*simPeer{agent, person} {
		p.doc.OnUpdate(func(u []byte, txn *yjs.Transaction) {
			if txn.Local {
				p.last = u
			}
		})
		if err := p.doc.ApplyUpdate(h.updates[0], nil); err != nil {
			panic(err)
		}
		p.order = []int{0}
	}
	h.agent, h.person = agent, person
	other := map[*simPeer]*simPeer{agent: person, person: agent}
	text := func(p *simPeer) string { return p.doc.GetText("t").String() }
	local := func(p *simPeer, origin string, sps []splice) {
		sv := p.doc.StateVector()
		h.seen = append(h.seen, sv)
		h.recvd = append(h.recvd, maps.Clone(p.has))
		t := p.doc.GetText("t")
		p.last = nil
		p.doc.TransactWithOrigin(origin, func(*yjs.Transaction) {
			for _, sp := range sps {
				if sp.Delete > 0 {
					if err := t.Delete(sp.Index, sp.Delete); err != nil {
						panic(err)
					}
				}
				if sp.Insert != "" {
					if err := t.Insert(sp.Index, sp.Insert); err != nil {
						panic(err)
					}
				}
			}
		})
		c := p.doc.ClientID()
		h.inserted = append(h.inserted, idRange{c, sv[c], p.doc.StateVector()[c] - sv[c]})
		h.updates = append(h.updates, p.last)
		k := len(h.updates) - 1
		p.order = append(p.order, k)
		q := other[p]
		q.inbox = append(q.inbox, k)
		h.origins = append(h.origins, origin)
	}
	deliver := func(p *simPeer) {
		var k int
		switch {
		case mode == duplicated && len(p.got) > 0 && (len(p.inbox) == 0 || r.Intn(4) == 0):
			k = p.got[r.Intn(len(p.got))]
		case len(p.inbox) == 0:
			return
		default:
			i := 0
			if mode != inOrder {
				i = r.Intn(len(p.inbox))
			}
			k = p.inbox[i]
			p.inbox = slices.Delete(p.inbox, i, i+1)
			p.got = append(p.got, k)
			p.has[k] = true
		}
		if err := p.doc.ApplyUpdate(h.updates[k], nil); err != nil {
			panic(err)
		}
		p.pending = p.pending || p.doc.HasPending()
		p.order = append(p.order, k)
	}
	// catchUp delivers to the agent's peer the updates sent before the
	// newest one it has: where one is missing, sidecar/yjs integrates the
	// next of the same client's (as yrs does) and Yjs keeps it pending, so
	// the agent's change must be made on a text both implementations show.
	catchUp := func() {
		newest := 0
		for k := range agent.has {
			newest = max(newest, k)
		}
		for slices.ContainsFunc(agent.inbox, func(k int) bool { return k < newest }) {
			i := slices.IndexFunc(agent.inbox, func(k int) bool { return k < newest })
			k := agent.inbox[i]
			agent.inbox = slices.Delete(agent.inbox, i, i+1)
			agent.got = append(agent.got, k)
			agent.has[k] = true
			if err := agent.doc.ApplyUpdate(h.updates[k], nil); err != nil {
				panic(err)
			}
			agent.order = append(agent.order, k)
		}
	}
	traffic := func() {
		for range r.Intn(4) {
			deliver([]*simPeer{agent, person}[r.Intn(2)])
		}
	}
	// The person's actions, each a burst of transactions (keystrokes) on
	// the text the person's peer shows; the agent's peer may receive some
	// of them in the middle of a burst.
	act := func(n int) {
		for range n {
			kind, txns := personAction(r, text(person), word)
			if len(txns) > 0 {
				h.kinds[kind]++
			}
			for _, t := range txns {
				local(person, "person", t)
				if r.Intn(3) == 0 {
					deliver(agent)
				}
			}
			traffic()
		}
	}
	act(r.Intn(2))
	agents := 2 + r.Intn(3)
	for a := range agents {
		traffic()
		catchUp()
		before := text(agent)
		after, sps := agentEdit(r, before, word)
		h.stepOf = append(h.stepOf, len(h.origins))
		local(agent, fmt.Sprintf("agent%d", a+1), sps)
		h.agents = append(h.agents, &changes.Change{ID: a + 1, Cells: []changes.Cell{{Op: changes.Edit, CellID: "c", Before: before, After: after}}})
		traffic()
		if a < agents-1 {
			act(r.Intn(3))
		}
	}
	act(1 + r.Intn(3))
	for len(agent.inbox)+len(person.inbox) > 0 {
		deliver([]*simPeer{agent, person}[r.Intn(2)])
	}
	if mode == duplicated {
		for range 1 + r.Intn(3) {
			deliver([]*simPeer{agent, person}[r.Intn(2)])
		}
	}
	h.now = text(agent)
	return h
}

type concurrentReply struct {
	Room     string `json:"room"`
	Pending  bool   `json:"pending"`
	Diverged bool   `json:"diverged"`
	Peers    map[string]struct {
		Text    string `json:"text"`
		Pending bool   `json:"pending"`
	} `json:"peers"`
	Deleted [][][3]uint64 `json:"deleted"`
	Items   [][3]uint64   `json:"items"`
	Undo    []struct {
		Text    string   `json:"text"`
		Updates []string `json:"updates"`
		Stacks  []int    `json:"stacks"`
	} `json:"undo"`
}

// charID is a character's Yjs id.
type charID struct{ client, clock uint64 }

// touches says what steps outside an undo did at its changes' splices (see
// classify).
type touches struct {
	// concurrent: a step made without either peer having the undone
	// change's or its own; retyped: a later step deleted some of the text
	// the change inserted; near: one deleted the character before a
	// splice, or inserted between it and the splice.
	concurrent, retyped, near bool
}

// classify says what the steps outside an undo did at the splices of the
// undone agent changes, read in the room's document at the end, deleted
// characters included. A splice is a run of the characters the change
// inserted or deleted, with nothing between them but characters the agent
// did not have; its window runs from the last character before it that the
// agent had and showed (L) to the first after it (R). A step touches the
// splice when it inserted in the window, or deleted L, R or some of what
// the change inserted.
func classify(h *concurrent, rep *concurrentReply, undo []*changes.Change) touches {
	owner := func(id charID) int {
		for s, r := range h.inserted {
			if r.has(id) {
				return s
			}
		}
		return -1 // the initial text
	}
	deleters := func(id charID) []int {
		var out []int
		for s, ds := range rep.Deleted[1:] {
			for _, d := range ds {
				if (idRange{d[0], d[1], d[2]}).has(id) {
					out = append(out, s)
				}
			}
		}
		return out
	}
	undone := map[int]bool{}
	for _, c := range undo {
		undone[h.stepOf[c.ID-1]] = true
	}
	var out touches
	for _, c := range undo {
		sc := h.stepOf[c.ID-1]
		// Per character: 'o' the change's own, 'v' one the agent showed
		// when it made it, '.' any other.
		marks := make([]byte, len(rep.Items))
		for k, it := range rep.Items {
			id := charID{it[0], it[1]}
			ds := deleters(id)
			s := owner(id)
			switch {
			case s == sc || slices.Contains(ds, sc):
				marks[k] = 'o'
			case (s < 0 || h.saw(rep, sc, s)) && !slices.ContainsFunc(ds, func(d int) bool { return h.saw(rep, sc, d) }):
				marks[k] = 'v'
			default:
				marks[k] = '.'
			}
		}
		// touch reports whether step s outside the undo touched the splice
		// (concurrent ones are noted and not counted as later).
		touch := func(s int) bool {
			if s < 0 || undone[s] {
				return false
			}
			if !h.saw(rep, s, sc) && !h.saw(rep, sc, s) {
				out.concurrent = true
				return false
			}
			return h.saw(rep, s, sc)
		}
		for k := 0; k < len(marks); {
			if marks[k] != 'o' {
				k++
				continue
			}
			// Yjs inserts after the deleted characters at a position, so
			// text typed right after L lands after the splice's deleted
			// characters, before what it inserted (ins).
			first, last, ins := k, k, -1
			for j := k; j < len(marks) && marks[j] != 'v'; j++ {
				if marks[j] == 'o' {
					last = j
					if ins < 0 && owner(charID{rep.Items[j][0], rep.Items[j][1]}) == sc {
						ins = j
					}
				}
			}
			if ins < 0 {
				ins = last + 1
			}
			pl, pr := first-1, last+1
			if ins > last { // a deletion only: its window is all before R
				ins = pr
			}
			for pl >= 0 && marks[pl] != 'v' {
				pl--
			}
			for pr < len(marks) && marks[pr] != 'v' {
				pr++
			}
			for j := pl + 1; j < pr; j++ {
				id := charID{rep.Items[j][0], rep.Items[j][1]}
				if marks[j] == 'o' {
					if owner(id) == sc {
						for _, d := range deleters(id) {
							if touch(d) {
								out.retyped = true
							}
						}
					}
					continue
				}
				if s := owner(id); touch(s) && j < ins {
					out.near = true
				}
			}
			if pl >= 0 {
				for _, d := range deleters(charID{rep.Items[pl][0], rep.Items[pl][1]}) {
					if touch(d) {
						out.near = true
					}
				}
			}
			if pr < len(marks) {
				for _, d := range deleters(charID{rep.Items[pr][0], rep.Items[pr][1]}) {
					touch(d)
				}
			}
			k = last + 1
		}
	}
	return out
}

// saw says whether step a's peer had integrated step b before making a:
// its own earlier step, or one whose characters it holds; a deletion alone
// moves no clock, so it counts once delivered and every character it
// deletes is there.
func (h *concurrent) saw(rep *concurrentReply, a, b int) bool {
	if h.inserted[a].client == h.inserted[b].client {
		return b < a
	}
	sv := h.seen[a]
	if ins := h.inserted[b]; ins.len > 0 {
		return sv[ins.client] >= ins.clock+ins.len
	}
	if !h.recvd[a][b+1] {
		return false
	}
	for _, d := range rep.Deleted[b+1] {
		if sv[d[0]] < d[1]+d[2] {
			return false
		}
	}
	return true
}

// Undoing any subset of several agent changes with changes.Undo gives what
// Yjs's UndoManager gives on the same concurrent history, unless Revert
// reports a conflict or the texts cannot show what Yjs follows character
// by character: a person's edit concurrent with an undone change at its
// splice (Yjs orders the concurrent characters among the agent's; the
// sidecar merges by lines), or a later edit that deleted some of the
// agent's text, or deleted the character before its splice or typed right
// after that character. Every other difference fails.
//
// Each history has two to four agent changes, written as the sidecar
// writes them (one splice per changed region of lines, notebook.Splices)
// on the agent's peer from the text it shows, and the person's editor
// actions on a second peer before, between and after them, both peers in
// sidecar/yjs. Each peer's updates reach the other late, in a seeded mode
// per history: in order, shuffled (some wait as pending structs) or
// shuffled and duplicated; so the person types while an agent change is on
// its way, and the agent writes while keystrokes are. The room's Yjs
// document receives every update in the order made, each as a transaction
// of its origin, with one UndoManager per agent change (captureTimeout 0);
// a Yjs replica of each peer receives the updates in that peer's order.
// Two queries per history undo a random subset of the changes and one
// change, newest first; the UndoManager's updates must bring both
// sidecar/yjs peers to its text.
func TestUndoConcurrentAgainstYjsUndoManager(t *testing.T) {
	o := yjsOracle(t)
	seeds := envInt("CONCURRENT_UNDO_SEEDS", 2000)
	counts := map[string]int{}
	modes := map[delivery]int{}
	kinds := map[string]int{}
	queries, mismatches, changeCount, concurrentChanges, yjsStuck := 0, 0, 0, 0, 0
	pendingPeers := map[string]int{}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		r := rand.New(rand.NewSource(seed))
		mode := delivery(seed % 3)
		modes[mode]++
		h := newConcurrent(r, mode)
		for k, n := range h.kinds {
			kinds[k] += n
		}
		where := fmt.Sprintf("seed %d (%s)", seed, mode)
		for _, p := range []*simPeer{h.agent, h.person} {
			if got := p.doc.GetText("t").String(); got != h.now || p.doc.HasPending() {
				t.Fatalf("%s: sidecar/yjs's %s peer reads %q (pending %v), the agent's %q", where, p.name, got, p.doc.HasPending(), h.now)
			}
		}
		changeCount += len(h.agents)
		var pick []*changes.Change
		for len(pick) == 0 {
			for _, c := range h.agents {
				if r.Intn(2) == 0 {
					pick = append(pick, c)
				}
			}
		}
		j := r.Intn(len(h.agents))
		subsets := [][]*changes.Change{pick, h.agents[j : j+1]}
		var origins [][]string
		for _, sub := range subsets {
			var os []string
			for _, c := range sub {
				os = append(os, fmt.Sprintf("agent%d", c.ID))
			}
			origins = append(origins, os)
		}
		var b64 []string
		for _, u := range h.updates {
			b64 = append(b64, base64.StdEncoding.EncodeToString(u))
		}
		var rep concurrentReply
		o.call(t, map[string]any{"op": "interleave", "updates": b64, "origins": append([]string{"init"}, h.origins...),
			"peers": map[string][]int{"agent": h.agent.order, "person": h.person.order}, "queries": origins}, &rep)
		if rep.Room != h.now || rep.Pending {
			t.Fatalf("%s: the room's Yjs document, given the updates in the order made, reads %q (pending %v), sidecar/yjs's peers %q", where, rep.Room, rep.Pending, h.now)
		}
		for name, p := range rep.Peers {
			if p.Pending {
				yjsStuck++
				t.Logf("%s: Yjs's replica of the %s peer still holds pending structs after every update (sidecar/yjs converged): reads %q, want %q", where, name, p.Text, h.now)
			} else if p.Text != h.now {
				t.Fatalf("%s: Yjs's replica of the %s peer reads %q, sidecar/yjs's %q", where, name, p.Text, h.now)
			}
		}
		if rep.Diverged {
			t.Fatalf("%s: Yjs, as the agent's peer, held pending structs when the agent made a change", where)
		}
		for _, p := range []*simPeer{h.agent, h.person} {
			if p.pending {
				pendingPeers[p.name]++
			}
		}
		for _, sc := range h.stepOf {
			for s := range h.origins {
				if h.origins[s] == "person" && !h.saw(&rep, s, sc) && !h.saw(&rep, sc, s) {
					concurrentChanges++
					break
				}
			}
		}
		for q, undo := range subsets {
			queries++
			qwhere := fmt.Sprintf("%s, undo %v", where, origins[q])
			yjsText := rep.Undo[q].Text
			for _, n := range rep.Undo[q].Stacks {
				if n != 1 {
					t.Fatalf("%s: the UndoManagers hold %v stack items, want one each", qwhere, rep.Undo[q].Stacks)
				}
			}
			for _, p := range []*simPeer{h.agent, h.person} {
				c := yjs.NewDoc()
				if err := c.ApplyUpdate(p.doc.EncodeStateAsUpdate(nil), nil); err != nil {
					t.Fatal(err)
				}
				for _, u := range rep.Undo[q].Updates {
					if err := c.ApplyUpdate(unb64(t, u), nil); err != nil {
						t.Fatalf("%s: the UndoManager's update: %v", qwhere, err)
					}
				}
				if got := c.GetText("t").String(); got != yjsText {
					t.Fatalf("%s: sidecar/yjs's %s peer reads %q after the UndoManager's updates, Yjs %q", qwhere, p.name, got, yjsText)
				}
			}
			nb := notebook.New(nil)
			nb.Cells = []*notebook.Cell{{ID: "c", Type: notebook.Code, Source: h.now}}
			err := changes.Undo(nb, undo)
			tc := classify(h, &rep, undo)
			switch {
			case err != nil && (tc.concurrent || tc.retyped || tc.near):
				counts["conflict, an edit at its splices"]++
			case err != nil:
				counts["conflict, no edit at its splices"]++
			case nb.Cells[0].Source == yjsText:
				counts["equal"]++
			case tc.concurrent:
				counts["concurrent"]++
			case tc.retyped:
				counts["retyped"]++
			case tc.near:
				counts["near"]++
			default:
				mismatches++
				if mismatches <= 5 {
					var texts []string
					for _, c := range h.agents {
						texts = append(texts, fmt.Sprintf("change %d: %q -> %q", c.ID, c.Cells[0].Before, c.Cells[0].After))
					}
					t.Errorf("%s: changes.Undo and Yjs's UndoManager differ (%+v)\n%s\norigins %v\nnow    %q\nUndo   %q\nYjs    %q", qwhere, tc, strings.Join(texts, "\n"), h.origins, h.now, nb.Cells[0].Source, yjsText)
				}
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d queries where changes.Undo and Yjs's UndoManager differ", mismatches)
	}
	t.Logf("%d histories (%v); person's actions: %v; %d agent changes, %d of them concurrent with a person's edit; Yjs's replicas stuck with pending structs: %d", seeds, modes, kinds, changeCount, concurrentChanges, yjsStuck)
	t.Logf("histories where an update delivered to a peer waited for another: %v", pendingPeers)
	t.Logf("%d queries: %v", queries, counts)
	checked(t, "undo, concurrent", seeds)
}
