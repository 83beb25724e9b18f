package kernel

import (
	"encoding/json"
	"strings"
)

// MaxStoredStreamBytes bounds the stream text kept for one execution, so an
// output flood (a loop printing millions of lines) stays bounded in memory
// and in the notebook.
const MaxStoredStreamBytes = 4 << 20

// Outputs builds a cell's nbformat outputs from IOPub messages, the way
// JupyterLab does: consecutive stream texts of the same name merge, "\r"
// and "\b" overwrite, clear_output (also deferred with wait=true) and
// update_display_data are honoured, and transient fields are not stored.
type Outputs struct {
	list          []map[string]any
	texts         map[int]*strings.Builder // stream text by index in list
	displays      map[string][]int         // display_id -> indexes in list
	clearOnNext   bool
	streamBytes   int
	streamCut     bool
	lastTextAdded string
	// openCR is true while the last stream's current line ends in "\r":
	// the next text overwrites it.
	openCR bool
}

// apply updates the outputs from one IOPub message and reports whether they
// changed.
func (o *Outputs) apply(m *Message) bool {
	var c map[string]any
	if err := json.Unmarshal(m.Content, &c); err != nil {
		return false
	}
	switch m.Header.MsgType {
	case "clear_output":
		if wait, _ := c["wait"].(bool); wait {
			o.clearOnNext = true
			return false
		}
		o.clear()
		return true
	case "stream", "display_data", "execute_result", "error":
	case "update_display_data":
		id := displayID(c)
		for _, i := range o.displays[id] {
			o.list[i]["data"] = c["data"]
			o.list[i]["metadata"] = orEmpty(c["metadata"])
		}
		return len(o.displays[id]) > 0
	default:
		return false
	}
	if o.clearOnNext {
		o.clear()
	}
	out := map[string]any{"output_type": m.Header.MsgType}
	switch m.Header.MsgType {
	case "stream":
		name, _ := c["name"].(string)
		text, _ := c["text"].(string)
		return o.appendStream(name, text)
	case "error":
		out["ename"], out["evalue"], out["traceback"] = c["ename"], c["evalue"], orList(c["traceback"])
	default: // display_data, execute_result
		out["data"] = orEmpty(c["data"])
		out["metadata"] = orEmpty(c["metadata"])
		if m.Header.MsgType == "execute_result" {
			out["execution_count"] = c["execution_count"]
		}
		if id := displayID(c); id != "" {
			if o.displays == nil {
				o.displays = map[string][]int{}
			}
			o.displays[id] = append(o.displays[id], len(o.list))
		}
	}
	o.list = append(o.list, out)
	return true
}

func (o *Outputs) clear() {
	o.list, o.texts, o.displays, o.clearOnNext, o.openCR = nil, nil, nil, false, false
}

func (o *Outputs) appendStream(name, text string) bool {
	if o.streamCut {
		return false
	}
	if o.streamBytes+len(text) > MaxStoredStreamBytes {
		text = text[:max(0, MaxStoredStreamBytes-o.streamBytes)] + "\n[output truncated by jupyter-mcp-sidecar: more than 4 MiB of text]\n"
		o.streamCut = true
	}
	o.streamBytes += len(text)
	o.lastTextAdded = text
	n := len(o.list)
	if n == 0 || o.list[n-1]["output_type"] != "stream" || o.list[n-1]["name"] != name {
		o.list = append(o.list, map[string]any{"output_type": "stream", "name": name})
		if o.texts == nil {
			o.texts = map[int]*strings.Builder{}
		}
		o.texts[n] = &strings.Builder{}
		o.openCR = false
		n++
	}
	b := o.texts[n-1]
	if !o.openCR && !strings.ContainsAny(text, "\r\b") {
		b.WriteString(text) // the common case: no copy of what is there
		return true
	}
	// "\r" and "\b" act on the current line only: rewrite just that line.
	cur := b.String()
	start := strings.LastIndexByte(cur, '\n') + 1
	line := overwrite(cur[start:] + text)
	b.Reset()
	b.WriteString(cur[:start])
	b.WriteString(line)
	o.openCR = strings.HasSuffix(line, "\r")
	return true
}

// overwrite applies terminal "\r" (back to line start) and "\b" (erase the
// previous character), as progress bars expect.
func overwrite(s string) string {
	if !strings.ContainsAny(s, "\r\b") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		// A trailing "\r" keeps the line until more text arrives.
		if j := strings.LastIndexByte(strings.TrimSuffix(line, "\r"), '\r'); j >= 0 {
			line = line[j+1:]
		}
		if strings.Contains(line, "\b") {
			var b []rune
			for _, r := range line {
				if r == '\b' {
					if len(b) > 0 {
						b = b[:len(b)-1]
					}
					continue
				}
				b = append(b, r)
			}
			line = string(b)
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n")
}

func displayID(c map[string]any) string {
	t, _ := c["transient"].(map[string]any)
	id, _ := t["display_id"].(string)
	return id
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

func orList(v any) any {
	if v == nil {
		return []any{}
	}
	return v
}

// List returns the outputs as nbformat JSON objects.
func (o *Outputs) List() []json.RawMessage {
	out := make([]json.RawMessage, 0, len(o.list))
	for i, m := range o.list {
		if t, ok := o.texts[i]; ok {
			m = map[string]any{"output_type": "stream", "name": m["name"], "text": t.String()}
		}
		b, _ := json.Marshal(m)
		out = append(out, b)
	}
	return out
}

// TextBytes is the size of the stream text kept so far.
func (o *Outputs) TextBytes() int { return o.streamBytes }

// LastLine is the last non-empty line of text output so far, for progress.
func (o *Outputs) LastLine() string {
	lines := strings.Split(strings.TrimRight(o.lastTextAdded, "\n"), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
