package jupyter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the Jupyter server's REST API with the server's credential.
type Client struct {
	base   *url.URL
	token  string
	socket string // unix socket of the server, if it listens on one
	http   *http.Client
}

// NewClient returns a client for the server described by info.
func NewClient(info *ServerInfo) (*Client, error) {
	base, err := url.Parse(info.URL)
	if err != nil {
		return nil, fmt.Errorf("jupyter server URL: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // loopback only: never through an HTTP proxy from the environment
	if info.Socket != "" {
		sock := info.Socket
		transport.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	}
	return &Client{base: base, token: info.Token, socket: info.Socket, http: &http.Client{Transport: transport, Timeout: 2 * time.Minute}}, nil
}

// APIError is a non-2xx answer of the Jupyter server.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("jupyter server answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("jupyter server answered %d: %s", e.Status, e.Message)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends one API request. apiPath is relative to the base URL and already
// escaped; in (if non-nil) is sent as JSON and out (if non-nil) receives the
// JSON answer.
func (c *Client) do(ctx context.Context, method, apiPath string, query url.Values, in, out any) error {
	u := c.base.JoinPath() // copy
	u.RawPath = c.base.EscapedPath() + apiPath
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("bad API path %q: %w", apiPath, err)
	}
	u.Path = p
	u.RawQuery = query.Encode()

	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "token "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("jupyter server unreachable: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer of jupyter server: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
			Reason  string `json:"reason"`
		}
		_ = json.Unmarshal(data, &e)
		msg := e.Message
		if msg == "" {
			msg = e.Reason
		}
		return &APIError{Status: resp.StatusCode, Message: msg}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of jupyter server for %s %s: %w", method, apiPath, err)
		}
	}
	return nil
}

// escapePath escapes each segment of a server-relative path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Status checks that the server answers with this client's credential.
func (c *Client) Status(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "api/status", url.Values{"no_track_activity": {"1"}}, nil, nil)
}

// Collaboration backends the sidecar tells apart.
const (
	NoCollaboration        = ""
	JupyterCollaboration   = "jupyter-collaboration"
	JupyterServerDocuments = "jupyter-server-documents"
)

// CollaborationBackend tells which real-time collaboration backend serves
// notebooks. jupyter-collaboration has a session endpoint that answers only
// PUT (a GET gets 405, 404 when absent); jupyter-server-documents has none,
// but adds a file-id index endpoint that answers only POST.
func (c *Client) CollaborationBackend(ctx context.Context) (string, error) {
	for _, probe := range []struct{ path, backend string }{
		{"api/collaboration/session/probe.ipynb", JupyterCollaboration},
		{"api/fileid/index", JupyterServerDocuments},
	} {
		err := c.do(ctx, http.MethodGet, probe.path, url.Values{"no_track_activity": {"1"}}, nil, nil)
		var ae *APIError
		switch {
		case err == nil:
			return probe.backend, nil
		case errors.As(err, &ae):
			if ae.Status != http.StatusNotFound {
				return probe.backend, nil
			}
		default:
			return "", err
		}
	}
	return NoCollaboration, nil
}
