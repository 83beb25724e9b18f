package yjs_test

import (
	"encoding/json"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// TestGoNotebookReadByJupyterYdoc: a notebook written by Go with the
// YNotebook schema (nested YText / YMap / YArray created in one transaction
// per cell) is read by @jupyter/ydoc's YNotebook, as a JupyterLab tab would.
func TestGoNotebookReadByJupyterYdoc(t *testing.T) {
	o := yjsOracle(t)
	d := yjs.NewDoc()
	var updates []string
	d.OnUpdate(func(u []byte, txn *yjs.Transaction) { updates = append(updates, b64(u)) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d.Transact(func(*yjs.Transaction) {
		must(d.GetMap("state").Set("dirty", false))
		meta := d.GetMap("meta")
		must(meta.Set("nbformat", 4))
		must(meta.Set("nbformat_minor", 5))
		must(meta.Set("metadata", yjs.MapPrelim{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3"}}))
		must(d.GetArray("cells").Push(
			yjs.MapPrelim{"id": "c1", "cell_type": "code", "source": yjs.TextPrelim("print('héllo 😀')"), "metadata": yjs.MapPrelim{},
				"outputs": yjs.ArrayPrelim{}, "execution_count": nil},
			yjs.MapPrelim{"id": "c2", "cell_type": "markdown", "source": yjs.TextPrelim("# Title"), "metadata": yjs.MapPrelim{"tags": []string{"a"}}},
		))
	})
	cells := d.GetArray("cells")
	v, _ := cells.Get(0)
	cell := v.(*yjs.Map)
	outputs, _ := cell.GetArray("outputs")
	// Execution: count, a stream output, streamed text appended to its YText.
	d.Transact(func(*yjs.Transaction) {
		must(cell.Set("execution_count", 1))
		must(outputs.Push(yjs.MapPrelim{"output_type": "stream", "name": "stdout", "text": yjs.TextPrelim("héllo 😀\n")}))
	})
	ov, _ := outputs.Get(0)
	text, _ := ov.(*yjs.Map).GetText("text")
	must(text.Append("more\n"))
	must(outputs.Push(map[string]any{"output_type": "execute_result", "execution_count": 1, "data": map[string]any{"text/plain": "42"}, "metadata": map[string]any{}}))
	// Insert a cell in the middle, edit it, delete the markdown cell.
	must(cells.Insert(1, yjs.MapPrelim{"id": "c3", "cell_type": "raw", "source": yjs.TextPrelim("raw"), "metadata": yjs.MapPrelim{}}))
	v, _ = cells.Get(1)
	src, _ := v.(*yjs.Map).GetText("source")
	must(src.Insert(0, "a "))
	must(cells.Delete(2, 1))

	var rep struct {
		Notebook  any      `json:"notebook"`
		CellTypes []string `json:"cellTypes"`
	}
	o.call(t, map[string]any{"op": "notebook", "updates": updates}, &rep)
	var want any
	must(json.Unmarshal([]byte(`{
	 "cells": [
	  {"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {},
	   "outputs": [
	    {"name": "stdout", "output_type": "stream", "text": "héllo 😀\nmore\n"},
	    {"data": {"text/plain": "42"}, "execution_count": 1, "metadata": {}, "output_type": "execute_result"}],
	   "source": "print('héllo 😀')"},
	  {"cell_type": "raw", "id": "c3", "metadata": {}, "source": "a raw"}
	 ],
	 "metadata": {"kernelspec": {"display_name": "Python 3", "name": "python3"}},
	 "nbformat": 4, "nbformat_minor": 5}`), &want))
	if !jsonEqual(rep.Notebook, want) {
		t.Fatalf("@jupyter/ydoc reads Go's notebook as\n %s\nwant\n %s", show(rep.Notebook), show(want))
	}

	// The server side (jupyter_ydoc on pycrdt) reads the same notebook.
	var py struct {
		Notebook any `json:"notebook"`
	}
	pycrdtOracle(t).call(t, map[string]any{"op": "notebook", "updates": updates}, &py)
	if !jsonEqual(py.Notebook, want) {
		t.Fatalf("jupyter_ydoc reads Go's notebook as\n %s\nwant\n %s", show(py.Notebook), show(want))
	}
}
