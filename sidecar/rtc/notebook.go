package rtc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// The YNotebook schema (jupyter_ydoc, @jupyter/ydoc): a "meta" map with
// nbformat, nbformat_minor and a "metadata" map; a "cells" array of maps
// with id, cell_type, a "source" text, a "metadata" map, and for code cells
// an "outputs" array (stream text as a text), execution_count and
// execution_state.

// Notebook returns the live notebook, the caller's to change.
func (r *Room) Notebook() (*notebook.Notebook, error) {
	r.mu.Lock()
	nb, err := r.notebook()
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// Cloned outside the lock: the read is never changed (see Room.read).
	return nb.Clone(), nil
}

// notebook is the document read into the model, read again only after the
// document changed. The result is shared: never change it. Call with r.mu
// held.
func (r *Room) notebook() (*notebook.Notebook, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.read == nil {
		nb, cells, err := readNotebook(r.doc, r.cells)
		if err != nil {
			return nil, err
		}
		r.read, r.cells = nb, cells
	}
	return r.read, nil
}

// Edit applies edit to the live notebook in one transaction: the change is
// translated into the smallest document operations (text splices for
// sources, appends for streamed output), so what a person types at the same
// time merges instead of being overwritten.
func (r *Room) Edit(edit func(nb *notebook.Notebook) error) (*notebook.Notebook, error) {
	after, err := r.edit(edit)
	if err != nil {
		return nil, err
	}
	r.notify()
	// Written after the lock is released: readers of the document do not
	// wait for the socket. A failed write is not the edit's failure: the
	// read loop reconnects and the sync handshake delivers it.
	if err := r.send(nil); err != nil {
		r.log.Warn().Err(err).Msg("send an edit to the room; it goes with the resync")
	}
	return after, nil
}

func (r *Room) edit(edit func(nb *notebook.Notebook) error) (*notebook.Notebook, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, err := r.notebook()
	if err != nil {
		return nil, err
	}
	after := before.Clone() // for edit to change; before is shared
	if err := edit(after); err != nil {
		return nil, err
	}
	r.doc.Transact(func(*yjs.Transaction) { err = writeNotebook(r.doc, before, after) })
	r.touch()
	if err != nil {
		return nil, err
	}
	return after, nil
}

// notebookOf reads the document into the nbformat model.
func notebookOf(doc *yjs.Doc) (*notebook.Notebook, error) {
	nb, _, err := readNotebook(doc, nil)
	return nb, err
}

// readNotebook reads the document into the nbformat model, taking the
// conversions of cells in known (by their map; it must hold no cell that
// changed since) and converting the others. It returns the conversions of
// the document's cells.
func readNotebook(doc *yjs.Doc, known map[*yjs.Branch]*notebook.Cell) (*notebook.Notebook, map[*yjs.Branch]*notebook.Cell, error) {
	meta := doc.GetMap("meta").ToJSON()
	top, err := json.Marshal(map[string]any{"cells": []any{}, "metadata": orDefault(meta["metadata"], map[string]any{}),
		"nbformat": orDefault(meta["nbformat"], 4), "nbformat_minor": orDefault(meta["nbformat_minor"], 5)})
	if err != nil {
		return nil, nil, fmt.Errorf("read the live notebook: %w", err)
	}
	nb, err := notebook.Parse(top)
	if err != nil {
		return nil, nil, fmt.Errorf("the live notebook is not valid: %w", err)
	}
	values := doc.GetArray("cells").Values()
	cells := make(map[*yjs.Branch]*notebook.Cell, len(values))
	for i, v := range values {
		m, _ := v.(*yjs.Map)
		var c *notebook.Cell
		if m != nil {
			c = known[m.Branch()]
		}
		if c == nil {
			if c, err = cellOf(m); err != nil {
				return nil, nil, fmt.Errorf("the live notebook is not valid: cell %d: %w", i, err)
			}
		}
		if m != nil {
			cells[m.Branch()] = c
		}
		nb.Cells = append(nb.Cells, c)
	}
	return nb, cells, nil
}

// cellOf converts a cell's map (nil: the document holds something else
// there).
func cellOf(m *yjs.Map) (*notebook.Cell, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: cell is not an object", notebook.ErrCorrupt)
	}
	j := m.ToJSON()
	state, _ := j["execution_state"].(string)
	delete(j, "execution_state")
	data, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	c, err := notebook.ParseCell(data)
	if err != nil {
		return nil, err
	}
	c.ExecutionState = state
	return c, nil
}

func orDefault(v, def any) any {
	if v == nil {
		return def
	}
	return v
}

