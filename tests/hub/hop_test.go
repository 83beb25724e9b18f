package hub

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// hopGoal is the most the hub URL may add to a call over the user's own
// server URL (p50), now that the router keeps a token's owner for a few
// seconds (HUB_TOKEN_CACHE) instead of asking the hub on every call.
const hopGoal = 2 * time.Millisecond

// BenchmarkHubURLHop prints the price of the hub URL for a running server:
// the same tool call through <hub>/user/alice/mcp and through
// <hub>/services/mcp (the router: one more pass through the hub's proxy),
// alternated so that both see the same machine load.
func BenchmarkHubURLHop(b *testing.B) {
	aliceRunning(b)
	direct := connect(b, "/user/alice/mcp", "token "+tokens["alice"])
	hub := connect(b, "/services/mcp", "token "+tokens["alice"])
	call := func(cs *mcp.ClientSession) time.Duration {
		start := time.Now()
		res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: "list_kernels", Arguments: map[string]any{}})
		if err != nil || res.IsError {
			b.Fatalf("list_kernels: %v %+v", err, res)
		}
		return time.Since(start)
	}
	const n = 200
	for range b.N {
		for range 10 { // warm both paths' connections
			call(direct)
			call(hub)
		}
		var d, h []time.Duration
		for range n {
			d = append(d, call(direct))
			h = append(h, call(hub))
		}
		slices.Sort(d)
		slices.Sort(h)
		added := h[n/2] - d[n/2]
		verdict := "MISSED"
		if added <= hopGoal {
			verdict = "MET"
		}
		fmt.Printf("\nlist_kernels, %d calls each, alternated: p50 through /user/alice/mcp %s, through /services/mcp %s; p95 %s / %s\n",
			n, ms(d[n/2]), ms(h[n/2]), ms(d[n*95/100]), ms(h[n*95/100]))
		fmt.Printf("goal: hub URL's added time per call (p50) %s (goal <= %s) %s\n\n", ms(added), ms(hopGoal), verdict)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
