package hubroute

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdingHub is a fakeHub whose servers hold a call whose body says
// "hold" until release is closed, telling reached when they have it.
func holdingHub(f *fakeHub) (h http.Handler, reached chan string, release chan struct{}) {
	reached, release = make(chan string, 16), make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/user/") && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if strings.Contains(string(body), "hold") {
				reached <- r.URL.Path
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		f.ServeHTTP(w, r)
	}), reached, release
}

// Beyond MaxRequests in flight, or MaxUserRequests of one user, a request
// is answered 503 with Retry-After at once; another user's calls go on,
// and once calls end, requests are taken again.
func TestRouterCapacity(t *testing.T) {
	const hold = `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"hold"}}`
	for _, tc := range []struct {
		name   string
		limits Limits
		cache  time.Duration
		held   int    // alice's calls held in flight
		caller string // who calls next
		want   string
	}{
		{name: "overall", limits: Limits{MaxRequests: 2}, held: 2, caller: "bob", want: "the hub's MCP service is at capacity (2 requests in flight"},
		{name: "per user", limits: Limits{MaxUserRequests: 2}, held: 2, caller: "alice", want: "alice has 2 requests in flight"},
		{name: "per user, token known", limits: Limits{MaxUserRequests: 2}, cache: time.Minute, held: 2, caller: "alice", want: "alice has 2 requests in flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHub()
			f.state["bob"] = "ready"
			hub, reached, release := holdingHub(f)
			srv, _, _ := newRouterWith(t, hub, Config{Limits: tc.limits, TokenCache: tc.cache})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			call := func(user, body string) (int, http.Header, string) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(body))
				req.Header.Set("Authorization", "token tok-"+user)
				status, header, data, err := exchange(req)
				if err != nil {
					t.Error(err) // from the held calls' goroutines too
				}
				return status, header, data
			}
			if status, _, data := call("alice", initBody); status != 200 { // the token known, if the router remembers
				t.Fatalf("a first call: %d %s", status, data)
			}
			var wg sync.WaitGroup
			for range tc.held {
				wg.Go(func() {
					if status, _, data := call("alice", hold); status != 200 {
						t.Errorf("a held call: %d %s", status, data)
					}
				})
			}
			for range tc.held {
				select {
				case <-reached:
				case <-ctx.Done():
					t.Fatal("the held calls did not reach the server")
				}
			}
			status, header, data := call(tc.caller, initBody)
			var msg struct {
				ID    int `json:"id"`
				Error struct{ Message string }
			}
			_ = json.Unmarshal([]byte(data), &msg)
			if status != http.StatusServiceUnavailable || header.Get("Retry-After") != capacityRetry || !strings.HasPrefix(msg.Error.Message, tc.want) {
				t.Fatalf("a call beyond the limit: %d Retry-After=%q %s; want 503, Retry-After, %q", status, header.Get("Retry-After"), data, tc.want)
			}
			if tc.caller == "alice" {
				if status, _, data := call("bob", initBody); status != 200 {
					t.Fatalf("bob's call while alice is at her limit: %d %s", status, data)
				}
			}
			close(release)
			wg.Wait()
			if status, _, data := call(tc.caller, initBody); status != 200 {
				t.Fatalf("a call once the held ones ended: %d %s", status, data)
			}
		})
	}
}

// dial opens a raw connection to srv.
func dial(t *testing.T, srv *httptest.Server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedWithin reads conn until the router closes it, within d; what it
// read comes back.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	data, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s (read %q)", d, data)
	}
	return string(data)
}

