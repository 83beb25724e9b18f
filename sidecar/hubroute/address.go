package hubroute

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// serverAddr is where a user's default server is reached through the
// hub's proxy, as the hub names it: the path escaped exactly as the hub
// escapes it, and on a hub with subdomains the host its proxy routes by.
//
// The path is never unescaped and escaped again: the hub's proxy
// (configurable-http-proxy) unescapes a request's path once to find its
// route, so a second escaping would send o'brien's calls, and token, to
// the route of a user named o%27brien.
type serverAddr struct {
	host string // e.g. alice.hub.example.org; "" when the hub routes by path only
	path string // e.g. /user/o%27brien/
}

// parseServerURL reads the url of a server in the hub's answer: a path
// (/user/o%27brien/), or on a hub with subdomains an absolute URL
// (https://alice.hub.example.org/user/alice/). The host is taken as the
// hub wrote it (its subdomain hook may put escapes in it, which a URL
// parser refuses).
func parseServerURL(s string) (serverAddr, error) {
	var a serverAddr
	a.path = s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return serverAddr{}, fmt.Errorf("JupyterHub named the server %q: expected an http(s) URL or a path", s)
		}
		host, p, _ := strings.Cut(rest, "/")
		if host == "" || strings.ContainsAny(host, "@ \t\r\n\\") {
			return serverAddr{}, fmt.Errorf("JupyterHub named the server %q: its host is not one the router can send to", s)
		}
		a.host, a.path = host, "/"+p
	}
	unescaped, err := url.PathUnescape(a.path)
	if err != nil || !strings.HasPrefix(a.path, "/") || !strings.HasSuffix(a.path, "/") || len(a.path) < 3 ||
		strings.ContainsAny(a.path, "?#") || path.Clean(unescaped)+"/" != unescaped {
		return serverAddr{}, fmt.Errorf("JupyterHub named the server %q: expected a path like /user/<name>/", s)
	}
	// The hub's own escaping, as a request target (Go's escaping where the
	// hub left a byte that a request line may not hold).
	a.path = (&url.URL{Path: unescaped, RawPath: a.path}).EscapedPath()
	return a, nil
}

// defaultServerAddr is where the hub puts name's default server when it
// does not say (the token may not read servers): /user/<name>/, the name
// escaped as JupyterHub escapes it.
func defaultServerAddr(name string) serverAddr {
	return serverAddr{path: "/user/" + hubEscape(name) + "/"}
}

// hubEscape escapes s as JupyterHub's url_escape_path does (Python's
// urllib.parse.quote(s, safe='@~')): every byte but ASCII letters, digits,
// "_.-~@" as %XX.
func hubEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-~@", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// url is the server's sub (e.g. "mcp") on the hub's proxy, its path as
// the hub escapes it; key names the server among the calls in flight.
func (a serverAddr) url(proxy *url.URL, sub string) *url.URL {
	u := *proxy
	escaped := strings.TrimRight(proxy.EscapedPath(), "/") + a.path + sub
	u.Path, _ = url.PathUnescape(escaped) // valid: parseServerURL checked it
	u.RawPath = escaped
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return &u
}

func (a serverAddr) key() string { return a.host + a.path }

// aim points req at the server's sub through the hub's proxy; on a hub
// with subdomains its Host is the server's, by which the proxy routes.
func (a serverAddr) aim(req *http.Request, proxy *url.URL, sub string) {
	query := req.URL.RawQuery
	req.URL = a.url(proxy, sub)
	req.URL.RawQuery = query
	if a.host != "" {
		req.Host = a.host
	}
}
