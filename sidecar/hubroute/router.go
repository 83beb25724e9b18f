// Package hubroute is the hub-wide MCP endpoint, <hub>/services/mcp: a
// JupyterHub service that asks the hub whose token a request carries,
// starts that user's server if it is not running, and forwards the request
// to the user's own <hub>/user/<name>/mcp with the same token, streaming
// the answer back as it comes.
//
// The router holds no rights, and no state but a few seconds' memory of
// whose each token is (Config.TokenCache): every hub call and the
// forwarded request use the client's token, so JupyterHub's RBAC decides
// everything, and a token can only ever reach its owner's server (the
// target is taken from the hub's answer, never from the request, and sent
// as the hub escaped it). Several replicas can run side by side.
package hubroute

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
)

// Config is what the router needs to know.
type Config struct {
	// HubAPI is the hub's REST API, e.g. http://127.0.0.1:8081/hub/api
	// ($JUPYTERHUB_API_URL for a managed service).
	HubAPI *url.URL
	// Proxy is where the hub's proxy routes /user/<name>/..., e.g. the
	// public http://127.0.0.1:8000 (the servers' ports are not published).
	Proxy *url.URL
	// Prefix is the service's path, e.g. /services/mcp/ (served with and
	// without the trailing slash).
	Prefix string
	// StartTimeout bounds the wait for a server the router starts.
	StartTimeout time.Duration
	// TokenCache is how long the router trusts the hub's answer about
	// whose a token is (knownTokens); 0: it asks the hub on every call.
	TokenCache time.Duration
	Limits     Limits
	// Transport carries hub API calls and forwarded requests (if nil, one
	// that ignores HTTP(S)_PROXY: a proxy would see every user's token).
	Transport http.RoundTripper
	// Auth, when set, lets MCP clients sign in through the hub (OAuth):
	// its endpoints are served here, a request without a token gets the
	// 401 that starts the sign-in, and its access tokens are taken besides
	// hub API tokens.
	Auth *hubauth.Server
	// SignInOnly, with Auth, refuses hub API tokens at the hub URL: only
	// the sign-in's tokens are taken, as the MCP specification asks of a
	// server (it must not accept tokens not issued for it).
	SignInOnly bool
	// Audit, when set, takes the audit trail (one line per request: who,
	// which client, what, the outcome) instead of Log.
	Audit *zerolog.Logger
	Log   zerolog.Logger
}

// Router serves the hub-wide MCP endpoint.
type Router struct {
	cfg       Config
	limits    Limits
	hub       *hubAPI
	proxy     *httputil.ReverseProxy
	known     knownTokens
	admission admission

	// Stop: closing refuses new requests; the calls in flight (POSTs)
	// may finish until stopped ends them.
	mu       sync.Mutex
	closing  bool
	calls    int           // POSTs in flight
	drained  chan struct{} // closed when closing and no call is in flight
	stopped  context.Context
	stopCuts context.CancelFunc
	// id names this router process to the servers (RouterHeader), and
	// servers holds, per server with calls in flight, a token that reaches
	// it: Stop hands those calls back before it cuts them.
	id      string
	servers map[string]*inFlight
}

// RouterHeader carries the router's id on every request it forwards; the
// sidecar (tools.RouterHeader) answers the calls of a router that hands
// them back.
const RouterHeader = "X-Jupyter-Mcp-Router"

// inFlight is a server's calls in flight and a token of one of them.
type inFlight struct {
	server serverAddr
	calls  int
	token  string
}

// handBackWait bounds how long Stop waits, once the calls in flight may
// run no longer, for the servers to take them back and their answers to
// go out: the asking and the answers together.
const handBackWait = 3 * time.Second

// errStopping is the cause of the requests Stop ends.
var errStopping = errors.New("the router is stopping")

// What requests answer while the router stops: a new one, and a call that
// ran longer than the router could wait.
var (
	stoppingError = &errHub{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: "5",
		Message: "the hub's MCP service is stopping (the hub restarts or shuts down); retry in a moment"}
	cutError = &errHub{Status: http.StatusServiceUnavailable, Code: codeUnavailable, RetryAfter: "5",
		Message: "the hub's MCP service is stopping (the hub restarts or shuts down) and this call ran longer than it could wait: the call was cut off, as if cancelled (a cell it was running is interrupted); retry in a moment"}
)

