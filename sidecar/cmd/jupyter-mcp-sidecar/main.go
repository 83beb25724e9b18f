// Command jupyter-mcp-sidecar serves MCP for the Jupyter server that
// launched it through jupyter-server-proxy. docs/design.md describes the design.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/changes"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/documents"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/review"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/rtc"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/server"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

var version = "dev" // set by the build (-ldflags "-X main.version=...")

type config struct {
	listen         string
	baseURL        string
	jupyterURL     string
	allowOrigins   string
	sessionTimeout time.Duration
	logLevel       string
	limits         tools.Limits
	documents      string
	kernels        string
	token          string
}

func main() {
	// The sidecar relays small messages between MCP clients, the Jupyter
	// server and kernels, which need the CPUs more: it takes at most half
	// of them (one on two cores). With a P per core its scheduler wakes
	// another thread for each hand-off between goroutines and spins looking
	// for work, which on a small machine takes CPU from the kernel and the
	// server. GOMAXPROCS in the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
	}
	var cfg config
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:8765", `where to serve MCP: "unix:/path/to/socket" or host:port`)
	flag.StringVar(&cfg.baseURL, "base-url", "/", "the Jupyter server's base URL (jupyter-server-proxy passes {base_url})")
	flag.StringVar(&cfg.jupyterURL, "jupyter-url", os.Getenv("JUPYTER_MCP_JUPYTER_URL"), "Jupyter server URL with base URL, instead of the parent's runtime file; the token comes from $JUPYTER_TOKEN")
	flag.StringVar(&cfg.allowOrigins, "allow-origin", os.Getenv("JUPYTER_MCP_ALLOW_ORIGINS"), "comma-separated browser origins allowed to call MCP besides the lab's own")
	flag.DurationVar(&cfg.sessionTimeout, "session-timeout", 2*time.Hour, "close MCP sessions idle for this long (0: never)")
	flag.StringVar(&cfg.logLevel, "log-level", envOr("JUPYTER_MCP_LOG_LEVEL", "info"), "debug, info, warn or error")
	flag.IntVar(&cfg.limits.MaxOutputChars, "max-output-chars", tools.DefaultLimits.MaxOutputChars, "cap on the text of one tool result (the middle of longer output is left out)")
	flag.IntVar(&cfg.limits.MaxImageBytes, "max-image-bytes", tools.DefaultLimits.MaxImageBytes, "cap on one image returned to the agent; larger ones are replaced by a note")
	flag.StringVar(&cfg.documents, "documents", envOr("JUPYTER_MCP_DOCUMENTS", "auto"), `where notebooks are edited: "rooms" (live collaboration rooms), "files" (Contents API), or "auto" (rooms when jupyter-collaboration is installed)`)
	flag.StringVar(&cfg.kernels, "kernel-transport", envOr("JUPYTER_MCP_KERNEL_TRANSPORT", "auto"), `how to reach kernels: "auto" (a local kernel's own ZeroMQ sockets, named in its connection file in Jupyter's runtime dir; others through the server) or "websocket" (always through the server's kernel websocket)`)
	flag.StringVar(&cfg.token, "token", "", "token MCP clients must send (Authorization: token <t>); required to serve on TCP, where no proxy authenticates requests (default $JUPYTER_MCP_TOKEN)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}

	if cfg.token == "" {
		cfg.token = os.Getenv("JUPYTER_MCP_TOKEN") // not a flag default: -help would print it
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Str("component", "jupyter-mcp-sidecar").Logger()
	lvl, err := zerolog.ParseLevel(cfg.logLevel)
	if err != nil || cfg.logLevel == "" {
		log.Error().Str("log_level", cfg.logLevel).Msg("fatal: --log-level must be debug, info, warn or error")
		os.Exit(2)
	}
	log = log.Level(lvl)
	if cfg.kernels != "auto" && cfg.kernels != "websocket" {
		log.Error().Str("kernel_transport", cfg.kernels).Msg(`fatal: --kernel-transport must be "auto" or "websocket"`)
		os.Exit(2)
	}
	if err := run(cfg, log); err != nil {
		log.Error().Err(err).Msg("fatal")
		os.Exit(1) // non-zero: jupyter-server-proxy restarts only failed processes
	}
}

// run serves MCP until SIGINT, SIGTERM or the exit of the Jupyter server
// that started the sidecar: it connects to that server, builds the tools on
// the documents backend found there, and serves them on the listener.
func run(cfg config, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopProfile, err := startCPUProfile()
	if err != nil {
		return err
	}
	defer stopProfile()

	info, client, err := connect(ctx, cfg)
	if err != nil {
		return err
	}
	backend, err := documentsBackend(ctx, cfg.documents, client)
	if err != nil {
		return err
	}
	ln, err := listen(cfg.listen, cfg.token)
	if err != nil {
		return err
	}
	srvCtx := untilParentExits(ctx)
	t, closeTools := newTools(ctx, cfg, info, client, backend, log)
	defer closeTools()
	srv := server.New(server.Config{BaseURL: cfg.baseURL, AllowedOrigins: splitOrigins(cfg.allowOrigins), SessionTimeout: cfg.sessionTimeout, Version: version, Token: cfg.token,
		Embed: &embed.Handler{Hub: t.Views, Notebooks: t.NotebookPaths}, Review: &review.Handler{Changes: t}}, t, log)
	// Building the tool surface (every schema inferred, encoded, decoded
	// again and resolved by go-sdk, each decode with a 32 KiB buffer)
	// leaves about a megabyte of garbage: hand it back to the OS now, not
	// over minutes by the scavenger, so an idle sidecar is at its smallest.
	debug.FreeOSMemory()
	where := backend
	if where == jupyter.NoCollaboration {
		where = "files"
	}
	log.Info().Str("listen", cfg.listen).Str("jupyter", info.URL).Str("documents", where).Str("version", version).Msg("serving MCP")
	if err := srv.Serve(srvCtx, ln); err != nil {
		return err
	}
	if cause := context.Cause(srvCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	log.Info().Msg("stopped")
	return nil
}

// startCPUProfile profiles the sidecar into $JUPYTER_MCP_CPUPROFILE, if
// set, until the returned function is called. It is for benchmarks: the
// sidecar runs as the lab's child, out of reach of go test -cpuprofile.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv("JUPYTER_MCP_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// connect finds the Jupyter server and checks that it answers.
func connect(ctx context.Context, cfg config) (*jupyter.ServerInfo, *jupyter.Client, error) {
	info, err := findServer(cfg)
	if err != nil {
		return nil, nil, err
	}
	client, err := jupyter.NewClient(info)
	if err != nil {
		return nil, nil, err
	}
	if err := client.Status(ctx); err != nil {
		return nil, nil, fmt.Errorf("cannot use the Jupyter server at %s: %w", info.URL, err)
	}
	return info, client, nil
}

// untilParentExits is ctx, also ended (with the reason as its cause) when
// the Jupyter server that started the sidecar exits.
func untilParentExits(ctx context.Context) context.Context {
	parentGone := watchParent(ctx)
	srvCtx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-parentGone:
			cancel(errors.New("the Jupyter server that started the sidecar has exited"))
		case <-srvCtx.Done():
		}
	}()
	return srvCtx
}

