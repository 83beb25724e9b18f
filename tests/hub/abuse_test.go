package hub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// routerMemoryBound is what the router may hold at its peak through the
// abuse below: its 512 requests in flight at about 512 KiB each, and the
// program itself (docs/hub.md, Limits).
const routerMemoryBound = 320 << 20

// The router is every user's one door: while another user (or nobody)
// abuses it — hundreds of stalled connections, oversized headers and
// bodies, garbage bodies, streams held open and never read — alice's calls
// through the hub URL keep being answered, each abuser is refused with the
// answer its abuse calls for, and the router's memory stays bounded.
// The figures show alice's latency under each abuse next to her usual one.
func TestAbuseLeavesOthersServed(t *testing.T) {
	aliceRunning(t)
	alice := connect(t, "/services/mcp", "token "+tokens["alice"])
	routerAddr := "127.0.0.1:" + hubEnv(theHub, "HUB_MCP_PORT")
	if err := theHub.createUser("mallory"); err != nil {
		t.Fatal(err)
	}
	malloryToken, err := theHub.userToken("mallory")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = theHub.stopServer("mallory") })
	mallory := connect(t, "/services/mcp", "token "+malloryToken)
	labtest.Call[map[string]any](t, mallory, "create_notebook", map[string]any{"path": "m.ipynb"})
	// A session of a revision that has them (go-sdk's client negotiates
	// one without), for mallory's calls held open below.
	status, _, header := postHeader(t, "/services/mcp", "token "+malloryToken, "", initialize)
	mallorySession := header.Get("Mcp-Session-Id")
	if status != http.StatusOK || mallorySession == "" {
		t.Fatalf("mallory's initialize: %d, session %q", status, mallorySession)
	}
	if status, body := post(t, "/services/mcp", "token "+malloryToken, mallorySession, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); status != http.StatusAccepted {
		t.Fatalf("mallory's notifications/initialized: %d %s", status, body)
	}

	// aliceCalls times 40 of alice's calls while abuse runs beside them
	// (abuse returns when its context ends); every call must succeed.
	aliceCalls := func(name string, abuse func(ctx context.Context) error) time.Duration {
		ctx, cancel := context.WithCancel(t.Context())
		abused := make(chan error, 1)
		go func() { abused <- abuse(ctx) }()
		var took []time.Duration
		for range 40 {
			start := time.Now()
			res, err := alice.CallTool(t.Context(), &mcp.CallToolParams{Name: "list_kernels", Arguments: map[string]any{}})
			if err != nil || res.IsError {
				t.Fatalf("%s: alice's call failed: %v %s", name, err, labtest.ResultText(res))
			}
			took = append(took, time.Since(start))
		}
		cancel()
		if err := <-abused; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		slices.Sort(took)
		return took[len(took)/2]
	}

	usual := aliceCalls("no abuse", func(ctx context.Context) error { <-ctx.Done(); return nil })
	fmt.Fprintf(os.Stderr, "figure: alice's list_kernels p50 through /services/mcp: %s with no abuse\n", usual.Round(100*time.Microsecond))

	for _, abuse := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"300 connections stalled in their headers, at the router", func(ctx context.Context) error {
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range 300 {
				c, err := net.Dial("tcp", routerAddr)
				if err != nil {
					return err
				}
				conns = append(conns, c)
				fmt.Fprint(c, "POST /services/mcp HTTP/1.1\r\nHost: x\r\n")
			}
			<-ctx.Done()
			return nil
		}},
		{"headers of 200 KiB, at the router", repeatUntil(func() error {
			return expectStatus(rawRequest(routerAddr, "POST", "X-Padding: "+strings.Repeat("x", 200<<10)+"\r\n", ""), http.StatusRequestHeaderFieldsTooLarge)
		})},
		{"bodies of 64 MiB without a token, through the hub URL", repeatUntil(func() error {
			req, _ := http.NewRequest(http.MethodPost, theHub.URL+"/services/mcp", io.LimitReader(zeros{}, 64<<20))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil { // the router answered and closed before the body was sent
				return nil
			}
			resp.Body.Close()
			return expectStatus(resp.StatusCode, http.StatusUnauthorized)
		})},
		{"garbage bodies with mallory's token", repeatUntil(func() error {
			req, _ := http.NewRequest(http.MethodPost, theHub.URL+"/services/mcp", strings.NewReader("{\x00not json at all"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "token "+malloryToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				return fmt.Errorf("a garbage body got %d, want a 4xx refusal", resp.StatusCode)
			}
			return nil
		})},
		{"40 of mallory's calls held open, never read", func(ctx context.Context) error {
			return holdUnread(ctx, routerAddr, malloryToken, mallorySession, 40)
		}},
	} {
		p50 := aliceCalls(abuse.name, abuse.run)
		fmt.Fprintf(os.Stderr, "figure: alice's list_kernels p50 %s under %s (usual %s)\n",
			p50.Round(100*time.Microsecond), abuse.name, usual.Round(100*time.Microsecond))
	}

	peak := routerPeakMemory(t)
	fmt.Fprintf(os.Stderr, "figure: the router's peak resident memory through the abuse: %.1f MiB\n", float64(peak)/(1<<20))
	if peak > routerMemoryBound {
		t.Fatalf("the router's peak memory %d MiB is above its bound %d MiB", peak>>20, routerMemoryBound>>20)
	}
}

