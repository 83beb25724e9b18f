package hubroute

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Names as JupyterHub escapes them (Python's quote(name, safe='@~')) in
// its servers' URLs, and as its legacy subdomain hook puts them in a host
// (quote(name, safe=”).lower()): the hub's own output, written out.
var hubNames = []struct{ name, escaped, label string }{
	{"ann lee", "ann%20lee", "ann%20lee"},
	{"ann%20lee", "ann%2520lee", "ann%2520lee"},
	{"o'brien", "o%27brien", "o%27brien"},
	{"o%27brien", "o%2527brien", "o%2527brien"},
	{"josé", "jos%C3%A9", "jos%c3%a9"},
	{"李", "%E6%9D%8E", "%e6%9d%8e"},
	{"q!\"#$&()`x", "q%21%22%23%24%26%28%29%60x", "q%21%22%23%24%26%28%29%60x"},
	{"a+b@c~d_e.f-g", "a%2Bb@c~d_e.f-g", "a%2bb%40c~d_e.f-g"},
	{"alice", "alice", "alice"},
}

func TestHubEscape(t *testing.T) {
	for _, n := range hubNames {
		if got := hubEscape(n.name); got != n.escaped {
			t.Errorf("hubEscape(%q) = %q, want %q (JupyterHub's)", n.name, got, n.escaped)
		}
	}
}

// The server's URL in the hub's answer is sent as the hub wrote it: its
// path never escaped a second time, its host (subdomains) as the Host.
func TestParseServerURL(t *testing.T) {
	proxy, _ := url.Parse("http://127.0.0.1:8000")
	for _, tc := range []struct {
		in, host, target string // target: the request-target of <server>mcp/handoff
		err              string
	}{
		{in: "/user/alice/", target: "/user/alice/mcp/handoff"},
		{in: "/user/o%27brien/", target: "/user/o%27brien/mcp/handoff"},
		{in: "/user/o%2527brien/", target: "/user/o%2527brien/mcp/handoff"},
		{in: "/user/ann%20lee/", target: "/user/ann%20lee/mcp/handoff"},
		{in: "/user/jos%C3%A9/", target: "/user/jos%C3%A9/mcp/handoff"},
		{in: "/hub-base/user/a%2Bb@c~d/", target: "/hub-base/user/a%2Bb@c~d/mcp/handoff"},
		{in: "https://o%27brien.hub.example.org/user/o%27brien/", host: "o%27brien.hub.example.org", target: "/user/o%27brien/mcp/handoff"},
		{in: "http://alice.hub.example.org:8443/user/alice/", host: "alice.hub.example.org:8443", target: "/user/alice/mcp/handoff"},
		{in: "", err: "expected a path"},
		{in: "/", err: "expected a path"},
		{in: "user/alice/", err: "expected a path"},
		{in: "/user/alice", err: "expected a path"},
		{in: "/user/../hub/", err: "expected a path"},
		{in: "/user/%2E%2E/", err: "expected a path"},
		{in: "/user/a%zz/", err: "expected a path"},
		{in: "/user/a?b/", err: "expected a path"},
		{in: "ftp://h/user/a/", err: "expected an http(s) URL"},
		{in: "https:///user/a/", err: "its host"},
		{in: "https://evil@h/user/a/", err: "its host"},
	} {
		a, err := parseServerURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseServerURL(%q) = %+v, %v; want an error with %q", tc.in, a, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseServerURL(%q): %v", tc.in, err)
			continue
		}
		req, _ := http.NewRequest(http.MethodPost, "http://client.example/services/mcp?x=1", nil)
		a.aim(req, proxy, "mcp/handoff")
		if got := req.URL.RequestURI(); a.host != tc.host || got != tc.target+"?x=1" || req.URL.Host != proxy.Host {
			t.Errorf("parseServerURL(%q): host %q, request to %s%s; want host %q, %s?x=1 at %s", tc.in, a.host, req.URL.Host, got, tc.host, tc.target, proxy.Host)
		}
		if want := tc.host; want != "" && req.Host != want {
			t.Errorf("parseServerURL(%q): Host %q, want %q", tc.in, req.Host, want)
		}
	}
}

// Every name reaches its owner's server through the hub's proxy: names
// with spaces, quotes, %, non-ASCII letters, and the pairs one escaping
// too many would confuse (ann lee / ann%20lee, o'brien / o%27brien). Each
// token's call reaches exactly its owner's server, at the URL the hub
// names, whether the server runs or the call starts it, whether the router
// asks the hub or remembers its answer; on a hub with subdomains, at the
// server's host.
func TestRouterNames(t *testing.T) {
	for _, subdomains := range []bool{false, true} {
		for _, running := range []bool{true, false} {
			for _, cache := range []time.Duration{0, time.Minute} {
				t.Run(fmt.Sprintf("subdomains=%v running=%v cache=%s", subdomains, running, cache), func(t *testing.T) {
					f := newFakeHub()
					f.urls = map[string]string{}
					for i, n := range hubNames {
						f.owners[fmt.Sprintf("tok-%d", i)] = n.name
						f.state[n.name] = map[bool]string{true: "ready", false: ""}[running]
						f.urls[n.name] = "/user/" + n.escaped + "/"
						if subdomains {
							f.urls[n.name] = "https://" + n.label + ".hub.example.org" + f.urls[n.name]
						}
					}
					srv, _, _ := newRouterWith(t, f, Config{TokenCache: cache})
					for round := range 2 { // the second time the router may remember
						for i, n := range hubNames {
							req, _ := http.NewRequest(http.MethodPost, srv.URL+"/services/mcp", strings.NewReader(initBody))
							req.Header.Set("Authorization", fmt.Sprintf("token tok-%d", i))
							_, data := send(t, req, http.StatusOK)
							f.mu.Lock()
							last := len(f.forwarded) - 1
							fw, servedBy := f.forwarded[last], f.served[last]
							f.mu.Unlock()
							want := "/user/" + n.escaped + "/mcp"
							if servedBy != n.name || fw.RequestURI != want || !strings.Contains(string(data), fmt.Sprintf(`"server":%q`, n.name)) {
								t.Fatalf("round %d: %q's call went to %s and was answered by %q's server (%s); want %s, %q's", round, n.name, fw.RequestURI, servedBy, data, want, n.name)
							}
							if wantHost := n.label + ".hub.example.org"; subdomains && fw.Host != wantHost {
								t.Fatalf("%q's call went to the host %q, want %q", n.name, fw.Host, wantHost)
							}
						}
					}
					if f.starts != map[bool]int{true: 0, false: len(hubNames)}[running] {
						t.Fatalf("%d starts", f.starts)
					}
				})
			}
		}
	}
}
