package notebook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const sample = `{
 "cells": [
  {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Title\n", "text"]},
  {"cell_type": "code", "id": "load", "metadata": {"tags": ["x"]}, "execution_count": 3,
   "outputs": [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}],
   "source": "import os\nprint('hi')", "custom_field": 7},
  {"cell_type": "raw", "id": "r", "metadata": {}, "source": "raw"}
 ],
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5, "top_extra": {"a": 1}
}`

func mustParse(t *testing.T, s string) *Notebook {
	t.Helper()
	nb, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func ptr(i int) *int { return &i }

func TestParseRoundTripKeepsUnknownFields(t *testing.T) {
	nb := mustParse(t, sample)
	if got := nb.Cells[0].Source; got != "# Title\ntext" {
		t.Fatalf("joined source = %q", got)
	}
	out, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	again := mustParse(t, string(out))
	var a, b any
	_ = json.Unmarshal(out, &a)
	out2, _ := json.Marshal(again)
	_ = json.Unmarshal(out2, &b)
	if string(out) != string(out2) {
		t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
	}
	for _, want := range []string{`"custom_field":7`, `"top_extra":{"a":1}`, `"tags":["x"]`, `"execution_count":3`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("serialised notebook lost %s: %s", want, out)
		}
	}
}

func TestParseRejectsCorrupt(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":      `{"cells": [`,
		"nbformat 3":    `{"nbformat": 3, "nbformat_minor": 0, "cells": [], "metadata": {}}`,
		"no cells":      `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}`,
		"bad cell type": `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "image", "source": ""}]}`,
		"bad source":    `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": 5}]}`,
		"bad outputs":   `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": "", "outputs": {}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(doc)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestNormalizeAssignsUniqueIDs(t *testing.T) {
	nb := mustParse(t, `{"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [
		{"cell_type": "code", "source": "a"}, {"cell_type": "code", "id": "dup", "source": "b"},
		{"cell_type": "code", "id": "dup", "source": "c"}, {"cell_type": "code", "id": "bad id!", "source": "d"}]}`)
	if !nb.Normalize() {
		t.Fatal("Normalize reported no change")
	}
	seen := map[string]bool{}
	for _, c := range nb.Cells {
		if !validID.MatchString(c.ID) || seen[c.ID] {
			t.Fatalf("id %q invalid or duplicate in %v", c.ID, nb.IDs())
		}
		seen[c.ID] = true
	}
	if nb.Cells[1].ID != "dup" || nb.NBFormatMinor != 5 {
		t.Fatalf("kept id / minor: %v %d", nb.IDs(), nb.NBFormatMinor)
	}
	if nb.Normalize() {
		t.Fatal("second Normalize changed something")
	}
}

func TestLocate(t *testing.T) {
	nb := mustParse(t, sample)
	tests := []struct {
		ref     Ref
		want    int
		wantErr string
	}{
		{Ref{ID: "load"}, 1, ""},
		{Ref{Index: ptr(0)}, 0, ""},
		{Ref{Index: ptr(-1)}, 2, ""},
		{Ref{ID: "nope"}, 0, `no cell has id "nope"; the notebook's cell ids are: intro, load, r`},
		{Ref{Index: ptr(3)}, 0, "cell index 3 is out of range: the notebook has 3 cells (indexes 0 to 2"},
		{Ref{Index: ptr(-4)}, 0, "out of range"},
		{Ref{}, 0, "name a cell"},
	}
	for _, tc := range tests {
		got, err := nb.Locate(tc.ref)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Locate(%v) error = %v, want %q", tc.ref, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Locate(%v) = %d, %v; want %d", tc.ref, got, err, tc.want)
		}
	}
}

