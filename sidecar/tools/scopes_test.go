package tools

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubauth"
)

// A tool without a scope would be open to every grant: each registered
// tool has one (the view's tool included).
func TestEveryToolHasAScope(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "scopes"}, nil)
	(&Tools{}).Register(s)
	cs := connect(t, s, withApps())
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := toolScope[tool.Name]; !ok {
			t.Errorf("tool %s has no scope in toolScope", tool.Name)
		}
	}
}

func TestScopesFor(t *testing.T) {
	for _, tc := range []struct {
		method, params string
		want           []string
	}{
		{"tools/call", `{"name":"read_notebook","arguments":{"path":"a.ipynb"}}`, []string{hubauth.ScopeRead}},
		{"tools/call", `{"name":"insert_cell","arguments":{"path":"a.ipynb","source":"1"}}`, []string{hubauth.ScopeEdit}},
		{"tools/call", `{"name":"insert_cell","arguments":{"path":"a.ipynb","source":"1","execute":true}}`, []string{hubauth.ScopeEdit, hubauth.ScopeExecute}},
		{"tools/call", `{"name":"execute_code","arguments":{"code":"1"}}`, []string{hubauth.ScopeExecute}},
		{"tools/call", `{"name":"no_such_tool"}`, nil},
		{"resources/read", `{"uri":"notebook:///a.ipynb"}`, []string{hubauth.ScopeRead}},
		{"tools/list", `{}`, nil},
		{"initialize", `{}`, nil},
	} {
		if got := ScopesFor(tc.method, json.RawMessage(tc.params)); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.params, got, tc.want)
		}
	}
}
