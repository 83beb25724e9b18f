package hubauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The flow, as a client sees it: register → authorize (the person logs in
// at the hub, then consents here) → the client's redirect URI with a code
// → token (the code and the PKCE verifier) → refresh, again and again.

// codeTTL is an authorization code's life; loginTTL a login's and a
// consent page's.
const (
	codeTTL  = time.Minute
	loginTTL = 10 * time.Minute
)

type clientRecord struct {
	sealed
	Name         string   `json:"n"`
	RedirectURIs []string `json:"r"`
}

// register is Dynamic Client Registration (RFC 7591) for public clients:
// the client id is the sealed registration itself.
func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST the client's metadata as JSON")
		return
	}
	var in struct {
		RedirectURIs []string `json:"redirect_uris"`
		Name         string   `json:"client_name"`
		GrantTypes   []string `json:"grant_types"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not the client's metadata as JSON: "+err.Error())
		return
	}
	if len(in.RedirectURIs) == 0 || len(in.RedirectURIs) > 10 {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "give 1 to 10 redirect_uris")
		return
	}
	for _, u := range in.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", err.Error())
			return
		}
	}
	if in.AuthMethod != "" && in.AuthMethod != "none" {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "token_endpoint_auth_method: only \"none\" (a public client with PKCE) is supported")
		return
	}
	for _, g := range in.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "grant_types: only authorization_code and refresh_token are supported, not "+g)
			return
		}
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = "an unnamed MCP client"
	}
	if len(name) > 100 {
		name = name[:100]
	}
	id := s.seal.seal(clientPrefix, clientRecord{sealed: sealed{Kind: "client"}, Name: name, RedirectURIs: in.RedirectURIs})
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id":                  id,
		"client_id_issued_at":        s.now().Unix(),
		"client_name":                name,
		"redirect_uris":              in.RedirectURIs,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	})
}

// checkRedirectURI takes what OAuth 2.1 allows a public client: an https
// URL, or http on a loopback address; no fragment.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("redirect URI %q: expected an absolute URL without a fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("redirect URI %q: must be https, or http on localhost", raw)
}

// client finds a client by id: pre-registered, described by a metadata
// document at the id's URL, or registered dynamically.
func (s *Server) client(ctx context.Context, id string) (*Client, error) {
	if c := s.preRegistered(id); c != nil {
		return c, nil
	}
	if isMetadataURL(id) {
		return s.metadata.client(ctx, id, s.now())
	}
	if strings.HasPrefix(id, "http:") || strings.HasPrefix(id, "https:") {
		return nil, fmt.Errorf("client_id %q: a client metadata document must be at an https URL with a path", id)
	}
	var rec clientRecord
	if err := s.seal.open(clientPrefix, "client", id, &rec, s.now()); err != nil {
		return nil, fmt.Errorf("unknown client_id: register the client first (%s)", s.cfg.Resource+"/register")
	}
	return &Client{ID: id, Name: rec.Name, RedirectURIs: rec.RedirectURIs}, nil
}

// request is an authorization request, carried sealed through the hub's
// login and the consent page.
type request struct {
	sealed
	ClientID    string   `json:"c"`
	ClientName  string   `json:"cn"`
	RedirectURI string   `json:"r"`
	State       string   `json:"s"`
	Challenge   string   `json:"pc"`
	Scopes      []string `json:"sc"`
	// Nonce is also in a cookie of the browser that began the sign-in:
	// the login's answer and the consent count only in that browser, so
	// nobody can have a person finish a sign-in someone else began (and
	// hand their client the other's account).
	Nonce string `json:"nc"`
	// After the login: the person and their hub token.
	User       string `json:"u,omitempty"`
	HubToken   string `json:"ht,omitempty"`
	HubExpires int64  `json:"hx,omitempty"`
}

// authorize checks an authorization request and sends the person to log
// in at the hub. Errors about the client or its redirect URI are shown to
// the person (sending them to an unchecked URI would make this an open
// redirector); the others go back to the client.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := s.client(r.Context(), q.Get("client_id"))
	if err != nil {
		page(w, http.StatusBadRequest, "This MCP client cannot sign in", err.Error())
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(c.RedirectURIs, redirect) {
		page(w, http.StatusBadRequest, "This MCP client cannot sign in", fmt.Sprintf("the redirect URI %q is not one %s registered", redirect, c.Name))
		return
	}
	back := func(code, why string) {
		s.redirect(w, r, redirect, url.Values{"error": {code}, "error_description": {why}, "state": {q.Get("state")}})
	}
	switch {
	case q.Get("response_type") != "code":
		back("unsupported_response_type", "only response_type=code is supported")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		back("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
		return
	case q.Has("resource") && strings.TrimRight(q.Get("resource"), "/") != s.cfg.Resource:
		back("invalid_target", fmt.Sprintf("this server issues tokens for %s only, not for %s", s.cfg.Resource, q.Get("resource")))
		return
	}
	scopes := parseScopes(q.Get("scope"))
	nonce := randomID()
	http.SetCookie(w, &http.Cookie{Name: nonceCookie, Value: nonce, Path: s.prefix + "/", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: strings.HasPrefix(s.cfg.Resource, "https:"), SameSite: http.SameSiteLaxMode})
	state := s.seal.seal(statePrefix, request{sealed: sealed{Kind: "login", Expires: s.now().Add(loginTTL).Unix()},
		ClientID: c.ID, ClientName: c.Name, RedirectURI: redirect, State: q.Get("state"), Challenge: q.Get("code_challenge"), Scopes: scopes, Nonce: nonce})
	hub := url.Values{"client_id": {s.cfg.ClientID}, "redirect_uri": {s.cfg.Callback}, "response_type": {"code"}, "state": {state}}
	http.Redirect(w, r, s.cfg.HubAuthorize+"?"+hub.Encode(), http.StatusFound)
}

// nonceCookie holds the nonce of the sign-in this browser began.
const nonceCookie = "mcp-sign-in"

func sameBrowser(r *http.Request, nonce string) bool {
	c, err := r.Cookie(nonceCookie)
	return err == nil && nonce != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(nonce)) == 1
}

// parseScopes reads a scope parameter: the scopes of this server it names,
// in order. Others (a client's habitual offline_access, say) are left out,
// as OAuth lets a server grant less than asked and say so in the token's
// scope; a parameter naming none of ours asks for every one.
func parseScopes(scope string) []string {
	if out := within(Scopes, strings.Fields(scope)); len(out) > 0 {
		return out
	}
	return slices.Clone(Scopes)
}

// redirect sends the person back to the client's redirect URI with params
// and the issuer (RFC 9207).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	u, _ := url.Parse(to)
	q := u.Query()
	for k, vs := range params {
		if len(vs) > 0 && vs[0] != "" {
			q[k] = vs
		}
	}
	q.Set("iss", s.cfg.Resource)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// hubCallback is where the hub sends the person back after the login: the
// router trades the hub's code for the person's hub token and shows the
// consent page.
func (s *Server) hubCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var req request
	if err := s.seal.open(statePrefix, "login", q.Get("state"), &req, s.now()); err != nil {
		page(w, http.StatusBadRequest, "This sign-in cannot go on", "the login's state is "+err.Error()+": start again from your MCP client")
		return
	}
	if !sameBrowser(r, req.Nonce) {
		page(w, http.StatusBadRequest, "This sign-in was begun elsewhere", "it was not started in this browser: start again from your MCP client")
		return
	}
	if e := q.Get("error"); e != "" {
		s.redirect(w, r, req.RedirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the hub refused: " + e}, "state": {req.State}})
		return
	}
	form := url.Values{"client_id": {s.cfg.ClientID}, "client_secret": {s.cfg.ClientSecret}, "grant_type": {"authorization_code"},
		"code": {q.Get("code")}, "redirect_uri": {s.cfg.Callback}}
	resp, err := s.hub.PostForm(s.cfg.HubAPI.JoinPath("oauth2", "token").String(), form)
	if err != nil {
		page(w, http.StatusBadGateway, "The hub cannot be reached", err.Error())
		return
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok) != nil || tok.AccessToken == "" {
		page(w, http.StatusBadGateway, "The hub did not complete the login", "its token endpoint answered "+resp.Status+": start again from your MCP client")
		return
	}
	user, groups, err := s.hubUser(r.Context(), tok.AccessToken)
	if err != nil {
		page(w, http.StatusBadGateway, "The hub did not complete the login", err.Error())
		return
	}
	// Offer only what the person's groups may grant.
	if req.Scopes = within(req.Scopes, s.Allowed(groups)); len(req.Scopes) == 0 {
		s.redirect(w, r, req.RedirectURI, url.Values{"error": {"access_denied"},
			"error_description": {"the hub's admin lets " + user + " grant none of the scopes asked for"}, "state": {req.State}})
		return
	}
	req.User, req.HubToken = user, tok.AccessToken
	if tok.ExpiresIn > 0 {
		req.HubExpires = s.now().Unix() + tok.ExpiresIn
	}
	req.Kind, req.Expires = "consent", s.now().Add(loginTTL).Unix()
	s.consentPage(w, &req, s.seal.seal(consentPrefix, req))
}

// consent takes the person's answer on the consent page.
func (s *Server) consent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		page(w, http.StatusMethodNotAllowed, "Nothing to see here", "the consent page posts its answer here")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != s.origin() {
		page(w, http.StatusForbidden, "This answer came from another site", "only the consent page may answer it")
		return
	}
	_ = r.ParseForm()
	var req request
	if err := s.seal.open(consentPrefix, "consent", r.PostForm.Get("pending"), &req, s.now()); err != nil {
		page(w, http.StatusBadRequest, "This sign-in cannot go on", "the consent page is "+err.Error()+": start again from your MCP client")
		return
	}
	if !sameBrowser(r, req.Nonce) {
		page(w, http.StatusBadRequest, "This sign-in was begun elsewhere", "it was not started in this browser: start again from your MCP client")
		return
	}
	var granted []string
	for _, sc := range r.PostForm["scope"] {
		if slices.Contains(req.Scopes, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	if r.PostForm.Get("action") != "allow" || len(granted) == 0 {
		s.redirect(w, r, req.RedirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the person did not allow access"}, "state": {req.State}})
		return
	}
	req.Scopes = granted
	code := authCode{sealed: sealed{Kind: "code", Expires: s.now().Add(codeTTL).Unix()}, ID: randomID(), Req: req}
	s.cfg.Log.Info().Str("user", req.User).Str("client", req.ClientName).Strs("scopes", granted).Msg("MCP client authorized")
	s.redirect(w, r, req.RedirectURI, url.Values{"code": {s.seal.seal(codePrefix, code)}, "state": {req.State}})
}

type authCode struct {
	sealed
	ID  string  `json:"id"`
	Req request `json:"q"`
}

func randomID() string { return rand.Text() }

// token is the token endpoint: authorization_code (with the PKCE
// verifier) and refresh_token (rotating: each refresh token works once).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST a form")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form: "+err.Error())
		return
	}
	f := r.PostForm
	if f.Has("resource") && strings.TrimRight(f.Get("resource"), "/") != s.cfg.Resource {
		oauthError(w, http.StatusBadRequest, "invalid_target", fmt.Sprintf("this server issues tokens for %s only, not for %s", s.cfg.Resource, f.Get("resource")))
		return
	}
	clientID, err := s.authenticate(r, f)
	if err != nil {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="MCP clients"`)
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, f, clientID)
	case "refresh_token":
		s.refreshGrant(w, r, f, clientID)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
}

