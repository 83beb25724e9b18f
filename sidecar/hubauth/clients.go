package hubauth

// Pre-registered clients: the admin lists MCP clients by id for those that
// neither register dynamically nor publish a metadata document, and for
// web-hosted connectors, which hold a secret (confidential clients, whose
// settings take a client id and secret). Their redirect URIs match
// exactly, as any client's, and PKCE is required of them too: a secret
// proves who trades a code, PKCE that the code was not intercepted.

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// Client is an MCP client allowed to ask for tokens.
type Client struct {
	ID           string   `json:"client_id"`
	Name         string   `json:"client_name"`
	RedirectURIs []string `json:"redirect_uris"`
	// Secret makes a pre-registered client confidential: it must present
	// it at the token endpoint. Empty: a public client.
	Secret string `json:"client_secret,omitempty"`
}

// minSecret is the shortest secret a confidential client may have.
const minSecret = 16

// ParseClients reads the admin's list of pre-registered clients: a JSON
// array of {"client_id", "client_name", "redirect_uris", "client_secret"
// (optional)}.
func ParseClients(data []byte) ([]Client, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var clients []Client
	if err := dec.Decode(&clients); err != nil {
		return nil, fmt.Errorf(`expected a JSON array of {"client_id", "client_name", "redirect_uris", "client_secret" (optional)}: %w`, err)
	}
	return clients, checkClients(clients)
}

// checkClients checks the pre-registered clients, naming a nameless one
// by its id.
func checkClients(clients []Client) error {
	seen := map[string]bool{}
	for i := range clients {
		c := &clients[i]
		switch {
		case c.ID == "" || strings.ContainsFunc(c.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			return fmt.Errorf("pre-registered client %d: client_id %q: expected a name without spaces", i+1, c.ID)
		case strings.HasPrefix(c.ID, clientPrefix):
			return fmt.Errorf("pre-registered client %q: ids starting with %q are the dynamically registered clients'", c.ID, clientPrefix)
		case seen[c.ID]:
			return fmt.Errorf("pre-registered client %q is listed twice", c.ID)
		case len(c.RedirectURIs) == 0:
			return fmt.Errorf("pre-registered client %q: list its redirect_uris", c.ID)
		case c.Secret != "" && len(c.Secret) < minSecret:
			return fmt.Errorf("pre-registered client %q: its client_secret has %d characters; give it %d or more (e.g. head -c 24 /dev/urandom | base64)", c.ID, len(c.Secret), minSecret)
		}
		seen[c.ID] = true
		for _, u := range c.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				return fmt.Errorf("pre-registered client %q: %w", c.ID, err)
			}
		}
		if c.Name = strings.TrimSpace(c.Name); c.Name == "" {
			c.Name = c.ID
		}
	}
	return nil
}

// preRegistered is the pre-registered client id, or nil.
func (s *Server) preRegistered(id string) *Client {
	for i := range s.cfg.Clients {
		if s.cfg.Clients[i].ID == id {
			return &s.cfg.Clients[i]
		}
	}
	return nil
}

// authMethods are the token endpoint's ways for clients to authenticate:
// public clients none; confidential ones, if the admin registered any,
// their secret in the Authorization header or in the form.
func (s *Server) authMethods() []string {
	for _, c := range s.cfg.Clients {
		if c.Secret != "" {
			return []string{"none", "client_secret_basic", "client_secret_post"}
		}
	}
	return []string{"none"}
}

// authenticate finds which client calls the token endpoint: a public
// client by its client_id (PKCE, not a secret, proves the rest); a
// confidential one by its id and secret, in the Authorization header
// (client_secret_basic) or the form (client_secret_post).
func (s *Server) authenticate(r *http.Request, f url.Values) (string, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// Both are form-encoded before the Basic encoding (RFC 6749 2.3.1).
		var errID, errSecret error
		id, errID = url.QueryUnescape(id)
		secret, errSecret = url.QueryUnescape(secret)
		if errID != nil || errSecret != nil {
			return "", errors.New("the client credentials in the Authorization header are not form-encoded")
		}
		if f.Has("client_id") && f.Get("client_id") != id {
			return "", errors.New("client_id differs from the client in the Authorization header")
		}
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	c := s.preRegistered(id)
	if c == nil || c.Secret == "" {
		return id, nil
	}
	if secret == "" {
		return "", fmt.Errorf("the client %s is confidential: send its secret (client_secret_basic or client_secret_post)", id)
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return "", fmt.Errorf("the client secret of %s is wrong", id)
	}
	return id, nil
}
