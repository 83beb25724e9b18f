package tools

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
)

// Limits bound what one tool result carries back to the model.
type Limits struct {
	// MaxOutputChars caps the text of a result; the middle of longer text
	// is replaced by a marker saying how much was left out.
	MaxOutputChars int
	// MaxImageBytes caps one image (decoded); larger images are replaced by
	// a note.
	MaxImageBytes int
}

// DefaultLimits suit the context window of current models.
var DefaultLimits = Limits{MaxOutputChars: 20000, MaxImageBytes: 1 << 20}

// outputContent turns nbformat outputs into MCP content: text for streams,
// results and errors (ANSI codes stripped), images as image content, and a
// note for what cannot be shown (HTML-only, widgets, oversized images).
func outputContent(outs []json.RawMessage, lim Limits) []mcp.Content {
	var content []mcp.Content
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			content = append(content, &mcp.TextContent{Text: capText(text.String(), lim.MaxOutputChars)})
			text.Reset()
		}
	}
	for _, raw := range outs {
		var o notebook.Output
		if json.Unmarshal(raw, &o) != nil {
			continue
		}
		if o.OutputType != "display_data" && o.OutputType != "execute_result" {
			text.WriteString(notebook.OutputText(raw))
			ensureNewline(&text)
			continue
		}
		if img, mime, ok := pickImage(o.Data); ok {
			data, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(img, "\n", ""))
			switch {
			case err != nil:
				fmt.Fprintf(&text, "[%s output could not be decoded]\n", mime)
			case len(data) > lim.MaxImageBytes:
				fmt.Fprintf(&text, "[%s image of %d KB not shown: above the %d KB limit]\n", mime, len(data)/1024, lim.MaxImageBytes/1024)
			default:
				flush()
				content = append(content, &mcp.ImageContent{Data: data, MIMEType: mime})
			}
			continue
		}
		text.WriteString(richText(o.Data))
		ensureNewline(&text)
	}
	flush()
	return content
}

func ensureNewline(b *strings.Builder) {
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
}

func pickImage(data map[string]json.RawMessage) (string, string, bool) {
	for _, mime := range []string{"image/png", "image/jpeg"} {
		if raw, ok := data[mime]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				return s, mime, true
			}
		}
	}
	return "", "", false
}

// richText is the text an agent gets for a rich output without an image.
func richText(data map[string]json.RawMessage) string {
	str := func(mime string) (string, bool) {
		raw, ok := data[mime]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var parts []string
			if json.Unmarshal(raw, &parts) != nil {
				return string(raw), true
			}
			s = strings.Join(parts, "")
		}
		return s, true
	}
	if _, ok := data["application/vnd.jupyter.widget-view+json"]; ok {
		plain, _ := str("text/plain")
		return strings.TrimSpace("[interactive widget: not rendered for agents] " + plain)
	}
	if s, ok := str("text/markdown"); ok {
		return s
	}
	if s, ok := str("text/plain"); ok {
		if html, ok := str("text/html"); ok && len(html) > 0 {
			return s + fmt.Sprintf("\n[an HTML rendering of %d characters is not shown]", len(html))
		}
		return s
	}
	if s, ok := str("text/html"); ok {
		return fmt.Sprintf("[HTML output of %d characters is not shown; print a text form (e.g. df.to_string()) to read it]", len(s))
	}
	var mimes []string
	for m := range data {
		mimes = append(mimes, m)
	}
	return fmt.Sprintf("[output of type %s is not shown]", strings.Join(mimes, ", "))
}

// capText keeps the head and (mostly) the tail of long text: tracebacks
// and final results are at the end.
func capText(s string, limit int) string {
	if limit <= 0 || len(s) <= limit {
		return s
	}
	head := limit / 3
	tail := limit - head
	for head > 0 && !isRuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !isRuneStart(s[start]) {
		start++
	}
	return s[:head] + fmt.Sprintf("\n[… %d characters left out …]\n", start-head) + s[start:]
}
