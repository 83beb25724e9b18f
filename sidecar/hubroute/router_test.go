package hubroute

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
)

// fakeHub is a JupyterHub API and proxy in one: tokens, users' server
// states, starts, progress streams, and the users' /user/<name>/mcp,
// routed as configurable-http-proxy routes them, answered by the hub as
// JupyterHub answers for a server not running, and by the server only for
// its owner's token.
type fakeHub struct {
	mu          sync.Mutex
	owners      map[string]string // token -> user name ("svc:" prefix: a service)
	noRead      map[string]bool   // tokens without read:servers
	state       map[string]string // user -> "", "spawn", "ready", "stop"
	urls        map[string]string // user -> the server's url in the hub's answers (default /user/<name>/)
	startStatus int               // answer to POST .../server; 0: 202 and spawning
	retryAfter  string
	progress    string // what a spawn does: "ready" (default), "failed", "hang"
	lastFailed  bool   // the user's last start failed: the hub's progress stream says so first
	// staleRead, if set, is closed once a progress stream has told the last
	// start's failure; a start waits for it (as JupyterHub answers a start
	// only later, the router's follower reads the stale failure first).
	staleRead chan struct{}
	once      sync.Once
	// pendingLooks: a server pending stop is gone, one pending check (the
	// hub's look at it as the hub starts) ready, after this many looks.
	pendingLooks int
	startBody    string // body of the last start
	startMsg     string // message of a refused start ("hub says no")
	starts       int
	whoamis      int             // GET /hub/api/user
	forwarded    []*http.Request // that reached the proxy's /user/ routes
	served       []string        // whose server answered each forwarded request ("" the hub's)
	bodies       []string        // the bodies the servers received
	// serverRefuses: the servers answer 403 whatever the token.
	serverRefuses bool
}

func newFakeHub() *fakeHub {
	return &fakeHub{
		owners: map[string]string{"tok-alice": "alice", "tok-bob": "bob", "tok-svc": "svc:ops", "tok-noread": "alice"},
		noRead: map[string]bool{"tok-noread": true},
		state:  map[string]string{"alice": "ready", "bob": ""},
	}
}

// url is the url of user's server in the hub's answers.
func (f *fakeHub) url(user string) string {
	if u, ok := f.urls[user]; ok {
		return u
	}
	return "/user/" + user + "/"
}

