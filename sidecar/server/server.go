// Package server is the sidecar's HTTP face: the MCP Streamable HTTP
// endpoint behind jupyter-server-proxy, its request policy, logging and
// graceful shutdown.
package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// Config is what the HTTP layer needs to know.
type Config struct {
	// BaseURL is the Jupyter server's base URL ("/" or "/user/alice/"),
	// from which public lab URLs are built.
	BaseURL string
	// AllowedOrigins are extra browser origins (scheme://host[:port]) that
	// may call MCP, besides the lab's own origin.
	AllowedOrigins []string
	// SessionTimeout closes MCP sessions idle for that long.
	SessionTimeout time.Duration
	// Embed serves the embed page under /embed.
	Embed *embed.Handler
	// Review serves the JupyterLab sidebar's /changes endpoints.
	Review  http.Handler
	Version string
	// Token, when set, must come with every request as "Authorization:
	// token <Token>" (or Bearer). Behind jupyter-server-proxy the lab has
	// authenticated the request already and the socket is private, so it
	// is empty; a sidecar serving TCP on its own needs one.
	Token string
}

// Server serves MCP over HTTP.
type Server struct {
	cfg     Config
	mcp     *mcp.Server
	log     zerolog.Logger
	handOff func(router string) // tools.Tools.HandOff
}

// New builds the MCP server with every tool registered.
func New(cfg Config, t *tools.Tools, log zerolog.Logger) *Server {
	s := &Server{cfg: cfg, log: log, handOff: t.HandOff}
	s.mcp = mcp.NewServer(
		&mcp.Implementation{Name: "jupyter-mcp-sidecar", Title: "Jupyter", Version: cfg.Version},
		&mcp.ServerOptions{
			Instructions: tools.Instructions,
			// The SDK's default (logging) plus MCP Apps, whose views the
			// notebook tools offer to clients that declare it too.
			Capabilities: &mcp.ServerCapabilities{
				Logging: &mcp.LoggingCapabilities{},
				// Notebooks created, renamed or deleted through the
				// Contents API are told by list_changed (the server's event
				// bus); their changes to subscribers (go-sdk adds
				// subscribe: true).
				Resources: &mcp.ResourceCapabilities{ListChanged: true},
				// Tasks (SEP-2663) are advertised by server/discover only:
				// initialize belongs to protocols without the extension.
				Extensions: map[string]any{
					tools.AppsExtension:  map[string]any{"mimeTypes": []string{tools.AppMIMEType}},
					tools.TasksExtension: map[string]any{},
				},
			},
			InitializedHandler: func(_ context.Context, req *mcp.InitializedRequest) {
				// Drop the session's state when it ends.
				ss := req.Session
				go func() {
					_ = ss.Wait()
					t.Sessions.Forget(ss.ID())
					t.Views.Forget(ss.ID())
					t.ForgetSubscriptions(ss)
				}()
			},
			SubscribeHandler:   t.Subscribe,
			UnsubscribeHandler: t.Unsubscribe,
			Logger:             sdkLogger(log),
		})
	t.Register(s.mcp)
	s.mcp.AddReceivingMiddleware(s.logToolCalls, noPrompts, progressTokens, tools.ListOnlyGranted)
	return s
}

// progressTokens refuses a tool call whose progress token is neither a
// string nor a number (the spec's two kinds), before anything runs: go-sdk
// takes any JSON value.
func progressTokens(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if call, ok := req.(*mcp.CallToolRequest); ok && call.Params != nil {
			switch tok := call.Params.GetProgressToken(); tok.(type) {
			case nil, string, float64, int, int64, json.Number:
			default:
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
					Message: fmt.Sprintf("_meta.progressToken must be a string or a number, not %T", tok)}
			}
		}
		return next(ctx, method, req)
	}
}