// writeNotebook changes doc from before to after. Call inside a transaction.
func writeNotebook(doc *yjs.Doc, before, after *notebook.Notebook) error {
	meta := doc.GetMap("meta")
	if err := setMapJSON(meta, "metadata", before.Metadata, after.Metadata); err != nil {
		return err
	}
	if before.NBFormat != after.NBFormat {
		_ = meta.Set("nbformat", after.NBFormat)
	}
	if before.NBFormatMinor != after.NBFormatMinor {
		_ = meta.Set("nbformat_minor", after.NBFormatMinor)
	}
	return writeCells(doc.GetArray("cells"), before.Cells, after.Cells)
}

// writeCells turns the cell list before into after: deleted cells go,
// cells that keep their relative order stay in place and are updated
// field by field, new and moved cells are inserted (Yjs has no move, so a
// moved cell is re-created from its content).
func writeCells(arr *yjs.Array, before, after []*notebook.Cell) error {
	old := map[string]*notebook.Cell{}
	for _, c := range before {
		old[c.ID] = c
	}
	target := map[string]int{}
	for i, c := range after {
		target[c.ID] = i
	}
	// Positions in after of the cells that survive, in current order; the
	// longest increasing run of them stays in place.
	var surviving []string
	var positions []int
	for _, c := range before {
		if j, ok := target[c.ID]; ok && after[j].Type == c.Type {
			surviving = append(surviving, c.ID)
			positions = append(positions, j)
		}
	}
	keep := map[string]bool{}
	for _, k := range longestIncreasing(positions) {
		keep[surviving[k]] = true
	}
	for i := len(before) - 1; i >= 0; i-- {
		if !keep[before[i].ID] {
			if err := arr.Delete(i, 1); err != nil {
				return err
			}
		}
	}
	for i, c := range after {
		if keep[c.ID] {
			ymap, ok := cellAt(arr, i)
			if !ok {
				return fmt.Errorf("live notebook: cell %s is not a map", c.ID)
			}
			if err := writeCell(ymap, old[c.ID], c); err != nil {
				return err
			}
			continue
		}
		if err := arr.Insert(i, cellPrelim(c)); err != nil {
			return err
		}
	}
	return nil
}

func cellAt(arr *yjs.Array, i int) (*yjs.Map, bool) {
	v, ok := arr.Get(i)
	if !ok {
		return nil, false
	}
	m, ok := v.(*yjs.Map)
	return m, ok
}

// writeCell updates one cell's fields in place.
func writeCell(ymap *yjs.Map, before, after *notebook.Cell) error {
	if before.Source != after.Source {
		if t, ok := ymap.GetText("source"); ok {
			if err := spliceText(t, before.Source, after.Source); err != nil {
				return err
			}
		} else if err := ymap.Set("source", yjs.TextPrelim(after.Source)); err != nil {
			return err
		}
	}
	if err := setMapJSON(ymap, "metadata", before.Metadata, after.Metadata); err != nil {
		return err
	}
	if !jsonEqual(before.Attachments, after.Attachments) {
		if after.Attachments == nil {
			ymap.Delete("attachments")
		} else if err := ymap.Set("attachments", plain(after.Attachments)); err != nil {
			return err
		}
	}
	if after.Type != notebook.Code {
		return nil
	}
	if !intPtrEqual(before.ExecutionCount, after.ExecutionCount) {
		if err := ymap.Set("execution_count", intOrNil(after.ExecutionCount)); err != nil {
			return err
		}
	}
	if before.ExecutionState != after.ExecutionState && after.ExecutionState != "" {
		if err := ymap.Set("execution_state", after.ExecutionState); err != nil {
			return err
		}
	}
	outs, ok := ymap.GetArray("outputs")
	if !ok {
		return ymap.Set("outputs", outputsPrelim(after.Outputs))
	}
	return writeOutputs(outs, before.Outputs, after.Outputs)
}

// writeOutputs changes the outputs array. JupyterLab applies stream text
// changes to the last output only, so text is appended in place only when
// it extends the last output; any other change replaces outputs from the
// first that differs.
func writeOutputs(arr *yjs.Array, before, after []json.RawMessage) error {
	k := 0
	for k < len(before) && k < len(after) && jsonEqual(before[k], after[k]) {
		k++
	}
	if k == len(before) && k == len(after) {
		return nil
	}
	if k == len(before)-1 && k < len(after) {
		if added, ok := streamExtension(before[k], after[k]); ok {
			if m, ok := cellAt(arr, k); ok {
				if t, ok := m.GetText("text"); ok {
					if err := t.Append(added); err != nil {
						return err
					}
					k++
					return pushOutputs(arr, after[k:])
				}
			}
		}
	}
	if k < len(before) {
		if err := arr.Delete(k, len(before)-k); err != nil {
			return err
		}
	}
	return pushOutputs(arr, after[k:])
}

