package jupyter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Entry is a Contents API model. Content is the raw JSON content when it was
// requested: the notebook for "notebook", a list of entries for "directory".
type Entry struct {
	Name         string          `json:"name"`
	Path         string          `json:"path"`
	Type         string          `json:"type"` // "notebook", "file" or "directory"
	Format       string          `json:"format,omitempty"`
	Writable     bool            `json:"writable"`
	Created      time.Time       `json:"created"`
	LastModified time.Time       `json:"last_modified"`
	Size         *int64          `json:"size,omitempty"`
	Hash         string          `json:"hash,omitempty"` // of the file's bytes, from Stat
	Content      json.RawMessage `json:"content,omitempty"`
}

// Get reads an entry. With content false only the model's metadata comes
// back (cheap: enough to detect concurrent changes).
func (c *Client) Get(ctx context.Context, path string, content bool) (*Entry, error) {
	q := url.Values{"content": {"0"}}
	if content {
		q.Set("content", "1")
	}
	var e Entry
	if err := c.do(ctx, http.MethodGet, "api/contents/"+escapePath(path), q, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Stat reads an entry's metadata with the hash of the file's bytes: a save
// that wrote the file changes one of last_modified and hash (mtime alone
// may repeat within the file system's clock tick).
func (c *Client) Stat(ctx context.Context, path string) (*Entry, error) {
	var e Entry
	q := url.Values{"content": {"0"}, "hash": {"1"}}
	if err := c.do(ctx, http.MethodGet, "api/contents/"+escapePath(path), q, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// List returns the entries of a directory.
func (c *Client) List(ctx context.Context, dir string) ([]Entry, error) {
	q := url.Values{"content": {"1"}, "type": {"directory"}}
	var e struct {
		Content []Entry `json:"content"`
	}
	if err := c.do(ctx, http.MethodGet, "api/contents/"+escapePath(dir), q, nil, &e); err != nil {
		return nil, err
	}
	return e.Content, nil
}

// SaveNotebook writes a notebook (nbformat JSON) to path, creating or
// replacing it, and returns the new model without content.
func (c *Client) SaveNotebook(ctx context.Context, path string, nb json.RawMessage) (*Entry, error) {
	body := map[string]any{"type": "notebook", "format": "json", "content": nb}
	var e Entry
	if err := c.do(ctx, http.MethodPut, "api/contents/"+escapePath(path), nil, body, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// KernelSpec describes one installed kernel.
type KernelSpec struct {
	Name        string
	DisplayName string
	Language    string
}

// KernelSpecs lists the installed kernels and the server's default one.
func (c *Client) KernelSpecs(ctx context.Context) (specs []KernelSpec, defaultName string, err error) {
	var r struct {
		Default     string `json:"default"`
		Kernelspecs map[string]struct {
			Name string `json:"name"`
			Spec struct {
				DisplayName string `json:"display_name"`
				Language    string `json:"language"`
			} `json:"spec"`
		} `json:"kernelspecs"`
	}
	if err := c.do(ctx, http.MethodGet, "api/kernelspecs", nil, nil, &r); err != nil {
		return nil, "", err
	}
	for name, k := range r.Kernelspecs {
		specs = append(specs, KernelSpec{Name: name, DisplayName: k.Spec.DisplayName, Language: k.Spec.Language})
	}
	return specs, r.Default, nil
}

// NotebookError words an error of reading a notebook for an agent.
func NotebookError(path string, err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusNotFound:
			return fmt.Errorf("notebook %q does not exist (list_notebooks shows the notebooks that exist)", path)
		case http.StatusBadRequest:
			// The Contents API answers 400 "Unreadable Notebook" for corrupt JSON.
			return fmt.Errorf("notebook %q is not valid notebook JSON (%s); fix the file by hand or restore it; nothing was changed", path, ae.Message)
		}
	}
	return fmt.Errorf("read %q: %w", path, err)
}
