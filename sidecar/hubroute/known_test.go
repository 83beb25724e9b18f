package hubroute

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a clock a test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// With a token cache, a known token's calls go straight to its owner's
// server: the hub is asked again once the answer expires, or when the
// answer to a call shows it stale (the server stopped, the token revoked,
// the user deleted), and then the call takes the way a call takes without
// a cache, reaching its server once, its body whole, or refused as the hub
// refuses it.
func TestRouterKnownTokens(t *testing.T) {
	const ttl = 10 * time.Second
	big := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"source":"` + strings.Repeat("x", maxPrefix) + `"}}`
	for _, tc := range []struct {
		name   string
		method string
		body   string
		change func(f *fakeHub, clock *testClock) // between the first call and the second
		status int
		want   string // in the second answer
		// whoamis: the hub's answers the second call asked for; served:
		// whose server answered each request forwarded for it ("" the hub).
		whoamis int
		served  []string
		starts  int
	}{
		{name: "known: straight to the server", status: 200, want: `"server":"alice"`, served: []string{"alice"}},
		{name: "known, GET", method: http.MethodGet, status: 200, want: `"server":"alice"`, served: []string{"alice"}},
		{name: "expired: the hub is asked", change: func(f *fakeHub, c *testClock) { c.add(ttl + time.Millisecond) },
			status: 200, want: `"server":"alice"`, whoamis: 1, served: []string{"alice"}},
		{name: "not expired yet", change: func(f *fakeHub, c *testClock) { c.add(ttl - time.Millisecond) },
			status: 200, want: `"server":"alice"`, served: []string{"alice"}},
		{name: "a body too long to send twice: the hub is asked", body: big,
			status: 200, want: `"server":"alice"`, whoamis: 1, served: []string{"alice"}},
		{name: "server stopped since: a POST starts it", change: func(f *fakeHub, c *testClock) { f.state["alice"] = "" },
			status: 200, want: `"server":"alice"`, whoamis: 3, served: []string{"", "alice"}, starts: 1},
		{name: "server stopped since: a GET is told", method: http.MethodGet, change: func(f *fakeHub, c *testClock) { f.state["alice"] = "" },
			status: 404, want: "alice's server is not running", whoamis: 1, served: []string{""}},
		{name: "server starting since: a GET is told", method: http.MethodGet, change: func(f *fakeHub, c *testClock) { f.state["alice"] = "spawn" },
			status: 404, want: "alice's server is not running", whoamis: 1, served: []string{""}},
		{name: "token revoked: refused as the hub refuses it", change: func(f *fakeHub, c *testClock) { delete(f.owners, "tok-alice") },
			status: 403, want: "does not accept this token", served: []string{"alice"}},
		{name: "user deleted: refused as the hub refuses it", change: func(f *fakeHub, c *testClock) {
			delete(f.owners, "tok-alice")
			delete(f.state, "alice")
		}, status: 403, want: "does not accept this token", served: []string{""}},
		{name: "server refuses a token the hub takes: its answer, asked once more", change: func(f *fakeHub, c *testClock) { f.serverRefuses = true },
			status: 403, want: "Forbidden", whoamis: 1, served: []string{"alice", "alice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHub()
			srv, _, r := newRouterWith(t, f, Config{TokenCache: ttl})
			clock := &testClock{t: time.Now()}
			r.known.now = clock.now
			call := func(method, body string) (int, string) {
				var rd io.Reader
				if method == http.MethodPost {
					rd = strings.NewReader(body)
				}
				req, _ := http.NewRequest(method, srv.URL+"/services/mcp", rd)
				req.Header.Set("Authorization", "token tok-alice")
				status, _, data, err := exchange(req)
				if err != nil {
					t.Fatal(err)
				}
				return status, data
			}
			method, body := tc.method, tc.body
			if method == "" {
				method = http.MethodPost
			}
			if body == "" {
				body = initBody
			}
			if status, data := call(http.MethodPost, initBody); status != 200 {
				t.Fatalf("the first call: %d %s", status, data)
			}
			f.mu.Lock()
			if tc.change != nil {
				tc.change(f, clock)
			}
			whoamis, forwarded, bodies := f.whoamis, len(f.forwarded), len(f.bodies)
			f.mu.Unlock()

			status, data := call(method, body)
			f.mu.Lock()
			defer f.mu.Unlock()
			if status != tc.status || !strings.Contains(data, tc.want) {
				t.Fatalf("the second call: %d %.300s; want %d with %q", status, data, tc.status, tc.want)
			}
			if got := f.whoamis - whoamis; got != tc.whoamis {
				t.Errorf("the second call asked the hub whose the token is %d times, want %d", got, tc.whoamis)
			}
			if got := f.served[forwarded:]; fmt.Sprint(got) != fmt.Sprint(tc.served) {
				t.Errorf("the second call was answered by the servers %q, want %q", got, tc.served)
			}
			if f.starts != tc.starts {
				t.Errorf("%d starts, want %d", f.starts, tc.starts)
			}
			// What a server took, it took whole, once.
			if method == http.MethodPost && status == 200 {
				if got := f.bodies[bodies:]; len(got) != 1 || got[0] != body {
					t.Errorf("the server received %d bodies (%.100q); want the call's, once", len(got), got)
				}
			}
		})
	}
}

// Without a cache the hub is asked on every call; entries are bounded.
func TestKnownTokens(t *testing.T) {
	off := knownTokens{now: time.Now}
	off.put("t", "alice", serverAddr{path: "/user/alice/"})
	if _, ok := off.get("t"); ok {
		t.Fatal("a router without a token cache remembered a token")
	}
	clock := &testClock{t: time.Now()}
	k := knownTokens{ttl: time.Second, now: clock.now}
	for i := range maxKnownTokens + 10 {
		k.put(fmt.Sprint(i), "u", serverAddr{path: "/user/u/"})
	}
	if len(k.m) != maxKnownTokens {
		t.Fatalf("%d entries, want at most %d", len(k.m), maxKnownTokens)
	}
	clock.add(2 * time.Second) // all expired: room again
	k.put("new", "v", serverAddr{path: "/user/v/"})
	if e, ok := k.get("new"); !ok || e.user != "v" || len(k.m) != 1 {
		t.Fatalf("after the entries expired: %+v %v, %d entries", e, ok, len(k.m))
	}
	for token := range k.m {
		if strings.Contains(string(token[:]), "new") {
			t.Fatal("the token is kept as is")
		}
	}
}