// route is the user whose running server the proxy sends r to, "" for
// none (the hub's default route): as configurable-http-proxy, by the path
// unescaped once (r.URL.Path), prefixed with the Host on a hub with
// subdomains; the routes are the servers' urls, unescaped once (the hub
// sends them escaped in the URL of its proxy's API).
func (f *fakeHub) route(r *http.Request) string {
	for user, state := range f.state {
		if state != "ready" {
			continue
		}
		u := f.url(user)
		host := ""
		if _, rest, ok := strings.Cut(u, "://"); ok {
			host, u, _ = strings.Cut(rest, "/")
			u = "/" + u
		}
		prefix, err := url.PathUnescape(u)
		if err == nil && (host == "" || r.Host == host) && strings.HasPrefix(r.URL.Path, prefix) {
			return user
		}
	}
	return ""
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	tok := clientToken(r.Header.Get("Authorization"))
	owner, known := f.owners[tok]
	f.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/user/") {
		f.mu.Lock()
		server := f.route(r)
		f.forwarded = append(f.forwarded, r.Clone(r.Context()))
		f.served = append(f.served, server)
		f.mu.Unlock()
		switch {
		case server == "" && !known: // the hub: no token it takes, no XSRF token
			http.Error(w, `{"status":403,"message":"'_xsrf' argument missing from POST"}`, http.StatusForbidden)
		case server == "" && r.Method == http.MethodGet && f.state[owner] == "spawn": // the hub, for a page of a server starting
			http.Redirect(w, r, "/hub/spawn-pending/"+owner, http.StatusSeeOther)
		case server == "": // the hub, for a server not running
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusFailedDependency)
			fmt.Fprintf(w, `{"message":"JupyterHub server no longer running at %s."}`, r.URL.Path)
		case owner != server || f.serverRefuses: // the server's own check of the token
			http.Error(w, `{"status":403,"message":"Forbidden"}`, http.StatusForbidden)
		default:
			body, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.bodies = append(f.bodies, string(body))
			f.mu.Unlock()
			w.Header().Set("Mcp-Session-Id", "sess-"+r.Header.Get("Mcp-Session-Id"))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"path":%q,"server":%q}}`, r.URL.Path, server)
		}
		return
	}
	if !known {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"status":403,"message":"Forbidden"}`)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/hub/api/user":
		f.mu.Lock()
		defer f.mu.Unlock()
		f.whoamis++
		u := map[string]any{"name": owner, "kind": "user"}
		if name, ok := strings.CutPrefix(owner, "svc:"); ok {
			u = map[string]any{"name": name, "kind": "service"}
		} else if !f.noRead[tok] {
			if p := f.state[owner]; p == "stop" || p == "check" {
				if f.pendingLooks--; f.pendingLooks < 0 {
					f.state[owner] = map[string]string{"stop": "", "check": "ready"}[p]
				}
			}
			servers := map[string]any{}
			switch s := f.state[owner]; s {
			case "ready":
				servers[""] = map[string]any{"ready": true, "pending": nil, "url": f.url(owner)}
			case "spawn", "stop", "check":
				servers[""] = map[string]any{"ready": false, "pending": s, "url": f.url(owner)}
			}
			u["servers"] = servers
		}
		_ = json.NewEncoder(w).Encode(u)
	case r.Method == http.MethodPost && r.URL.Path == "/hub/api/users/"+owner+"/server":
		if f.staleRead != nil {
			select {
			case <-f.staleRead:
			case <-time.After(5 * time.Second): // the test then fails on its events
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.starts++
		body, _ := io.ReadAll(r.Body)
		f.startBody = string(body)
		if p := f.state[owner]; p == "stop" || p == "check" { // as JupyterHub
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"%s is pending %s"}`, owner, p)
			return
		}
		if f.startStatus != 0 {
			if f.retryAfter != "" {
				w.Header().Set("Retry-After", f.retryAfter)
			}
			msg := f.startMsg
			if msg == "" {
				msg = "hub says no"
			}
			w.WriteHeader(f.startStatus)
			fmt.Fprintf(w, `{"message":%q}`, msg)
			return
		}
		f.state[owner] = "spawn"
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/hub/api/users/"+owner+"/server/progress":
		f.mu.Lock()
		mode := f.progress
		switch {
		case f.state[owner] == "spawn":
		case f.lastFailed: // as JupyterHub: the last start's failure, at once
			f.mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "\n\ndata: {\"progress\": 100, \"failed\": true, \"message\": \"Spawn failed: an earlier one\"}\n\n") // after a keepalive
			if f.staleRead != nil {
				f.once.Do(func() { close(f.staleRead) })
			}
			return
		case f.state[owner] == "":
			f.mu.Unlock()
			w.WriteHeader(http.StatusNotFound) // as JupyterHub for a server it has no spawner for
			return
		default:
			f.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"progress\": 50, \"message\": \"pulling\"}\n\n\n")
		switch mode {
		case "failed":
			f.state[owner] = ""
			fmt.Fprint(w, "data: {\"progress\": 100, \"failed\": true, \"message\": \"Spawn failed: image missing\"}\n\n")
		case "hang":
			f.mu.Unlock()
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		default:
			f.state[owner] = "ready"
			fmt.Fprint(w, "data: {\"progress\": 100, \"ready\": true, \"url\": \"/user/x/\"}\n\n")
		}
		f.mu.Unlock()
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
	}
}

func newRouter(t *testing.T, hub http.Handler, startTimeout time.Duration) (*httptest.Server, *httptest.Server) {
	t.Helper()
	srv, hubSrv, _ := newRouterWith(t, hub, Config{StartTimeout: startTimeout})
	return srv, hubSrv
}

// newRouterWith serves a Router of cfg, with hub as its hub's API and
// proxy, on the router's own http.Server.
func newRouterWith(t *testing.T, hub http.Handler, cfg Config) (*httptest.Server, *httptest.Server, *Router) {
	t.Helper()
	hubSrv := httptest.NewServer(hub)
	t.Cleanup(hubSrv.Close)
	u, _ := url.Parse(hubSrv.URL)
	cfg.HubAPI, cfg.Proxy, cfg.Prefix, cfg.Log = u.JoinPath("/hub/api"), u, "/services/mcp/", zerolog.Nop()
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 5 * time.Second
	}
	r := New(cfg)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = r.Server()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, hubSrv, r
}

// send sends req and returns the response and its body, which must have
// the status want.
func send(t *testing.T, req *http.Request, want int) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, data)
	}
	return resp, data
}

// exchange sends req and returns the answer's status, headers and body.
func exchange(req *http.Request) (int, http.Header, string, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data), err
}

const initBody = `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}`

func TestRouter(t *testing.T) {
	for _, tc := range []struct {
		name        string
		setup       func(f *fakeHub)
		method      string
		path        string
		auth        string
		status      int
		want        string // in the body
		forwardTo   string // path the request reached, "" for none
		forwardAuth string // its Authorization header, if not auth
		startBody   string // what the start sent the hub
		starts      int
		retryAfter  string
		timeout     time.Duration // StartTimeout (300 ms if 0)
	}{
		{name: "no token", auth: "", status: 403, want: "no JupyterHub token"},
		{name: "basic auth", auth: "Basic eDp5", status: 403, want: "no JupyterHub token"},
		{name: "wrong token", auth: "token nope", status: 403, want: "does not accept this token"},
		{name: "service token", auth: "token tok-svc", status: 403, want: "not to a user"},
		{name: "running, token", auth: "token tok-alice", status: 200, forwardTo: "/user/alice/mcp"},
		{name: "running, bearer, slash", path: "/services/mcp/", auth: "bearer tok-alice", status: 200, forwardTo: "/user/alice/mcp", forwardAuth: "token tok-alice"},
		{name: "token in the URL", path: "/services/mcp?token=tok-alice", status: 200, forwardTo: "/user/alice/mcp", forwardAuth: "token tok-alice"},
		{name: "wrong token in the URL", path: "/services/mcp?token=nope", status: 403, want: "does not accept this token"},
		{name: "header wins over the URL", path: "/services/mcp?token=nope", auth: "token tok-alice", status: 200, forwardTo: "/user/alice/mcp"},
		{name: "other path", path: "/services/mcp/embed", auth: "token tok-alice", status: 404, want: "the MCP endpoint is /services/mcp/"},
		{name: "stopped, POST starts it", auth: "token tok-bob", status: 200, forwardTo: "/user/bob/mcp", starts: 1},
		{name: "stopped, GET does not", method: http.MethodGet, auth: "token tok-bob", status: 404, want: "bob's server is not running"},
		{name: "stopped, DELETE does not", method: http.MethodDelete, auth: "token tok-bob", status: 404, want: "not running"},
		{name: "start fails", setup: func(f *fakeHub) { f.progress = "failed" }, auth: "token tok-bob", status: 502,
			want: "could not start bob's server: Spawn failed: image missing", starts: 1},
		{name: "start hangs", setup: func(f *fakeHub) { f.progress = "hang" }, auth: "token tok-bob", status: 504,
			want: "did not become ready in time", starts: 1},
		{name: "token may not start", setup: func(f *fakeHub) { f.startStatus = 403 }, auth: "token tok-bob", status: 403,
			want: "may not start it", starts: 1},
		{name: "hub at capacity", setup: func(f *fakeHub) { f.startStatus = 429; f.retryAfter = "7" }, auth: "token tok-bob", status: 503,
			want: "at capacity", starts: 1, retryAfter: "7"},
		{name: "hub error on start", setup: func(f *fakeHub) { f.startStatus = 500 }, auth: "token tok-bob", status: 502,
			want: "refused to start bob's server: 500 hub says no", starts: 1},
		{name: "hub refuses the options", setup: func(f *fakeHub) { f.startStatus = 400; f.startMsg = "unknown profile 'huge'" }, auth: "token tok-bob",
			status: 400, want: "refused to start bob's server: unknown profile 'huge'", starts: 1},
		{name: "hub keeps saying already running", setup: func(f *fakeHub) { f.startStatus = 400; f.startMsg = "bob is already running" }, auth: "token tok-bob",
			status: 502, want: "refused to start bob's server: bob is already running", starts: 5, timeout: 5 * time.Second},
		{name: "profile goes to the start", path: "/services/mcp?profile=large&x=1", auth: "token tok-bob", status: 200,
			forwardTo: "/user/bob/mcp", starts: 1, startBody: `{"user_options":{"profile":"large"}}`},
		{name: "profile ignored for a running server", path: "/services/mcp?profile=large", auth: "token tok-alice", status: 200,
			forwardTo: "/user/alice/mcp"},
		{name: "bad profile name", path: "/services/mcp?profile=../x", auth: "token tok-bob", status: 400, want: `got \"../x\"`},
		{name: "a stop in progress ends, then a start", setup: func(f *fakeHub) { f.state["bob"] = "stop"; f.pendingLooks = 2 }, auth: "token tok-bob",
			status: 200, forwardTo: "/user/bob/mcp", starts: 1, timeout: 5 * time.Second},
		{name: "the hub's check of a running server as it starts is awaited, nothing started",
			setup: func(f *fakeHub) { f.state["bob"] = "check"; f.pendingLooks = 8 }, auth: "token tok-bob",
			status: 200, forwardTo: "/user/bob/mcp", timeout: 5 * time.Second},
		{name: "spawn in progress is awaited", setup: func(f *fakeHub) { f.state["bob"] = "spawn" }, auth: "token tok-bob", status: 200,
			forwardTo: "/user/bob/mcp"},
		{name: "no read:servers: forwarded as is", auth: "token tok-noread", status: 200, forwardTo: "/user/alice/mcp"},
		{name: "no read:servers, not running: the hub's answer", setup: func(f *fakeHub) { f.state["alice"] = "" }, auth: "token tok-noread",
			status: 424, want: "JupyterHub server no longer running", forwardTo: "/user/alice/mcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHub()
			if tc.setup != nil {
				tc.setup(f)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 300 * time.Millisecond
			}
			srv, _ := newRouter(t, f, timeout)
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/services/mcp"
			}
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader(initBody)
			}
			req, _ := http.NewRequest(method, srv.URL+path, body)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Cookie", "jupyterhub-session-id=secret")
			req.Header.Set("Mcp-Session-Id", "abc")
			resp, data := send(t, req, tc.status)
			if !strings.Contains(string(data), tc.want) {
				t.Fatalf("body %s, want it to contain %q", data, tc.want)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.starts != tc.starts {
				t.Fatalf("%d starts, want %d", f.starts, tc.starts)
			}
			if f.startBody != tc.startBody {
				t.Fatalf("start body %q, want %q", f.startBody, tc.startBody)
			}
			if tc.forwardTo == "" {
				if len(f.forwarded) != 0 {
					t.Fatalf("forwarded to %s, want nothing forwarded", f.forwarded[0].URL.Path)
				}
				var msg struct {
					ID    int `json:"id"`
					Error struct{ Code int }
				}
				if method == http.MethodPost && (json.Unmarshal(data, &msg) != nil || msg.ID != 7 || msg.Error.Code == 0) {
					t.Fatalf("body %s: want a JSON-RPC error for id 7", data)
				}
				return
			}
			if len(f.forwarded) != 1 {
				t.Fatalf("forwarded %d requests, want 1", len(f.forwarded))
			}
			fw := f.forwarded[0]
			if fw.URL.Path != tc.forwardTo || fw.URL.Query().Has("profile") || fw.URL.Query().Has("token") {
				t.Fatalf("forwarded to %s, want %s (without profile or token)", fw.URL, tc.forwardTo)
			}
			wantAuth := tc.auth
			if tc.forwardAuth != "" {
				wantAuth = tc.forwardAuth
			}
			if fw.Header.Get("Authorization") != wantAuth || fw.Header.Get("Cookie") != "" || fw.Header.Get("Mcp-Session-Id") != "abc" {
				t.Fatalf("forwarded headers: %v", fw.Header)
			}
			if fw.Host != strings.TrimPrefix(srv.URL, "http://") {
				t.Fatalf("forwarded Host %q, want the client's %q", fw.Host, srv.URL)
			}
			if got := resp.Header.Get("Mcp-Session-Id"); tc.status == http.StatusOK && got != "sess-abc" {
				t.Fatalf("Mcp-Session-Id back to the client = %q", got)
			}
		})
	}
}

