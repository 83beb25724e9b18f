package hubauth

// Client ID Metadata Documents: a client whose id is an https URL is
// described by the JSON document at that URL (its name and redirect URIs),
// which the server fetches when the client asks to authorize. The server
// thereby makes requests to addresses a stranger names, so the fetch is
// bounded: https only, a public address unless the admin allows private
// ones, no redirects, a few seconds and 64 KiB at most; and the document
// must name itself as the client.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

const (
	metadataTimeout  = 5 * time.Second
	metadataMaxBytes = 64 << 10
	metadataCacheFor = 5 * time.Minute
)

// metadataClients fetches and caches client metadata documents.
type metadataClients struct {
	http *http.Client
	mu   sync.Mutex
	seen map[string]cachedClient
}

type cachedClient struct {
	client  *Client
	expires time.Time
}

// newMetadataClients makes the fetcher; allowPrivate lets documents come
// from loopback and private addresses (an intranet's clients, tests).
// base carries TLS settings; its dialing is replaced.
func newMetadataClients(allowPrivate bool, base *http.Transport) *metadataClients {
	t := base.Clone()
	t.Proxy = nil // a proxy would dial for us, past the address check
	dialer := &net.Dialer{Timeout: metadataTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		ip := net.ParseIP(host)
		if err != nil || ip == nil {
			return fmt.Errorf("cannot check the address %s", address)
		}
		if !allowPrivate && !public(ip) {
			return fmt.Errorf("the client's metadata document is at %s, which is not a public address", ip)
		}
		return nil
	}}
	t.DialContext = dialer.DialContext
	return &metadataClients{
		http: &http.Client{Transport: t, Timeout: metadataTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }},
		seen: map[string]cachedClient{},
	}
}

func public(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast())
}

// isMetadataURL reports whether a client id names a metadata document.
func isMetadataURL(id string) bool {
	u, err := url.Parse(id)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Path != "" && u.Path != "/"
}

// client fetches (or recalls) the client the document at id describes.
func (m *metadataClients) client(ctx context.Context, id string, now time.Time) (*Client, error) {
	m.mu.Lock()
	c, ok := m.seen[id]
	m.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.client, nil
	}
	got, err := m.fetch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("the client's metadata document %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.seen) >= 1000 {
		clear(m.seen)
	}
	m.seen[id] = cachedClient{client: got, expires: now.Add(metadataCacheFor)}
	return got, nil
}

func (m *metadataClients) fetch(ctx context.Context, id string) (*Client, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, metadataMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > metadataMaxBytes {
		return nil, fmt.Errorf("is larger than %d KiB", metadataMaxBytes>>10)
	}
	var doc struct {
		ClientID     string   `json:"client_id"`
		Name         string   `json:"client_name"`
		RedirectURIs []string `json:"redirect_uris"`
		AuthMethod   string   `json:"token_endpoint_auth_method"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("is not JSON client metadata: %w", err)
	}
	switch {
	case doc.ClientID != id:
		return nil, fmt.Errorf("names another client_id (%q)", doc.ClientID)
	case len(doc.RedirectURIs) == 0:
		return nil, errors.New("lists no redirect_uris")
	case doc.AuthMethod != "" && doc.AuthMethod != "none":
		return nil, fmt.Errorf("asks for token_endpoint_auth_method %q; only \"none\" is supported", doc.AuthMethod)
	}
	for _, u := range doc.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	name := doc.Name
	if name == "" {
		name = id
	}
	if len(name) > 100 {
		name = name[:100]
	}
	return &Client{ID: id, Name: name, RedirectURIs: doc.RedirectURIs}, nil
}
