package tools

// Handing runs back to the hub's router. The router forwards calls from
// <hub>/services/mcp and, when the hub stops it, lets them finish for a
// while; a call still running then would have its stream cut, which under
// the 2026-07-28 protocol cancels it and interrupts its cell. Instead the
// router asks the sidecar (POST /handoff) to answer its calls at once with
// their execution handles: the runs go on, and get_execution has their
// results once the hub is back.

import (
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// RouterHeader names the router process that forwarded a request; the
// router sets it on every request it forwards.
const RouterHeader = "X-Jupyter-Mcp-Router"

// handoffs holds, per router process, a channel closed when that router
// hands its calls back. Routers restart rarely, so entries are kept.
type handoffs struct {
	mu     sync.Mutex
	router map[string]chan struct{}
}

func (h *handoffs) channel(router string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.channelLocked(router)
}

func (h *handoffs) channelLocked(router string) chan struct{} {
	if h.router == nil {
		h.router = map[string]chan struct{}{}
	}
	ch, ok := h.router[router]
	if !ok {
		ch = make(chan struct{})
		h.router[router] = ch
	}
	return ch
}

// handedOff is closed once the router that forwarded req hands its calls
// back; nil (never ready) for a request that no router forwarded.
func (t *Tools) handedOff(req *mcp.CallToolRequest) <-chan struct{} {
	if req == nil || req.Extra == nil || req.Extra.Header == nil {
		return nil
	}
	router := req.Extra.Header.Get(RouterHeader)
	if router == "" {
		return nil
	}
	return t.handoffs.channel(router)
}

// HandOff answers every call that router forwarded, now and later, with
// its execution handle, the runs going on.
func (t *Tools) HandOff(router string) {
	t.handoffs.mu.Lock()
	defer t.handoffs.mu.Unlock()
	ch := t.handoffs.channelLocked(router)
	select {
	case <-ch: // handed off already
	default:
		close(ch)
	}
}