// The hub's API is down: a precise 502, nothing forwarded.
func TestRouterHubDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(dead.URL)
	dead.Close()
	srv := httptest.NewServer(New(Config{HubAPI: u.JoinPath("/hub/api"), Proxy: u, Prefix: "/services/mcp", StartTimeout: time.Second, Log: zerolog.Nop()}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(initBody))
	req.Header.Set("Authorization", "token tok-alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(data), "cannot reach the JupyterHub API") || strings.Contains(string(data), "tok-alice") {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
}

// Server-sent events reach the client one by one, each before the server
// writes the next.
func TestRouterStreams(t *testing.T) {
	next := make(chan struct{})
	f := newFakeHub()
	hub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/user/alice/mcp" {
			f.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "event: message\ndata: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next: // the client has read event i
			case <-r.Context().Done():
				return // the client gave up without seeing event i: the test fails
			}
		}
	})
	srv, _ := newRouter(t, hub, time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/services/mcp", nil)
	req.Header.Set("Authorization", "token tok-alice")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for i := range 3 {
		want := fmt.Sprintf("data: {\"n\":%d}", i)
		for sc.Scan() && sc.Text() != want {
		}
		if sc.Text() != want {
			t.Fatalf("event %d: stream ended (%v)", i, sc.Err())
		}
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
			t.Fatalf("the server did not wait for event %d to be read", i)
		}
	}
}

