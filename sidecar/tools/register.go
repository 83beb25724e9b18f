package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// addTool is mcp.AddTool with the input schema handed to go-sdk as JSON.
// For a client speaking MCP 2026-07-28, go-sdk re-encodes the called tool's
// input schema on every tools/call to look for x-mcp-header annotations
// (validateParamHeaders); encoding a *jsonschema.Schema walks it by
// reflection, a large part of the CPU of a cheap call
// (BenchmarkToolCallHTTP shows it). Already-encoded JSON is copied
// instead. What clients see, and how arguments are validated, is the same:
// go-sdk decodes the JSON once to resolve it.
func addTool[In, Out any](s *mcp.Server, t *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) {
	tt := *t
	tt.InputSchema = encodedSchema[In](tt.InputSchema)
	mcp.AddTool(s, &tt, h)
}

// encodedSchema is schema (by default the one go-sdk infers for In) as
// JSON.
func encodedSchema[In any](schema any) json.RawMessage {
	if schema == nil {
		schema = mustSchema[In]()
	}
	data, err := json.Marshal(schema)
	if err != nil {
		panic(err) // a programming error in a tool's schema
	}
	return data
}

// addUncheckedOutputTool is addTool for a tool whose structured output can be
// large (a notebook), or that answers right after a kernel did (the
// execution tools, whose outputs are content blocks), without go-sdk's
// check of every result against the output schema: that check decodes the
// JSON just encoded and walks the schema over it, which for read_notebook
// of 200 cells took several times the tool's own work, and for
// execute_code("1+1"), with go-sdk's decoding of the arguments, 9% of the
// sidecar's CPU (decodeArguments takes 5%). The schemas advertised, the
// input's validation and defaults and the result are go-sdk's;
// TestUncheckedOutputToolsMatchGoSDK compares them and checks the outputs
// against the schema instead, as go-sdk's client does with every result
// in the integration tests.
//
// Out is a struct type, not a pointer (go-sdk turns a nil pointer into the
// zero value; no tool here needs that).
func addUncheckedOutputTool[In, Out any](s *mcp.Server, t *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) {
	if reflect.TypeFor[Out]().Kind() != reflect.Struct {
		panic(fmt.Errorf("tool %s: the output type must be a struct", t.Name))
	}
	tt := *t
	if tt.InputSchema == nil {
		tt.InputSchema = mustSchema[In]()
	}
	if tt.OutputSchema == nil {
		tt.OutputSchema = mustSchema[Out]()
	}
	input, err := tt.InputSchema.(*jsonschema.Schema).Resolve(&jsonschema.ResolveOptions{ValidateDefaults: true})
	if err != nil {
		panic(fmt.Errorf("tool %s: input schema: %w", t.Name, err)) // a programming error in the tool's input type
	}
	tt.InputSchema = encodedSchema[In](tt.InputSchema) // as addTool
	s.AddTool(&tt, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		in, err := decodeArguments[In](req.Params.Arguments, input)
		if err != nil {
			return errorResult(err), nil
		}
		res, out, err := h(ctx, req, in)
		if err != nil {
			if wire, ok := err.(*jsonrpc.Error); ok {
				return nil, wire
			}
			return errorResult(err), nil
		}
		if res == nil {
			res = &mcp.CallToolResult{}
		}
		if res.InputRequests != nil { // asks the client first: no content yet
			return res, nil
		}
		data, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("marshaling output: %w", err)
		}
		res.StructuredContent = json.RawMessage(data)
		if res.Content == nil {
			res.Content = []mcp.Content{&mcp.TextContent{Text: string(data)}}
		}
		return res, nil
	})
}

// decodeArguments validates a call's arguments against the input schema,
// fills in its defaults, and decodes them, as go-sdk does for typed tools.
func decodeArguments[In any](raw json.RawMessage, schema *jsonschema.Resolved) (In, error) {
	var in In
	args := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return in, fmt.Errorf("validating \"arguments\": unmarshaling arguments: %w", err)
		}
	}
	if err := schema.ApplyDefaults(&args); err != nil {
		return in, fmt.Errorf("validating \"arguments\": applying schema defaults:\n%w", err)
	}
	if err := schema.Validate(&args); err != nil {
		return in, fmt.Errorf("validating \"arguments\": %w", err)
	}
	data, err := json.Marshal(args)
	if err != nil {
		return in, err
	}
	return in, json.Unmarshal(data, &in)
}

func errorResult(err error) *mcp.CallToolResult {
	var res mcp.CallToolResult
	res.SetError(err)
	return &res
}

// mustSchema is the schema go-sdk infers for T.
func mustSchema[T any]() *jsonschema.Schema {
	s, err := jsonschema.For[T](&jsonschema.ForOptions{})
	if err != nil {
		panic(err) // a programming error in a tool's types
	}
	return s
}
