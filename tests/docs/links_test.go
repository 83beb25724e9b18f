// Package docs checks the project's Markdown documentation: every relative
// link in README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md reaches a
// file that exists, and every #anchor a heading of the file it names, as
// GitHub renders them.
package docs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

var (
	// fence opens or closes a fenced code block.
	fence = regexp.MustCompile("^\\s*(```|~~~)")
	// heading is an ATX heading: "## Text".
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	// codeSpan is inline code, whose text is no link.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// inlineLink is [text](target "title"); the text may hold brackets
	// one level deep.
	inlineLink = regexp.MustCompile(`\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition: [label]: target.
	refDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	// htmlAnchor is an HTML element's id or name, a target too.
	htmlAnchor = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:id|name)="([^"]+)"`)
	// scheme marks an absolute URL (https:, mailto:), not checked here.
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// doc is what one Markdown file offers and asks for.
type doc struct {
	anchors map[string]bool
	links   []link
}

type link struct {
	line   int
	target string
}

// parse reads the headings, HTML anchors and links of a Markdown file,
// skipping code blocks and code spans.
func parse(text string) doc {
	d := doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	inFence := false
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if fence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence || strings.HasPrefix(line, "    ") && !strings.HasPrefix(strings.TrimSpace(line), "-") && !strings.HasPrefix(strings.TrimSpace(line), "|") {
			continue // fenced or indented code
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			d.anchors[m[1]] = true
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if k := seen[s]; k > 0 {
				d.anchors[fmt.Sprintf("%s-%d", s, k)] = true
			} else {
				d.anchors[s] = true
			}
			seen[s]++
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			d.links = append(d.links, link{n, m[1]})
			continue
		}
		plain := codeSpan.ReplaceAllString(line, "x")
		for _, m := range inlineLink.FindAllStringSubmatch(plain, -1) {
			d.links = append(d.links, link{n, m[1]})
		}
	}
	return d
}

// slug is the anchor GitHub gives a heading: its text as rendered
// (without code marks, emphasis or link targets), lower case, without
// punctuation, spaces as hyphens.
func slug(text string) string {
	text = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(text, "$1")
	text = strings.NewReplacer("`", "", "*", "").Replace(text)
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Connect a client", "connect-a-client"},
		{"Many users: JupyterHub", "many-users-jupyterhub"},
		{"MCP Apps view: the live notebook inside the chat", "mcp-apps-view-the-live-notebook-inside-the-chat"},
		{"Tasks (SEP-2663)", "tasks-sep-2663"},
		{"CRDT: `sidecar/yjs` and `tests/yjs`", "crdt-sidecaryjs-and-testsyjs"},
		{"Undo against Yjs's UndoManager", "undo-against-yjss-undomanager"},
		{"`<lab>/mcp` without the slash", "labmcp-without-the-slash"},
		{"Durability: live at once, on disk within about a second, failures told", "durability-live-at-once-on-disk-within-about-a-second-failures-told"},
		{"See [the design](docs/design.md)", "see-the-design"},
		{"snake_case and *emphasis*", "snake_case-and-emphasis"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	d := parse("# Title\n\nSee [a](b.md#x), [`c`](d/) and [e][1].\n\n" +
		"```\n[not](a-link.md)\n## Not a heading\n```\n\n" +
		"Code `[no](link.md)` here.\n\n[1]: f.md\n## Title\n<a id=\"custom\"></a>\n")
	var targets []string
	for _, l := range d.links {
		targets = append(targets, l.target)
	}
	if got, want := strings.Join(targets, " "), "b.md#x d/ f.md"; got != want {
		t.Errorf("links %q, want %q", got, want)
	}
	for _, a := range []string{"title", "title-1", "custom"} {
		if !d.anchors[a] {
			t.Errorf("anchor %q missing from %v", a, d.anchors)
		}
	}
	if d.anchors["not-a-heading"] {
		t.Error("a heading inside a code block counted")
	}
}

// Every relative link and #anchor of the project's documentation resolves.
func TestLinksResolve(t *testing.T) {
	root := labtest.RepoRoot()
	files := []string{"README.md", "CONTRIBUTING.md", "CHANGELOG.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md: the documentation moved?")
	}
	for _, f := range more {
		rel, _ := filepath.Rel(root, f)
		files = append(files, rel)
	}
	docs := map[string]doc{} // by path relative to root
	load := func(rel string) (doc, error) {
		if d, ok := docs[rel]; ok {
			return d, nil
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return doc{}, err
		}
		d := parse(string(b))
		docs[rel] = d
		return d, nil
	}
	for _, f := range files {
		d, err := load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range d.links {
			if scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			path, anchor, _ := strings.Cut(l.target, "#")
			target := f
			if path != "" {
				target = filepath.Clean(filepath.Join(filepath.Dir(f), path))
				if strings.HasPrefix(target, "..") {
					t.Errorf("%s:%d: %s leaves the repository", f, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, target)); err != nil {
					t.Errorf("%s:%d: %s: no such file or folder", f, l.line, l.target)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: %s: an anchor into a file that is not Markdown", f, l.line, l.target)
				continue
			}
			td, err := load(target)
			if err != nil {
				t.Errorf("%s:%d: %s: %v", f, l.line, l.target, err)
				continue
			}
			if !td.anchors[anchor] {
				t.Errorf("%s:%d: %s: %s has no heading with anchor #%s", f, l.line, l.target, target, anchor)
			}
		}
	}
}