// New returns a Router for cfg.
func New(cfg Config) *Router {
	if cfg.Transport == nil {
		cfg.Transport = newTransport()
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	r := &Router{cfg: cfg, limits: cfg.Limits.withDefaults(), known: knownTokens{ttl: cfg.TokenCache, now: time.Now},
		hub: &hubAPI{base: cfg.HubAPI.JoinPath("/"), client: &http.Client{Transport: cfg.Transport}}}
	r.stopped, r.stopCuts = context.WithCancel(context.Background())
	r.drained = make(chan struct{})
	r.id = rand.Text()
	r.proxy = &httputil.ReverseProxy{
		Rewrite:   r.rewrite,
		Transport: cfg.Transport,
		// Every write goes out at once: server-sent events (progress,
		// notifications on the GET stream) must not wait in a buffer.
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if try, ok := resp.Request.Context().Value(knownTryKey{}).(*knownTry); ok && staleAnswer(resp.StatusCode) {
				try.stale = true
				return errStale
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if errors.Is(err, errStale) {
				return // serveKnown asks the hub
			}
			if errors.Is(context.Cause(req.Context()), errStopping) {
				r.fail(w, req, cutError)
				return
			}
			if req.Context().Err() != nil {
				return // the client went away
			}
			r.fail(w, req, &errHub{Status: http.StatusBadGateway, Code: codeUnavailable,
				Message: "cannot reach your server through the hub's proxy: " + err.Error()})
		},
	}
	return r
}

// newTransport is http.DefaultTransport without a proxy from the
// environment, keeping more idle connections to the hub's proxy, which
// every call goes to.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = 64
	return t
}

// rewrite completes the outgoing request, which forward has pointed at
// the user's server through the hub's proxy. The client's headers go with
// it (Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Accept, and the
// Authorization asSignedIn set: the user's hub token), except cookies:
// only the token may authenticate it.
func (r *Router) rewrite(pr *httputil.ProxyRequest) {
	// The Host forward set: the public host as the client sees it (the
	// sidecar builds lab links and checks Origin against it), or on a hub
	// with subdomains the server's.
	pr.Out.Host = pr.In.Host
	pr.Out.Header.Del("Cookie")
	pr.Out.Header.Set(RouterHeader, r.id)
	// The router's own parameters stay here; a token from the URL went
	// into the header (asSignedIn), where no URL (or log) holds it.
	q := pr.Out.URL.Query()
	if q.Has("profile") || q.Has("token") {
		q.Del("profile")
		q.Del("token")
		pr.Out.URL.RawQuery = q.Encode()
	}
	if p := pr.In.Header.Get("X-Forwarded-Proto"); p != "" {
		pr.Out.Header.Set("X-Forwarded-Proto", p)
	}
}

// Stop stops the router within ctx: later requests are answered that the
// service stops (503, Retry-After) instead of having their connections
// cut; the calls in flight may finish until ctx ends (a client's
// connection cut would cancel its call and interrupt its cell), then those
// still running are handed back (handBack): their servers answer them with
// their execution handles, the runs going on. What is left handBackWait
// after ctx ended is answered that the service stops, and open streams end:
// Stop returns within ctx and handBackWait.
// The hub stops its services while its proxy still runs, so clients read
// the answers. Call it before http.Server.Shutdown, which then waits for
// those answers.
func (r *Router) Stop(ctx context.Context) {
	r.mu.Lock()
	if !r.closing {
		r.closing = true
		if r.calls == 0 {
			close(r.drained)
		}
	}
	r.mu.Unlock()
	select {
	case <-r.drained:
	case <-ctx.Done():
		handingBack, cancel := context.WithTimeout(context.Background(), handBackWait)
		defer cancel()
		r.handBack(handingBack)
		select {
		case <-r.drained:
		case <-handingBack.Done():
		}
	}
	r.stopCuts()
}

// handBack asks every server with calls in flight to answer them now with
// their execution handles (POST <server>/mcp/handoff), each within ctx:
// cut, they would be cancelled and their cells interrupted; handed back,
// the runs go on.
func (r *Router) handBack(ctx context.Context) {
	r.mu.Lock()
	servers := maps.Clone(r.servers)
	r.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"router": r.id})
	var wg sync.WaitGroup
	for server, f := range servers {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.Proxy.String(), bytes.NewReader(body))
			f.server.aim(req, r.cfg.Proxy, "mcp/handoff")
			req.Header.Set("Authorization", "token "+f.token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := r.hub.client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				r.cfg.Log.Warn().Err(err).Str("server", server).Msg("could not hand the calls in flight back; they are cut")
			}
		})
	}
	wg.Wait()
}

