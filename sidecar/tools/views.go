package tools

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type LinkViewIn struct {
	ViewID string `json:"view_id,omitempty" jsonschema:"the view id shown on the person's embed page (<lab>/mcp/embed?view=ID); omit it to ask what the linked page shows"`
}

type LinkViewOut struct {
	ViewID  string `json:"view_id,omitempty"`
	Showing string `json:"showing,omitempty" jsonschema:"the notebook the person's page shows now; absent when it shows none (e.g. the person closed the tab)"`
	Note    string `json:"note,omitempty" jsonschema:"present when the person's switches cannot reach this session yet, with what to do"`
}

var linkViewTool = &mcp.Tool{
	Name:  "link_view",
	Title: "Link the person's view",
	Description: "Link this session to the embed page a person watches (<lab>/mcp/embed?view=ID): the page then follows the notebook you use, and when the person opens another notebook there it becomes your current notebook. " +
		"Without view_id, tells which notebook the linked page shows.",
	Annotations: &mcp.ToolAnnotations{IdempotentHint: true, DestructiveHint: ptr(false)},
}

func (t *Tools) linkView(_ context.Context, req *mcp.CallToolRequest, in LinkViewIn) (*mcp.CallToolResult, LinkViewOut, error) {
	session := sessionID(req)
	if session == "" {
		return nil, LinkViewOut{}, fmt.Errorf("link_view needs an MCP session, and this connection has none (protocol 2026-07-28 is stateless): the embed page cannot follow it; pass path on every call instead")
	}
	if in.ViewID == "" {
		id, showing := t.Views.Showing(session)
		if id == "" {
			return nil, LinkViewOut{}, fmt.Errorf("this session is linked to no view: pass the view_id shown on the embed page")
		}
		return nil, LinkViewOut{ViewID: id, Showing: showing}, nil
	}
	if !validViewID(in.ViewID) {
		return nil, LinkViewOut{}, fmt.Errorf("view_id %q is not valid: 1 to 64 letters, digits, - or _", in.ViewID)
	}
	showing, personMoves := t.Views.Link(in.ViewID, session)
	if showing != "" && t.Sessions.Current(session) == "" {
		t.Sessions.SetCurrent(session, showing)
	}
	out := LinkViewOut{ViewID: in.ViewID, Showing: showing}
	if !personMoves {
		out.Note = fmt.Sprintf("no page shows view %s now: it will show your notebook once opened, but the notebooks the person opens there reach you only from a page that showed the view when you linked (an id the embedder chose is bound to those pages), so call link_view again once the page is open; an id the sidecar issues (GET <lab>/mcp/embed/view-id) has no such limit", in.ViewID)
	}
	return nil, out, nil
}

func validViewID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// switchTo makes path the session's current notebook and moves the linked
// view there.
func (t *Tools) switchTo(req *mcp.CallToolRequest, path string) {
	t.Sessions.SetCurrent(sessionID(req), path)
	t.Views.AgentSwitched(sessionID(req), path)
}

// NotebookPaths lists the notebooks under the root (for the embed page's
// switcher).
func (t *Tools) NotebookPaths(ctx context.Context) ([]string, error) {
	out, err := t.walk(ctx, "", maxDepth, 0, maxLimit, func(e FileEntry) bool { return e.Type == "notebook" })
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(out.Entries))
	for i, e := range out.Entries {
		paths[i] = e.Path
	}
	return paths, nil
}
