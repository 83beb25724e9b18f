package tools

// Scopes. A client that signed in through the hub (package hubauth) holds
// a grant of some of mcp:read, mcp:edit and mcp:execute, which the hub's
// router forwards with each request (hubauth.ScopesHeader); such a request sees
// only the tools its grant allows, and a call beyond it is refused before
// anything runs. A request without the header (the lab's token, a hub API
// token) has its owner's full rights.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
)

// toolScope is what each tool needs. Every registered tool is listed
// (a test checks it).
var toolScope = map[string]string{
	"list_files":       hubauth.ScopeRead,
	"list_notebooks":   hubauth.ScopeRead,
	"use_notebook":     hubauth.ScopeRead,
	"read_notebook":    hubauth.ScopeRead,
	"read_cell":        hubauth.ScopeRead,
	"list_changes":     hubauth.ScopeRead,
	"list_kernels":     hubauth.ScopeRead,
	"link_view":        hubauth.ScopeRead,
	"view_notebook":    hubauth.ScopeRead,
	"create_notebook":  hubauth.ScopeEdit,
	"insert_cell":      hubauth.ScopeEdit,
	"edit_cell":        hubauth.ScopeEdit,
	"delete_cells":     hubauth.ScopeEdit,
	"move_cell":        hubauth.ScopeEdit,
	"clear_outputs":    hubauth.ScopeEdit,
	"undo_changes":     hubauth.ScopeEdit,
	"save_notebook":    hubauth.ScopeEdit,
	"execute_cell":     hubauth.ScopeExecute,
	"execute_cells":    hubauth.ScopeExecute,
	"execute_code":     hubauth.ScopeExecute,
	"get_execution":    hubauth.ScopeExecute,
	"send_input":       hubauth.ScopeExecute,
	"interrupt_kernel": hubauth.ScopeExecute,
	"restart_kernel":   hubauth.ScopeExecute,
}

// GrantedScopes reads hubauth.ScopesHeader; ok is false without it (every scope).
func GrantedScopes(header string) (scopes []string, ok bool) {
	if header == "" {
		return nil, false
	}
	return strings.Fields(header), true
}

// ScopesFor is what a JSON-RPC request needs: a tool's scope (and
// mcp:execute for insert_cell that runs its cell), mcp:read for
// resources; nothing for the rest of the protocol.
func ScopesFor(method string, params json.RawMessage) []string {
	switch method {
	case "tools/call":
		var p struct {
			Name      string `json:"name"`
			Arguments struct {
				Execute bool `json:"execute"`
			} `json:"arguments"`
		}
		_ = json.Unmarshal(params, &p)
		need, ok := toolScope[p.Name]
		if !ok {
			return nil // an unknown tool: the SDK says so
		}
		if p.Name == "insert_cell" && p.Arguments.Execute {
			return []string{need, hubauth.ScopeExecute}
		}
		return []string{need}
	case "resources/list", "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe":
		return []string{hubauth.ScopeRead}
	}
	return nil
}

// Missing is what of need granted lacks.
func Missing(need, granted []string) []string {
	var out []string
	for _, s := range need {
		if !slices.Contains(granted, s) {
			out = append(out, s)
		}
	}
	return out
}

// ListOnlyGranted is middleware that leaves out of tools/list the tools a
// signed-in client's grant does not allow.
func ListOnlyGranted(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		list, isList := res.(*mcp.ListToolsResult)
		extra := req.GetExtra()
		if err != nil || !isList || extra == nil || extra.Header == nil {
			return res, err
		}
		granted, ok := GrantedScopes(extra.Header.Get(hubauth.ScopesHeader))
		if !ok {
			return res, nil
		}
		shown := *list
		shown.Tools = slices.DeleteFunc(slices.Clone(list.Tools), func(tool *mcp.Tool) bool {
			return !slices.Contains(granted, toolScope[tool.Name])
		})
		return &shown, nil
	}
}
