package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
)

// scripted is a kernel behind fake channels: answer returns the messages
// the kernel sends back for each request.
type scripted struct {
	c      *conn
	mu     sync.Mutex
	sent   []string // msg types, in order
	answer func(n int, m *Message) []*Message
}

func newScripted(answer func(n int, m *Message) []*Message) *scripted {
	f := &scripted{answer: answer}
	f.c = newConn("test-session", f)
	return f
}

func (f *scripted) write(m *Message) error {
	f.mu.Lock()
	f.sent = append(f.sent, m.Header.MsgType)
	n := len(f.sent)
	f.mu.Unlock()
	for _, r := range f.answer(n, m) {
		f.c.dispatch(r)
	}
	return nil
}

func (f *scripted) close() {}

func reply(to *Message, channel, msgType, content string) *Message {
	return &Message{Channel: channel, Header: Header{MsgID: newID(), MsgType: msgType}, ParentHeader: to.Header, Content: json.RawMessage(content)}
}

// The subscription counts as live at the first request whose IOPub
// message arrives, however many replies came without one.
func TestAwaitSubscription(t *testing.T) {
	for _, tc := range []struct {
		name       string
		liveFrom   int // first request whose IOPub messages arrive; 0: none
		wantErr    bool
		wantProbes int
	}{
		{"live at once", 1, false, 1},
		{"joins at the third request", 3, false, 3},
		{"never", 0, true, maxProbes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newScripted(func(n int, m *Message) []*Message {
				out := []*Message{reply(m, "shell", "kernel_info_reply", `{"status":"ok"}`)}
				if tc.liveFrom != 0 && n >= tc.liveFrom {
					out = append(out, reply(m, "iopub", "status", `{"execution_state":"idle"}`))
				}
				return out
			})
			err := k.c.awaitSubscription(t.Context())
			if (err != nil) != tc.wantErr {
				t.Fatalf("awaitSubscription: %v, want an error: %v", err, tc.wantErr)
			}
			if len(k.sent) != tc.wantProbes {
				t.Fatalf("%d kernel_info requests, want %d", len(k.sent), tc.wantProbes)
			}
		})
	}
}

// An execution whose reply came but whose IOPub messages stopped (its idle
// lost) ends afterReplyWait after the last of them, with the reply's status
// and the outputs that arrived, instead of waiting forever.
func TestExecuteEndsWhenIOPubFallsSilentAfterTheReply(t *testing.T) {
	defer func(d time.Duration) { afterReplyWait = d }(afterReplyWait)
	afterReplyWait = 50 * time.Millisecond
	k := newScripted(func(_ int, m *Message) []*Message {
		return []*Message{
			reply(m, "iopub", "status", `{"execution_state":"busy"}`),
			reply(m, "iopub", "stream", `{"name":"stdout","text":"hi\n"}`),
			reply(m, "shell", "execute_reply", `{"status":"ok","execution_count":3}`),
		}
	})
	kern := &Kernel{ID: "k", conn: k.c}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	res, err := kern.Execute(ctx, "print('hi')", Hooks{})
	if err != nil || res.Status != "ok" || res.ExecutionCount == nil || *res.ExecutionCount != 3 {
		t.Fatalf("Execute = %+v, %v; want ok, count 3", res, err)
	}
	if got := res.Outputs.List(); len(got) != 1 {
		t.Fatalf("outputs %+v, want the one stream", got)
	}
}

