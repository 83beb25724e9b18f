package hub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The first MCP call through <hub>/services/mcp with bob's token starts
// bob's stopped server and runs on his kernel.
func TestHubURLStartsServer(t *testing.T) {
	if s, err := theHub.serverState("bob"); err != nil || s != "" {
		t.Fatalf("bob's server before the call: %q %v, want not running", s, err)
	}
	start := time.Now()
	cs := connect(t, "/services/mcp", "token "+tokens["bob"])
	connected := time.Since(start)
	if who := whoami(t, cs, "who.ipynb"); who != "bob" {
		t.Fatalf("JUPYTERHUB_USER = %q, want bob", who)
	}
	fmt.Fprintf(os.Stderr, "figure: hub URL, stopped server: initialize answered after %s, first tool result after %s\n",
		connected.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))
	if s, err := theHub.serverState("bob"); err != nil || s != "ready" {
		t.Fatalf("bob's server after the call: %q %v, want ready", s, err)
	}
}

// alice's token at the hub URL reaches alice's server, with and without
// the trailing slash and with either scheme.
func TestHubURLRunningServer(t *testing.T) {
	aliceRunning(t)
	for _, tc := range []struct{ path, scheme string }{
		{"/services/mcp", "token"},
		{"/services/mcp/", "Bearer"},
	} {
		t.Run(tc.path+" "+tc.scheme, func(t *testing.T) {
			cs := connect(t, tc.path, tc.scheme+" "+tokens["alice"])
			if who := whoami(t, cs, "who.ipynb"); who != "alice" {
				t.Fatalf("JUPYTERHUB_USER = %q, want alice", who)
			}
		})
	}
}

// Requests the hub URL cannot attribute to a user are refused with a
// JSON-RPC error naming the reason, and start nothing. Those without a
// usable token get the 401 that tells an MCP client where to sign in
// (WWW-Authenticate naming the protected resource metadata, which the
// hub's proxy serves at the root's well-known URL).
func TestHubURLRefuses(t *testing.T) {
	// The metadata the challenge names is served, through the hub's proxy.
	metadata := theHub.URL + "/.well-known/oauth-protected-resource/services/mcp"
	resp, err := http.Get(metadata)
	if err != nil {
		t.Fatal(err)
	}
	prm, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(prm), `"resource":"`+theHub.URL+`/services/mcp"`) {
		t.Fatalf("protected resource metadata: %s %s", resp.Status, prm)
	}
	for _, tc := range []struct {
		name, auth string
		status     int
		want       string
	}{
		{"no token", "", http.StatusUnauthorized, "sign in"},
		{"not a token scheme", "Basic YWxpY2U6eA==", http.StatusUnauthorized, "sign in"},
		{"a forged sign-in token", "Bearer mcpat_" + randomHex(40), http.StatusUnauthorized, "not issued by this server"},
		{"wrong token", "token " + randomHex(16), http.StatusForbidden, "does not accept this token"},
		{"a service's token", "token " + theHub.AdminToken, http.StatusForbidden, "not to a user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, header := postHeader(t, "/services/mcp", tc.auth, "", initialize)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			if challenge := header.Get("WWW-Authenticate"); code == http.StatusUnauthorized && !strings.Contains(challenge, `resource_metadata="`+metadata+`"`) {
				t.Fatalf("WWW-Authenticate %q, want it to name %s", challenge, metadata)
			}
			var msg struct {
				ID    int `json:"id"`
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.ID != 1 || !strings.Contains(msg.Error.Message, tc.want) {
				t.Fatalf("body %s, want a JSON-RPC error for id 1 containing %q", body, tc.want)
			}
		})
	}
}