func TestClientToken(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"token abc", "abc"},
		{"Token abc", "abc"},
		{"Bearer abc", "abc"},
		{"bearer   abc ", "abc"},
		{"Basic abc", ""},
		{"abc", ""},
		{"", ""},
		{"token ", ""},
	} {
		if got := clientToken(tc.header); got != tc.want {
			t.Errorf("clientToken(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

// Stopping the router (the hub restarts: it stops its services before its
// proxy) ends a call in flight with a JSON-RPC error for its id saying why,
// instead of a cut connection, and answers later requests the same.
// Stopping, the router refuses new requests at once, lets the calls in
// flight finish while it may wait, then answers those still running that
// it stops (503, Retry-After, their own id): never a cut connection.
func TestRouterStop(t *testing.T) {
	for _, tc := range []struct {
		name      string
		finishes  bool // the call in flight ends while the router waits
		handsBack bool // the server answers it with its handle when asked to
		hangs     bool // the server never answers the hand-back
	}{
		{"a call that finishes in time gets its answer", true, false, false},
		{"a call still running is handed back with its handle", false, true, false},
		{"a call still running that cannot be handed back is answered that the service stops", false, false, false},
		{"a server that never answers the hand-back holds the stop no longer than handBackWait", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached, release, handle := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var routerSeen string
			f := newFakeHub()
			hub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/user/alice/mcp/handoff" && tc.handsBack:
					var in struct{ Router string }
					if json.NewDecoder(r.Body).Decode(&in) != nil || in.Router != routerSeen || r.Header.Get("Authorization") != "token tok-alice" {
						t.Errorf("hand-back request: router %q (the call carried %q), Authorization %q", in.Router, routerSeen, r.Header.Get("Authorization"))
					}
					close(handle)
					w.WriteHeader(http.StatusNoContent)
					return
				case r.URL.Path == "/user/alice/mcp/handoff" && tc.hangs:
					_, _ = io.ReadAll(r.Body) // then the router's giving up ends the context
					<-r.Context().Done()
					return
				case r.URL.Path != "/user/alice/mcp":
					f.ServeHTTP(w, r)
					return
				}
				_, _ = io.ReadAll(r.Body)
				routerSeen = r.Header.Get(RouterHeader)
				close(reached)
				select {
				case <-release:
					fmt.Fprint(w, `{"jsonrpc":"2.0","id":42,"result":{"done":true}}`)
				case <-handle:
					fmt.Fprint(w, `{"jsonrpc":"2.0","id":42,"result":{"execution_id":"x1","status":"running"}}`)
				case <-r.Context().Done(): // a long run: only the router's stop ends it
				}
			})
			hubSrv := httptest.NewServer(hub)
			defer hubSrv.Close()
			u, _ := url.Parse(hubSrv.URL)
			router := New(Config{HubAPI: u.JoinPath("/hub/api"), Proxy: u, Prefix: "/services/mcp/", StartTimeout: time.Second, Log: zerolog.Nop()})
			srv := httptest.NewServer(router)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			call := func(body string) (int, string, string) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(body))
				req.Header.Set("Authorization", "token tok-alice")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				data, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header.Get("Retry-After"), string(data)
			}
			type answer struct {
				status      int
				retry, body string
			}
			done := make(chan answer, 1)
			go func() {
				status, retry, body := call(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"execute_cell","arguments":{"source":"` + strings.Repeat("x", 100<<10) + `"}}}`)
				done <- answer{status, retry, body}
			}()
			select {
			case <-reached:
			case <-ctx.Done():
				t.Fatal("the call did not reach the server")
			}
			draining, stopWaiting := context.WithCancel(ctx)
			stopped := make(chan struct{})
			go func() { router.Stop(draining); close(stopped) }()
			for closing := false; !closing; { // Stop has begun
				router.mu.Lock()
				closing = router.closing
				router.mu.Unlock()
				runtime.Gosched()
			}
			// A new call while the router waits: refused at once.
			stopping := func(body string, id int, message string) bool {
				var msg struct {
					ID    int `json:"id"`
					Error struct {
						Code    int    `json:"code"`
						Message string `json:"message"`
					} `json:"error"`
				}
				return json.Unmarshal([]byte(body), &msg) == nil && msg.ID == id && msg.Error.Code == codeUnavailable &&
					strings.HasPrefix(msg.Error.Message, message)
			}
			if status, retry, body := call(initBody); status != http.StatusServiceUnavailable || retry == "" || !stopping(body, 7, stoppingError.Message) {
				t.Fatalf("a call while the router stops: %d %s", status, body)
			}
			mayWaitNoLonger := time.Now()
			if tc.finishes {
				close(release)
			} else {
				stopWaiting() // the router may wait no longer
			}
			var a answer
			select {
			case a = <-done:
			case <-ctx.Done():
				t.Fatal("the call in flight did not end")
			}
			select {
			case <-stopped:
			case <-ctx.Done():
				t.Fatal("Stop did not return once the call ended")
			}
			if took := time.Since(mayWaitNoLonger); took > handBackWait+time.Second {
				t.Fatalf("Stop returned %s after the router might wait no longer, want within handBackWait (%s)", took, handBackWait)
			}
			stopWaiting()
			switch {
			case routerSeen == "":
				t.Fatalf("the forwarded call carried no %s", RouterHeader)
			case tc.finishes && (a.status != http.StatusOK || !strings.Contains(a.body, `"done":true`)):
				t.Fatalf("the call that finished in time: %d %.300s", a.status, a.body)
			case tc.handsBack && (a.status != http.StatusOK || !strings.Contains(a.body, `"execution_id":"x1"`)):
				t.Fatalf("the call handed back: %d %.300s, want its handle", a.status, a.body)
			case !tc.finishes && !tc.handsBack && (a.status != http.StatusServiceUnavailable || a.retry == "" || !stopping(a.body, 42, "the hub's MCP service is stopping (the hub restarts or shuts down) and this call ran longer")):
				t.Fatalf("the call cut off: %d Retry-After=%q %.300s", a.status, a.retry, a.body)
			}
			if status, _, body := call(initBody); status != http.StatusServiceUnavailable || !stopping(body, 7, stoppingError.Message) {
				t.Fatalf("a call after the stop: %d %s", status, body)
			}
		})
	}
}

// A request still waiting for its server to start when the router stops
// went nowhere: it is answered that the service stops (503, Retry-After),
// which a client may send again, not that it was cut off as if cancelled.
func TestRouterStopWhileStarting(t *testing.T) {
	f := newFakeHub()
	f.progress = "hang" // bob's server never becomes ready
	srv, _, router := newRouterWith(t, f, Config{StartTimeout: time.Minute})
	type answer struct {
		status      int
		retry, body string
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"insert_cell"}}`))
		req.Header.Set("Authorization", "token tok-bob")
		status, header, body, err := exchange(req)
		if err != nil {
			t.Error(err)
		}
		done <- answer{status, header.Get("Retry-After"), body}
	}()
	for starting := false; !starting; runtime.Gosched() { // bob's start is under way
		f.mu.Lock()
		starting = f.state["bob"] == "spawn"
		f.mu.Unlock()
	}
	draining, stopWaiting := context.WithCancel(t.Context())
	stopWaiting() // the router may not wait at all
	router.Stop(draining)
	a := <-done
	var msg struct {
		ID    int `json:"id"`
		Error struct{ Message string }
	}
	_ = json.Unmarshal([]byte(a.body), &msg)
	if a.status != http.StatusServiceUnavailable || a.retry == "" || msg.ID != 42 || msg.Error.Message != stoppingError.Message {
		t.Fatalf("a call waiting for its server when the router stops: %d Retry-After=%q %s; want %q", a.status, a.retry, a.body, stoppingError.Message)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forwarded) != 0 {
		t.Fatalf("the call reached %s", f.forwarded[0].URL)
	}
}