// track counts a call in flight to server until the returned func is
// called.
func (r *Router) track(server serverAddr, token string) (done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.servers == nil {
		r.servers = map[string]*inFlight{}
	}
	key := server.key()
	f := r.servers[key]
	if f == nil {
		f = &inFlight{server: server}
		r.servers[key] = f
	}
	f.calls++
	f.token = token
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if f.calls--; f.calls == 0 {
			delete(r.servers, key)
		}
	}
}

// begin counts a call in flight, unless the router stops; end uncounts it.
func (r *Router) begin(req *http.Request) (end func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return nil, false
	}
	if req.Method != http.MethodPost {
		return func() {}, true // a stream: Stop cuts it
	}
	r.calls++
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.calls--; r.closing && r.calls == 0 {
			close(r.drained)
		}
	}, true
}

// statusWriter remembers the status and user for the log line; Unwrap
// lets the reverse proxy flush through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	user   string
	grant  *hubauth.Grant // the request's sign-in, if any
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP routes one MCP request and logs one line for it (never a token
// or a header). Its steps: track the request as in flight (refused while
// the router stops), check its path, profile and token (checkRequest), ask
// the hub whose token it is, start that user's server if a POST needs it
// (its start events as MCP progress when the call asked for progress), and
// forward the request to the server with the same token.
func (r *Router) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	start := time.Now()
	stall := newStallWriter(rw, r.limits.WriteStall)
	defer stall.arm()
	w := &statusWriter{ResponseWriter: stall}
	var started bool
	defer func() { r.audit(req, w, started, time.Since(start)) }()
	release, refused := r.admit()
	if refused != nil {
		r.answer(w, nil, refused) // its body unread: no work for a request refused
		return
	}
	defer release()

	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	defer context.AfterFunc(r.stopped, func() { cancel(errStopping) })()
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &timedBody{ReadCloser: req.Body, rc: http.NewResponseController(rw), limit: r.limits.BodyTimeout}
	}
	if req.Method == http.MethodPost && req.Body != nil {
		// The start of the body, for the id of an error answered after
		// the body went to the server.
		prefix := &bodyPrefix{ReadCloser: req.Body}
		req.Body = prefix
		ctx = context.WithValue(ctx, bodyPrefixKey{}, prefix)
	}
	req = req.WithContext(ctx)
	end, ok := r.begin(req)
	if !ok {
		r.fail(w, req, stoppingError)
		return
	}
	defer end()

	if r.cfg.Auth != nil && r.cfg.Auth.Handles(req.URL.Path) {
		r.cfg.Auth.ServeHTTP(w, req)
		return
	}
	token, profile, err := r.checkRequest(req)
	var grant *hubauth.Grant
	if err == nil {
		grant, token, err = r.signedIn(w, token)
	}
	if err != nil {
		r.fail(w, req, err)
		return
	}
	req, w.grant = asSignedIn(req, token, grant, r.cfg.Auth), grant
	if r.serveKnown(w, req, token) {
		return
	}
	u, err := r.hub.whoami(req.Context(), token)
	if err != nil {
		if e := (*errHub)(nil); grant != nil && errors.As(err, &e) && e.Code == codeUnauthorized {
			// The hub no longer takes the login behind the grant (revoked,
			// logged out, the user deleted): the client should refresh,
			// which fails, and sign in again.
			r.cfg.Auth.Challenge(w, "the hub no longer accepts this sign-in")
			err = &errHub{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: "the hub no longer accepts this sign-in (revoked, logged out, or the user was deleted): sign in again"}
		}
		r.fail(w, req, err)
		return
	}
	w.user = u.Name
	if u.Kind != "" && u.Kind != "user" {
		r.fail(w, req, &errHub{Status: http.StatusForbidden, Code: codeUnauthorized,
			Message: "this token belongs to the " + u.Kind + " " + u.Name + ", not to a user: use a user's token"})
		return
	}
	releaseUser, err := r.admitUser(u.Name)
	if err != nil {
		r.fail(w, req, err)
		return
	}
	defer releaseUser()
	started = r.route(w, req, token, u, profile)
}

