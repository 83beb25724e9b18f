package yproto

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

func TestSyncFraming(t *testing.T) {
	cases := []struct {
		name string
		msg  []byte
		hex  string
	}{
		{"step1 empty sv", EncodeSyncStep1([]byte{0}), "000001" + "00"},
		{"step2 empty update", EncodeSyncStep2(yjs.EmptyUpdate), "0001020000"},
		{"update", EncodeUpdate([]byte{1, 2, 3}), "000203010203"},
		{"save request", EncodeSaveRequest(7), "02047361766507"},
	}
	for _, c := range cases {
		if got := hex.EncodeToString(c.msg); got != c.hex {
			t.Errorf("%s: got %s want %s", c.name, got, c.hex)
		}
	}
	m, err := Decode(EncodeUpdate([]byte{1, 2, 3}))
	if err != nil || m.Type != MessageSync || m.SyncType != SyncUpdate || !bytes.Equal(m.Payload, []byte{1, 2, 3}) {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 9, 0}, {0, 2, 5, 1}, {1, 3}} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

// Two docs sync through the protocol: step1 both ways, step2 replies.
func TestSyncHandshake(t *testing.T) {
	server, client := yjs.NewDoc(), yjs.NewDoc()
	server.GetMap("state").Set("dirty", false)
	server.GetArray("cells").Push(yjs.MapPrelim{"source": yjs.TextPrelim("print(1)")})
	client.GetMap("meta").Set("nbformat", 4)

	exchange := func(from, to *yjs.Doc) {
		m, err := Decode(SyncStep1For(from))
		if err != nil {
			t.Fatal(err)
		}
		reply, err := HandleSync(to, m, nil)
		if err != nil || reply == nil {
			t.Fatalf("step1: %v", err)
		}
		m2, err := Decode(reply)
		if err != nil || m2.SyncType != SyncStep2 {
			t.Fatalf("reply %+v %v", m2, err)
		}
		if r, err := HandleSync(from, m2, "remote"); err != nil || r != nil {
			t.Fatalf("step2: %v", err)
		}
	}
	exchange(client, server)
	exchange(server, client)
	a, _ := json.Marshal(server.ToJSON())
	b, _ := json.Marshal(client.ToJSON())
	if string(a) != string(b) {
		t.Fatalf("not in sync:\n%s\n%s", a, b)
	}
	// An Update message is applied too.
	var upd []byte
	client.OnUpdate(func(u []byte, _ *yjs.Transaction) { upd = u })
	client.GetMap("state").Set("dirty", true)
	m, _ := Decode(EncodeUpdate(upd))
	if _, err := HandleSync(server, m, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := server.GetMap("state").Get("dirty"); v != true {
		t.Fatal("update not applied")
	}
}

func TestRaw(t *testing.T) {
	e := yjs.NewEncoder()
	e.WriteVarUint(MessageRaw)
	e.WriteVarString(`{"type":"save","responseTo":7,"status":"success"}`)
	m, err := Decode(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeRaw(m)
	if err != nil || s != `{"type":"save","responseTo":7,"status":"success"}` {
		t.Fatalf("%q %v", s, err)
	}
}

func TestAwarenessEncoding(t *testing.T) {
	entries := []AwarenessEntry{{ClientID: 5, Clock: 2, State: json.RawMessage(`{"user":{"name":"a"}}`)}, {ClientID: 300, Clock: 1, State: json.RawMessage("null")}}
	b := EncodeAwarenessUpdate(entries)
	want := "02" + "05" + "02" + "15" + hex.EncodeToString([]byte(`{"user":{"name":"a"}}`)) + "ac02" + "01" + "04" + hex.EncodeToString([]byte("null"))
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	back, err := DecodeAwarenessUpdate(b)
	if err != nil || !reflect.DeepEqual(back, entries) {
		t.Fatalf("%+v %v", back, err)
	}
	if _, err := DecodeAwarenessUpdate([]byte{3, 1}); err == nil {
		t.Fatal("truncated update decoded")
	}
}

func TestAwarenessStates(t *testing.T) {
	now := time.Unix(1000, 0)
	a := NewAwareness(1)
	a.now = func() time.Time { return now }
	b := NewAwareness(2)
	b.now = a.now

	msg, err := a.SetLocalState(map[string]any{"user": map[string]any{"name": "sidecar <bot>"}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := Decode(msg)
	added, _, _, err := b.ApplyUpdate(m.Payload)
	if err != nil || !reflect.DeepEqual(added, []uint64{1}) {
		t.Fatalf("added %v %v", added, err)
	}
	if s := string(b.States()[1]); s != `{"user":{"name":"sidecar <bot>"}}` {
		t.Fatalf("state %s", s) // no HTML escaping, like JSON.stringify
	}
	// An old clock is ignored; a renewal updates nothing visible.
	if _, upd, _, _ := b.ApplyUpdate(m.Payload); upd != nil {
		t.Fatal("stale update applied")
	}
	m, _ = Decode(a.Renew())
	if ad, upd, rm, _ := b.ApplyUpdate(m.Payload); ad != nil || upd != nil || rm != nil {
		t.Fatal("renewal reported a change")
	}
	// Timeout drops states that are not renewed.
	now = now.Add(Timeout)
	if got := b.RemoveOutdated(); !reflect.DeepEqual(got, []uint64{1}) {
		t.Fatalf("outdated %v", got)
	}
	// Leaving sends null.
	b2 := NewAwareness(3)
	b2.now = a.now
	m, _ = Decode(a.Renew())
	b2.ApplyUpdate(m.Payload)
	msg, _ = a.SetLocalState(nil)
	m, _ = Decode(msg)
	if _, _, rm, _ := b2.ApplyUpdate(m.Payload); !reflect.DeepEqual(rm, []uint64{1}) {
		t.Fatalf("removed %v", rm)
	}
}
