package jupyter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// The event bus's messages reach the handler of their schema: contents
// actions but reads, kernel actions with a kernel id, room actions with a
// path; others and malformed ones are skipped.
func TestWatchEventsDispatchesBySchema(t *testing.T) {
	msgs := []string{
		`not json`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/contents_service/v1","action":"get","path":"a.ipynb"}`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/contents_service/v1","action":"rename","path":"b.ipynb","source_path":"a.ipynb"}`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/kernel_actions/v1","kernel_name":"python3","action":"restart","status":"success","msg":"Kernel k1 was restarted.","kernel_id":"k1"}`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/kernel_actions/v1","action":"start","status":"error","msg":"no such kernelspec"}`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/gateway_client/v1","msg":"x"}`,
		`{"schema_id":"https://schema.jupyter.org/jupyter_collaboration/session/v1","level":"INFO","room":"json:notebook:f1","path":"b.ipynb","action":"overwrite","msg":"Out-of-band changes. Overwriting the room."}`,
		`{"schema_id":"https://schema.jupyter.org/jupyter_collaboration/session/v1","level":"INFO","room":"JupyterLab:globalAwareness","msg":"no path"}`,
		`{"schema_id":"https://events.jupyter.org/jupyter_server/kernel_actions/v1","action":"shutdown","status":"success","kernel_id":"k2"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events/subscribe" {
			http.NotFound(w, r)
			return
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for _, m := range msgs {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(m))
		}
		_, _, _ = ws.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	c, err := NewClient(&ServerInfo{URL: srv.URL + "/", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var contents []ContentsEvent
	var rooms []CollaborationEvent
	kernels := make(chan KernelEvent, 10)
	go c.WatchEvents(ctx, zerolog.Nop(), EventHandlers{
		Contents:      func(ev ContentsEvent) { contents = append(contents, ev) },
		Kernel:        func(ev KernelEvent) { kernels <- ev },
		Collaboration: func(ev CollaborationEvent) { rooms = append(rooms, ev) },
	})
	var got []KernelEvent
	for len(got) < 2 || got[len(got)-1].KernelID != "k2" {
		got = append(got, <-kernels)
	}
	cancel()
	want := []KernelEvent{{KernelID: "k1", Action: "restart", Status: "success"}, {KernelID: "k2", Action: "shutdown", Status: "success"}}
	if !slices.Equal(got, want) {
		t.Fatalf("kernel events %+v, want %+v", got, want)
	}
	// The contents events came before, on the same connection.
	if len(contents) != 1 || contents[0] != (ContentsEvent{Action: "rename", Path: "b.ipynb", SourcePath: "a.ipynb"}) {
		t.Fatalf("contents events %+v, want the rename only", contents)
	}
	want0 := CollaborationEvent{Action: "overwrite", Path: "b.ipynb", Level: "INFO", Msg: "Out-of-band changes. Overwriting the room."}
	if len(rooms) != 1 || rooms[0] != want0 {
		t.Fatalf("collaboration events %+v, want the overwrite only", rooms)
	}
}
