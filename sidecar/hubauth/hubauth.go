// Package hubauth is the MCP authorization server of the hub's router: MCP
// clients discover it from the router's 401, register (dynamically, or
// pre-registered by an admin), send the person to log in with JupyterHub's
// own login page and to consent, and get short-lived access tokens bound
// to <hub>/services/mcp with rotating refresh tokens. Behind the scenes
// the router is JupyterHub's OAuth client (the service's own client): the
// login gives it a hub token of the person's, limited to reaching their
// server, which it uses upstream — the client's token never leaves the
// router.
//
// Nothing is stored: client ids, codes and tokens are sealed (encrypted
// and authenticated) with the router's key, so replicas sharing the key
// need no shared state. Codes and refresh tokens are single-use within a
// replica.
package hubauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// The scopes an MCP client may be granted; a grant holds a subset.
const (
	ScopeRead    = "mcp:read"    // list and read notebooks, files, changes, kernels
	ScopeEdit    = "mcp:edit"    // create and change notebooks, undo
	ScopeExecute = "mcp:execute" // run code, answer input, manage kernels
)

// Scopes lists every scope, in the order consent pages show them.
var Scopes = []string{ScopeRead, ScopeEdit, ScopeExecute}

var scopeText = map[string]string{
	ScopeRead:    "read your notebooks and files, and see their changes",
	ScopeEdit:    "create and change notebooks, and undo changes",
	ScopeExecute: "run code on your kernels",
}

// The router forwards a signed-in client's grant to the user's server
// with each request: its scopes, space-separated, and where its protected
// resource metadata is (for the server's insufficient_scope answers). A
// request without them holds its token owner's full rights.
const (
	ScopesHeader           = "X-Jupyter-Mcp-Scopes"
	ResourceMetadataHeader = "X-Jupyter-Mcp-Resource-Metadata"
)

// Config is what the authorization server needs.
type Config struct {
	// Resource is the MCP endpoint's public URL, which is also this
	// server's issuer, e.g. https://hub.example.org/services/mcp.
	Resource string
	// HubAPI is the hub's REST API (the token exchange, who a token is).
	HubAPI *url.URL
	// HubAuthorize is where browsers log in at the hub and authorize the
	// router: the hub's /hub/api/oauth2/authorize, relative to its origin.
	HubAuthorize string
	// ClientID, ClientSecret and Callback are the router's OAuth client at
	// the hub (JUPYTERHUB_CLIENT_ID, JUPYTERHUB_API_TOKEN,
	// JUPYTERHUB_OAUTH_CALLBACK_URL for a managed service).
	ClientID, ClientSecret, Callback string
	// Key seals everything handed out: 32 bytes or more, the same on every
	// replica.
	Key []byte
	// AccessTTL is an access token's life (1 h if 0); RefreshTTL a refresh
	// token's (30 days if 0), never beyond the hub token's.
	AccessTTL, RefreshTTL time.Duration
	// Clients are pre-registered by the admin (ParseClients).
	Clients []Client
	// GroupScopes, when set, is the most a member of each hub group may
	// grant an MCP client; a user in none of the groups may grant
	// DefaultScopes. Changes apply at the next call.
	GroupScopes   map[string][]string
	DefaultScopes []string
	// PrivateClientMetadata lets client metadata documents come from
	// loopback and private addresses (an intranet's clients); by default
	// only public addresses are fetched.
	PrivateClientMetadata bool
	// Transport carries the calls to the hub (http.DefaultTransport if nil).
	Transport http.RoundTripper
	Log       zerolog.Logger
}

// Server serves the authorization server's endpoints.
type Server struct {
	cfg    Config
	seal   *sealer
	prefix string // the resource's path, e.g. /services/mcp
	hub    *http.Client
	now    func() time.Time

	metadata *metadataClients
	routes   map[string]http.HandlerFunc // by path

	mu   sync.Mutex
	used map[string]time.Time // single-use codes and refresh tokens → when they expire
}

