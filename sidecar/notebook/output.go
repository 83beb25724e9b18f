package notebook

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Output is the decoded form of one nbformat output, enough to render it.
type Output struct {
	OutputType string                     `json:"output_type"`
	Name       string                     `json:"name"` // stream
	Text       json.RawMessage            `json:"text"` // stream: multiline string
	Data       map[string]json.RawMessage `json:"data"` // execute_result, display_data
	EName      string                     `json:"ename"`
	EValue     string                     `json:"evalue"`
	Traceback  []string                   `json:"traceback"`
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// StripANSI removes terminal escape sequences (tracebacks are coloured).
func StripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// OutputText renders one output as text for an agent: stream and plain-text
// results as they are, errors as name, value and traceback, and rich data it
// cannot show as text as a short note naming the MIME type and size.
func OutputText(raw json.RawMessage) string {
	var o Output
	if err := json.Unmarshal(raw, &o); err != nil {
		return "[unreadable output]"
	}
	switch o.OutputType {
	case "stream":
		s, _ := joinSource(o.Text)
		return s
	case "error":
		tb := StripANSI(strings.Join(o.Traceback, "\n"))
		if tb == "" {
			return o.EName + ": " + o.EValue
		}
		return tb
	case "execute_result", "display_data":
		if t, ok := o.Data["text/plain"]; ok {
			s, _ := joinSource(t)
			if others := otherMIMEs(o.Data, "text/plain"); others != "" {
				s += "\n[also: " + others + "]"
			}
			return s
		}
		if t, ok := o.Data["text/markdown"]; ok {
			s, _ := joinSource(t)
			return s
		}
		return "[" + otherMIMEs(o.Data, "") + "]"
	}
	return fmt.Sprintf("[%s output]", o.OutputType)
}

func otherMIMEs(data map[string]json.RawMessage, except string) string {
	var parts []string
	for _, mime := range slices.Sorted(maps.Keys(data)) {
		if mime == except {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s, %d bytes", mime, len(data[mime])))
	}
	return strings.Join(parts, "; ")
}