// newTools builds the MCP tools and what they stand on: the kernels, the
// documents backend (the live rooms with jupyter-collaboration, else the
// files), the runs, the embed views and the record of changes, with the
// hooks that keep them told of each other's and the server's changes. The
// returned function closes the rooms and the kernels' connections.
func newTools(ctx context.Context, cfg config, info *jupyter.ServerInfo, client *jupyter.Client, backend string, log zerolog.Logger) (*tools.Tools, func()) {
	kernels := &kernel.Manager{Jupyter: client}
	if cfg.kernels == "auto" {
		kernels.ConnectionDir = jupyter.RuntimeDir(os.Getenv)
	}
	// With jupyter-collaboration, notebooks open in JupyterLab live in
	// shared rooms: the sidecar joins them as a peer instead of writing
	// files behind the rooms' back.
	store := &documents.Store{Jupyter: client}
	var docs documents.Backend = store
	var rooms *rtc.Rooms
	switch backend {
	case jupyter.JupyterCollaboration:
		presence := &rtc.Presence{Jupyter: client, Log: log}
		go presence.Run(ctx)
		rooms = &rtc.Rooms{Jupyter: client, Log: log, Presence: presence}
		docs = rooms
	case jupyter.JupyterServerDocuments:
		docs = documents.ReadOnly{Backend: store, Reason: "this server runs jupyter-server-documents, whose rooms the sidecar cannot join yet: writing the file would overwrite what open views hold"}
	}
	t := &tools.Tools{
		Jupyter:    client,
		Docs:       docs,
		Store:      store,
		Sessions:   tools.NewSessions(),
		Kernels:    kernels,
		Executions: &execution.Executions{Docs: docs, Log: log},
		Limits:     cfg.limits,
		Views:      &embed.Hub{},
		// Agents' changes are kept beside Jupyter's own data, per user and
		// per server root (notebook paths are relative to it).
		Changes: &changes.Log{Dir: filepath.Join(jupyter.DataDir(os.Getenv), "jupyter_mcp_sidecar", "changes", rootKey(info.RootDir)),
			IDs: jupyter.FileIDs{Client: client, Log: log}},
	}
	// A person opening a notebook in a linked embed page moves the session.
	t.Views.OnViewChange = t.Sessions.SetCurrent
	// Changes reach resource subscribers: from the rooms every change, by
	// anyone; from files only the sidecar's own writes.
	store.OnChange = t.NotebookChanged
	if rooms != nil {
		rooms.OnChange = t.NotebookChanged
	}
	// Notebooks created, renamed and deleted by anyone change the resource
	// list; a kernel restarted by anyone is checked again before its next
	// run; a room reloaded from its file tells the saver edits may be gone.
	events := jupyter.EventHandlers{Contents: t.ContentsChanged, Kernel: kernels.KernelChanged}
	if rooms != nil {
		events.Collaboration = func(e jupyter.CollaborationEvent) {
			if e.Action == "overwrite" {
				rooms.Reloaded(e.Path)
			}
		}
	}
	go client.WatchEvents(ctx, log, events)
	return t, func() {
		if rooms != nil {
			rooms.Close()
		}
		kernels.Close()
	}
}

