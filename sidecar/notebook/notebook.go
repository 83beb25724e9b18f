// Package notebook is the sidecar's nbformat v4 model: it parses a notebook,
// applies cell operations (insert, edit, delete, move, clear outputs) and
// serialises it back, keeping every field it does not know about.
package notebook

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Cell types.
const (
	Code     = "code"
	Markdown = "markdown"
	Raw      = "raw"
)

// MaxSourceBytes bounds the source of one cell written by an agent.
const MaxSourceBytes = 1 << 20

// Notebook is an nbformat v4 notebook.
type Notebook struct {
	Cells         []*Cell
	Metadata      json.RawMessage // a JSON object
	NBFormat      int
	NBFormatMinor int
	extra         map[string]json.RawMessage
}

// Cell is one notebook cell. Outputs and ExecutionCount are meaningful for
// code cells only.
type Cell struct {
	ID             string
	Type           string
	Source         string
	Metadata       json.RawMessage
	Outputs        []json.RawMessage
	ExecutionCount *int
	Attachments    json.RawMessage
	// ExecutionState is "running" or "idle" in a live (collaborative)
	// notebook; it is not part of nbformat and never written to files.
	ExecutionState string
	extra          map[string]json.RawMessage
}

// ErrCorrupt wraps every reason a document is not a usable notebook.
var ErrCorrupt = errors.New("not a valid nbformat 4 notebook")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// validID is nbformat 4.5's cell id rule.
var validID = regexp.MustCompile(`^[a-zA-Z0-9-_]{1,64}$`)

// Parse decodes an nbformat v4 notebook.
func Parse(data []byte) (*Notebook, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, corrupt("%v", err)
	}
	nb := &Notebook{extra: top}
	if err := takeInt(top, "nbformat", &nb.NBFormat); err != nil {
		return nil, err
	}
	if nb.NBFormat != 4 {
		return nil, corrupt("nbformat is %d, only 4 is supported", nb.NBFormat)
	}
	if err := takeInt(top, "nbformat_minor", &nb.NBFormatMinor); err != nil {
		return nil, err
	}
	nb.Metadata = take(top, "metadata")
	if nb.Metadata == nil {
		nb.Metadata = json.RawMessage("{}")
	} else if !isObject(nb.Metadata) {
		return nil, corrupt("metadata is not an object")
	}
	var rawCells []json.RawMessage
	if c := take(top, "cells"); c == nil {
		return nil, corrupt("missing cells")
	} else if err := json.Unmarshal(c, &rawCells); err != nil {
		return nil, corrupt("cells is not a list")
	}
	for i, rc := range rawCells {
		cell, err := parseCell(rc)
		if err != nil {
			return nil, fmt.Errorf("cell %d: %w", i, err)
		}
		nb.Cells = append(nb.Cells, cell)
	}
	return nb, nil
}

func parseCell(data []byte) (*Cell, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, corrupt("cell is not an object")
	}
	c := &Cell{extra: m}
	if err := json.Unmarshal(take(m, "cell_type"), &c.Type); err != nil || !IsCellType(c.Type) {
		return nil, corrupt("cell_type must be code, markdown or raw")
	}
	if id := take(m, "id"); id != nil {
		if err := json.Unmarshal(id, &c.ID); err != nil {
			return nil, corrupt("cell id is not a string")
		}
	}
	src, err := joinSource(take(m, "source"))
	if err != nil {
		return nil, err
	}
	c.Source = src
	c.Metadata = take(m, "metadata")
	if c.Metadata == nil {
		c.Metadata = json.RawMessage("{}")
	}
	c.Attachments = take(m, "attachments")
	if c.Type == Code {
		if o := take(m, "outputs"); o != nil {
			if err := json.Unmarshal(o, &c.Outputs); err != nil {
				return nil, corrupt("outputs is not a list")
			}
		}
		if ec := take(m, "execution_count"); ec != nil && string(ec) != "null" {
			var n int
			if err := json.Unmarshal(ec, &n); err != nil {
				return nil, corrupt("execution_count is not an integer")
			}
			c.ExecutionCount = &n
		}
	} else {
		// outputs and execution_count are not allowed on non-code cells.
		delete(m, "outputs")
		delete(m, "execution_count")
	}
	return c, nil
}

// joinSource accepts nbformat's "multiline string": a string or a list of
// strings.
func joinSource(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", corrupt("source must be a string or a list of strings")
	}
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String(), nil
}

func take(m map[string]json.RawMessage, key string) json.RawMessage {
	v, ok := m[key]
	if !ok {
		return nil
	}
	delete(m, key)
	return v
}

