// Command jupyter-mcp-hub serves one MCP URL for a whole JupyterHub,
// <hub>/services/mcp, as a JupyterHub service: it takes a user's hub token,
// starts that user's server if needed and forwards to its /user/<name>/mcp
// (package hubroute). The hub starts it as a managed service
// (jupyter_config/hub/jupyterhub_config.py); its settings default to the
// environment the hub gives managed services.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubroute"
)

var version = "dev" // set by the build (-ldflags "-X main.version=...")

func main() {
	listen := flag.String("listen", "127.0.0.1:8002", "host:port to serve on (the service's url in the hub's config)")
	hubAPI := flag.String("hub-api", os.Getenv("JUPYTERHUB_API_URL"), "the hub's REST API, e.g. http://127.0.0.1:8081/hub/api")
	proxyURL := flag.String("proxy-url", "", "where the hub's proxy serves /user/<name>/, e.g. http://127.0.0.1:8000 (required)")
	prefix := flag.String("prefix", envOr("JUPYTERHUB_SERVICE_PREFIX", "/services/mcp/"), "the service's URL path")
	startTimeout := flag.Duration("start-timeout", 2*time.Minute, "longest wait for a user's server that a request starts")
	var life lifeFlags
	flag.DurationVar(&life.drain, "drain", 8*time.Second, "on SIGINT/SIGTERM, how long the calls in flight may finish before they are handed back with their execution handles (their runs go on); handing them back and closing take at most 3.5 s more")
	flag.IntVar(&life.hubPID, "hub-pid", 0, "pid of the hub that starts the router as a managed service (its parent): when that hub is gone without stopping it, the router stops and exits 1")
	flag.StringVar(&life.pidFile, "pid-file", "", "file the router's pid is kept in; a router that starts stops the one it names first, if still running")
	tokenCache := flag.Duration("token-cache", 5*time.Second, "how long the hub's answer about whose a token is holds (0: ask the hub on every call); a revoked token, or a deleted user's, may be routed this long after, and is refused as soon as the user's server refuses it")
	maxRequests := flag.Int("max-requests", hubroute.DefaultLimits.MaxRequests, "most requests in flight at once, open streams included (more are answered 503 with Retry-After)")
	maxUserRequests := flag.Int("max-user-requests", hubroute.DefaultLimits.MaxUserRequests, "most requests in flight at once for one user, open streams included")
	auditLog := flag.String("audit-log", "", "file the audit trail is appended to, one JSON line per request (who, which client, what, the outcome); default: the log")
	var signIn signInFlags
	flag.StringVar(&signIn.publicURL, "public-url", "", "the hub's public URL, e.g. https://hub.example.org: with it, MCP clients sign in through the hub (OAuth) at <public-url>/services/mcp")
	flag.StringVar(&signIn.keyFile, "oauth-key-file", "", "file of 32 or more random bytes sealing the OAuth tokens (every replica the same); required with --public-url")
	flag.DurationVar(&signIn.accessTTL, "oauth-access-ttl", time.Hour, "life of an OAuth access token (refresh tokens renew it)")
	flag.BoolVar(&signIn.only, "oauth-only", false, "with --public-url, refuse hub API tokens at the hub URL: only the sign-in's tokens (the MCP specification's strict mode)")
	flag.StringVar(&signIn.groupScopes, "oauth-group-scopes", "", `the most each hub group's members may grant an MCP client, e.g. "students=mcp:read+mcp:edit,staff=mcp:read+mcp:edit+mcp:execute" (unset: every scope for everyone)`)
	flag.StringVar(&signIn.defaultScopes, "oauth-default-scopes", "mcp:read+mcp:edit+mcp:execute", "with --oauth-group-scopes, the most a user in none of its groups may grant")
	flag.StringVar(&signIn.clientsFile, "oauth-clients", "", `file of pre-registered MCP clients, a JSON array of {"client_id", "client_name", "redirect_uris", "client_secret" (optional: a confidential client, e.g. a web-hosted connector)}; they sign in without registering`)
	flag.BoolVar(&signIn.privateMetadata, "oauth-private-client-metadata", false, "fetch client metadata documents from loopback and private addresses too (an intranet's clients)")
	logLevel := flag.String("log-level", envOr("JUPYTER_MCP_LOG_LEVEL", "info"), "debug, info, warn or error")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Str("component", "jupyter-mcp-hub").Logger()
	lvl, err := zerolog.ParseLevel(*logLevel)
	if err != nil || *logLevel == "" {
		log.Error().Str("log_level", *logLevel).Msg("fatal: --log-level must be debug, info, warn or error")
		os.Exit(2)
	}
	log = log.Level(lvl)
	cfg := hubroute.Config{Prefix: *prefix, StartTimeout: *startTimeout, TokenCache: *tokenCache, Log: log,
		Limits: hubroute.Limits{MaxRequests: *maxRequests, MaxUserRequests: *maxUserRequests}}
	if *auditLog != "" {
		f, err := os.OpenFile(*auditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			log.Error().Err(err).Msg("fatal: --audit-log")
			os.Exit(2)
		}
		defer f.Close()
		audit := zerolog.New(f).With().Timestamp().Logger()
		cfg.Audit = &audit
	}
	if err := run(*listen, *hubAPI, *proxyURL, life, cfg, signIn); err != nil {
		log.Error().Err(err).Msg("fatal")
		os.Exit(1)
	}
}

