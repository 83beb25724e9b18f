package hubroute

// The audit trail: one line per request through the hub URL, saying who
// (the hub user, and for a sign-in the client and its scopes) did what
// (the JSON-RPC method, the tool, the notebook) with what outcome (the
// HTTP status) and how long it took — never arguments, sources, outputs,
// tokens or headers.

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// audit writes the request's line to the audit log (Config.Audit, else
// the router's log).
func (r *Router) audit(req *http.Request, w *statusWriter, started bool, took time.Duration) {
	log := r.cfg.Log
	if r.cfg.Audit != nil {
		log = *r.cfg.Audit
	}
	ev := log.Info().Str("method", req.Method).Str("path", req.URL.Path).Str("user", w.user)
	if g := w.grant; g != nil {
		ev = ev.Str("credential", "sign-in").Str("client", g.ClientName).Str("client_id", g.ClientRef()).Strs("scopes", g.Scopes)
	} else if w.user != "" {
		ev = ev.Str("credential", "hub token")
	}
	if prefix, ok := req.Context().Value(bodyPrefixKey{}).(*bodyPrefix); ok {
		call := rpcSummary(prefix.buf.Bytes())
		ev = addNonEmpty(ev, "rpc", call.Method)
		ev = addNonEmpty(ev, "tool", call.Params.Name)
		ev = addNonEmpty(ev, "notebook", call.Params.Arguments.Path)
	}
	ev.Int("status", w.status).Bool("started_server", started).Dur("duration", took).Msg("request")
}

func addNonEmpty(ev *zerolog.Event, key, v string) *zerolog.Event {
	if v == "" {
		return ev
	}
	return ev.Str(key, v)
}

// rpcCall is what the audit reads of a JSON-RPC request: nothing of the
// arguments but the notebook's path.
type rpcCall struct {
	Method string `json:"method"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Path string `json:"path"`
		} `json:"arguments"`
	} `json:"params"`
}

// rpcSummary reads the method, tool and notebook of the JSON-RPC request
// data starts; data may be cut short, and then the params may be missing.
func rpcSummary(data []byte) rpcCall {
	var c rpcCall
	if json.Unmarshal(data, &c) != nil {
		_ = json.Unmarshal(member(data, "method"), &c.Method)
	}
	return c
}
