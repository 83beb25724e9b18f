package hubauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeHub is the part of JupyterHub the flow meets: its token endpoint
// (trading the router's code for a hub token) and /hub/api/user.
type fakeHub struct {
	mu      sync.Mutex
	revoked map[string]bool
	groups  []string // alice's
}

func (f *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/hub/api/oauth2/token":
		_ = r.ParseForm()
		if r.PostForm.Get("client_secret") != "router-secret" || r.PostForm.Get("code") != "hub-code" || r.PostForm.Get("redirect_uri") != "/services/mcp/oauth_callback" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "hub-token-alice", "token_type": "Bearer", "expires_in": 3600})
	case "/hub/api/user":
		f.mu.Lock()
		defer f.mu.Unlock()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		if tok != "hub-token-alice" || f.revoked[tok] {
			http.Error(w, "{}", http.StatusForbidden)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"name": "alice", "kind": "user", "groups": f.groups})
	default:
		http.NotFound(w, r)
	}
}

type flow struct {
	t      *testing.T
	srv    *Server
	url    string // the authorization server's origin
	hub    *fakeHub
	client *http.Client // a browser that does not follow redirects
	now    time.Time
	// consent is the last consent page shown.
	consent string
}

func newFlow(t *testing.T) *flow {
	hub := &fakeHub{revoked: map[string]bool{}}
	hubSrv := httptest.NewServer(hub)
	t.Cleanup(hubSrv.Close)
	hubAPI, _ := url.Parse(hubSrv.URL + "/hub/api")
	f := &flow{t: t, hub: hub, now: time.Now()}
	mux := http.NewServeMux()
	as := httptest.NewServer(mux)
	t.Cleanup(as.Close)
	srv, err := New(Config{Resource: as.URL + "/services/mcp", HubAPI: hubAPI, HubAuthorize: "/hub/api/oauth2/authorize",
		ClientID: "service-mcp", ClientSecret: "router-secret", Callback: "/services/mcp/oauth_callback",
		Key: []byte("0123456789abcdef0123456789abcdef"), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv.now = func() time.Time { return f.now }
	mux.Handle("/", srv)
	f.srv, f.url = srv, as.URL
	jar, _ := cookiejar.New(nil)
	f.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

func (f *flow) register(redirect string) string {
	f.t.Helper()
	resp, err := http.Post(f.url+"/services/mcp/register", "application/json", strings.NewReader(`{"client_name":"Test client","redirect_uris":["`+redirect+`"]}`))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID string `json:"client_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&out) != nil {
		f.t.Fatalf("register: %s", resp.Status)
	}
	return out.ClientID
}

const verifier = "a-verifier-of-enough-length-0123456789-abcdefghij"

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (f *flow) get(u string) (*http.Response, string) {
	f.t.Helper()
	resp, err := f.client.Get(u)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var pendingField = regexp.MustCompile(`name="pending" value="([^"]+)"`)

// authorize goes through the authorization endpoint, the hub's login
// (faked: its answer is the callback with a code) and the consent page,
// allowing scopes; it returns the redirect to the client.
func (f *flow) authorize(clientID, redirect string, params url.Values, allow ...string) *url.URL {
	f.t.Helper()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st-1"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}, "resource": {f.url + "/services/mcp"}}
	for k, v := range params {
		q[k] = v
	}
	resp, body := f.get(f.url + "/services/mcp/authorize?" + q.Encode())
	if resp.StatusCode != http.StatusFound {
		f.t.Fatalf("authorize: %s %s", resp.Status, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Path != "/hub/api/oauth2/authorize" {
		return loc // an error sent back to the client
	}
	resp, body = f.get(f.url + "/services/mcp/oauth_callback?code=hub-code&state=" + url.QueryEscape(loc.Query().Get("state")))
	m := pendingField.FindStringSubmatch(body)
	f.consent = body
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, "Allow <em>") || !strings.Contains(body, "alice") {
		f.t.Fatalf("consent page: %s %s", resp.Status, body)
	}
	form := url.Values{"pending": {m[1]}, "action": {"allow"}, "scope": allow}
	resp, err := f.client.PostForm(f.url+"/services/mcp/consent", form)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	return back
}

func (f *flow) token(form url.Values) (int, map[string]any) {
	f.t.Helper()
	return f.tokenAs("", "", form)
}

// tokenAs calls the token endpoint as a confidential client, its id and
// secret in the Authorization header (client_secret_basic); without an
// id, as a public client or with client_secret in the form.
func (f *flow) tokenAs(id, secret string, form url.Values) (int, map[string]any) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+"/services/mcp/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

const redirect = "http://127.0.0.1:33418/callback"

// The whole flow: discovery, registration, login and consent (granting
// less than asked), code for tokens, the grant's scopes in the access
// token, a rotating refresh.
func TestFlow(t *testing.T) {
	f := newFlow(t)
	for _, path := range []string{"/.well-known/oauth-protected-resource/services/mcp", "/services/mcp/.well-known/oauth-protected-resource"} {
		_, body := f.get(f.url + path)
		if !strings.Contains(body, `"resource":"`+f.url+`/services/mcp"`) || !strings.Contains(body, `"authorization_servers":["`+f.url+`/services/mcp"]`) {
			t.Fatalf("%s: %s", path, body)
		}
	}
	_, body := f.get(f.url + "/.well-known/oauth-authorization-server/services/mcp")
	if !strings.Contains(body, `"code_challenge_methods_supported":["S256"]`) || !strings.Contains(body, `"issuer":"`+f.url+`/services/mcp"`) {
		t.Fatalf("authorization server metadata: %s", body)
	}
	id := f.register(redirect)
	back := f.authorize(id, redirect, url.Values{"scope": {"mcp:read mcp:edit mcp:execute"}}, ScopeRead, ScopeEdit)
	if back.Query().Get("state") != "st-1" || back.Query().Get("iss") != f.url+"/services/mcp" || back.Query().Get("code") == "" {
		t.Fatalf("back to the client: %s", back)
	}
	status, tok := f.token(url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "client_id": {id},
		"redirect_uri": {redirect}, "code_verifier": {verifier}, "resource": {f.url + "/services/mcp"}})
	if status != http.StatusOK || tok["scope"] != "mcp:read mcp:edit" {
		t.Fatalf("token: %d %v", status, tok)
	}
	g, err := f.srv.Verify(tok["access_token"].(string))
	if err != nil || g.User != "alice" || g.HubToken != "hub-token-alice" || !slices.Equal(g.Scopes, []string{ScopeRead, ScopeEdit}) || g.ClientName != "Test client" {
		t.Fatalf("verify: %+v %v", g, err)
	}
	status, tok2 := f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {id}})
	if status != http.StatusOK || tok2["refresh_token"] == tok["refresh_token"] {
		t.Fatalf("refresh: %d %v", status, tok2)
	}
	// A refresh may narrow the grant, never widen it.
	refresh := func(token, scope string) (int, map[string]any) {
		return f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {id}, "scope": {scope}})
	}
	if status, out := refresh(tok2["refresh_token"].(string), "mcp:read mcp:execute"); status != http.StatusBadRequest || out["error"] != "invalid_scope" {
		t.Fatalf("a refresh widening the grant: %d %v", status, out)
	}
	if status, out := refresh(tok2["refresh_token"].(string), "mcp:read offline_access"); status != http.StatusOK || out["scope"] != "mcp:read" {
		t.Fatalf("a refresh narrowing the grant: %d %v", status, out)
	}
}

