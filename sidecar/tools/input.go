package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/execution"
)

// input() through the client: when a run waits on input() and the client
// can answer form elicitations, the call asks the client for the line,
// which the client may show to its person. Under 2026-07-28 the call's
// result asks (an input_required result, SEP-2322 multi round-trip
// requests) and the client retries the call with the answer, which
// ResumeInput hands to the run before answering like get_execution; before
// 2026-07-28 the call asks over the session (an elicitation request) and
// goes on waiting. Clients that cannot answer get the needs_input result,
// and send_input, as before.

// inputState marks the request state of an input_required result; the
// execution id follows it.
const inputState = "input:"

// inputRequestID names the one input request in such a result.
const inputRequestID = "input"

// inputRequest is the elicitation that asks for the line execution e
// waits on, or nil when this call cannot ask: the client declared no form
// elicitation, or the tool's result has another shape than an execution's
// (insert_cell), so that its retry could not be answered like
// get_execution.
func inputRequest(req *mcp.CallToolRequest, e *execution.Execution, s execution.Snapshot) *mcp.ElicitParams {
	if req.Session == nil || req.Params.Name == insertCellTool.Name || !answersForms(req.Session.InitializeParams()) {
		return nil
	}
	return inputElicitation(e.ID, s)
}

// inputElicitation is the form that asks for the line a run waits on, or
// nil for a password prompt: the spec forbids asking for secrets in a
// form, so send_input stays for those.
func inputElicitation(id string, s execution.Snapshot) *mcp.ElicitParams {
	if s.Password {
		return nil
	}
	prompt := strings.TrimSpace(s.Prompt)
	if prompt == "" {
		prompt = "(no prompt)"
	}
	return &mcp.ElicitParams{
		Mode:    "form",
		Message: fmt.Sprintf("Code running in the notebook's kernel (execution %s) asks for input: %s", id, prompt),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"input": map[string]any{"type": "string", "title": prompt, "description": "the line to answer input() with"},
			},
			"required": []string{"input"},
		},
	}
}

// askForInput asks the client for the line execution e waits on. Under
// 2026-07-28 it returns the input_required result; before, it asks over
// the session, hands the answer to the run and returns nil (the caller
// goes on waiting). ok is false when this call cannot ask.
func askForInput(ctx context.Context, req *mcp.CallToolRequest, e *execution.Execution, s execution.Snapshot) (res *mcp.CallToolResult, ok bool) {
	ask := inputRequest(req, e, s)
	if ask == nil {
		return nil, false
	}
	if p := req.Session.InitializeParams(); p.ProtocolVersion >= "2026-07-28" {
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{inputRequestID: ask}, RequestState: inputState + e.ID}, true
	}
	answer, err := req.Session.Elicit(ctx, ask)
	if err != nil || answerInput(e, answer, inputRequestID) != nil {
		return nil, false // the needs_input result says how to answer
	}
	return nil, true
}

// inputTaker is what an answer goes to (an *execution.Execution).
type inputTaker interface {
	SendInput(text string) error
	Interrupt(why string)
}

// answerInput hands a client's answer (to input request key) to the run:
// the line, or, declined or cancelled, an interrupt (the run cannot go on
// without the line).
func answerInput(run inputTaker, answer *mcp.ElicitResult, key string) error {
	switch answer.Action {
	case "accept":
		value, ok := answer.Content["input"].(string)
		if !ok {
			return fmt.Errorf("inputResponses[%q]: an accepted answer needs content.input, the line to send", key)
		}
		return run.SendInput(value)
	case "decline", "cancel":
		run.Interrupt("input() " + answer.Action + "d by the client")
		return nil
	}
	return fmt.Errorf("inputResponses[%q]: action %q is not accept, decline or cancel", key, answer.Action)
}

// answersForms reports whether a client can answer form elicitations (an
// empty elicitation capability means forms).
func answersForms(p *mcp.InitializeParams) bool {
	if p == nil || p.Capabilities == nil || p.Capabilities.Elicitation == nil {
		return false
	}
	el := p.Capabilities.Elicitation
	return el.Form != nil || el.URL == nil
}

// ResumeInput is a receiving middleware: a tools/call retried with the
// answer to an input_required result hands the answer to the run and
// becomes get_execution for it (the same result shape). Other requests
// pass unchanged. Added after go-sdk's own, it runs first.
func (t *Tools) ResumeInput(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		call, ok := req.(*mcp.CallToolRequest)
		if !ok || call.Params == nil {
			return next(ctx, method, req)
		}
		id, ok := strings.CutPrefix(call.Params.RequestState, inputState)
		if !ok {
			return next(ctx, method, req)
		}
		e := t.Executions.Get(id)
		if e == nil {
			return nil, unknownExecution(id)
		}
		answer, ok := call.Params.InputResponses[inputRequestID].(*mcp.ElicitResult)
		if !ok {
			return nil, fmt.Errorf("inputResponses: expected the client's answer to input request %q (an elicitation result)", inputRequestID)
		}
		if err := answerInput(e, answer, inputRequestID); err != nil {
			return nil, fmt.Errorf("execution %s: %w (status %s)", id, err, e.Snapshot().Status)
		}
		// The record of the run, as get_execution gives it.
		params := *call.Params
		params.RequestState, params.InputResponses = "", nil
		params.Name = getExecutionTool.Name
		params.Arguments, _ = json.Marshal(GetExecutionIn{ExecutionID: id})
		resumed := *call
		resumed.Params = &params
		return next(ctx, method, &resumed)
	}
}
