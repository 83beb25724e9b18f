package yjs_test

import (
	"encoding/json"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
)

// TestYProtocolsInterop: Go and y-protocols (JS) sync two different
// documents with SyncStep1/SyncStep2 and exchange awareness states.
func TestYProtocolsInterop(t *testing.T) {
	o := yjsOracle(t)
	// The JS side's document: one session's updates.
	var s session
	o.call(t, map[string]any{"op": "gen", "seed": 7, "peers": 2, "steps": 30, "emoji": true}, &s)

	g := newTestDoc()
	g.GetText("t").Insert(0, "from go ")
	g.GetMap("m").Set("go", true)
	aw := yproto.NewAwareness(g.ClientID())
	awMsg, err := aw.SetLocalState(map[string]any{"user": map[string]any{"name": "sidecar"}})
	if err != nil {
		t.Fatal(err)
	}

	type reply struct {
		Reply     string                     `json:"reply"`
		Step1     string                     `json:"step1"`
		Awareness string                     `json:"awareness"`
		States    map[string]json.RawMessage `json:"states"`
		JSON      any                        `json:"json"`
	}
	// Go → JS: SyncStep1 and awareness. JS answers SyncStep2 and its step1.
	var r reply
	o.call(t, map[string]any{"op": "protocol", "updates": s.Updates, "sync": b64(yproto.SyncStep1For(g)), "awareness": b64(awMsg)}, &r)
	if got := string(r.States[jsonKey(g.ClientID())]); got != `{"user":{"name":"sidecar"}}` {
		t.Fatalf("JS sees Go's awareness as %q (%v)", got, r.States)
	}
	reply2, err := yproto.Decode(unb64(t, r.Reply))
	if err != nil || reply2.SyncType != yproto.SyncStep2 {
		t.Fatalf("reply %+v %v", reply2, err)
	}
	if _, err := yproto.HandleSync(g, reply2, "js"); err != nil {
		t.Fatal(err)
	}
	// Go answers JS's step1 with SyncStep2; JS applies it.
	m, err := yproto.Decode(unb64(t, r.Step1))
	if err != nil || m.SyncType != yproto.SyncStep1 {
		t.Fatalf("step1 %+v %v", m, err)
	}
	step2, err := yproto.HandleSync(g, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r2 reply
	o.call(t, map[string]any{"op": "protocol", "updates": s.Updates, "sync": b64(step2)}, &r2)
	if !jsonEqual(r2.JSON, docJSON(g)) {
		t.Fatalf("after sync JS has\n %s\nGo has\n %s", show(r2.JSON), show(docJSON(g)))
	}
	// JS's awareness update is understood by Go.
	am, err := yproto.Decode(unb64(t, r.Awareness))
	if err != nil || am.Type != yproto.MessageAwareness {
		t.Fatalf("%+v %v", am, err)
	}
	added, _, _, err := aw.ApplyUpdate(am.Payload)
	if err != nil || len(added) != 1 || added[0] != 777 {
		t.Fatalf("added %v %v", added, err)
	}
	if got := string(aw.States()[777]); got != `{"user":{"name":"js <peer>"}}` {
		t.Fatalf("JS state %q", got)
	}
}

func jsonKey(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