// route sends the request of u (whom token belongs to) to u's default
// server, starting it first if it is not running and req may start it
// (with profile); it reports whether it started it.
func (r *Router) route(w http.ResponseWriter, req *http.Request, token string, u *hubUser, profile string) (started bool) {
	var target string // the server's url in the hub's answer
	if u.Servers != nil {
		s, ok := u.Servers[""]
		running := ok && s.Ready && s.Pending == ""
		switch {
		case running:
			target = s.URL
		case req.Method != http.MethodPost:
			// Only a new message starts a server: a GET stream or a
			// DELETE belongs to a session that ended with the server.
			r.fail(w, req, &errHub{Status: http.StatusNotFound, Code: codeNotRunning,
				Message: u.Name + "'s server is not running: its MCP sessions ended with it; start a new session"})
			return false
		default:
			progress := newStartProgress(w, req)
			ctx, cancel := context.WithTimeoutCause(req.Context(), r.cfg.StartTimeout, errStartDeadline)
			var report func(int, string)
			if progress != nil {
				report = progress.report
			}
			var err error
			target, started, err = r.hub.ensureRunning(ctx, token, u, profile, report)
			cancel()
			// Once progress went out, the rest rides the same stream.
			if tail, finish := progress.writer(); tail != nil {
				defer finish()
				w = tail
			}
			if err != nil {
				if errors.Is(context.Cause(req.Context()), errStopping) {
					// The router stops before the server is up: the
					// request went nowhere, and may be sent again.
					err = stoppingError
				}
				r.fail(w, req, err)
				return started
			}
		}
	}
	// Without read:servers the token cannot tell whether the server runs:
	// forward anyway, the hub answers for a stopped one.
	server := defaultServerAddr(u.Name)
	if target != "" {
		var err error
		if server, err = parseServerURL(target); err != nil {
			r.fail(w, req, &errHub{Status: http.StatusBadGateway, Code: codeUnavailable, Message: err.Error()})
			return started
		}
	}
	r.known.put(token, u.Name, server)
	r.forward(w, req, server, token)
	return started
}

// signedIn resolves the client's token into the hub token that reaches
// its server: a hub API token as it is, an access token of the sign-in
// (Auth) into the person's hub token and the grant. Without any token,
// the sign-in's 401 starts it, if there is one.
func (r *Router) signedIn(w http.ResponseWriter, token string) (*hubauth.Grant, string, error) {
	switch {
	case token == "" && r.cfg.Auth != nil:
		r.cfg.Auth.Challenge(w, "")
		return nil, "", &errHub{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "sign in: this MCP server takes OAuth (your client can sign in through the hub), or a hub API token in the header 'Authorization: token <token>'"}
	case token == "":
		return nil, "", &errHub{Status: http.StatusForbidden, Code: codeUnauthorized,
			Message: "no JupyterHub token: send the header 'Authorization: token <your hub API token>' (or Bearer), or add ?token=<your hub API token> to the URL"}
	case r.cfg.Auth != nil && hubauth.IsAccessToken(token):
		g, err := r.cfg.Auth.Verify(token)
		if err != nil {
			r.cfg.Auth.Challenge(w, err.Error())
			return nil, "", &errHub{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: err.Error()}
		}
		return g, g.HubToken, nil
	case r.cfg.Auth != nil && r.cfg.SignInOnly:
		const why = "this hub takes only the tokens of its sign-in at this URL, not hub API tokens: let your client sign in (or use your server's own URL, /user/<name>/mcp, with an API token)"
		r.cfg.Auth.Challenge(w, why)
		return nil, "", &errHub{Status: http.StatusUnauthorized, Code: codeUnauthorized, Message: why}
	}
	return nil, token, nil
}

// asSignedIn is req as it goes upstream: with the hub token that reaches
// the user's server, never the client's own credential when that is a
// sign-in's access token, and the sign-in's grant, which the server
// enforces (any copy the client sent is dropped).
func asSignedIn(req *http.Request, token string, grant *hubauth.Grant, auth *hubauth.Server) *http.Request {
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "token "+token)
	out.Header.Del(hubauth.ScopesHeader)
	out.Header.Del(hubauth.ResourceMetadataHeader)
	if grant != nil {
		out.Header.Set(hubauth.ScopesHeader, strings.Join(grant.Scopes, " "))
		out.Header.Set(hubauth.ResourceMetadataHeader, auth.ResourceMetadata())
	}
	return out
}