func takeInt(m map[string]json.RawMessage, key string, dst *int) error {
	v := take(m, key)
	if v == nil {
		return corrupt("missing %s", key)
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return corrupt("%s is not an integer", key)
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// IsCellType reports whether t is an nbformat cell type.
func IsCellType(t string) bool { return t == Code || t == Markdown || t == Raw }

// New returns an empty nbformat 4.5 notebook whose metadata is given.
func New(metadata json.RawMessage) *Notebook {
	if metadata == nil {
		metadata = json.RawMessage("{}")
	}
	return &Notebook{Metadata: metadata, NBFormat: 4, NBFormatMinor: 5}
}

// Clone returns a deep copy: changing one never changes the other.
func (nb *Notebook) Clone() *Notebook {
	cp := *nb
	cp.Metadata = bytes.Clone(nb.Metadata)
	cp.extra = cloneRaw(nb.extra)
	cp.Cells = make([]*Cell, len(nb.Cells))
	for i, c := range nb.Cells {
		cc := *c
		cc.Metadata = bytes.Clone(c.Metadata)
		cc.Attachments = bytes.Clone(c.Attachments)
		if c.Outputs != nil {
			cc.Outputs = make([]json.RawMessage, len(c.Outputs))
			for k, o := range c.Outputs {
				cc.Outputs[k] = bytes.Clone(o)
			}
		}
		if c.ExecutionCount != nil {
			n := *c.ExecutionCount
			cc.ExecutionCount = &n
		}
		cc.extra = cloneRaw(c.extra)
		cp.Cells[i] = &cc
	}
	return &cp
}

func cloneRaw(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	cp := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		cp[k] = bytes.Clone(v)
	}
	return cp
}

// MarshalJSON writes the notebook as nbformat JSON (keys sorted, as
// nbformat does), with outputs and execution_count on every code cell.
func (nb *Notebook) MarshalJSON() ([]byte, error) {
	top := map[string]any{}
	for k, v := range nb.extra {
		top[k] = v
	}
	top["nbformat"] = nb.NBFormat
	top["nbformat_minor"] = nb.NBFormatMinor
	top["metadata"] = nb.Metadata
	cells := make([]map[string]any, len(nb.Cells))
	for i, c := range nb.Cells {
		cells[i] = c.fields()
	}
	top["cells"] = cells
	return json.Marshal(top)
}

func (c *Cell) fields() map[string]any {
	m := map[string]any{}
	for k, v := range c.extra {
		m[k] = v
	}
	if c.ID != "" {
		m["id"] = c.ID
	}
	m["cell_type"] = c.Type
	m["source"] = c.Source
	m["metadata"] = c.Metadata
	if c.Attachments != nil && c.Type != Code {
		m["attachments"] = c.Attachments
	}
	if c.Type == Code {
		outs := c.Outputs
		if outs == nil {
			outs = []json.RawMessage{}
		}
		m["outputs"] = outs
		m["execution_count"] = c.ExecutionCount // nil marshals as null
	}
	return m
}

// Normalize upgrades the notebook to nbformat 4.5: every cell gets a valid,
// unique id (existing valid ids are kept). It reports whether anything changed.
func (nb *Notebook) Normalize() bool {
	changed := false
	if nb.NBFormatMinor < 5 {
		nb.NBFormatMinor = 5
		changed = true
	}
	seen := map[string]bool{}
	for _, c := range nb.Cells {
		if !validID.MatchString(c.ID) || seen[c.ID] {
			c.ID = nb.newID(seen)
			changed = true
		}
		seen[c.ID] = true
	}
	return changed
}

// newID returns a random 8-hex-digit id (nbformat's own style) not in taken
// nor used by any cell.
func (nb *Notebook) newID(taken map[string]bool) string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if !taken[id] && nb.indexOfID(id) < 0 {
			return id
		}
	}
}

func (nb *Notebook) indexOfID(id string) int {
	for i, c := range nb.Cells {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// IDs lists the cell ids in order (for error messages and summaries).
func (nb *Notebook) IDs() []string {
	ids := make([]string, len(nb.Cells))
	for i, c := range nb.Cells {
		ids[i] = c.ID
	}
	return ids
}

// MarshalJSON writes one cell as nbformat JSON.
func (c *Cell) MarshalJSON() ([]byte, error) { return json.Marshal(c.fields()) }

// ParseCell reads one cell written by Cell.MarshalJSON (or found in a file).
func ParseCell(data []byte) (*Cell, error) { return parseCell(data) }
