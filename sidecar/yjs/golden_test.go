package yjs

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Golden vectors: notebook edits made by @jupyter/ydoc (testdata/notebook,
// tests/oracles/gen_golden.mjs) and by jupyter_ydoc (testdata/notebook-py,
// tests/oracles/gen_golden_py.py). Each step's update must bring a Go doc to
// the JSON the generator recorded.

func notebookJSON(d *Doc) any {
	return canonJSON(map[string]any{
		"state": d.GetMap("state").ToJSON(),
		"meta":  d.GetMap("meta").ToJSON(),
		"cells": d.GetArray("cells").ToJSON(),
	})
}

// canonJSON round-trips through encoding/json so numbers compare as float64.
func canonJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func readHex(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGoldenNotebooks(t *testing.T) {
	for _, dir := range []string{"testdata/notebook", "testdata/notebook-py"} {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			steps, _ := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.update.hex"))
			sort.Strings(steps)
			if len(steps) < 6 {
				t.Fatalf("only %d golden steps in %s", len(steps), dir)
			}
			d := NewDoc()
			var updates [][]byte
			for _, s := range steps {
				u := readHex(t, s)
				updates = append(updates, u)
				if err := d.ApplyUpdate(u, nil); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				want := readJSON(t, strings.TrimSuffix(s, ".update.hex")+".json")
				if got := notebookJSON(d); !reflect.DeepEqual(got, want) {
					t.Fatalf("%s:\n got  %v\n want %v", filepath.Base(s), got, want)
				}
			}
			final := notebookJSON(d)

			// Reverse delivery converges to the same notebook.
			r := NewDoc()
			for i := len(updates) - 1; i >= 0; i-- {
				if err := r.ApplyUpdate(updates[i], nil); err != nil {
					t.Fatal(err)
				}
			}
			if got := notebookJSON(r); !reflect.DeepEqual(got, final) {
				t.Fatalf("reverse delivery:\n got  %v\n want %v", got, final)
			}

			// The generator's full state, and Go's re-encoding of it.
			f := NewDoc()
			if err := f.ApplyUpdate(readHex(t, filepath.Join(dir, "full.update.hex")), nil); err != nil {
				t.Fatal(err)
			}
			if got, want := notebookJSON(f), readJSON(t, filepath.Join(dir, "full.json")); !reflect.DeepEqual(got, want) {
				t.Fatalf("full state:\n got  %v\n want %v", got, want)
			}
			g := NewDoc()
			if err := g.ApplyUpdate(f.EncodeStateAsUpdate(nil), nil); err != nil {
				t.Fatal(err)
			}
			if got := notebookJSON(g); !reflect.DeepEqual(got, final) {
				t.Fatalf("Go re-encoding:\n got  %v\n want %v", got, final)
			}
			// Nested types come back typed, as JupyterLab expects.
			cell, _ := g.GetArray("cells").Get(0)
			m, ok := cell.(*Map)
			if !ok {
				t.Fatalf("cell is %T", cell)
			}
			if _, ok := m.GetText("source"); !ok {
				t.Fatal("source is not a YText")
			}
			if _, ok := m.GetMap("metadata"); !ok {
				t.Fatal("metadata is not a YMap")
			}
			outs, ok := m.GetArray("outputs")
			if !ok || outs.Len() == 0 {
				t.Fatal("outputs is not a non-empty YArray")
			}
			o, _ := outs.Get(0)
			if om, ok := o.(*Map); !ok {
				t.Fatalf("output is %T", o)
			} else if _, ok := om.GetText("text"); !ok {
				t.Fatal("stream text is not a YText")
			}
		})
	}
}