func TestInsert(t *testing.T) {
	tests := []struct {
		name     string
		pos      Position
		typ      string
		wantAt   int
		wantErr  string
		wantCode bool
	}{
		{"append by default", Position{}, Code, 3, "", true},
		{"append with -1", Position{Index: ptr(-1)}, Markdown, 3, "", false},
		{"at index 0", Position{Index: ptr(0)}, Raw, 0, "", false},
		{"before id", Position{BeforeID: "load"}, Code, 1, "", true},
		{"after id", Position{AfterID: "load"}, Code, 2, "", true},
		{"index too big", Position{Index: ptr(4)}, Code, 0, "insert index 4 is out of range: use 0 to 3", false},
		{"unknown anchor", Position{AfterID: "zz"}, Code, 0, `no cell has id "zz"`, false},
		{"two anchors", Position{Index: ptr(0), AfterID: "load"}, Code, 0, "only one of", false},
		{"bad type", Position{}, "python", 0, `cell_type "python" is not valid`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nb := mustParse(t, sample)
			c, at, err := nb.Insert(tc.pos, tc.typ, "x = 1")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				if len(nb.Cells) != 3 {
					t.Fatal("failed insert changed the notebook")
				}
				return
			}
			if err != nil || at != tc.wantAt || nb.Cells[at] != c || len(nb.Cells) != 4 {
				t.Fatalf("Insert = %v at %d, %v; ids %v", c, at, err, nb.IDs())
			}
			if !validID.MatchString(c.ID) {
				t.Fatalf("new id %q invalid", c.ID)
			}
			out, _ := json.Marshal(nb)
			hasOutputs := strings.Contains(string(out), `"id":"`+c.ID+`","metadata":{},"outputs":[]`)
			if hasOutputs != tc.wantCode {
				t.Fatalf("code cell fields present=%v, want %v: %s", hasOutputs, tc.wantCode, out)
			}
		})
	}
}

func TestOversizedSourceRejected(t *testing.T) {
	nb := mustParse(t, sample)
	big := strings.Repeat("x", MaxSourceBytes+1)
	if _, _, err := nb.Insert(Position{}, Code, big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Insert big: %v", err)
	}
	if _, err := nb.SetSource(Ref{ID: "load"}, big); err == nil {
		t.Fatal("SetSource big: no error")
	}
	if nb.Cells[1].Source != "import os\nprint('hi')" || len(nb.Cells) != 3 {
		t.Fatal("rejected edits changed the notebook")
	}
}

func TestReplaceOnce(t *testing.T) {
	tests := []struct {
		old, new, want, wantErr string
	}{
		{"print('hi')", "print('bye')", "import os\nprint('bye')", ""},
		{"missing", "x", "", "does not occur"},
		{"o", "0", "", "occurs 2 times"},
		{"", "x", "", "old_text is empty"},
	}
	for _, tc := range tests {
		nb := mustParse(t, sample)
		c, err := nb.ReplaceOnce(Ref{ID: "load"}, tc.old, tc.new)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ReplaceOnce(%q) error = %v, want %q", tc.old, err, tc.wantErr)
			}
			if nb.Cells[1].Source != "import os\nprint('hi')" {
				t.Errorf("failed ReplaceOnce changed the source")
			}
			continue
		}
		if err != nil || c.Source != tc.want {
			t.Errorf("ReplaceOnce(%q) = %q, %v", tc.old, c.Source, err)
		}
	}
}

func TestDeleteIsAllOrNothing(t *testing.T) {
	nb := mustParse(t, sample)
	if _, err := nb.Delete([]Ref{{ID: "intro"}, {ID: "nope"}}); err == nil {
		t.Fatal("no error for unknown id")
	}
	if _, err := nb.Delete([]Ref{{ID: "intro"}, {Index: ptr(0)}}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate: %v", err)
	}
	if len(nb.Cells) != 3 {
		t.Fatal("failed delete removed cells")
	}
	gone, err := nb.Delete([]Ref{{ID: "r"}, {Index: ptr(0)}})
	if err != nil || len(gone) != 2 || strings.Join(nb.IDs(), ",") != "load" {
		t.Fatalf("Delete = %v, %v; left %v", gone, err, nb.IDs())
	}
}