// New checks cfg and returns the server.
func New(cfg Config) (*Server, error) {
	u, err := url.Parse(cfg.Resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the public URL %q: expected https://host[:port]/path", cfg.Resource)
	}
	cfg.Resource = strings.TrimRight(cfg.Resource, "/")
	s, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.Callback == "" || cfg.HubAPI == nil {
		return nil, errors.New("the router's OAuth client at the hub is not set (run it as a hub service with a URL: JUPYTERHUB_CLIENT_ID, JUPYTERHUB_API_TOKEN and JUPYTERHUB_OAUTH_CALLBACK_URL)")
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = time.Hour
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if err := checkClients(cfg.Clients); err != nil {
		return nil, err
	}
	base, _ := cfg.Transport.(*http.Transport)
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	srv := &Server{cfg: cfg, seal: s, prefix: strings.TrimRight(u.Path, "/"), hub: &http.Client{Transport: cfg.Transport},
		metadata: newMetadataClients(cfg.PrivateClientMetadata, base), now: time.Now, used: map[string]time.Time{}}
	p := srv.prefix
	// The metadata where clients look for it: under the resource's path,
	// and at the root's well-known URLs with the path inserted.
	srv.routes = map[string]http.HandlerFunc{
		p + "/.well-known/oauth-protected-resource":   srv.protectedResource,
		"/.well-known/oauth-protected-resource" + p:   srv.protectedResource,
		p + "/.well-known/oauth-authorization-server": srv.serverMetadata,
		"/.well-known/oauth-authorization-server" + p: srv.serverMetadata,
		p + "/register":       srv.register,
		p + "/authorize":      srv.authorize,
		p + "/oauth_callback": srv.hubCallback,
		p + "/consent":        srv.consent,
		p + "/token":          srv.token,
	}
	return srv, nil
}

// Prefixes of what the server seals, by kind.
const (
	clientPrefix  = "mcpc_" // a dynamically registered client's id
	codePrefix    = "mcpcode_"
	accessPrefix  = "mcpat_"
	refreshPrefix = "mcprt_"
	statePrefix   = "mcpst_" // the router's state at the hub's login
	consentPrefix = "mcpcs_" // a consent page's pending grant
)

// Handles reports whether path is one of the server's endpoints.
func (s *Server) Handles(path string) bool {
	_, ok := s.routes[path]
	return ok
}

// ServeHTTP serves the endpoints Handles names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if route, ok := s.routes[r.URL.Path]; ok {
		route(w, r)
		return
	}
	http.NotFound(w, r)
}

// IsAccessToken reports whether token is one this server issues (it may
// still be invalid); other tokens are the hub's.
func IsAccessToken(token string) bool { return strings.HasPrefix(token, accessPrefix) }

// Grant is what a valid access token allows.
type Grant struct {
	User       string
	ClientID   string
	ClientName string
	Scopes     []string
	HubToken   string // the person's hub token, for the router's calls upstream
}

// ClientRef names the client in logs: its id, or for a dynamically
// registered client (whose id is its sealed registration) a short
// fingerprint of it.
func (g *Grant) ClientRef() string {
	if !strings.HasPrefix(g.ClientID, clientPrefix) {
		return g.ClientID
	}
	sum := sha256.Sum256([]byte(g.ClientID))
	return clientPrefix + hex.EncodeToString(sum[:6])
}

type accessToken struct {
	sealed
	Audience   string   `json:"aud"`
	User       string   `json:"sub"`
	ClientID   string   `json:"cid"`
	ClientName string   `json:"cn"`
	Scopes     []string `json:"scp"`
	HubToken   string   `json:"ht"`
}

