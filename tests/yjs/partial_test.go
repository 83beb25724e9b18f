package yjs_test

import (
	"math/rand"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// TestYrsStateWithHoles: pycrdt (yrs) receives a random subset of a
// session's updates in random order, so its store has holes. Its full-state
// update (what a jupyter-collaboration server sends as SyncStep2) then holds
// Skip structs in the middle of clients' ranges. Go must integrate all of it
// (every struct yrs holds has its dependencies in that update), reach yrs's
// JSON and state vector, and re-encode it (with Skips) so that yrs reads
// the same document back.
//
// Sessions avoid surrogate pairs: when an insert splits an emoji, Yjs turns
// both halves into U+FFFD while yrs keeps different text (a known Yjs/yrs
// disagreement; clocks still agree, see TestEmptyStringItemFromYrs).
func TestYrsStateWithHoles(t *testing.T) {
	yo := yjsOracle(t)
	po := pycrdtOracle(t)
	n := envInt("HOLE_SEEDS", 800)
	skips := 0
	for seed := 0; seed < n; seed++ {
		var s session
		yo.call(t, map[string]any{"op": "gen", "seed": 100000 + seed, "peers": 2 + seed%3, "steps": 15 + seed%40, "emoji": false}, &s)
		r := rand.New(rand.NewSource(int64(seed)))
		var subset []string
		for _, i := range r.Perm(len(s.Updates)) {
			if r.Float64() < 0.6 {
				subset = append(subset, s.Updates[i])
			}
		}
		var rep applyReply
		po.call(t, map[string]any{"op": "apply", "updates": subset}, &rep)

		// The other direction: Go applies the same subset (holes and pending
		// structs of its own); yrs reads Go's state with Skips as Go's JSON.
		g := newTestDoc()
		for _, u := range subset {
			if err := g.ApplyUpdate(unb64(t, u), nil); err != nil {
				t.Fatal(err)
			}
		}
		var fromGo applyReply
		po.call(t, map[string]any{"op": "apply", "updates": []string{b64(g.EncodeStateAsUpdate(nil))}}, &fromGo)
		if !jsonEqual(fromGo.JSON, docJSON(g)) {
			t.Fatalf("seed %d: yrs reads Go's state with holes as\n %s\nGo has\n %s", seed, show(fromGo.JSON), show(docJSON(g)))
		}

		state := unb64(t, rep.State)
		if u, err := yjs.DecodeUpdate(state); err == nil && hasSkip(u) {
			skips++
		}
		d := newTestDoc()
		if err := d.ApplyUpdate(state, nil); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !jsonEqual(docJSON(d), rep.JSON) {
			t.Fatalf("seed %d: yrs state with holes:\n go:  %s\n yrs: %s", seed, show(docJSON(d)), show(rep.JSON))
		}
		if d.HasPending() {
			t.Fatalf("seed %d: pending structs after yrs's full state", seed)
		}
		if got := b64(d.EncodeStateVector()); !svEqual(t, got, rep.SV) {
			t.Fatalf("seed %d: state vector %v, yrs %v", seed, got, rep.SV)
		}
		var back applyReply
		po.call(t, map[string]any{"op": "apply", "updates": []string{b64(d.EncodeStateAsUpdate(nil))}}, &back)
		if !jsonEqual(back.JSON, rep.JSON) {
			t.Fatalf("seed %d: yrs reads Go's re-encoding as\n %s\nwant\n %s", seed, show(back.JSON), show(rep.JSON))
		}
		// Delivering everything afterwards converges to the session's result.
		applyAll(t, d, decodeUpdates(t, &s))
		if !jsonEqual(docJSON(d), s.JSON) || d.HasPending() {
			t.Fatalf("seed %d: after the remaining updates:\n go:   %s\n want: %s", seed, show(docJSON(d)), show(s.JSON))
		}
	}
	if skips < n/10 {
		t.Fatalf("only %d of %d yrs states contained Skip structs; the test lost its point", skips, n)
	}
	t.Logf("%d of %d yrs states contained Skip structs", skips, n)
	checked(t, "yrs states with holes", n)
}

func hasSkip(u *yjs.DecodedUpdate) bool {
	for _, list := range u.Structs {
		for _, it := range list {
			if yjs.IsSkip(it) {
				return true
			}
		}
	}
	return false
}