// repeatUntil runs one abusive request after another, four at a time,
// until ctx ends; the first unexpected answer is the error.
func repeatUntil(one func() error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if err := one(); err != nil {
						mu.Lock()
						first = cmp(first, err)
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return first
	}
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// holdUnread sends n tools/call requests in the session for a cell that
// runs a minute, straight to the router, and never reads their answers.
// At most the 32 requests a user may have in flight are held; the rest
// must be refused at once with 503 and Retry-After.
func holdUnread(ctx context.Context, addr, token, session string, n int) error {
	// Each call its own id: a session answers at once a call whose id is
	// in flight, which would free its place to another.
	body := func(id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"execute_code","arguments":{"path":"m.ipynb","code":"import time; time.sleep(60)","timeout":90}}}`, id)
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var refused, held atomic.Int32
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns[i] = c
		b := body(i + 1)
		fmt.Fprintf(c, "POST /services/mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
			"Authorization: token %s\r\nMcp-Session-Id: %s\r\nMcp-Protocol-Version: 2025-06-18\r\nContent-Length: %d\r\n\r\n%s", token, session, len(b), b)
		wg.Go(func() { // only the status line and headers are read: the stream is left unread
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout(): // in flight: the call runs, nothing written yet
				held.Add(1)
			case err != nil:
			case resp.StatusCode == http.StatusOK: // the call's stream, open
				held.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if held.Load() > 32 || held.Load()+refused.Load() != int32(n) {
		return fmt.Errorf("of %d calls held open, %d streams open and %d refused with 503 and Retry-After; want at most 32 streams open, the rest refused", n, held.Load(), refused.Load())
	}
	<-ctx.Done()
	return nil
}

// rawRequest sends one request with extra header lines straight to addr
// and returns its status.
func rawRequest(addr, method, extra, body string) int {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	fmt.Fprintf(c, "%s /services/mcp HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", method, extra, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func expectStatus(got, want int) error {
	if got != want {
		return fmt.Errorf("status %d, want %d", got, want)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// hubEnv is one of the settings the hub's process was started with.
func hubEnv(h *hubProcess, key string) string {
	for _, kv := range slices.Backward(h.env) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// routerPeakMemory is the peak resident memory (VmHWM) of the test hub's
// router, found by the port it listens on.
func routerPeakMemory(t *testing.T) int64 {
	t.Helper()
	listen := "--listen=127.0.0.1:" + hubEnv(theHub, "HUB_MCP_PORT")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !slices.Contains(strings.Split(string(cmdline), "\x00"), listen) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return kb << 10
			}
		}
	}
	t.Fatalf("no process runs the router with %s", listen)
	return 0
}
