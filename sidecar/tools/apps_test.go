package tools

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Every output becomes something the view can show: the richest safe
// representation, or a note saying what it was.
func TestViewOutput(t *testing.T) {
	tiny := base64.StdEncoding.EncodeToString([]byte("\x89PNG fake but valid base64"))
	big := base64.StdEncoding.EncodeToString(make([]byte, 2<<20))
	cases := []struct {
		name, output, kind, mime, inNote string
	}{
		{"png beats text", `{"output_type":"display_data","data":{"image/png":"` + tiny + `","text/plain":"<Figure>"}}`, "image", "image/png", ""},
		{"png above the limit", `{"output_type":"display_data","data":{"image/png":"` + big + `"}}`, "omitted", "image/png", "above the 1024 KB"},
		{"png not base64", `{"output_type":"display_data","data":{"image/png":"%%%"}}`, "omitted", "image/png", "not valid base64"},
		{"svg as image", `{"output_type":"display_data","data":{"image/svg+xml":["<svg>","</svg>"]}}`, "image", "image/svg+xml", ""},
		{"html beats plain", `{"output_type":"execute_result","execution_count":1,"data":{"text/html":"<b>x</b>","text/plain":"x"}}`, "html", "text/html", ""},
		{"huge html as text", `{"output_type":"display_data","data":{"text/html":"` + strings.Repeat("<td>1</td>", 20000) + `"}}`, "text", "text/html", "shortened"},
		{"markdown", `{"output_type":"display_data","data":{"text/markdown":"# hi"}}`, "markdown", "text/markdown", ""},
		{"unknown binary", `{"output_type":"display_data","data":{"application/x-thing":"AAEC"}}`, "omitted", "application/x-thing", "application/x-thing (6 bytes)"},
		{"stream", `{"output_type":"stream","name":"stderr","text":["a\n","b"]}`, "stream", "", ""},
		{"error", `{"output_type":"error","ename":"E","evalue":"v","traceback":["\u001b[31mE: v\u001b[0m"]}`, "error", "", ""},
		{"unreadable", `[1]`, "omitted", "", "could not be read"},
	}
	tl := &Tools{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := tl.viewOutput(json.RawMessage(c.output))
			if o.Kind != c.kind || o.MIME != c.mime || !strings.Contains(o.Note, c.inNote) {
				t.Fatalf("got kind %q mime %q note %q, want %q %q …%s…", o.Kind, o.MIME, o.Note, c.kind, c.mime, c.inNote)
			}
			if o.Kind == "error" && o.Data != "E: v" {
				t.Errorf("traceback %q: ANSI codes kept", o.Data)
			}
		})
	}
}

// The page's CSP names the hash of its one inline script, and nothing
// else may run.
func TestNotebookViewScriptHash(t *testing.T) {
	if strings.Contains(notebookViewHTML, "{{SCRIPT_HASH}}") || !strings.Contains(notebookViewHTML, "script-src 'sha256-") {
		t.Fatal("the page's CSP does not pin its script")
	}
	if n := strings.Count(notebookViewHTML, "<script"); n != 1 {
		t.Fatalf("the page has %d scripts; the CSP pins exactly one", n)
	}
}
