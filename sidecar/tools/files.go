package tools

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Listing limits keep answers small enough for a model's context.
const (
	defaultLimit = 100
	maxLimit     = 500
	maxDepth     = 10
	// maxVisited bounds how many directory entries one listing walks.
	maxVisited = 20000
)

type ListFilesIn struct {
	Path   string `json:"path,omitempty" jsonschema:"folder to list, relative to the Jupyter root; default the root"`
	Glob   string `json:"glob,omitempty" jsonschema:"only entries whose name matches this pattern, e.g. *.csv"`
	Depth  int    `json:"depth,omitempty" jsonschema:"how many folder levels to descend; default 1 (this folder only), max 10"`
	Offset int    `json:"offset,omitempty" jsonschema:"skip this many entries (for paging)"`
	Limit  int    `json:"limit,omitempty" jsonschema:"return at most this many entries; default 100, max 500"`
}

type FileEntry struct {
	Path         string `json:"path"`
	Type         string `json:"type" jsonschema:"notebook, file or directory"`
	Size         *int64 `json:"size,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

type ListOut struct {
	Entries    []FileEntry `json:"entries"`
	Total      int         `json:"total" jsonschema:"number of matching entries"`
	NextOffset int         `json:"next_offset,omitempty" jsonschema:"pass as offset to get the next page; absent on the last page"`
	Truncated  bool        `json:"truncated,omitempty" jsonschema:"the walk stopped early because the tree is very large; narrow path or depth"`
}

var listFilesTool = &mcp.Tool{
	Name:        "list_files",
	Title:       "List files",
	Description: "List files and folders under a folder of the Jupyter root (not hidden ones), with type, size and modification time. Use depth > 1 to descend into sub-folders.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) listFiles(ctx context.Context, _ *mcp.CallToolRequest, in ListFilesIn) (*mcp.CallToolResult, ListOut, error) {
	depth := in.Depth
	if depth == 0 {
		depth = 1
	}
	if depth < 0 || depth > maxDepth {
		return nil, ListOut{}, fmt.Errorf("depth %d is out of range: use 1 to %d", in.Depth, maxDepth)
	}
	if in.Glob != "" {
		if _, err := path.Match(in.Glob, ""); err != nil {
			return nil, ListOut{}, fmt.Errorf("glob %q is not a valid pattern: %v", in.Glob, err)
		}
	}
	out, err := t.walk(ctx, in.Path, depth, in.Offset, in.Limit, func(e FileEntry) bool {
		if in.Glob == "" {
			return true
		}
		ok, _ := path.Match(in.Glob, path.Base(e.Path))
		return ok
	})
	return nil, out, err
}

type ListNotebooksIn struct {
	Path   string `json:"path,omitempty" jsonschema:"folder to search, relative to the Jupyter root; default the root"`
	Offset int    `json:"offset,omitempty" jsonschema:"skip this many notebooks (for paging)"`
	Limit  int    `json:"limit,omitempty" jsonschema:"return at most this many notebooks; default 100, max 500"`
}

var listNotebooksTool = &mcp.Tool{
	Name:        "list_notebooks",
	Title:       "List notebooks",
	Description: "List every notebook (.ipynb) under a folder, searching sub-folders, whether or not it is open in JupyterLab.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) listNotebooks(ctx context.Context, _ *mcp.CallToolRequest, in ListNotebooksIn) (*mcp.CallToolResult, ListOut, error) {
	out, err := t.walk(ctx, in.Path, maxDepth, in.Offset, in.Limit, func(e FileEntry) bool {
		return e.Type == "notebook"
	})
	return nil, out, err
}

// walk lists dir breadth-first down to depth levels, keeps the entries that
// match keep, and returns the requested page of them.
func (t *Tools) walk(ctx context.Context, dir string, depth, offset, limit int, keep func(FileEntry) bool) (ListOut, error) {
	if limit == 0 {
		limit = defaultLimit
	}
	if limit < 0 || limit > maxLimit {
		return ListOut{}, fmt.Errorf("limit %d is out of range: use 1 to %d", limit, maxLimit)
	}
	if offset < 0 {
		return ListOut{}, fmt.Errorf("offset %d is negative", offset)
	}
	root, err := cleanPath(dir)
	if err != nil {
		return ListOut{}, err
	}
	if root != "" {
		e, err := t.Jupyter.Get(ctx, root, false)
		if err != nil {
			return ListOut{}, fmt.Errorf("folder %q does not exist or cannot be read: %w", root, err)
		}
		if e.Type != "directory" {
			return ListOut{}, fmt.Errorf("%q is a %s, not a folder", root, e.Type)
		}
	}
	out := ListOut{Entries: []FileEntry{}}
	visited := 0
	level := []string{root}
	for d := 1; d <= depth && len(level) > 0; d++ {
		var next []string
		for _, folder := range level {
			entries, err := t.Jupyter.List(ctx, folder)
			if err != nil {
				return ListOut{}, fmt.Errorf("list %q: %w", folder, err)
			}
			for _, e := range entries {
				visited++
				if visited > maxVisited {
					out.Truncated = true
					return page(out, offset, limit), nil
				}
				fe := FileEntry{Path: e.Path, Type: e.Type, Size: e.Size, LastModified: modTime(e.LastModified)}
				if keep(fe) {
					out.Entries = append(out.Entries, fe)
				}
				if e.Type == "directory" && !strings.HasPrefix(e.Name, ".") {
					next = append(next, e.Path)
				}
			}
		}
		level = next
	}
	return page(out, offset, limit), nil
}

func page(out ListOut, offset, limit int) ListOut {
	out.Total = len(out.Entries)
	if offset > len(out.Entries) {
		offset = len(out.Entries)
	}
	end := min(offset+limit, len(out.Entries))
	out.Entries = out.Entries[offset:end]
	if end < out.Total {
		out.NextOffset = end
	}
	return out
}

// modTime is used in listings.
func modTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