func (s *Server) codeGrant(w http.ResponseWriter, f url.Values, clientID string) {
	var code authCode
	if err := s.seal.open(codePrefix, "code", f.Get("code"), &code, s.now()); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is "+err.Error())
		return
	}
	req := code.Req
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case clientID != req.ClientID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
	case f.Get("redirect_uri") != req.RedirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(req.Challenge)) != 1:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
	case !s.useOnce("code:"+code.ID, time.Unix(code.Expires, 0)):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was used already")
	default:
		s.issue(w, req, randomID())
	}
}

type refreshToken struct {
	sealed
	ID     string  `json:"id"`
	Family string  `json:"f"`
	Req    request `json:"q"`
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, f url.Values, clientID string) {
	var rt refreshToken
	if err := s.seal.open(refreshPrefix, "refresh", f.Get("refresh_token"), &rt, s.now()); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is "+err.Error())
		return
	}
	req := rt.Req
	if clientID != req.ClientID {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
		return
	}
	if asked := strings.Fields(f.Get("scope")); len(asked) > 0 {
		if slices.ContainsFunc(asked, func(sc string) bool { return slices.Contains(Scopes, sc) && !slices.Contains(req.Scopes, sc) }) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "a refresh may keep or narrow the grant's scopes ("+strings.Join(req.Scopes, " ")+"), not widen them")
			return
		}
		if kept := within(req.Scopes, asked); len(kept) > 0 {
			req.Scopes = kept
		}
	}
	if s.revoked(rt.Family) {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "this grant was revoked (one of its refresh tokens was used twice): sign in again")
		return
	}
	if !s.useOnce("refresh:"+rt.ID, time.Unix(rt.Expires, 0)) {
		// A refresh token used twice was stolen or replayed: every token
		// of its grant is refused from now on.
		s.useOnce("family:"+rt.Family, s.now().Add(s.cfg.RefreshTTL))
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was used already; every token of this grant is revoked: sign in again")
		return
	}
	_, groups, err := s.hubUser(r.Context(), req.HubToken)
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the hub no longer accepts this grant (revoked, logged out, or the user was deleted): sign in again")
		return
	}
	if req.Scopes = within(req.Scopes, s.Allowed(groups)); len(req.Scopes) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the hub's admin no longer lets this user grant any of this grant's scopes")
		return
	}
	s.issue(w, req, rt.Family)
}

// issue answers with a new access token and refresh token for req,
// neither outliving the hub token inside.
func (s *Server) issue(w http.ResponseWriter, req request, family string) {
	now := s.now()
	accessExp, refreshExp := now.Add(s.cfg.AccessTTL).Unix(), now.Add(s.cfg.RefreshTTL).Unix()
	if req.HubExpires != 0 {
		accessExp, refreshExp = min(accessExp, req.HubExpires), min(refreshExp, req.HubExpires)
	}
	access := s.seal.seal(accessPrefix, accessToken{sealed: sealed{Kind: "access", Expires: accessExp}, Audience: s.cfg.Resource,
		User: req.User, ClientID: req.ClientID, ClientName: req.ClientName, Scopes: req.Scopes, HubToken: req.HubToken})
	refresh := s.seal.seal(refreshPrefix, refreshToken{sealed: sealed{Kind: "refresh", Expires: refreshExp}, ID: randomID(), Family: family, Req: req})
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  access,
		"token_type":    "Bearer",
		"expires_in":    accessExp - now.Unix(),
		"refresh_token": refresh,
		"scope":         strings.Join(req.Scopes, " "),
	})
}