// A client that sends its request slowly, or nothing more, holds the
// router no longer than its timeouts: for the line and headers, for the
// body (from its first byte read), between requests.
func TestRouterTimeouts(t *testing.T) {
	const limit = 200 * time.Millisecond
	f := newFakeHub()
	srv, _, _ := newRouterWith(t, f, Config{Limits: Limits{HeaderTimeout: limit, BodyTimeout: limit, IdleTimeout: limit}})
	t.Run("headers that never end", func(t *testing.T) {
		conn := dial(t, srv)
		fmt.Fprint(conn, "POST /services/mcp HTTP/1.1\r\nHost: x\r\n")
		closedWithin(t, conn, 5*time.Second)
	})
	t.Run("a body that never ends", func(t *testing.T) {
		for _, auth := range []string{"", "Authorization: token tok-alice\r\n"} {
			conn := dial(t, srv)
			fmt.Fprintf(conn, "POST /services/mcp HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":3,", auth)
			closedWithin(t, conn, 5*time.Second)
		}
	})
	t.Run("a connection kept idle", func(t *testing.T) {
		conn := dial(t, srv)
		fmt.Fprint(conn, "GET /services/mcp HTTP/1.1\r\nHost: x\r\n\r\n")
		if got := closedWithin(t, conn, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 403") {
			t.Fatalf("the answer before the close: %q", got)
		}
	})
}

// The body's time counts from its first byte read: a call that waits for
// its server to start longer than the body may take still gets through,
// its body whole (http.Server.ReadTimeout would have failed it).
func TestRouterBodyAfterStart(t *testing.T) {
	const limit = 200 * time.Millisecond
	f := newFakeHub()
	hub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/hub/api/users/bob/server" {
			time.Sleep(3 * limit) // a slow start
		}
		f.ServeHTTP(w, r)
	})
	srv, _, _ := newRouterWith(t, hub, Config{Limits: Limits{BodyTimeout: limit}})
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"source":"` + strings.Repeat("x", 512<<10) + `"}}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "token tok-bob")
	send(t, req, http.StatusOK)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.starts != 1 || len(f.bodies) != 1 || f.bodies[0] != body {
		t.Fatalf("%d starts, %d bodies received (%d bytes); want the call's whole body after one start", f.starts, len(f.bodies), len(strings.Join(f.bodies, "")))
	}
}

// Headers beyond MaxHeaderBytes (and the 4 KiB net/http allows more) are
// refused (431).
func TestRouterHeaderLimit(t *testing.T) {
	srv, _, _ := newRouterWith(t, newFakeHub(), Config{})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(initBody))
	req.Header.Set("Authorization", "token tok-alice")
	req.Header.Set("X-Padding", strings.Repeat("x", DefaultLimits.MaxHeaderBytes+4<<10))
	send(t, req, http.StatusRequestHeaderFieldsTooLarge)
}

// countingReader is a body of 4 MiB that counts the bytes read from it.
type countingReader struct {
	mu sync.Mutex
	n  int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p = p[:min(len(p), 4<<20-c.n)]
	if len(p) == 0 {
		return 0, io.EOF
	}
	c.n += len(p)
	return len(p), nil
}

// A request the router refuses before it knows whose it is has at most
// maxPrefix bytes of its body read (for the JSON-RPC id of the answer);
// one refused at capacity none.
func TestRouterRefusalReadsLittle(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits Limits
		auth   string
		status int
		max    int
	}{
		{"no token", Limits{}, "", http.StatusForbidden, maxPrefix},
		{"wrong token", Limits{}, "token nope", http.StatusForbidden, maxPrefix},
		{"at capacity", Limits{MaxRequests: 1}, "token tok-alice", http.StatusServiceUnavailable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := httptest.NewServer(newFakeHub())
			defer hub.Close()
			r := New(Config{HubAPI: mustURL(hub.URL + "/hub/api"), Proxy: mustURL(hub.URL), Prefix: "/services/mcp", Limits: tc.limits})
			if tc.status == http.StatusServiceUnavailable {
				release, _ := r.admit() // the one request it takes
				defer release()
			}
			body := &countingReader{}
			req := httptest.NewRequest(http.MethodPost, "/services/mcp", body)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status || body.n > tc.max {
				t.Fatalf("%d, %d bytes of the body read; want %d, at most %d read", w.Code, body.n, tc.status, tc.max)
			}
		})
	}
}