func pushOutputs(arr *yjs.Array, outs []json.RawMessage) error {
	if len(outs) == 0 {
		return nil
	}
	return arr.Push(outputsPrelim(outs)...)
}

// streamExtension reports the text appended when after is before (a stream
// output) with more text at its end.
func streamExtension(before, after json.RawMessage) (string, bool) {
	var b, a struct {
		OutputType string `json:"output_type"`
		Name       string `json:"name"`
		Text       string `json:"text"`
	}
	if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil {
		return "", false
	}
	if b.OutputType != "stream" || a.OutputType != "stream" || a.Name != b.Name || !strings.HasPrefix(a.Text, b.Text) {
		return "", false
	}
	return a.Text[len(b.Text):], true
}

func outputsPrelim(outs []json.RawMessage) yjs.ArrayPrelim {
	arr := yjs.ArrayPrelim{}
	for _, o := range outs {
		m, _ := plain(o).(map[string]any)
		if m == nil {
			continue
		}
		if m["output_type"] == "stream" {
			text, _ := m["text"].(string)
			if parts, ok := m["text"].([]any); ok { // multiline-string list form
				var b strings.Builder
				for _, p := range parts {
					s, _ := p.(string)
					b.WriteString(s)
				}
				text = b.String()
			}
			m["text"] = yjs.TextPrelim(text)
		}
		arr = append(arr, yjs.MapPrelim(m))
	}
	return arr
}

// cellPrelim is a new cell with all its nested types, created in one
// transaction as the frontend requires.
func cellPrelim(c *notebook.Cell) yjs.MapPrelim {
	meta, _ := plain(c.Metadata).(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	m := yjs.MapPrelim{
		"id":        c.ID,
		"cell_type": c.Type,
		"source":    yjs.TextPrelim(c.Source),
		"metadata":  yjs.MapPrelim(meta),
	}
	if c.Type == notebook.Code {
		m["outputs"] = outputsPrelim(c.Outputs)
		m["execution_count"] = intOrNil(c.ExecutionCount)
		state := c.ExecutionState
		if state == "" {
			state = "idle"
		}
		m["execution_state"] = state
	} else if c.Attachments != nil && !jsonEqual(c.Attachments, json.RawMessage("{}")) {
		m["attachments"] = plain(c.Attachments)
	}
	return m
}

// setMapJSON makes the map at key of parent hold the JSON object after,
// changing only the keys that differ from before.
func setMapJSON(parent *yjs.Map, key string, before, after json.RawMessage) error {
	if jsonEqual(before, after) {
		return nil
	}
	want, _ := plain(after).(map[string]any)
	if want == nil {
		want = map[string]any{}
	}
	ymap, ok := parent.GetMap(key)
	if !ok {
		return parent.Set(key, yjs.MapPrelim(want))
	}
	have, _ := plain(before).(map[string]any)
	for k := range have {
		if _, ok := want[k]; !ok {
			ymap.Delete(k)
		}
	}
	for k, v := range want {
		if hv, ok := have[k]; !ok || !reflect.DeepEqual(hv, v) {
			if err := ymap.Set(k, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// spliceText turns t from before into after by notebook.Splices: one
// delete and insert per changed region of lines, so a person's edit in a
// line between two regions is not deleted and written back under them.
func spliceText(t *yjs.Text, before, after string) error {
	for _, s := range notebook.Splices(before, after) {
		if s.Delete > 0 {
			if err := t.Delete(s.Index, s.Delete); err != nil {
				return err
			}
		}
		if s.Insert != "" {
			if err := t.Insert(s.Index, s.Insert); err != nil {
				return err
			}
		}
	}
	return nil
}

// plain decodes JSON into values the Yjs encoder takes: objects, arrays,
// strings, booleans, nil, and numbers as int64 when integral.
func plain(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return numbers(v)
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	return reflect.DeepEqual(plain(a), plain(b))
}

func intPtrEqual(a, b *int) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// longestIncreasing returns the indexes of a longest strictly increasing
// subsequence of xs (patience sorting, O(n log n)).
func longestIncreasing(xs []int) []int {
	var tails []int // index in xs of the smallest tail of a run of each length
	prev := make([]int, len(xs))
	for i, x := range xs {
		lo, hi := 0, len(tails)
		for lo < hi {
			mid := (lo + hi) / 2
			if xs[tails[mid]] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo > 0 {
			prev[i] = tails[lo-1]
		} else {
			prev[i] = -1
		}
		if lo == len(tails) {
			tails = append(tails, i)
		} else {
			tails[lo] = i
		}
	}
	out := make([]int, len(tails))
	for k, i := len(tails)-1, -1; k >= 0; k-- {
		if k == len(tails)-1 {
			i = tails[k]
		}
		out[k] = i
		i = prev[i]
	}
	return out
}