// splitOrigins parses --allow-origin's comma-separated list.
func splitOrigins(list string) []string {
	var origins []string
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	return origins
}

// findServer locates the Jupyter server: the URL given on the command line,
// or the runtime file of the parent process (jupyter-server-proxy execs the
// sidecar directly, so the parent is the Jupyter server).
func findServer(cfg config) (*jupyter.ServerInfo, error) {
	if cfg.jupyterURL != "" {
		u := strings.TrimRight(cfg.jupyterURL, "/") + "/"
		return &jupyter.ServerInfo{URL: u, Token: os.Getenv("JUPYTER_TOKEN")}, nil
	}
	dir := jupyter.RuntimeDir(os.Getenv)
	info, err := jupyter.ReadServerInfo(dir, os.Getppid())
	if err != nil {
		return nil, fmt.Errorf("find the Jupyter server (is the sidecar started by jupyter-server-proxy? otherwise pass --jupyter-url): %w", err)
	}
	return info, nil
}

// listen opens the MCP listener. Behind jupyter-server-proxy it is a unix
// socket in a private directory; on TCP anyone on the host could connect,
// so a token is required there.
func listen(addr, token string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		// Remove a stale socket from a crashed run, and nothing else.
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode().Type() != os.ModeSocket {
				return nil, fmt.Errorf("--listen %s: the file exists and is not a socket; refusing to remove it", addr)
			}
			if err := os.Remove(path); err != nil {
				return nil, err
			}
		}
		return net.Listen("unix", path)
	}
	if token == "" {
		return nil, fmt.Errorf("--listen %s is TCP, where nothing authenticates MCP clients: set --token (or $JUPYTER_MCP_TOKEN), or listen on a unix socket", addr)
	}
	return net.Listen("tcp", addr)
}

// watchParent closes the returned channel when the parent process exits
// (the sidecar is then re-parented). Jupyter sends no signal to its
// children when it is killed.
func watchParent(ctx context.Context) <-chan struct{} {
	gone := make(chan struct{})
	parent := os.Getppid()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					close(gone)
					return
				}
			}
		}
	}()
	return gone
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// documentsBackend decides where notebooks are edited: the collaboration
// backend found (or forced with "rooms"), or the files.
func documentsBackend(ctx context.Context, mode string, client *jupyter.Client) (string, error) {
	switch mode {
	case "rooms":
		return jupyter.JupyterCollaboration, nil
	case "files":
		return jupyter.NoCollaboration, nil
	case "auto":
		return client.CollaborationBackend(ctx)
	}
	return "", fmt.Errorf("--documents %q: use auto, rooms or files", mode)
}

// rootKey names a server root in a file name: two labs of one user with
// different roots keep apart the records of their same-named notebooks.
func rootKey(root string) string {
	sum := sha256.Sum256([]byte(root))
	return hex.EncodeToString(sum[:8])
}