// On a progress stream, an answer of the server is relayed as it comes,
// however long: a JSON answer as one event (its line breaks, between
// tokens, made spaces); of any other answer, only its start is kept, to
// name the failure.
func TestEventTailBounded(t *testing.T) {
	const size = 8 << 20
	t.Run("a long JSON answer", func(t *testing.T) {
		w := httptest.NewRecorder()
		tail := &eventTail{w: w, id: json.RawMessage("4"), header: http.Header{}}
		tail.Header().Set("Content-Type", "application/json")
		tail.WriteHeader(http.StatusOK)
		chunk := "{\"jsonrpc\": \"2.0\",\r\n \"id\": 4, \"result\": {\"text\": \"" + strings.Repeat("a\\nb", 1000) + "\", \"more\": [\n"
		written := 0
		_, _ = io.WriteString(tail, chunk)
		for written = len(chunk); written < size; written += 3 {
			_, _ = io.WriteString(tail, "1,\n")
		}
		_, _ = io.WriteString(tail, "1]}}\n")
		if tail.body.Len() != 0 || cap(tail.line) > 2*len(chunk) {
			t.Fatalf("the tail kept %d bytes, its line buffer %d", tail.body.Len(), cap(tail.line))
		}
		tail.finish()
		out := w.Body.String()
		data, ok := strings.CutPrefix(out, "event: message\ndata: ")
		if !ok || !strings.HasSuffix(data, "\n\n") || strings.Count(data, "\n") != 2 {
			t.Fatalf("not one event: %.100q … %q", out, out[len(out)-20:])
		}
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Text string
				More []int
			}
		}
		if err := json.Unmarshal([]byte(data), &msg); err != nil || msg.ID != 4 || !strings.HasPrefix(msg.Result.Text, "a\nb") || len(msg.Result.More) < (size-len(chunk))/3 {
			t.Fatalf("the event's JSON: %v, id %d", err, msg.ID)
		}
	})
	t.Run("an endless failure", func(t *testing.T) {
		w := httptest.NewRecorder()
		tail := &eventTail{w: w, id: json.RawMessage("4"), header: http.Header{}}
		tail.Header().Set("Content-Type", "text/html")
		tail.WriteHeader(http.StatusBadGateway)
		for written := 0; written < size; written += 1 << 10 {
			_, _ = io.WriteString(tail, "<p>"+strings.Repeat("x", 1<<10-3))
		}
		if tail.body.Len() > maxTail || w.Body.Len() != 0 {
			t.Fatalf("the tail kept %d bytes (at most %d), sent %d", tail.body.Len(), maxTail, w.Body.Len())
		}
		tail.finish()
		sc := bufio.NewScanner(strings.NewReader(w.Body.String()))
		sc.Buffer(nil, 1<<20)
		var last string
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				last = d
			}
		}
		if !strings.Contains(last, `"id":4`) || !strings.Contains(last, `your server answered 502 Bad Gateway: \u003cp\u003exxx`) {
			t.Fatalf("the error event: %.300s", last)
		}
	})
}

// Calls to the hub and to the users' servers never go through a proxy
// from the environment (HTTP_PROXY, HTTPS_PROXY): it would see every
// user's token.
func TestRouterNoProxyFromEnvironment(t *testing.T) {
	r := New(Config{HubAPI: mustURL("http://hub:8081/hub/api"), Proxy: mustURL("http://proxy:8000"), Prefix: "/services/mcp"})
	for name, rt := range map[string]http.RoundTripper{"forwarded calls": r.proxy.Transport, "hub API calls": r.hub.client.Transport} {
		tr, ok := rt.(*http.Transport)
		if !ok || tr.Proxy != nil {
			t.Errorf("the transport of the %s takes a proxy (%T)", name, rt)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// A client that never reads the answer it asked for holds the router, and
// the user's server's call, no longer than WriteStall once the answer
// fills the connection: the router cuts it and the server's call ends.
func TestRouterClientThatNeverReads(t *testing.T) {
	const stall = 200 * time.Millisecond
	f := newFakeHub()
	ended := make(chan struct{})
	hub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/user/") || r.Method != http.MethodPost {
			f.ServeHTTP(w, r)
			return
		}
		defer close(ended)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := []byte("data: " + strings.Repeat("x", 32<<10) + "\n\n")
		for r.Context().Err() == nil { // an endless answer
			if _, err := w.Write(chunk); err != nil {
				return
			}
			_ = http.NewResponseController(w).Flush()
		}
	})
	srv, _, _ := newRouterWith(t, hub, Config{Limits: Limits{WriteStall: stall}})
	conn := dial(t, srv)
	fmt.Fprintf(conn, "POST /services/mcp HTTP/1.1\r\nHost: x\r\nAuthorization: token tok-alice\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s", len(initBody), initBody)
	// Nothing is read from conn: the buffers of both ends fill, then the
	// router's write waits.
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's call still runs 10 s after its client stopped reading")
	}
}

// A connection kept alive longer than WriteStall after an answer still
// carries the next one: each answer starts without the last one's deadline.
func TestRouterKeptAlivePastWriteStall(t *testing.T) {
	const stall = 100 * time.Millisecond
	srv, _, _ := newRouterWith(t, newFakeHub(), Config{Limits: Limits{WriteStall: stall}})
	conn := dial(t, srv)
	rd := bufio.NewReader(conn)
	for i := range 2 {
		fmt.Fprintf(conn, "POST /services/mcp HTTP/1.1\r\nHost: x\r\nAuthorization: token tok-alice\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s", len(initBody), initBody)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("answer %d on the kept-alive connection: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("answer %d: status %d", i+1, resp.StatusCode)
		}
		time.Sleep(3 * stall) // the time under test: the last deadline passes
	}
}
