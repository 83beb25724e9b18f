package rtc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

const sample = `{"cells": [
  {"cell_type": "markdown", "id": "m1", "metadata": {"tags": ["t"]}, "source": "# Title"},
  {"cell_type": "code", "id": "c1", "metadata": {}, "execution_count": 2,
   "outputs": [{"output_type": "stream", "name": "stdout", "text": "a\n"},
               {"output_type": "execute_result", "execution_count": 2, "data": {"text/plain": "3"}, "metadata": {}}],
   "source": "x = 1\nprint(x)"},
  {"cell_type": "code", "id": "c2", "metadata": {}, "execution_count": null, "outputs": [], "source": "y = 😀 + 1"}
 ], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5}`

// load writes a notebook into an empty document, as the server does when it
// opens a room.
func load(t testing.TB, doc *yjs.Doc, src string) *notebook.Notebook {
	t.Helper()
	nb, err := notebook.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	doc.Transact(func(*yjs.Transaction) { werr = writeNotebook(doc, notebook.New(nil), nb) })
	if werr != nil {
		t.Fatal(werr)
	}
	return nb
}

func edit(t *testing.T, doc *yjs.Doc, f func(nb *notebook.Notebook)) {
	t.Helper()
	before, err := notebookOf(doc)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := notebookOf(doc)
	f(after)
	var werr error
	doc.Transact(func(*yjs.Transaction) { werr = writeNotebook(doc, before, after) })
	if werr != nil {
		t.Fatal(werr)
	}
	got, err := notebookOf(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameNotebook(got, after) {
		a, _ := json.Marshal(after)
		g, _ := json.Marshal(got)
		t.Fatalf("document after edit:\n%s\nwant:\n%s", g, a)
	}
}

func sameNotebook(a, b *notebook.Notebook) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

func TestLoadAndReadBack(t *testing.T) {
	doc := yjs.NewDoc()
	want := load(t, doc, sample)
	got, err := notebookOf(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !sameNotebook(got, want) {
		t.Fatalf("read back differs")
	}
	// The schema JupyterLab expects: nested types, not plain JSON.
	c1, _ := cellAt(doc.GetArray("cells"), 1)
	if _, ok := c1.GetText("source"); !ok {
		t.Fatal("source is not a YText")
	}
	if _, ok := c1.GetMap("metadata"); !ok {
		t.Fatal("metadata is not a YMap")
	}
	outs, ok := c1.GetArray("outputs")
	if !ok {
		t.Fatal("outputs is not a YArray")
	}
	stream, _ := cellAt(outs, 0)
	if _, ok := stream.GetText("text"); !ok {
		t.Fatal("stream text is not a YText")
	}
	if st, _ := c1.Get("execution_state"); st != "idle" {
		t.Fatalf("execution_state = %v", st)
	}
}

func TestEditsRoundTrip(t *testing.T) {
	tests := map[string]func(nb *notebook.Notebook){
		"insert": func(nb *notebook.Notebook) {
			_, _, _ = nb.Insert(notebook.Position{Index: ptr(1)}, notebook.Code, "new")
		},
		"delete":    func(nb *notebook.Notebook) { _, _ = nb.Delete([]notebook.Ref{{ID: "c1"}}) },
		"move up":   func(nb *notebook.Notebook) { _, _ = nb.Move(notebook.Ref{ID: "c2"}, 0) },
		"move down": func(nb *notebook.Notebook) { _, _ = nb.Move(notebook.Ref{ID: "m1"}, 2) },
		"edit source": func(nb *notebook.Notebook) {
			_, _ = nb.ReplaceOnce(notebook.Ref{ID: "c1"}, "print(x)", "print(x * 2)")
		},
		"emoji splice": func(nb *notebook.Notebook) { _, _ = nb.ReplaceOnce(notebook.Ref{ID: "c2"}, "😀", "🎉") },
		"clear":        func(nb *notebook.Notebook) { _, _ = nb.ClearOutputs(nil) },
		"metadata": func(nb *notebook.Notebook) {
			nb.Cells[0].Metadata = json.RawMessage(`{"tags": ["u"], "collapsed": true}`)
			nb.Metadata = json.RawMessage(`{"kernelspec": {"name": "python3"}}`)
		},
		"stream append": func(nb *notebook.Notebook) {
			nb.Cells[2].Outputs = []json.RawMessage{json.RawMessage(`{"output_type":"stream","name":"stdout","text":"1\n"}`)}
		},
		"running": func(nb *notebook.Notebook) {
			nb.Cells[1].ExecutionState, nb.Cells[1].ExecutionCount = "running", nil
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			doc := yjs.NewDoc()
			load(t, doc, sample)
			edit(t, doc, f)
		})
	}
}

// Streamed output grows the last output's text in place: the update holds
// only the new characters, which is what JupyterLab renders incrementally.
func TestStreamAppendsInPlace(t *testing.T) {
	doc := yjs.NewDoc()
	load(t, doc, sample)
	var updates [][]byte
	doc.OnUpdate(func(u []byte, _ *yjs.Transaction) { updates = append(updates, u) })
	edit(t, doc, func(nb *notebook.Notebook) {
		nb.Cells[1].Outputs = nb.Cells[1].Outputs[:1]
	})
	c1, _ := cellAt(doc.GetArray("cells"), 1)
	outs, _ := c1.GetArray("outputs")
	stream, _ := cellAt(outs, 0)
	text, _ := stream.GetText("text")
	edit(t, doc, func(nb *notebook.Notebook) {
		nb.Cells[1].Outputs[0] = json.RawMessage(`{"output_type":"stream","name":"stdout","text":"a\nb\n"}`)
	})
	same, _ := cellAt(outs, 0)
	if sameText, _ := same.GetText("text"); sameText.Branch() != text.Branch() || text.String() != "a\nb\n" {
		t.Fatalf("stream output was replaced, not appended (text %q)", text.String())
	}
}

// A person types in one cell while the agent edits another and inserts a
// cell: after exchanging updates both documents hold both changes.
func TestConcurrentEditsMerge(t *testing.T) {
	agent, person := yjs.NewDoc(), yjs.NewDoc()
	load(t, agent, sample)
	sync := func(from, to *yjs.Doc) { syncDocs(t, from, to) }
	sync(agent, person)

	// Concurrently: the person edits c1's source, the agent edits c2 and
	// inserts a cell, and also edits c1 elsewhere.
	c1, _ := cellAt(person.GetArray("cells"), 1)
	src, _ := c1.GetText("source")
	if err := src.Insert(0, "# person\n"); err != nil {
		t.Fatal(err)
	}
	edit(t, agent, func(nb *notebook.Notebook) {
		_, _ = nb.ReplaceOnce(notebook.Ref{ID: "c2"}, "+ 1", "+ 2")
		_, _ = nb.ReplaceOnce(notebook.Ref{ID: "c1"}, "print(x)", "print(x)  # agent")
		_, _, _ = nb.Insert(notebook.Position{AfterID: "c2"}, notebook.Markdown, "agent notes")
	})
	sync(agent, person)
	sync(person, agent)
	a, _ := notebookOf(agent)
	p, _ := notebookOf(person)
	if !sameNotebook(a, p) {
		t.Fatal("documents did not converge")
	}
	got := a.Cells[1].Source
	if got != "# person\nx = 1\nprint(x)  # agent" || !strings.HasSuffix(a.Cells[2].Source, "+ 2") || len(a.Cells) != 4 {
		t.Fatalf("merged notebook lost an edit: %q, %q, %d cells", got, a.Cells[2].Source, len(a.Cells))
	}
}

func TestLongestIncreasing(t *testing.T) {
	tests := []struct {
		in   []int
		want int
	}{
		{nil, 0}, {[]int{0, 1, 2}, 3}, {[]int{2, 0, 1}, 2}, {[]int{1, 2, 0, 3}, 3}, {[]int{3, 2, 1}, 1},
	}
	for _, tc := range tests {
		got := longestIncreasing(tc.in)
		if len(got) != tc.want {
			t.Errorf("longestIncreasing(%v) = %v, want length %d", tc.in, got, tc.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] || tc.in[got[i]] <= tc.in[got[i-1]] {
				t.Errorf("longestIncreasing(%v) = %v is not increasing", tc.in, got)
			}
		}
	}
}

func ptr(i int) *int { return &i }

// The agent rewrites lines 2 and 8 of a cell while a person types at the
// end of line 5: each changed line is its own splice, so the person's text
// stays where it was typed, in line 5, and both edits are kept.
func TestAgentRegionsLeaveLinesBetween(t *testing.T) {
	agent, person := yjs.NewDoc(), yjs.NewDoc()
	load(t, agent, `{"cells": [{"cell_type": "code", "id": "c", "metadata": {}, "execution_count": null, "outputs": [],
	  "source": "1\n2\n3\n4\n5\n6\n7\n8\n9"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}`)
	sync := func(from, to *yjs.Doc) { syncDocs(t, from, to) }
	sync(agent, person)
	c, _ := cellAt(person.GetArray("cells"), 0)
	src, _ := c.GetText("source")
	if err := src.Insert(len("1\n2\n3\n4\n5"), " # mine"); err != nil {
		t.Fatal(err)
	}
	edit(t, agent, func(nb *notebook.Notebook) { nb.Cells[0].Source = "1\nX\n3\n4\n5\n6\n7\nY\n9" })
	sync(agent, person)
	sync(person, agent)
	for _, d := range []*yjs.Doc{agent, person} {
		nb, err := notebookOf(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := nb.Cells[0].Source, "1\nX\n3\n4\n5 # mine\n6\n7\nY\n9"; got != want {
			t.Fatalf("merged source %q, want %q", got, want)
		}
	}
}

// Text typed between two emoji keeps both: the splice does not split
// either surrogate pair.
func TestSpliceTextBetweenEmoji(t *testing.T) {
	for _, tc := range []struct{ before, after string }{
		{"😀😀", "😀x😀"}, {"a😀b", "a😁b"}, {"😀😀", "😀"}, {"x😀😀", "😀😀"},
	} {
		doc := yjs.NewDoc()
		text := doc.GetText("t")
		var err error
		doc.Transact(func(*yjs.Transaction) {
			if err = text.Insert(0, tc.before); err == nil {
				err = spliceText(text, tc.before, tc.after)
			}
		})
		if err != nil || text.String() != tc.after {
			t.Errorf("%q -> %q: the text reads %q (%v)", tc.before, tc.after, text.String(), err)
		}
	}
}

// syncDocs sends to what from has that to lacks.
func syncDocs(t *testing.T, from, to *yjs.Doc) {
	t.Helper()
	u, err := from.EncodeStateAsUpdateFromEncoded(to.EncodeStateVector())
	if err != nil {
		t.Fatal(err)
	}
	if err := to.ApplyUpdate(u, nil); err != nil {
		t.Fatal(err)
	}
}