// A client that asks for progress (a progress token, and it accepts an
// event stream) gets the hub's progress while its server starts, then the
// server's answer on the same stream; without, or when the hub refuses the
// start at once, the answer is plain.
func TestRouterStartProgress(t *testing.T) {
	const withToken = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_notebooks","_meta":{"progressToken":"p-9"}}}`
	for _, tc := range []struct {
		name   string
		setup  func(f *fakeHub)
		body   string
		accept string
		status int
		// events: the messages of the progress notifications, then the
		// last event's content; none: a plain answer containing last.
		events []string
		last   string
	}{
		{name: "progress, then the answer", body: withToken, accept: "application/json, text/event-stream", status: 200,
			events: []string{"starting bob's server (JupyterHub: pulling)", "starting bob's server"}, last: `"result":{"path":"/user/bob/mcp",`},
		{name: "progress, then the failure", setup: func(f *fakeHub) { f.progress = "failed" }, body: withToken,
			accept: "text/event-stream, application/json", status: 200,
			events: []string{"starting bob's server (JupyterHub: pulling)"}, last: "could not start bob's server: Spawn failed: image missing"},
		{name: "an earlier failed start is no failure of this one", setup: func(f *fakeHub) { f.lastFailed, f.staleRead = true, make(chan struct{}) }, body: withToken,
			accept: "application/json, text/event-stream", status: 200,
			events: []string{"starting bob's server (JupyterHub: pulling)", "starting bob's server"}, last: `"result":{"path":"/user/bob/mcp",`},
		{name: "no progress token", body: initBody, accept: "application/json, text/event-stream", status: 200, last: `"path":"/user/bob/mcp"`},
		{name: "no event stream accepted", body: withToken, accept: "application/json", status: 200, last: `"path":"/user/bob/mcp"`},
		{name: "refused at once: its own status", setup: func(f *fakeHub) { f.startStatus = 429; f.retryAfter = "7" }, body: withToken,
			accept: "application/json, text/event-stream", status: 503, last: "at capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHub()
			if tc.setup != nil {
				tc.setup(f)
			}
			srv, _ := newRouter(t, f, 5*time.Second)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "token tok-bob")
			req.Header.Set("Accept", tc.accept)
			resp, data := send(t, req, tc.status)
			if tc.events == nil {
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(string(data), tc.last) {
					t.Fatalf("%s %s: want a plain answer containing %s", resp.Header.Get("Content-Type"), data, tc.last)
				}
				return
			}
			if resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("Content-Type %q: want an event stream", resp.Header.Get("Content-Type"))
			}
			var got []string
			var last string
			lastProgress := -1.0
			for _, line := range strings.Split(string(data), "\n") {
				payload, ok := strings.CutPrefix(line, "data: ")
				if !ok {
					continue
				}
				var msg struct {
					Method string `json:"method"`
					Params struct {
						ProgressToken string  `json:"progressToken"`
						Progress      float64 `json:"progress"`
						Total         float64 `json:"total"`
						Message       string  `json:"message"`
					} `json:"params"`
				}
				if err := json.Unmarshal([]byte(payload), &msg); err != nil {
					t.Fatalf("event %q: %v", payload, err)
				}
				if msg.Method != "notifications/progress" {
					last = payload
					continue
				}
				if last != "" || msg.Params.ProgressToken != "p-9" || msg.Params.Total != 100 || msg.Params.Progress <= lastProgress {
					t.Fatalf("progress event %s (after %v): want token p-9, total 100, increasing, before the answer", payload, lastProgress)
				}
				lastProgress = msg.Params.Progress
				got = append(got, msg.Params.Message)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.events) || !strings.Contains(last, tc.last) || !strings.Contains(last, `"id":1`) {
				t.Fatalf("progress %q, last event %s; want %q, then an answer for id 1 containing %s", got, last, tc.events, tc.last)
			}
		})
	}
}