// Each refusal, with nothing issued.
func TestRefusals(t *testing.T) {
	f := newFlow(t)
	id := f.register(redirect)
	codeFor := func() string {
		return f.authorize(id, redirect, nil, Scopes...).Query().Get("code")
	}
	exchange := func(code string, change url.Values) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {id}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
		for k, v := range change {
			form[k] = v
		}
		return f.token(form)
	}
	refused := func(name string, status int, out map[string]any, want string) {
		t.Helper()
		if status == http.StatusOK || !strings.Contains(out["error_description"].(string)+" "+out["error"].(string), want) {
			t.Errorf("%s: %d %v, want refused with %q", name, status, out, want)
		}
	}

	code := codeFor()
	status, out := exchange(code, url.Values{"code_verifier": {"another-verifier-0123456789-0123456789-abcdef"}})
	refused("PKCE mismatch", status, out, "PKCE")
	status, out = exchange(code, url.Values{"resource": {"https://elsewhere.example/mcp"}})
	refused("another resource", status, out, "invalid_target")
	status, out = exchange(code, url.Values{"redirect_uri": {"http://127.0.0.1:1/other"}})
	refused("another redirect URI", status, out, "redirect_uri differs")
	if status, _ := exchange(code, nil); status != http.StatusOK {
		t.Fatalf("the code itself: %d", status)
	}
	status, out = exchange(code, nil)
	refused("a replayed code", status, out, "used already")

	code = codeFor()
	f.now = f.now.Add(2 * time.Minute)
	status, out = exchange(code, nil)
	refused("an expired code", status, out, "expired")
	f.now = time.Now()

	// Refresh tokens: one use each; the second use revokes the grant.
	_, tok := exchange(codeFor(), nil)
	rt := tok["refresh_token"].(string)
	refresh := func(token string) (int, map[string]any) {
		return f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {id}})
	}
	status, next := refresh(rt)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, next)
	}
	status, out = refresh(rt)
	refused("a refresh token used twice", status, out, "used already")
	status, out = refresh(next["refresh_token"].(string))
	refused("the grant's newer refresh token after a reuse", status, out, "revoked")

	// The hub revokes the person's token (the token page, logout, a deleted user).
	_, tok = exchange(codeFor(), nil)
	f.hub.mu.Lock()
	f.hub.revoked["hub-token-alice"] = true
	f.hub.mu.Unlock()
	status, out = refresh(tok["refresh_token"].(string))
	refused("a refresh after the hub revoked the login", status, out, "no longer accepts")
	f.hub.mu.Lock()
	f.hub.revoked = map[string]bool{}
	f.hub.mu.Unlock()

	// Access tokens.
	_, tok = exchange(codeFor(), nil)
	access := tok["access_token"].(string)
	f.now = f.now.Add(2 * time.Hour)
	if _, err := f.srv.Verify(access); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired access token: %v", err)
	}
	f.now = time.Now()
	if _, err := f.srv.Verify(access[:len(access)-2] + "xx"); err == nil {
		t.Error("an altered access token was accepted")
	}
	if _, err := f.srv.Verify(tok["refresh_token"].(string)); err == nil {
		t.Error("a refresh token was accepted as an access token")
	}
	other, _ := New(Config{Resource: "https://other.example/services/mcp", HubAPI: f.srv.cfg.HubAPI, ClientID: "c", ClientSecret: "s", Callback: "/cb",
		Key: f.srv.cfg.Key})
	if _, err := other.Verify(access); err == nil || !strings.Contains(err.Error(), "issued for") {
		t.Errorf("a token for another resource (same key): %v", err)
	}

	// Scopes not of this server are left out of the grant, not refused.
	back := f.authorize(id, redirect, url.Values{"scope": {"mcp:read offline_access"}}, Scopes...)
	if _, tok := exchange(back.Query().Get("code"), nil); tok["scope"] != "mcp:read" {
		t.Errorf("asked for mcp:read and offline_access: granted %v, want mcp:read", tok["scope"])
	}

	// Authorization requests: the client and its redirect URI are checked
	// before anything goes back to it.
	for _, tc := range []struct {
		name   string
		params url.Values
		want   string
	}{
		{"no PKCE", url.Values{"code_challenge": {""}}, "PKCE is required"},
		{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "PKCE is required"},
		{"another resource", url.Values{"resource": {"https://elsewhere.example/mcp"}}, "invalid_target"},
	} {
		back := f.authorize(id, redirect, tc.params)
		if got := back.Query().Get("error") + " " + back.Query().Get("error_description"); back.Query().Get("code") != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: back to the client with %q, want an error with %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, client, redirect string }{
		{"an unregistered redirect URI", id, "http://127.0.0.1:9/evil"},
		{"an unknown client", "mcpc_forged", redirect},
	} {
		q := url.Values{"response_type": {"code"}, "client_id": {tc.client}, "redirect_uri": {tc.redirect}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
		resp, body := f.get(f.url + "/services/mcp/authorize?" + q.Encode())
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %s, Location %q; want a 400 page and no redirect (%.200s)", tc.name, resp.Status, resp.Header.Get("Location"), body)
		}
	}
	// A sign-in finishes only in the browser that began it: the login's
	// answer, sent to another browser, is refused.
	q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "state": {"st"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	resp, _ := f.get(f.url + "/services/mcp/authorize?" + q.Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	elsewhere := &http.Client{CheckRedirect: f.client.CheckRedirect}
	answer, err := elsewhere.Get(f.url + "/services/mcp/oauth_callback?code=hub-code&state=" + url.QueryEscape(loc.Query().Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(answer.Body)
	answer.Body.Close()
	if answer.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not started in this browser") {
		t.Errorf("the login's answer in another browser: %s %.200s, want it refused", answer.Status, body)
	}

	// Registration refuses redirect URIs a public client may not have.
	for _, bad := range []string{"http://evil.example/cb", "javascript:alert(1)", "https://ok.example/cb#frag", "/relative"} {
		resp, err := http.Post(f.url+"/services/mcp/register", "application/json", strings.NewReader(`{"redirect_uris":["`+bad+`"]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("register %q: %s, want 400", bad, resp.Status)
		}
	}
}

// Clients identified by the URL of their metadata document: fetched over
// https and held to it, within limits.
func TestClientMetadataDocuments(t *testing.T) {
	docs := map[string]string{}
	var slow chan struct{}
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-slow
		}
		fmt.Fprint(w, docs[r.URL.Path])
	}))
	defer tlsSrv.Close()
	slow = make(chan struct{})
	defer close(slow)
	doc := func(path, body string) string {
		id := tlsSrv.URL + path
		docs[path] = strings.ReplaceAll(body, "$ID", id)
		return id
	}
	good := doc("/client.json", `{"client_id":"$ID","client_name":"Doc client","redirect_uris":["`+redirect+`"]}`)
	other := doc("/other.json", `{"client_id":"https://elsewhere.example/client.json","redirect_uris":["`+redirect+`"]}`)
	big := doc("/big.json", `{"client_id":"$ID","client_name":"`+strings.Repeat("x", 70<<10)+`","redirect_uris":["`+redirect+`"]}`)
	slowDoc := doc("/slow", `{}`)

	f := newFlow(t)
	f.srv.metadata = newMetadataClients(true, tlsSrv.Client().Transport.(*http.Transport))
	f.srv.metadata.http.Timeout = 300 * time.Millisecond
	authorize := func(clientID, redirectURI string) (*http.Response, string) {
		q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI},
			"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
		return f.get(f.url + "/services/mcp/authorize?" + q.Encode())
	}
	if resp, body := authorize(good, redirect); resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/hub/api/oauth2/authorize") {
		t.Fatalf("a client with a good document: %s %s", resp.Status, body)
	}
	// The document's client gets a code and tokens like any other.
	back := f.authorize(good, redirect, nil, Scopes...)
	if status, tok := f.token(url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "client_id": {good},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}); status != http.StatusOK {
		t.Fatalf("token for a document's client: %d %v", status, tok)
	}
	for _, tc := range []struct {
		name, clientID, redirect, want string
	}{
		{"a redirect URI the document does not list", good, "http://127.0.0.1:9/elsewhere", "not one Doc client registered"},
		{"a document naming another client", other, redirect, "names another client_id"},
		{"a document too large", big, redirect, "larger than 64 KiB"},
		{"a document too slow", slowDoc, redirect, "Client.Timeout"},
		{"a document not over https", strings.Replace(good, "https:", "http:", 1), redirect, "must be at an https URL"},
	} {
		resp, body := authorize(tc.clientID, tc.redirect)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(html.UnescapeString(body), tc.want) {
			t.Errorf("%s: %s, want a 400 page saying %q: %.300s", tc.name, resp.Status, tc.want, body)
		}
	}
	// By default documents come from public addresses only.
	f.srv.metadata = newMetadataClients(false, tlsSrv.Client().Transport.(*http.Transport))
	if resp, body := authorize(good, redirect); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not a public address") {
		t.Errorf("a document on a loopback address: %s %.300s, want it refused", resp.Status, body)
	}
}

// The admin's limits per hub group: the consent page offers, and the
// tokens carry, no more than the person's groups may grant, at the
// sign-in and again at each refresh.
func TestGroupScopes(t *testing.T) {
	f := newFlow(t)
	f.srv.cfg.GroupScopes = map[string][]string{"students": {ScopeRead, ScopeEdit}, "staff": Scopes}
	f.srv.cfg.DefaultScopes = []string{ScopeRead}
	id := f.register(redirect)
	grant := func() map[string]any {
		back := f.authorize(id, redirect, nil, Scopes...)
		_, tok := f.token(url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "client_id": {id},
			"redirect_uri": {redirect}, "code_verifier": {verifier}})
		return tok
	}
	for _, tc := range []struct {
		groups []string
		want   string
	}{
		{[]string{"students"}, "mcp:read mcp:edit"},
		{[]string{"students", "staff"}, "mcp:read mcp:edit mcp:execute"},
		{nil, "mcp:read"},
	} {
		f.hub.mu.Lock()
		f.hub.groups = tc.groups
		f.hub.mu.Unlock()
		if tok := grant(); tok["scope"] != tc.want {
			t.Errorf("groups %v: granted %v, want %q", tc.groups, tok["scope"], tc.want)
		}
	}
	// Moved out of staff: the next refresh narrows the grant.
	f.hub.mu.Lock()
	f.hub.groups = []string{"staff"}
	f.hub.mu.Unlock()
	tok := grant()
	f.hub.mu.Lock()
	f.hub.groups = []string{"students"}
	f.hub.mu.Unlock()
	if _, next := f.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {id}}); next["scope"] != "mcp:read mcp:edit" {
		t.Errorf("after leaving staff, the refresh granted %v, want mcp:read mcp:edit", next["scope"])
	}
}

// The admin's list of pre-registered clients: what it may hold.
func TestParseClients(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string // want: "" for a good list, else part of the error
	}{
		{"public and confidential", `[{"client_id":"vscode","redirect_uris":["http://127.0.0.1:33418/cb","https://vscode.dev/redirect"]},
			{"client_id":"chat-connector","client_name":"Chat","redirect_uris":["https://chat.example/oauth/callback"],"client_secret":"0123456789abcdef"}]`, ""},
		{"not a list", `{"client_id":"x"}`, "JSON array"},
		{"a misspelt key", `[{"client_id":"x","redirect_uri":["https://a.example/cb"]}]`, "unknown field"},
		{"no id", `[{"redirect_uris":["https://a.example/cb"]}]`, "client_id"},
		{"an id with a space", `[{"client_id":"a b","redirect_uris":["https://a.example/cb"]}]`, "without spaces"},
		{"a dynamic client's id", `[{"client_id":"mcpc_x","redirect_uris":["https://a.example/cb"]}]`, "dynamically registered"},
		{"twice", `[{"client_id":"x","redirect_uris":["https://a.example/cb"]},{"client_id":"x","redirect_uris":["https://b.example/cb"]}]`, "twice"},
		{"no redirect URI", `[{"client_id":"x"}]`, "redirect_uris"},
		{"plain http elsewhere than loopback", `[{"client_id":"x","redirect_uris":["http://a.example/cb"]}]`, "must be https"},
		{"a short secret", `[{"client_id":"x","redirect_uris":["https://a.example/cb"],"client_secret":"short"}]`, "16 or more"},
	} {
		clients, err := ParseClients([]byte(tc.json))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "" && (len(clients) != 2 || clients[0].Name != "vscode" || clients[1].Secret == ""):
			t.Errorf("%s: %+v", tc.name, clients)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// Pre-registered clients sign in without registering: a public one with
// PKCE alone, a confidential one with its secret too (in the header or
// the form) at every token request; their redirect URIs match exactly.
func TestPreRegisteredClients(t *testing.T) {
	const secret = "a-secret-of-the-connector"
	connector := "https://chat.example/oauth/callback"
	clients, err := ParseClients([]byte(`[{"client_id":"desktop","client_name":"Desktop app","redirect_uris":["` + redirect + `"]},
		{"client_id":"connector","client_name":"Chat connector","redirect_uris":["` + connector + `"],"client_secret":"` + secret + `"}]`))
	if err != nil {
		t.Fatal(err)
	}
	f := newFlow(t)
	f.srv.cfg.Clients = clients
	_, body := f.get(f.url + "/.well-known/oauth-authorization-server/services/mcp")
	if !strings.Contains(body, `"token_endpoint_auth_methods_supported":["none","client_secret_basic","client_secret_post"]`) {
		t.Errorf("authorization server metadata: %s", body)
	}
	exchange := func(id, basicSecret string, form url.Values) (int, map[string]any) {
		return f.tokenAs(id, basicSecret, form)
	}
	codeForm := func(id, redirectURI string, extra url.Values) url.Values {
		back := f.authorize(id, redirectURI, nil, Scopes...)
		if !strings.Contains(f.consent, "The hub's admin registered this client.") {
			t.Errorf("the consent page does not say the admin registered %s: %s", id, f.consent)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		for k, v := range extra {
			form[k] = v
		}
		return form
	}

	// The public client: its id and PKCE.
	status, tok := f.token(codeForm("desktop", redirect, url.Values{"client_id": {"desktop"}}))
	if status != http.StatusOK {
		t.Fatalf("the public pre-registered client: %d %v", status, tok)
	}
	if g, err := f.srv.Verify(tok["access_token"].(string)); err != nil || g.ClientID != "desktop" || g.ClientName != "Desktop app" {
		t.Fatalf("its grant: %+v %v", g, err)
	}

	// The confidential client: without its secret, or a wrong one, its
	// code is refused (and stays unused); with it, in either form, taken.
	form := codeForm("connector", connector, url.Values{"client_id": {"connector"}})
	for _, tc := range []struct {
		name       string
		basic      string // the secret in the header ("" : none)
		formSecret string
		want       string
	}{
		{"no secret", "", "", "is confidential"},
		{"a wrong secret in the form", "", "a-wrong-secret-of-the-connector", "is wrong"},
		{"a wrong secret in the header", "a-wrong-secret-of-the-connector", "", "is wrong"},
	} {
		attempt := url.Values{}
		maps.Copy(attempt, form)
		id := ""
		if tc.basic != "" {
			id = "connector"
		}
		if tc.formSecret != "" {
			attempt.Set("client_secret", tc.formSecret)
		}
		status, out := exchange(id, tc.basic, attempt)
		if status != http.StatusUnauthorized || out["error"] != "invalid_client" || !strings.Contains(out["error_description"].(string), tc.want) {
			t.Errorf("%s: %d %v, want 401 invalid_client saying %q", tc.name, status, out, tc.want)
		}
	}
	status, tok = exchange("connector", secret, form) // client_secret_basic
	if status != http.StatusOK {
		t.Fatalf("the confidential client with its secret in the header: %d %v", status, tok)
	}
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {"connector"}}
	if status, out := f.token(refresh); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("a refresh without the secret: %d %v, want 401 invalid_client", status, out)
	}
	refresh.Set("client_secret", secret) // client_secret_post
	if status, out := f.token(refresh); status != http.StatusOK {
		t.Errorf("a refresh with the secret in the form: %d %v", status, out)
	}
	// Another client's secret does not pass for it, and a code of the
	// connector's is no public client's.
	form = codeForm("connector", connector, nil)
	if status, out := exchange("desktop", "", form); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("the connector's code traded by the desktop client: %d %v, want invalid_grant", status, out)
	}

	// Redirect URIs match exactly.
	q := url.Values{"response_type": {"code"}, "client_id": {"connector"}, "redirect_uri": {connector + "/elsewhere"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
	if resp, body := f.get(f.url + "/services/mcp/authorize?" + q.Encode()); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
		!strings.Contains(html.UnescapeString(body), "not one Chat connector registered") {
		t.Errorf("a redirect URI the admin did not list: %s %.300s", resp.Status, body)
	}
}
