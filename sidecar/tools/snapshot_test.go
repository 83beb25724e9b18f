package tools

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var update = flag.Bool("update", false, "rewrite testdata/tools.json from the registered tools")

// The tool surface (names, descriptions, schemas, annotations) is an API for
// the models that call it: any change must show up as a reviewed diff of
// testdata/tools.json. Run `go test ./sidecar/tools -update` to accept one.
func TestToolSchemaSnapshot(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "snapshot"}, nil)
	(&Tools{}).Register(s)
	// A client with MCP Apps sees the whole surface: the view's tool and
	// the tools' ui metadata (others get them filtered out).
	cs := connect(t, s, withApps())
	var tools []*mcp.Tool
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, tool)
	}
	checkSnapshot(t, "tools.json", tools)
}

// checkSnapshot compares v, as indented JSON, with testdata/name, or
// rewrites that file under -update.
func checkSnapshot(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./sidecar/tools -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s drifted; review the change and run `go test ./sidecar/tools -update`.\ngot:\n%s", path, got)
	}
}
