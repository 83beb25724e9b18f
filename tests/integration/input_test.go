package integration

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// A client that answers elicitations is asked for the line input() waits
// on, in both protocol generations (2026-07-28: an input_required result
// the client answers by retrying the call; before: an elicitation request
// over the session): an answer reaches the code, a declined prompt
// interrupts the run, and a password prompt is never asked for that way
// (send_input stays for it).
func TestInputAnsweredByClient(t *testing.T) {
	for _, version := range []string{"", labtest.SessionProtocol} {
		name := version
		if name == "" {
			name = "2026-07-28"
		}
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var asked []string
			action := "accept"
			cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, version, &mcp.ClientOptions{
				ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					mu.Lock()
					defer mu.Unlock()
					asked = append(asked, req.Params.Message)
					if action != "accept" {
						return &mcp.ElicitResult{Action: action}, nil
					}
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"input": "Ada"}}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			if name == "2026-07-28" && cs.InitializeResult().ProtocolVersion != name {
				t.Fatalf("negotiated %q", cs.InitializeResult().ProtocolVersion)
			}
			path := "exec/input-client-" + name + ".ipynb"
			codeNotebook(t, path, "name = input('Your name? ')\nprint('hello', name)")
			prompted := func(want int) string {
				mu.Lock()
				defer mu.Unlock()
				if len(asked) != want {
					t.Fatalf("the client was asked %d times (%q), want %d", len(asked), asked, want)
				}
				if want == 0 {
					return ""
				}
				return asked[want-1]
			}

			got := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": path, "cell_id": "c0"})
			if got.Status != "ok" || !strings.Contains(prompted(1), "Your name?") {
				t.Fatalf("execute_cell = %+v, asked %q; want ok after the client answered the prompt", got, prompted(1))
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_cell", Arguments: map[string]any{"path": path, "cell_id": "c0"}})
			if err != nil || !strings.Contains(labtest.ResultText(res), "hello Ada") {
				t.Fatalf("the cell's output: %v %s", err, labtest.ResultText(res))
			}

			mu.Lock()
			action = "decline"
			mu.Unlock()
			got = labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": path, "cell_id": "c0"})
			prompted(2)
			if got.Status != "interrupted" || len(got.Cells) != 1 || !strings.Contains(got.Cells[0].Note, "input() declined by the client") {
				t.Fatalf("declined: %+v, want interrupted with a note", got)
			}

			got = labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": path, "code": "import getpass\nsecret = getpass.getpass('Token: ')"})
			prompted(2)
			if got.Status != "needs_input" || got.InputPrompt != "Token: " {
				t.Fatalf("a password prompt: %+v, want needs_input for send_input", got)
			}
			labtest.Call[execOut](t, cs, "send_input", map[string]any{"execution_id": got.ExecutionID, "text": "s3cret"})
		})
	}
}

// A retried call whose request state or answer is wrong gets a precise
// error and runs nothing.
func TestInputBadRetry(t *testing.T) {
	cs := session(t)
	codeNotebook(t, "exec/input-bad.ipynb", "print('ran')")
	first := labtest.Call[execOut](t, cs, "execute_cell", map[string]any{"path": "exec/input-bad.ipynb", "cell_id": "c0"})
	for _, tc := range []struct {
		name    string
		state   string
		answers mcp.InputResponseMap
		want    string
	}{
		{"unknown execution", "input:x00", mcp.InputResponseMap{"input": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"input": "a"}}}, `no execution has id "x00"`},
		{"no answer", "input:" + first.ExecutionID, nil, `expected the client's answer to input request "input"`},
		{"answer without a value", "input:" + first.ExecutionID, mcp.InputResponseMap{"input": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"v": 1}}}, "needs content.input, the line to send"},
		{"not waiting", "input:" + first.ExecutionID, mcp.InputResponseMap{"input": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"input": "a"}}}, "not waiting for input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": "exec/input-bad.ipynb", "cell_id": "c0"},
				RequestState: tc.state, InputResponses: tc.answers})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Nothing ran: the cell still has its first run's count.
	if again := labtest.Call[execOut](t, cs, "get_execution", map[string]any{"execution_id": first.ExecutionID}); again.Status != "ok" {
		t.Fatalf("the first run: %+v", again)
	}
	type cellOut struct {
		ExecutionCount *int `json:"execution_count"`
	}
	cell := labtest.Call[cellOut](t, cs, "read_cell", map[string]any{"path": "exec/input-bad.ipynb", "cell_id": "c0"})
	if cell.ExecutionCount == nil || first.Cells[0].ExecutionCount == nil || *cell.ExecutionCount != *first.Cells[0].ExecutionCount {
		t.Fatalf("execution count %v, want the first run's %v: a bad retry ran the cell", cell.ExecutionCount, first.Cells[0].ExecutionCount)
	}
}