// lifeFlags are how the router starts and stops.
type lifeFlags struct {
	drain   time.Duration
	hubPID  int
	pidFile string
}

func run(listen, hubAPI, proxyURL string, life lifeFlags, cfg hubroute.Config, signIn signInFlags) error {
	log := cfg.Log
	var err error
	if cfg.HubAPI, err = absURL("--hub-api (or JUPYTERHUB_API_URL)", hubAPI); err != nil {
		return err
	}
	if cfg.Proxy, err = absURL("--proxy-url", proxyURL); err != nil {
		return err
	}
	if cfg.StartTimeout <= 0 {
		return fmt.Errorf("--start-timeout %s: must be positive", cfg.StartTimeout)
	}
	if life.drain < 0 {
		return fmt.Errorf("--drain %s: must not be negative", life.drain)
	}
	if life.hubPID < 0 {
		return fmt.Errorf("--hub-pid %d: expected a process id", life.hubPID)
	}
	if cfg.TokenCache < 0 {
		return fmt.Errorf("--token-cache %s: must not be negative", cfg.TokenCache)
	}
	if cfg.Limits.MaxRequests < 1 || cfg.Limits.MaxUserRequests < 1 {
		return fmt.Errorf("--max-requests %d, --max-user-requests %d: must be 1 or more", cfg.Limits.MaxRequests, cfg.Limits.MaxUserRequests)
	}
	if life.hubPID != 0 && os.Getppid() != life.hubPID {
		return fmt.Errorf("%w: --hub-pid %d is not the router's parent (pid %d)", errHubGone, life.hubPID, os.Getppid())
	}
	if life.pidFile != "" {
		stale, err := replaceStale(life.pidFile, filepath.Base(os.Args[0]), staleWait)
		if err != nil {
			return err
		}
		if stale != 0 {
			log.Warn().Int("pid", stale).Msg("stopped the router before this one, left running by a hub that is gone")
		}
	}
	ln, err := net.Listen("tcp", listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w: another process holds the port (`ss -ltnp` names it); a router started with --pid-file replaces the one before it", err)
	}
	if err != nil {
		return err
	}
	if life.pidFile != "" {
		if err := writePIDFile(life.pidFile); err != nil {
			return err
		}
		defer removePIDFile(life.pidFile)
	}
	if cfg.Auth, err = signIn.server(cfg.HubAPI, cfg.Prefix, log); err != nil {
		return err
	}
	cfg.SignInOnly = signIn.only
	router := hubroute.New(cfg)
	srv := router.Server()

	signalled, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(signalled)
	defer cancel(nil)
	if life.hubPID != 0 {
		gone := hubGone(ctx, life.hubPID, parentCheck, os.Getppid)
		go func() {
			select {
			case <-gone:
				cancel(errHubGone)
			case <-ctx.Done():
			}
		}()
	}
	shutDown := make(chan struct{})
	go func() {
		defer close(shutDown)
		<-ctx.Done()
		// The hub stops its services before its proxy: the calls in flight
		// may finish within drain, then are handed back with their
		// execution handles (their clients read them through the proxy);
		// open streams end; replicas behind the hub's proxy take the next
		// requests. A hub that is gone may have left its proxy running
		// until the next hub replaces it: the answers go out through it.
		if context.Cause(ctx) == errHubGone {
			log.Warn().Int("hub_pid", life.hubPID).Msg("the hub that started the router is gone: stopping")
		}
		log.Info().Dur("drain", life.drain).Msg("stopping: letting the calls in flight finish")
		draining, cancel := context.WithTimeout(context.Background(), life.drain)
		defer cancel()
		router.Stop(draining)
		// Stop has answered or cut every call: what is left are
		// connections to close.
		shut, cancelShut := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancelShut()
		if srv.Shutdown(shut) != nil {
			_ = srv.Close()
		}
	}()
	log.Info().Str("listen", listen).Str("hub_api", cfg.HubAPI.String()).Str("proxy", cfg.Proxy.String()).Str("prefix", cfg.Prefix).
		Dur("token_cache", cfg.TokenCache).Int("max_requests", cfg.Limits.MaxRequests).Int("max_user_requests", cfg.Limits.MaxUserRequests).
		Str("version", version).Msg("serving the hub's MCP URL")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Serve returns as soon as Shutdown begins: wait for the answers.
	<-shutDown
	if context.Cause(ctx) == errHubGone {
		return errHubGone
	}
	log.Info().Msg("stopped")
	return nil
}