// noPrompts answers prompts/* as unknown methods: go-sdk serves an empty
// prompts/list even when, as here, the prompts capability is not declared,
// which tells a client that prompts are served after all.
func noPrompts(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if strings.HasPrefix(method, "prompts/") {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found: this server has no prompts"}
		}
		return next(ctx, method, req)
	}
}

// Handler returns the HTTP handler: MCP at "/" (jupyter-server-proxy strips
// the <base>/mcp prefix), /healthz and /stats.
func (s *Server) Handler() http.Handler {
	server := func(*http.Request) *mcp.Server { return s.mcp }
	streamable := mcp.NewStreamableHTTPHandler(server, &mcp.StreamableHTTPOptions{
		// Stateful sessions: each MCP session has its own current notebook.
		// POSTs are answered with an event stream that carries the call's
		// progress and then its result; the proxy extension streams it.
		SessionTimeout: s.cfg.SessionTimeout,
		// A broken stream (a proxy or hub restart, the client's network)
		// cancels nothing under these protocols: the call runs on, and the
		// client that reconnects with Last-Event-ID is sent what it missed,
		// from the last events of every stream (10 MiB in all). Past that,
		// the run's result stays with get_execution.
		EventStore: mcp.NewMemoryEventStore(nil),
		// The go-sdk guard 403s every request whose Host is not loopback,
		// i.e. every proxied one; originPolicy replaces it.
		DisableLocalhostProtection: true,
		Logger:                     sdkLogger(s.log),
	})
	// Protocol 2026-07-28 has no sessions: each request is a POST of its
	// own, progress rides its response stream, and closing that stream
	// cancels the call. go-sdk serves it only from a stateless handler, so
	// requests that announce it go there and all others keep their sessions.
	stateless := mcp.NewStreamableHTTPHandler(server, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		PropagateRequestCancellation: true,
		DisableLocalhostProtection:   true,
		Logger:                       sdkLogger(s.log),
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	// What a soak watches for leaks; behind the lab's authentication like
	// everything else.
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]uint64{"goroutines": uint64(runtime.NumGoroutine()), "heap_bytes": m.HeapAlloc})
	})
	mux.Handle("/{$}", s.originPolicy(s.publicBase(scopeGate(byProtocol(streamable, stateless)))))
	mux.Handle("POST /handoff", s.originPolicy(http.HandlerFunc(s.serveHandoff)))
	if s.cfg.Embed != nil {
		mux.Handle("/embed", s.originPolicy(s.cfg.Embed))
		mux.Handle("/embed/", s.originPolicy(s.cfg.Embed))
	}
	if s.cfg.Review != nil {
		mux.Handle("/changes", s.originPolicy(s.cfg.Review))
		mux.Handle("/changes/", s.originPolicy(s.cfg.Review))
	}
	var h http.Handler = cookieXSRF(mux)
	if s.cfg.Token != "" {
		h = requireToken(s.cfg.Token, h)
	}
	return drainBody(h)
}

// routerID is what a hub router calls itself (RouterHeader).
var routerID = regexp.MustCompile(`^[A-Za-z0-9]{16,64}$`)