// After a restart reported on the event bus, the next execution proves the
// connection's IOPub subscription again before it sends its request; other
// actions and other kernels change nothing.
func TestKernelChangedRechecksTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   jupyter.KernelEvent
		want []string
	}{
		{"restart", jupyter.KernelEvent{KernelID: "k", Action: "restart", Status: "success"}, []string{"kernel_info_request", "execute_request"}},
		{"interrupt", jupyter.KernelEvent{KernelID: "k", Action: "interrupt", Status: "success"}, []string{"execute_request"}},
		{"another kernel", jupyter.KernelEvent{KernelID: "other", Action: "restart", Status: "success"}, []string{"execute_request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newScripted(func(_ int, m *Message) []*Message {
				if m.Header.MsgType == "kernel_info_request" {
					return []*Message{reply(m, "iopub", "status", `{"execution_state":"busy"}`), reply(m, "shell", "kernel_info_reply", `{"status":"ok"}`)}
				}
				return []*Message{
					reply(m, "shell", "execute_reply", `{"status":"ok","execution_count":1}`),
					reply(m, "iopub", "status", `{"execution_state":"idle"}`),
				}
			})
			k := &Kernel{ID: "k", conn: f.c}
			m := &Manager{kernels: map[string]*Kernel{"k": k}}
			m.KernelChanged(tc.ev)
			if res, err := k.Execute(t.Context(), "1", Hooks{}); err != nil || res.Status != "ok" {
				t.Fatalf("Execute = %+v, %v", res, err)
			}
			if !slices.Equal(f.sent, tc.want) {
				t.Fatalf("sent %v, want %v", f.sent, tc.want)
			}
		})
	}
}

// A run is judged every ackTimeout by the server's word on the kernel:
// while it is busy the run goes on; once it is idle, a request it never
// acknowledged was lost, and a run it started that stays silent until the
// next check was lost to a restart (which the server's websocket does not
// tell), so it ends and the connection is dropped for the next run to dial
// afresh.
func TestExecuteJudgesASilentRunByTheKernelsState(t *testing.T) {
	defer func(d time.Duration) { ackTimeout = d }(ackTimeout)
	ackTimeout = 30 * time.Millisecond
	for _, tc := range []struct {
		name      string
		acked     bool   // the kernel published busy for the request
		state     string // what the server says; "": 404
		finishes  bool   // the kernel answers the rest later
		wantErr   error
		wantAlive bool // the connection stays up
	}{
		{"started, then the kernel restarted", true, "idle", false, ErrKernelDied, false},
		{"never acknowledged by an idle kernel", false, "idle", false, errUnacknowledged, false},
		{"started and still busy", true, "busy", true, nil, true},
		{"queued behind other code", false, "busy", true, nil, true},
		{"the kernel was removed", true, "", false, ErrKernelGone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.state == "" {
					http.Error(w, `{"message":"Kernel does not exist: k"}`, http.StatusNotFound)
					return
				}
				fmt.Fprintf(w, `{"id":"k","name":"python3","execution_state":%q}`, tc.state)
			}))
			defer server.Close()
			jc, err := jupyter.NewClient(&jupyter.ServerInfo{URL: server.URL + "/"})
			if err != nil {
				t.Fatal(err)
			}
			var f *scripted
			f = newScripted(func(_ int, m *Message) []*Message {
				if tc.finishes { // after several of the sidecar's checks
					time.AfterFunc(5*ackTimeout, func() {
						f.c.dispatch(reply(m, "shell", "execute_reply", `{"status":"ok","execution_count":2}`))
						f.c.dispatch(reply(m, "iopub", "status", `{"execution_state":"idle"}`))
					})
				}
				if tc.acked {
					return []*Message{reply(m, "iopub", "status", `{"execution_state":"busy"}`)}
				}
				return nil
			})
			k := &Kernel{ID: "k", jc: jc, conn: f.c}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			// execute, not Execute: Execute sends an unacknowledged request
			// again on a new connection.
			res, err := k.execute(ctx, "import time; time.sleep(60)", Hooks{Started: func() {}})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && res.Status != "ok") {
				t.Fatalf("execute = %+v, %v; want error %v", res, err, tc.wantErr)
			}
			if f.c.isClosed() == tc.wantAlive {
				t.Fatalf("connection closed: %v, want %v", f.c.isClosed(), !tc.wantAlive)
			}
		})
	}
}