func TestMove(t *testing.T) {
	tests := []struct {
		ref     Ref
		to      int
		want    string
		wantErr string
	}{
		{Ref{ID: "intro"}, 2, "load,r,intro", ""},
		{Ref{ID: "r"}, 0, "r,intro,load", ""},
		{Ref{ID: "intro"}, -1, "load,r,intro", ""},
		{Ref{ID: "load"}, 1, "intro,load,r", ""},
		{Ref{ID: "load"}, 3, "", "target index 3 is out of range"},
	}
	for _, tc := range tests {
		nb := mustParse(t, sample)
		_, err := nb.Move(tc.ref, tc.to)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Move error = %v", err)
			}
			continue
		}
		if got := strings.Join(nb.IDs(), ","); err != nil || got != tc.want {
			t.Errorf("Move(%v, %d) = %s, %v; want %s", tc.ref, tc.to, got, err, tc.want)
		}
	}
}

func TestClearOutputs(t *testing.T) {
	nb := mustParse(t, sample)
	n, err := nb.ClearOutputs(nil)
	if err != nil || n != 1 || nb.Cells[1].Outputs != nil || nb.Cells[1].ExecutionCount != nil {
		t.Fatalf("ClearOutputs = %d, %v", n, err)
	}
	if _, err := nb.ClearOutputs([]Ref{{ID: "zz"}}); err == nil {
		t.Fatal("no error for unknown id")
	}
}

func TestDiff(t *testing.T) {
	got := Diff("a\nb\nc\nd\ne", "a\nb\nX\nd\ne", 1)
	want := "@@ line 2 @@\n  b\n- c\n+ X\n  d"
	if got != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", got, want)
	}
	if Diff("same", "same", 2) != "(no change)" {
		t.Fatal("no-change diff")
	}
}

func TestOutputText(t *testing.T) {
	tests := map[string]struct{ raw, want string }{
		"stream":  {`{"output_type":"stream","name":"stdout","text":["a\n","b\n"]}`, "a\nb\n"},
		"error":   {`{"output_type":"error","ename":"ValueError","evalue":"bad","traceback":["\u001b[0;31mValueError\u001b[0m: bad"]}`, "ValueError: bad"},
		"result":  {`{"output_type":"execute_result","data":{"text/plain":"2"},"metadata":{},"execution_count":1}`, "2"},
		"image":   {`{"output_type":"display_data","data":{"image/png":"iVBO"},"metadata":{}}`, "[image/png, 6 bytes]"},
		"plot":    {`{"output_type":"display_data","data":{"text/plain":"<Figure>","image/png":"iVBO"},"metadata":{}}`, "<Figure>\n[also: image/png, 6 bytes]"},
		"unknown": {`{"output_type":"weird"}`, "[weird output]"},
	}
	for name, tc := range tests {
		if got := OutputText(json.RawMessage(tc.raw)); got != tc.want {
			t.Errorf("%s: OutputText = %q, want %q", name, got, tc.want)
		}
	}
}

// A clone shares nothing with its original: changing every field of one
// leaves the other as it was.
func TestClone(t *testing.T) {
	nb, err := Parse([]byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"k":1},"x-extra":{"a":1},"cells":[
		{"id":"c1","cell_type":"code","source":"1+1","metadata":{"tags":[]},"outputs":[{"output_type":"stream","name":"stdout","text":"2"}],"execution_count":3,"x-cell":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(nb)
	cp := nb.Clone()
	if got, _ := json.Marshal(cp); !bytes.Equal(got, want) {
		t.Fatalf("clone %s, want %s", got, want)
	}
	c := cp.Cells[0]
	c.Source, c.ID = "changed", "c2"
	c.Metadata[2] = 'X'
	c.Outputs[0][2] = 'X'
	c.Outputs = append(c.Outputs, json.RawMessage(`{}`))
	*c.ExecutionCount = 9
	c.extra["x-cell"][0] = 'X'
	cp.Metadata[2] = 'X'
	cp.extra["x-extra"][2] = 'X'
	cp.Cells = append(cp.Cells, &Cell{ID: "new"})
	if got, _ := json.Marshal(nb); !bytes.Equal(got, want) {
		t.Fatalf("the original changed with its clone:\n%s\nwant\n%s", got, want)
	}
}