// serveHandoff ends the calls a stopping hub router forwarded, answering
// each with its execution handle: POST /handoff {"router": "<id>"}.
func (s *Server) serveHandoff(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Router string `json:"router"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&in); err != nil || !routerID.MatchString(in.Router) {
		http.Error(w, `expected JSON {"router": "<the router's id: 16 to 64 letters and digits>"}`, http.StatusBadRequest)
		return
	}
	s.handOff(in.Router)
	s.log.Info().Str("router", in.Router).Msg("calls handed back to a stopping hub router")
	w.WriteHeader(http.StatusNoContent)
}

// scopeGate refuses, before anything runs, a request that a signed-in
// client's grant does not allow (hubauth.ScopesHeader): 403 with the
// WWW-Authenticate answer that lets the client ask the person for more
// (step-up).
func scopeGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		granted, ok := tools.GrantedScopes(r.Header.Get(hubauth.ScopesHeader))
		if !ok || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxDrain))
		if err != nil {
			http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
			return
		}
		// Whole for the SDK, which refuses a body beyond its limit (one
		// longer than what was read here is no message to check).
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
		for _, m := range rpcMessages(body) {
			missing := tools.Missing(tools.ScopesFor(m.Method, m.Params), granted)
			if len(missing) == 0 {
				continue
			}
			challenge := fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, strings.Join(append(slices.Clone(granted), missing...), " "))
			if md := r.Header.Get(hubauth.ResourceMetadataHeader); md != "" {
				challenge += fmt.Sprintf(", resource_metadata=%q", md)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": m.ID, "error": map[string]any{
				"code":    jsonrpc.CodeInvalidRequest,
				"message": fmt.Sprintf("this needs the scope %s, which your sign-in was not granted: sign in again and allow it; nothing was done", strings.Join(missing, " and ")),
			}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rpcMessage is what scopeGate reads of a JSON-RPC message.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// rpcMessages reads a message or a batch; nothing if body is neither (the
// SDK answers that).
func rpcMessages(body []byte) []rpcMessage {
	var one rpcMessage
	if json.Unmarshal(body, &one) == nil {
		return []rpcMessage{one}
	}
	var batch []rpcMessage
	_ = json.Unmarshal(body, &batch)
	return batch
}

// statelessSince is the first protocol version without sessions.
const statelessSince = "2026-07-28"

// byProtocol sends requests that announce a protocol version without
// sessions (the Mcp-Protocol-Version header, which such clients send on
// every request, server/discover included) to stateless, the rest to
// stateful. Versions are dates, so they compare as strings.
func byProtocol(stateful, stateless http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Protocol-Version") >= statelessSince {
			stateless.ServeHTTP(w, r)
			return
		}
		stateful.ServeHTTP(w, r)
	})
}

// AuthHeader is how the proxy extension tells the sidecar how Jupyter
// authenticated a request: "token" (a token in the Authorization header or
// in the URL), "cookie" (the login cookie alone) or "unchecked" (the lab
// checks no XSRF tokens). The extension replaces any copy a client sent.
const AuthHeader = "X-Jupyter-Mcp-Auth"

// cookieXSRF refuses state-changing requests that Jupyter let through on
// its login cookie unless they carry Jupyter's XSRF token, as JupyterLab's
// own requests do (header X-XSRFToken equal to the _xsrf cookie).
// jupyter-server-proxy does no XSRF check, and on a JupyterHub served from
// one domain every user's server shares the origin, so the Origin check
// cannot tell a page of user A's server from B's own: without this, A's page
// could drive B's MCP with B's cookie. Requests Jupyter authenticated by a
// token need no XSRF token, as on Jupyter's own endpoints: a page cannot
// know the token.
func cookieXSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		switch r.Header.Get(AuthHeader) {
		case "token", "unchecked":
		default:
			if !xsrfMatches(r) {
				http.Error(w, "Forbidden: a request authenticated by the login cookie needs the X-XSRFToken header (the _xsrf cookie); MCP clients send the token instead: \"Authorization: token <token>\" or ?token=<token>", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// xsrfMatches reports whether the X-XSRFToken header carries the token of
// the request's _xsrf cookie. Jupyter Server uses Tornado's tokens, which
// may come masked differently each time (so the secrets are compared);
// JupyterHub's servers use signed tokens compared as they are.
func xsrfMatches(r *http.Request) bool {
	header := r.Header.Get("X-XSRFToken")
	if header == "" {
		return false
	}
	for _, c := range r.CookiesNamed("_xsrf") {
		if subtle.ConstantTimeCompare([]byte(header), []byte(c.Value)) == 1 {
			return true
		}
		a, okA := tornadoXSRFSecret(header)
		b, okB := tornadoXSRFSecret(c.Value)
		if okA && okB && subtle.ConstantTimeCompare(a, b) == 1 {
			return true
		}
	}
	return false
}

// tornadoXSRFSecret decodes a Tornado XSRF token: version 2 is
// "2|<mask hex>|<masked secret hex>|<timestamp>", version 1 the secret in hex.
func tornadoXSRFSecret(v string) ([]byte, bool) {
	parts := strings.Split(v, "|")
	if len(parts) == 1 {
		b, err := hex.DecodeString(v)
		return b, err == nil && len(b) > 0
	}
	if len(parts) != 4 || parts[0] != "2" {
		return nil, false
	}
	mask, err1 := hex.DecodeString(parts[1])
	masked, err2 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(mask) == 0 || len(mask) != len(masked) {
		return nil, false
	}
	secret := make([]byte, len(mask))
	for i := range mask {
		secret[i] = mask[i] ^ masked[i]
	}
	return secret, true
}

// requireToken refuses requests without the sidecar's own token.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		ok := strings.EqualFold(scheme, "token") || strings.EqualFold(scheme, "bearer")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			http.Error(w, "Forbidden: send the sidecar's token as \"Authorization: token <token>\"", http.StatusForbidden)
			return
		}
		r.Header.Set(AuthHeader, "token")
		next.ServeHTTP(w, r)
	})
}

// drainBody reads what is left of a request body before the response goes
// out. jupyter-server-proxy sends "Connection: close" and writes the body
// after the headers; answering early (403, 415) and closing with unread
// bytes resets the connection, and the proxy turns that into a 500.
func drainBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { _, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain)) }()
		next.ServeHTTP(w, r)
	})
}

// maxDrain is above the go-sdk's default 4 MiB request limit.
const maxDrain = 8 << 20

// originPolicy refuses browser requests from other sites. Jupyter has
// already authenticated the request (token or login cookie) before
// proxying it, and jupyter-server-proxy skips XSRF checks, so a page on
// another site must not be able to drive MCP with the user's cookie.
// Non-browser clients send no Origin and pass.
func (s *Server) originPolicy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !s.originAllowed(origin, r.Host) {
			http.Error(w, "Forbidden: cross-origin request to MCP; allow the origin with --allow-origin", http.StatusForbidden)
			return
		}
		if origin == "" && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "Forbidden: cross-site request to MCP", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true // same origin as the lab
	}
	for _, o := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// publicBase tells the tools under which URL the client sees the lab.
func (s *Server) publicBase(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
			scheme = p
		}
		r.Header.Set(tools.PublicBaseHeader, scheme+"://"+r.Host+s.cfg.BaseURL)
		next.ServeHTTP(w, r)
	})
}

// logToolCalls writes one line per tool call: tool, session, duration and
// whether it failed. Arguments and headers are never logged.
func (s *Server) logToolCalls(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		call, ok := req.(*mcp.CallToolRequest)
		if !ok {
			return next(ctx, method, req)
		}
		start := time.Now()
		res, err := next(ctx, method, req)
		ev := s.log.Info()
		if err != nil {
			ev = s.log.Warn().Str("protocol_error", err.Error())
		} else if r, ok := res.(*mcp.CallToolResult); ok && r.IsError {
			ev = s.log.Info().Bool("tool_error", true)
		}
		took := time.Since(start)
		ev.Str("tool", call.Params.Name).
			Str("session", req.GetSession().ID()).
			Dur("duration", took).
			Msg("tool call")
		if s.cfg.Embed != nil {
			var args struct {
				Path string `json:"path"`
			}
			_ = json.Unmarshal(call.Params.Arguments, &args)
			// A result that is no CallToolResult is a task handle (tasks.go).
			r, _ := res.(*mcp.CallToolResult)
			s.cfg.Embed.Hub.Activity(req.GetSession().ID(), call.Params.Name, args.Path, err == nil && res != nil && (r == nil || !r.IsError), took)
		}
		return res, err
	}
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		// Close sessions first: open GET streams would hold Shutdown.
		for ss := range s.mcp.Sessions() {
			_ = ss.Close()
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
