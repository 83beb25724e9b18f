package hub

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const users = 10

// BenchmarkTenUsers prints what ten users arriving at once see through the
// hub URL: each one's first MCP call starts that user's server (the hub
// starts a few at a time and answers the rest "at capacity, retry later",
// which the client follows), then all ten run a cell at the same moment,
// each on their own kernel in their own container. `make bench` runs it.
func BenchmarkTenUsers(b *testing.B) {
	for range b.N {
		names := make([]string, users)
		toks := make([]string, users)
		for i := range names {
			names[i] = fmt.Sprintf("bench%d-%s", i, randomHex(3))
			if err := theHub.createUser(names[i]); err != nil {
				b.Fatal(err)
			}
			tok, err := theHub.userToken(names[i])
			if err != nil {
				b.Fatal(err)
			}
			toks[i] = tok
		}
		sessions := make([]*mcp.ClientSession, users)
		ready := make([]time.Duration, users)
		retries := make([]int, users)
		errs := make([]error, users)
		arrive := time.Now()
		var wg sync.WaitGroup
		for i := range names {
			wg.Go(func() {
				sessions[i], retries[i], errs[i] = connectRetrying(b.Context(), "token "+toks[i])
				if errs[i] != nil {
					return
				}
				res, err := sessions[i].CallTool(b.Context(), &mcp.CallToolParams{Name: "create_notebook", Arguments: map[string]any{"path": "bench.ipynb"}})
				if err != nil || res.IsError {
					errs[i] = fmt.Errorf("create_notebook: %v %s", err, labtest.ResultText(res))
				}
				ready[i] = time.Since(arrive)
			})
		}
		wg.Wait()
		defer func() {
			for _, cs := range sessions {
				if cs != nil {
					cs.Close()
				}
			}
		}()
		for i, err := range errs {
			if err != nil {
				b.Fatalf("%s: %v", names[i], err)
			}
		}

		ran := make([]time.Duration, users)
		start := make(chan struct{})
		for i := range names {
			wg.Go(func() {
				<-start
				t0 := time.Now()
				res, err := sessions[i].CallTool(b.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{
					"path": "bench.ipynb", "code": "import os; print(os.environ['JUPYTERHUB_USER'], sum(range(10**6)))", "timeout": 120}})
				ran[i] = time.Since(t0)
				if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), names[i]+" 499999500000") {
					b.Errorf("%s: %v %s", names[i], err, labtest.ResultText(res)) // Errorf is safe from any goroutine
				}
			})
		}
		close(start)
		wg.Wait()

		total := 0
		for _, r := range retries {
			total += r
		}
		fmt.Printf("\n%d users arrive at once at <hub>/services/mcp (2-core machine)\n", users)
		fmt.Printf("first tool result (server started on demand): p50 %s, last %s; %d 'at capacity' answers retried\n",
			median(ready), slices.Max(ready).Round(10*time.Millisecond), total)
		fmt.Printf("then all run a cell at once (first run on each new kernel): p50 %s, slowest %s\n\n",
			median(ran), slices.Max(ran).Round(time.Millisecond))
	}
}

// connectRetrying opens an MCP session through the hub URL, retrying while
// the hub answers that it is at capacity (as a client honouring
// Retry-After would).
func connectRetrying(ctx context.Context, auth string) (*mcp.ClientSession, int, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for retries := 0; ; retries++ {
		c := mcp.NewClient(&mcp.Implementation{Name: "hub-bench", Version: "v0"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: theHub.URL + "/services/mcp", HTTPClient: labtest.AuthClient(auth), MaxRetries: -1}, nil)
		if err == nil {
			return cs, retries, nil
		}
		// The router answers a start the hub cannot take now with 503.
		atCapacity := strings.Contains(err.Error(), "capacity") || strings.Contains(err.Error(), "Service Unavailable")
		if !atCapacity || time.Now().After(deadline) {
			return nil, retries, fmt.Errorf("connect through the hub URL: %w", err)
		}
		select { // the hub's Retry-After is a few seconds
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return nil, retries, ctx.Err()
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Millisecond)
}

// hopGoal is the most the hub URL may add to a call over the user's own
// server URL (p50): the router keeps a token's owner for a few seconds
// (HUB_TOKEN_CACHE) instead of asking the hub on every call.
const hopGoal = 2 * time.Millisecond

// BenchmarkRouterOverhead prints the time the hub URL adds to a call on a
// running server, with a hub API token (against hopGoal) and with a
// sign-in's (OAuth) token: the same tools/list through /user/alice/mcp and
// through /services/mcp with each, in turns so that all three meet the
// same load. `make bench` runs it.
func BenchmarkRouterOverhead(b *testing.B) {
	aliceRunning(b)
	ctx, cancel := context.WithTimeout(b.Context(), 4*time.Minute)
	defer cancel()
	g := goSignIn(b, ctx, "alice")
	sessions := []*mcp.ClientSession{
		connect(b, "/user/alice/mcp", "token "+tokens["alice"]),
		connect(b, "/services/mcp", "token "+tokens["alice"]),
		connect(b, "/services/mcp", "Bearer "+g.AccessToken),
	}
	const n = 200
	for range b.N {
		took := make([][]time.Duration, len(sessions))
		for round := range n {
			for k := range sessions {
				i := (round + k) % len(sessions) // each first in turn
				start := time.Now()
				if _, err := sessions[i].ListTools(ctx, nil); err != nil {
					b.Fatal(err)
				}
				took[i] = append(took[i], time.Since(start))
			}
		}
		p50 := func(i int) time.Duration { return percentile(took[i], 50) }
		fmt.Printf("\nthe router's added time per call (tools/list p50 of %d on a running server; direct /user/alice/mcp %s):\n", n, p50(0).Round(10*time.Microsecond))
		fmt.Printf("  hub API token +%s, sign-in (OAuth) token +%s\n", (p50(1) - p50(0)).Round(10*time.Microsecond), (p50(2) - p50(0)).Round(10*time.Microsecond))
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Println(labtest.GoalLine("hub URL's added time per call (p50, API token) vs the most it may add",
			"ms", ms(p50(1)-p50(0)), ms(hopGoal), "<=", 1))
		fmt.Println()
	}
}

// percentile is the p-th percentile of d.
func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