func TestRPCID(t *testing.T) {
	for data, want := range map[string]string{
		`{"jsonrpc":"2.0","id":3,"method":"x","params":{"a":[1,2]}}`:      `3`,
		` {"params":{"a":"}"},"id":"s-1"}`:                                `"s-1"`,
		`{"jsonrpc":"2.0","id":9,"method":"x","params":{"source":"cut sh`: `9`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`:          `null`,
		`[{"id":1}]`: `null`,
		``:           `null`,
		`{"params":{"source":"cut short before the id`: `null`,
	} {
		if got := string(rpcID([]byte(data))); got != want {
			t.Errorf("rpcID(%s) = %s, want %s", data, got, want)
		}
	}
}

// With the sign-in on, a request without a token gets the 401 that starts
// it; a forged sign-in token is refused; hub API tokens work unless the
// admin takes the sign-in's tokens only.
func TestRouterSignIn(t *testing.T) {
	for _, only := range []bool{false, true} {
		f := newFakeHub()
		hubSrv := httptest.NewServer(f)
		defer hubSrv.Close()
		u, _ := url.Parse(hubSrv.URL)
		auth, err := hubauth.New(hubauth.Config{Resource: "https://hub.example/services/mcp", HubAPI: u.JoinPath("/hub/api"),
			HubAuthorize: "/hub/api/oauth2/authorize", ClientID: "service-mcp", ClientSecret: "s", Callback: "/services/mcp/oauth_callback",
			Key: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(New(Config{HubAPI: u.JoinPath("/hub/api"), Proxy: u, Prefix: "/services/mcp/", StartTimeout: time.Second,
			Auth: auth, SignInOnly: only, Log: zerolog.Nop()}))
		defer srv.Close()
		apiStatus := http.StatusOK
		if only {
			apiStatus = http.StatusUnauthorized
		}
		for _, tc := range []struct {
			auth   string
			status int
		}{
			{"", http.StatusUnauthorized},
			{"Bearer mcpat_forged", http.StatusUnauthorized},
			{"token tok-alice", apiStatus},
		} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(initBody))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, data := send(t, req, tc.status)
			challenge := resp.Header.Get("WWW-Authenticate")
			if tc.status == http.StatusUnauthorized && !strings.Contains(challenge, `resource_metadata="https://hub.example/.well-known/oauth-protected-resource/services/mcp"`) {
				t.Errorf("only=%v %q: WWW-Authenticate %q (%s)", only, tc.auth, challenge, data)
			}
		}
		// The metadata is served by the router too.
		resp, data := send(t, mustRequest(http.MethodGet, srv.URL+"/.well-known/oauth-protected-resource/services/mcp"), http.StatusOK)
		if !strings.Contains(string(data), `"resource":"https://hub.example/services/mcp"`) {
			t.Errorf("metadata: %s %s", resp.Status, data)
		}
	}
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// One audit line per request: who, what, on which notebook, the outcome;
// never the arguments or the token.
func TestRouterAudit(t *testing.T) {
	f := newFakeHub()
	hubSrv := httptest.NewServer(f)
	defer hubSrv.Close()
	u, _ := url.Parse(hubSrv.URL)
	lines := lineWriter(make(chan string, 4))
	log := zerolog.New(lines)
	srv := httptest.NewServer(New(Config{HubAPI: u.JoinPath("/hub/api"), Proxy: u, Prefix: "/services/mcp/", StartTimeout: time.Second,
		Audit: &log, Log: zerolog.Nop()}))
	defer srv.Close()
	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"insert_cell","arguments":{"path":"nb/a.ipynb","source":"SECRET_SOURCE"}}}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(body))
	req.Header.Set("Authorization", "token tok-alice")
	send(t, req, http.StatusOK)
	var text string
	select {
	case text = <-lines: // written once the answer went out
	case <-time.After(10 * time.Second):
		t.Fatal("no audit line")
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(text), &line); err != nil {
		t.Fatalf("audit: %q: %v", text, err)
	}
	for k, want := range map[string]any{"user": "alice", "credential": "hub token", "rpc": "tools/call", "tool": "insert_cell",
		"notebook": "nb/a.ipynb", "status": float64(200), "method": "POST"} {
		if line[k] != want {
			t.Errorf("audit %s = %v, want %v (line %s)", k, line[k], want, text)
		}
	}
	if strings.Contains(text, "SECRET_SOURCE") || strings.Contains(text, "tok-alice") {
		t.Errorf("the audit line holds an argument or the token: %s", text)
	}
}

// lineWriter hands each log line written to it to its channel.
type lineWriter chan string

func (l lineWriter) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

func TestRPCSummary(t *testing.T) {
	full := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"edit_cell","arguments":{"path":"a.ipynb","source":"` + strings.Repeat("x", 100) + `"}}}`
	for _, tc := range []struct {
		data               string
		method, tool, path string
	}{
		{full, "tools/call", "edit_cell", "a.ipynb"},
		{full[:60], "tools/call", "", ""}, // cut short inside the params
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, "initialize", "", ""},
		{`not json`, "", "", ""},
	} {
		c := rpcSummary([]byte(tc.data))
		if c.Method != tc.method || c.Params.Name != tc.tool || c.Params.Arguments.Path != tc.path {
			t.Errorf("%.40q: %+v, want %s %s %s", tc.data, c, tc.method, tc.tool, tc.path)
		}
	}
}
