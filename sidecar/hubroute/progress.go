package hubroute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// startProgress tells a client that asked for progress on its request
// (params._meta.progressToken) how the start of its server goes: the hub's
// progress events become MCP progress notifications on the request's own
// response, which turns into a stream of server-sent events at the first
// one. The answer of the user's server then follows on that stream.
//
// Nothing is sent before the hub has taken the start, so a start it refuses
// at once (at capacity) still gets its own status and Retry-After.
type startProgress struct {
	w     http.ResponseWriter
	token json.RawMessage
	id    json.RawMessage // the request's, for an error that is not JSON-RPC
	last  int             // the last progress sent; it must increase
	// started: the response is an event stream (status 200 sent).
	started bool
}

// maxPeek is the largest request body the router reads to find a progress
// token; a larger request waits for its server without progress.
const maxPeek = 256 << 10

// newStartProgress returns a startProgress for req, or nil when the client
// did not ask for progress or does not accept an event stream. It reads the
// body and puts it back.
func newStartProgress(w http.ResponseWriter, req *http.Request) *startProgress {
	if req.Method != http.MethodPost || req.Body == nil || !strings.Contains(req.Header.Get("Accept"), "text/event-stream") {
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(req.Body, maxPeek+1))
	if err != nil || len(head) > maxPeek {
		req.Body = readCloser{io.MultiReader(bytes.NewReader(head), req.Body), req.Body}
		return nil
	}
	// All of it: once the response streams, the server may close the
	// request's body (net/http, HTTP/1).
	req.Body = readCloser{bytes.NewReader(head), req.Body}
	var msg struct {
		Params struct {
			Meta struct {
				ProgressToken json.RawMessage `json:"progressToken"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(head, &msg) != nil || len(msg.Params.Meta.ProgressToken) == 0 || string(msg.Params.Meta.ProgressToken) == "null" {
		return nil
	}
	return &startProgress{w: w, token: msg.Params.Meta.ProgressToken, id: rpcID(head), last: -1}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// report sends one progress notification (progress out of 100, as the hub
// counts).
func (p *startProgress) report(progress int, message string) {
	if progress <= p.last {
		return
	}
	p.last = progress
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "text/event-stream")
		p.w.Header().Set("Cache-Control", "no-cache")
		p.w.WriteHeader(http.StatusOK)
	}
	note, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"method":  "notifications/progress",
		"params":  map[string]any{"progressToken": p.token, "progress": progress, "total": 100, "message": message},
	})
	writeEvent(p.w, note)
}

// writer is where the rest of the answer goes: the client's response as
// is, or, once the stream started, an eventTail on it.
func (p *startProgress) writer() (w http.ResponseWriter, finish func()) {
	if p == nil || !p.started {
		return nil, func() {}
	}
	t := &eventTail{w: p.w, id: p.id, header: http.Header{}}
	return t, t.finish
}

func writeEvent(w http.ResponseWriter, data []byte) {
	fmt.Fprintf(w, "event: message\ndata: %s\n\n", data)
	_ = http.NewResponseController(w).Flush()
}

// eventTail carries the answer of the user's server (or the router's own
// error) on a response already streaming: an event stream is copied
// through as it comes; a JSON answer becomes one more event, streamed as
// it comes too; any other answer becomes a JSON-RPC error naming the
// server's status. Its status and headers cannot reach the client any
// more. It buffers maxTail bytes at most, however long the answer.
type eventTail struct {
	w      http.ResponseWriter
	id     json.RawMessage
	header http.Header
	status int
	kind   tailKind
	opened bool         // tailJSON: the event has begun
	body   bytes.Buffer // tailOther: the answer's start
	line   []byte       // tailJSON: a write without its line breaks
}

type tailKind int

const (
	tailOther  tailKind = iota // buffered (up to maxTail), then an error
	tailStream                 // an event stream: copied through
	tailJSON                   // a JSON answer: one event, streamed
)

// maxTail is what an eventTail keeps of an answer that is neither JSON nor
// an event stream: its start names the failure.
const maxTail = 16 << 10

func (t *eventTail) Header() http.Header { return t.header }

func (t *eventTail) WriteHeader(code int) {
	if t.status != 0 || code < 200 {
		return
	}
	t.status = code
	media, _, _ := mime.ParseMediaType(t.header.Get("Content-Type"))
	switch {
	case code == http.StatusOK && media == "text/event-stream":
		t.kind = tailStream
	case code == http.StatusOK && media == "application/json":
		t.kind = tailJSON
	}
}

func (t *eventTail) Write(b []byte) (int, error) {
	t.WriteHeader(http.StatusOK)
	switch t.kind {
	case tailStream:
		return t.w.Write(b)
	case tailJSON:
		if len(b) == 0 {
			return 0, nil
		}
		if !t.opened {
			t.opened = true
			if _, err := io.WriteString(t.w, "event: message\ndata: "); err != nil {
				return 0, err
			}
		}
		// An event's data is one line: JSON has line breaks only between
		// its tokens (inside strings they are escaped), where a space
		// means the same.
		t.line = append(t.line[:0], b...)
		for i, c := range t.line {
			if c == '\n' || c == '\r' {
				t.line[i] = ' '
			}
		}
		if _, err := t.w.Write(t.line); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if room := maxTail - t.body.Len(); room > 0 {
		t.body.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (t *eventTail) Flush() {
	if t.kind != tailOther {
		_ = http.NewResponseController(t.w).Flush()
	}
}

// finish ends the answer's event; an answer that is not JSON becomes a
// JSON-RPC error naming the server's status.
func (t *eventTail) finish() {
	switch {
	case t.kind == tailStream:
		return
	case t.opened:
		_, _ = io.WriteString(t.w, "\n\n")
		_ = http.NewResponseController(t.w).Flush()
		return
	}
	var msg bytes.Buffer
	if json.Compact(&msg, t.body.Bytes()) != nil || msg.Len() == 0 {
		msg.Reset()
		text := strings.TrimSpace(string(t.body.Bytes()[:min(t.body.Len(), 200)]))
		data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": t.id, "error": map[string]any{
			"code": codeUnavailable, "message": fmt.Sprintf("your server answered %d %s: %s", t.status, http.StatusText(t.status), text)}})
		msg.Write(data)
	}
	writeEvent(t.w, msg.Bytes())
}
