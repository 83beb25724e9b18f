package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// What a sign-in's grant reaches, and how it ends: the router's own
// tokens are good at <hub>/services/mcp only, for their person's server
// only; revoking the sign-in at the hub stops the agent's next call within
// the token cache.

// grant is what a sign-in gave its client.
type grant struct {
	ClientID     string
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	// Browser is the person's, logged in to the hub, open until the test
	// ends.
	Browser context.Context `json:"-"`
}

// goSignIn signs user in through <hub>/services/mcp as a minimal OAuth
// client of its own (dynamic registration, PKCE, a loopback redirect URI),
// the person's part played in the browser (signIn).
func goSignIn(t testing.TB, ctx context.Context, user string) grant {
	t.Helper()
	codes := make(chan url.Values, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	callback := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case codes <- r.URL.Query():
		default:
		}
		fmt.Fprint(w, "Signed in.")
	})}
	go callback.Serve(ln)
	t.Cleanup(func() { callback.Close() })
	redirect := "http://" + ln.Addr().String() + "/callback"
	mcpURL := theHub.URL + "/services/mcp"

	var reg struct {
		ClientID string `json:"client_id"`
	}
	oauthPost(t, mcpURL+"/register", "application/json", `{"client_name":"Go test client","redirect_uris":["`+redirect+`"]}`, http.StatusCreated, &reg)
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {reg.ClientID}, "redirect_uri": {redirect}, "state": {"go-test"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "resource": {mcpURL}}
	page := signIn(t, ctx, mcpURL+"/authorize?"+q.Encode(), user, nil)
	var back url.Values
	select {
	case back = <-codes:
	case <-ctx.Done():
		t.Fatal("no code came back to the client")
	}
	if back.Get("code") == "" || back.Get("state") != "go-test" {
		t.Fatalf("back to the client: %v", back)
	}
	g := grant{ClientID: reg.ClientID, Browser: page}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "client_id": {reg.ClientID},
		"redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {mcpURL}}
	oauthPost(t, mcpURL+"/token", "application/x-www-form-urlencoded", form.Encode(), http.StatusOK, &g)
	return g
}

// oauthPost posts body to u, checks the status and decodes the answer
// into out.
func oauthPost(t testing.TB, u, contentType, body string, status int, out any) {
	t.Helper()
	resp, err := http.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil || resp.StatusCode != status {
		t.Fatalf("POST %s: %s (%v), want %d", u, resp.Status, err, status)
	}
}