// checkRequest checks what a request asks before the hub is asked
// anything: the path is the MCP endpoint, the profile (?profile=) a name;
// and it finds the token in the Authorization header or, for clients that
// take only a URL, in ?token= ("" if none: signedIn decides).
func (r *Router) checkRequest(req *http.Request) (token, profile string, err error) {
	if req.URL.Path != r.cfg.Prefix && req.URL.Path != strings.TrimSuffix(r.cfg.Prefix, "/") {
		return "", "", &errHub{Status: http.StatusNotFound, Code: codeNotRunning,
			Message: "not found: the MCP endpoint is " + r.cfg.Prefix}
	}
	profile = req.URL.Query().Get("profile")
	if profile != "" && !profileName.MatchString(profile) {
		return "", "", &errHub{Status: http.StatusBadRequest, Code: codeStartFailed,
			Message: "profile: expected a profile name (letters, digits, - and _), got " + strconv.Quote(profile)}
	}
	token = clientToken(req.Header.Get("Authorization"))
	if token == "" && req.Header.Get("Authorization") == "" {
		token = req.URL.Query().Get("token")
	}
	return token, profile, nil
}

// forward sends req to the user's server through the hub's proxy.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, server serverAddr, token string) {
	if req.Method == http.MethodPost {
		defer r.track(server, token)()
	}
	out := req.Clone(req.Context())
	server.aim(out, r.cfg.Proxy, "mcp")
	r.proxy.ServeHTTP(w, out)
}

// profileName is what ?profile= may hold: the hub's config checks that
// the profile exists.
var profileName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// bodyPrefix keeps the first maxPrefix bytes read from a request's body.
type bodyPrefix struct {
	io.ReadCloser
	buf bytes.Buffer
}

const maxPrefix = 64 << 10

type bodyPrefixKey struct{}

func (b *bodyPrefix) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := maxPrefix - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(n, room)])
	}
	return n, err
}

// rpcID is the "id" of the JSON-RPC request data holds, or null. data may
// be cut short: the members before the cut are enough (clients send the id
// before the params).
func rpcID(data []byte) json.RawMessage {
	if v := member(data, "id"); v != nil {
		return v
	}
	return json.RawMessage("null")
}

// member is the value of a top-level member of the JSON object data
// starts, or nil: data may be cut short after it.
func member(data []byte, name string) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if key == name {
			return v
		}
	}
	return nil
}

// clientToken is the token of "token <t>" or "Bearer <t>" (any case).
func clientToken(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !(strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// fail answers with a JSON-RPC error carrying the request's id when the
// body is one JSON-RPC request, and the HTTP status of err.
func (r *Router) fail(w http.ResponseWriter, req *http.Request, err error) {
	var e *errHub
	if !errors.As(err, &e) {
		switch {
		case errors.Is(context.Cause(req.Context()), errStopping):
			e = cutError
		case req.Context().Err() != nil:
			return // the client went away
		default:
			e = &errHub{Status: http.StatusBadGateway, Code: codeUnavailable, Message: err.Error()}
		}
	}
	var id json.RawMessage
	if req.Method == http.MethodPost && req.Body != nil {
		// As much as the prefix keeps: the token may not have been
		// checked, and the read is bounded in time (timedBody).
		data, _ := io.ReadAll(io.LimitReader(req.Body, maxPrefix))
		if prefix, ok := req.Context().Value(bodyPrefixKey{}).(*bodyPrefix); ok && len(data) == 0 {
			data = prefix.buf.Bytes() // the body went to the server
		}
		id = rpcID(data)
	}
	r.answer(w, id, e)
}

// answer writes e as a JSON-RPC error for id (null if nil).
func (r *Router) answer(w http.ResponseWriter, id json.RawMessage, e *errHub) {
	if id == nil {
		id = []byte("null")
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false) // messages quote "<your hub API token>"
	_ = enc.Encode(map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": e.Code, "message": e.Message},
	})
	w.Header().Set("Content-Type", "application/json")
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body.Bytes())
}
