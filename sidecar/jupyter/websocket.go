package jupyter

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"
)

// DialWebsocket opens a websocket to an API path of the server with the
// server's credential (kernel channels, collaboration rooms).
func (c *Client) DialWebsocket(ctx context.Context, apiPath string, query url.Values, subprotocols []string) (*websocket.Conn, error) {
	u := c.base.JoinPath()
	u.RawPath = c.base.EscapedPath() + apiPath
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, err
	}
	u.Path = p
	u.RawQuery = query.Encode()
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)

	dialer := websocket.Dialer{
		Subprotocols:      subprotocols,
		EnableCompression: false,
		ReadBufferSize:    64 << 10,
		WriteBufferSize:   64 << 10,
	}
	if c.socket != "" {
		sock := c.socket
		dialer.NetDialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
	}
	header := http.Header{}
	if c.token != "" {
		header.Set("Authorization", "token "+c.token)
	}
	conn, resp, err := dialer.DialContext(ctx, u.String(), header)
	if err != nil {
		if resp != nil {
			return nil, &APIError{Status: resp.StatusCode, Message: "websocket " + apiPath + ": " + err.Error()}
		}
		return nil, err
	}
	return conn, nil
}