func absURL(name, s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%s is required", name)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: expected an http(s) URL like http://127.0.0.1:8000", name, s)
	}
	return u, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// signInFlags set up the OAuth sign-in (hubauth); without a public URL
// clients send hub API tokens only.
type signInFlags struct {
	publicURL, keyFile string
	clientsFile        string
	accessTTL          time.Duration
	privateMetadata    bool
	only               bool
	// groupScopes and defaultScopes as the flags give them.
	groupScopes, defaultScopes string
}

// server is the authorization server the flags describe, nil without
// --public-url. The router's OAuth client at the hub comes from the
// environment JupyterHub gives a managed service.
func (f signInFlags) server(hubAPI *url.URL, prefix string, log zerolog.Logger) (*hubauth.Server, error) {
	if f.publicURL == "" {
		return nil, nil
	}
	if f.keyFile == "" {
		return nil, errors.New("--public-url needs --oauth-key-file")
	}
	key, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--oauth-key-file: %w", err)
	}
	if f.accessTTL < time.Minute {
		return nil, fmt.Errorf("--oauth-access-ttl %s: at least a minute", f.accessTTL)
	}
	groups, defaults, err := f.scopeLimits()
	if err != nil {
		return nil, err
	}
	var clients []hubauth.Client
	if f.clientsFile != "" {
		data, err := os.ReadFile(f.clientsFile)
		if err != nil {
			return nil, fmt.Errorf("--oauth-clients: %w", err)
		}
		if clients, err = hubauth.ParseClients(data); err != nil {
			return nil, fmt.Errorf("--oauth-clients %s: %w", f.clientsFile, err)
		}
	}
	hubBase := envOr("JUPYTERHUB_BASE_URL", "/")
	return hubauth.New(hubauth.Config{
		Resource:              strings.TrimRight(f.publicURL, "/") + strings.TrimRight(prefix, "/"),
		HubAPI:                hubAPI,
		HubAuthorize:          strings.TrimRight(hubBase, "/") + "/hub/api/oauth2/authorize",
		ClientID:              os.Getenv("JUPYTERHUB_CLIENT_ID"),
		ClientSecret:          os.Getenv("JUPYTERHUB_API_TOKEN"),
		Callback:              os.Getenv("JUPYTERHUB_OAUTH_CALLBACK_URL"),
		Key:                   key,
		AccessTTL:             f.accessTTL,
		Log:                   log,
		PrivateClientMetadata: f.privateMetadata,
		GroupScopes:           groups,
		Clients:               clients,
		DefaultScopes:         defaults,
	})
}

// scopeLimits parses --oauth-group-scopes ("group=scope+scope,…") and
// --oauth-default-scopes ("scope+scope"); nil groups without the first.
func (f signInFlags) scopeLimits() (groups map[string][]string, defaults []string, err error) {
	parse := func(flagName, list string) ([]string, error) {
		var out []string
		for _, sc := range strings.FieldsFunc(list, func(r rune) bool { return r == '+' || r == ' ' }) {
			if !slices.Contains(hubauth.Scopes, sc) {
				return nil, fmt.Errorf("%s: unknown scope %q (the scopes are %s)", flagName, sc, strings.Join(hubauth.Scopes, ", "))
			}
			out = append(out, sc)
		}
		return out, nil
	}
	if defaults, err = parse("--oauth-default-scopes", f.defaultScopes); err != nil || f.groupScopes == "" {
		return nil, defaults, err
	}
	groups = map[string][]string{}
	for _, item := range strings.Split(f.groupScopes, ",") {
		group, list, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || group == "" {
			return nil, nil, fmt.Errorf("--oauth-group-scopes: %q: expected group=scope+scope", item)
		}
		if groups[group], err = parse("--oauth-group-scopes "+group, list); err != nil {
			return nil, nil, err
		}
	}
	return groups, defaults, nil
}