// refresh trades g's refresh token and returns the status and the answer.
func (g grant) refresh(t *testing.T) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.RefreshToken}, "client_id": {g.ClientID}}
	resp, err := http.PostForm(theHub.URL+"/services/mcp/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A user's grant reaches that user's server through <hub>/services/mcp,
// and nothing else: its access token is no hub token, so neither another
// user's server nor the user's own (/user/<name>/mcp) takes it, and the
// call runs nothing there.
func TestSignInReachesOnlyItsOwnServer(t *testing.T) {
	aliceRunning(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	user := "grant-" + randomHex(3)
	g := goSignIn(t, ctx, user)
	// Through the hub URL: the user's own server (started for the call),
	// as that user.
	if who := whoami(t, connect(t, "/services/mcp", "Bearer "+g.AccessToken), "grant.ipynb"); who != user {
		t.Fatalf("the grant's call ran as %q, want %s", who, user)
	}
	create := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_notebook","arguments":{"path":"grant-probe.ipynb"}}}`
	for _, path := range []string{"/user/alice/mcp", "/user/" + user + "/mcp"} {
		for _, body := range []string{initialize, create} {
			if code, answer := post(t, path, "Bearer "+g.AccessToken, "", body); code != http.StatusForbidden {
				t.Errorf("%s's access token at %s: %d %.300s, want 403", user, path, code, answer)
			}
		}
	}
	for who, cs := range map[string]*mcp.ClientSession{
		"alice": connect(t, "/services/mcp", "token "+tokens["alice"]),
		user:    connect(t, "/services/mcp", "Bearer "+g.AccessToken),
	} {
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_notebook", Arguments: map[string]any{"path": "grant-probe.ipynb"}})
		if err != nil || !res.IsError {
			t.Errorf("%s's server has grant-probe.ipynb (%v %s): a refused call ran", who, err, labtest.ResultText(res))
		}
	}
}

// Revoking a sign-in at the hub stops the agent's next call within the
// token cache (HUB_TOKEN_CACHE: the router's memory of whose a token is,
// and the user's server's of its check, whichever ends first), then its
// refresh fails: revoked by the person on the hub's token page, where the
// router's sign-ins are the application "JupyterHub service mcp", or by
// logging out of the hub in the browser they signed in with; by an admin
// through the hub's API; and by deleting the user.
func TestSignInRevoked(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	user := "revoke-" + randomHex(3)
	for _, tc := range []struct {
		how string
		// prepare gets ready to revoke the user's sign-ins (the person's
		// page open, the admin's token found) and returns what revokes
		// them, for the agent's last call to come just before.
		prepare func(t *testing.T, g grant) (revoke func())
	}{
		{"on the token page", func(t *testing.T, _ grant) func() { return tokenPage(t, ctx, user) }},
		{"by logging out in the browser that signed in", func(t *testing.T, g grant) func() {
			return func() {
				if err := chromedp.Do(g.Browser, chromedp.Navigate(theHub.URL+"/hub/logout"), chromedp.WaitVisible(`input[name=username]`)); err != nil {
					t.Fatalf("log out: %v", err)
				}
			}
		}},
		{"by an admin", func(t *testing.T, _ grant) func() {
			code, body, err := theHub.api(http.MethodGet, userPath(user)+"/tokens", theHub.AdminToken, nil)
			var list struct {
				Tokens []struct {
					ID          string `json:"id"`
					OAuthClient string `json:"oauth_client"`
				} `json:"api_tokens"`
			}
			if err != nil || code != http.StatusOK || json.Unmarshal(body, &list) != nil {
				t.Fatalf("list %s's tokens: %d %v %s", user, code, err, body)
			}
			for _, tok := range list.Tokens {
				if tok.OAuthClient == "JupyterHub service mcp" {
					return func() {
						// One of the client's tokens deletes them all.
						if code, body, err := theHub.api(http.MethodDelete, userPath(user)+"/tokens/"+tok.ID, theHub.AdminToken, nil); err != nil || code != http.StatusNoContent {
							t.Fatalf("delete the token: %d %v %s", code, err, body)
						}
					}
				}
			}
			t.Fatalf("no token of the MCP service among %s's: %s", user, body)
			return nil
		}},
		{"by deleting the user", func(t *testing.T, _ grant) func() {
			return func() {
				// The hub stops the user's server first; when that takes
				// long, it answers 400, "please wait", and the admin asks
				// again.
				var code int
				var body []byte
				err := poll(time.Minute, func() (bool, error) {
					var err error
					code, body, err = theHub.api(http.MethodDelete, userPath(user), theHub.AdminToken, nil)
					return code == http.StatusNoContent, err
				})
				if err != nil {
					t.Fatalf("delete %s: %d %v %s", user, code, err, body)
				}
			}
		}},
	} {
		t.Run(tc.how, func(t *testing.T) {
			g := goSignIn(t, ctx, user)
			agent := connect(t, "/services/mcp", "Bearer "+g.AccessToken)
			list := func() error {
				res, err := agent.CallTool(ctx, &mcp.CallToolParams{Name: "list_notebooks", Arguments: map[string]any{}})
				if err == nil && res.IsError {
					err = fmt.Errorf("%s", labtest.ResultText(res))
				}
				return err
			}
			revoke := tc.prepare(t, g)
			// Calls right before: answered from the router's memory and
			// the server's, as an agent's calls mostly are.
			for range 2 {
				if err := list(); err != nil {
					t.Fatalf("before the revocation: %v", err)
				}
			}
			revoke()
			revoked := time.Now()
			var err error
			for err == nil && time.Since(revoked) < 30*time.Second {
				err = list()
			}
			took := time.Since(revoked)
			fmt.Fprintf(os.Stderr, "figure: revoked %s: the agent's next call refused after %s (HUB_TOKEN_CACHE %s)\n", tc.how, took.Round(10*time.Millisecond), tokenCache)
			if err == nil || took > tokenCache+time.Second {
				t.Fatalf("the agent's calls went on for %s after the revocation (%v), want refused within the token cache, %s", took, err, tokenCache)
			}
			// The refusal says so, as OAuth asks (401, invalid_token), and the
			// client's refresh is refused too: it must sign in again.
			code, body, header := postHeader(t, "/services/mcp", "Bearer "+g.AccessToken, "", initialize)
			if code != http.StatusUnauthorized || !strings.Contains(header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
				!strings.Contains(body, "no longer accepts this sign-in") {
				t.Errorf("a call after the revocation: %d %q %.300s, want 401 invalid_token", code, header.Get("WWW-Authenticate"), body)
			}
			if status, out := g.refresh(t); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Errorf("a refresh after the revocation: %d %v, want invalid_grant", status, out)
			}
		})
	}
}

// tokenPage is what the person does: log in to the hub and open its
// token page; then the returned func revokes the router's row among the
// authorized applications, which revokes every sign-in of theirs through
// the router.
func tokenPage(t *testing.T, ctx context.Context, user string) (revoke func()) {
	t.Helper()
	const row = `[...document.querySelectorAll("#oauth-tokens-table tr.token-row")].find(r => r.querySelector(".note-col").textContent.trim() === "JupyterHub service mcp")`
	page := browser(t, ctx)
	steps := append(logIn(theHub.URL+"/hub/token", user), chromedp.WaitVisible(`#oauth-tokens-table`))
	if err := chromedp.Do(page, steps...); err != nil {
		t.Fatalf("the token page: %v", err)
	}
	// The buttons work once the page's script has run.
	if _, err := chromedp.Run(page, chromedp.Poll[bool](`window._jupyterhub_page_loaded === true`)); err != nil {
		t.Fatalf("the token page's script: %v", err)
	}
	if found, err := chromedp.Run(page, chromedp.Evaluate[bool](`!!(`+row+`)`)); err != nil || !found {
		text, _ := chromedp.Run(page, chromedp.Text(`#oauth-tokens-table`))
		t.Fatalf("no row of the MCP service on the token page (%v): %s", err, text)
	}
	return func() {
		if _, err := chromedp.Run(page, chromedp.Evaluate[any](`(`+row+`).querySelector(".revoke-token-btn").click()`)); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		// The page removes the row once the hub has deleted the tokens.
		if _, err := chromedp.Run(page, chromedp.Poll[bool](`!(`+row+`)`)); err != nil {
			t.Fatalf("the row stays after revoke: %v", err)
		}
	}
}