// Verify checks an access token for this resource. The hub token inside
// is checked by the router's next call to the hub, so a revocation at the
// hub stops it there.
func (s *Server) Verify(token string) (*Grant, error) {
	var t accessToken
	if err := s.seal.open(accessPrefix, "access", token, &t, s.now()); err != nil {
		return nil, fmt.Errorf("the access token is %w", err)
	}
	if t.Audience != s.cfg.Resource {
		return nil, fmt.Errorf("the access token was issued for %s, not for %s", t.Audience, s.cfg.Resource)
	}
	return &Grant{User: t.User, ClientID: t.ClientID, ClientName: t.ClientName, Scopes: t.Scopes, HubToken: t.HubToken}, nil
}

// Challenge answers a request without a usable token: 401 with the
// WWW-Authenticate header that tells MCP clients where to start (RFC 9728).
// why is "" for a request without any token.
func (s *Server) Challenge(w http.ResponseWriter, why string) {
	h := fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, s.ResourceMetadata(), strings.Join(Scopes, " "))
	if why != "" {
		h += fmt.Sprintf(`, error="invalid_token", error_description=%q`, why)
	}
	w.Header().Set("WWW-Authenticate", h)
}

// ResourceMetadata is the URL of the protected resource metadata.
func (s *Server) ResourceMetadata() string {
	return s.origin() + "/.well-known/oauth-protected-resource" + s.prefix
}

func (s *Server) origin() string {
	u, _ := url.Parse(s.cfg.Resource)
	return u.Scheme + "://" + u.Host
}

func (s *Server) protectedResource(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"resource":                 s.cfg.Resource,
		"authorization_servers":    []string{s.cfg.Resource},
		"scopes_supported":         Scopes,
		"bearer_methods_supported": []string{"header"},
		"resource_name":            "Jupyter notebooks (JupyterHub)",
	})
}

func (s *Server) serverMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         s.cfg.Resource,
		"authorization_endpoint":                         s.cfg.Resource + "/authorize",
		"token_endpoint":                                 s.cfg.Resource + "/token",
		"registration_endpoint":                          s.cfg.Resource + "/register",
		"response_types_supported":                       []string{"code"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          s.authMethods(),
		"scopes_supported":                               Scopes,
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          true,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError answers an endpoint's error in OAuth's JSON form.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// useOnce marks a single-use value (a code, a refresh token) used,
// reporting false if it was already.
func (s *Server) useOnce(id string, until time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.used) > 4096 {
		for k, exp := range s.used {
			if now.After(exp) {
				delete(s.used, k)
			}
		}
	}
	if _, ok := s.used[id]; ok {
		return false
	}
	s.used[id] = until
	return true
}

// revoked reports whether the grant family was revoked (a refresh token
// of it used twice).
func (s *Server) revoked(family string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.used["family:"+family]
	return ok
}

// hubUser asks the hub who a hub token belongs to, and the groups it is in.
func (s *Server) hubUser(ctx context.Context, hubToken string) (name string, groups []string, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.HubAPI.JoinPath("user").String(), nil)
	req.Header.Set("Authorization", "token "+hubToken)
	resp, err := s.hub.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("cannot reach the hub's API: %w", err)
	}
	defer resp.Body.Close()
	var u struct {
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&u) != nil || u.Name == "" {
		return "", nil, fmt.Errorf("the hub does not accept the login's token (%s)", resp.Status)
	}
	return u.Name, u.Groups, nil
}

// Allowed is the most a user in groups may grant: every scope unless
// the admin set GroupScopes; then the union of what the user's groups
// allow, or DefaultScopes for a user in none of them.
func (s *Server) Allowed(groups []string) []string {
	if s.cfg.GroupScopes == nil {
		return Scopes
	}
	var out []string
	matched := false
	for _, g := range groups {
		allowed, ok := s.cfg.GroupScopes[g]
		matched = matched || ok
		for _, sc := range allowed {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	if !matched {
		out = s.cfg.DefaultScopes
	}
	// In the order consent pages show them.
	return slices.DeleteFunc(slices.Clone(Scopes), func(sc string) bool { return !slices.Contains(out, sc) })
}

// within is what of scopes allowed permits.
func within(scopes, allowed []string) []string {
	return slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !slices.Contains(allowed, sc) })
}
