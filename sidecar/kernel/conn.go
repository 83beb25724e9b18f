package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
)

// ErrKernelDied ends the requests in flight when the kernel dies or is
// restarted: its state (variables, imports) is gone.
var ErrKernelDied = errors.New("the kernel died or was restarted while the code ran; its variables are lost")

// conn is one connection to a kernel's channels, under the sidecar's own
// session id (a second websocket with a browser's id would replace the
// browser's connection): the server's kernel websocket, or the kernel's
// own ZeroMQ sockets when the kernel runs beside the sidecar.
type conn struct {
	ch      channels
	session string

	mu     sync.Mutex
	subs   map[string]*sub // by parent msg_id
	closed chan struct{}
	err    error

	// recheck asks for the IOPub subscription to be proven again before
	// the next request (the kernel was restarted).
	recheck atomic.Bool
}

// channels carries messages to the kernel; its readers hand the kernel's
// messages to conn.dispatch and end with conn.shutdown.
type channels interface {
	write(m *Message) error
	close()
}

func newConn(session string, ch channels) *conn {
	return &conn{ch: ch, session: session, subs: map[string]*sub{}, closed: make(chan struct{})}
}

// sub receives the messages answering one request.
type sub struct {
	id    string
	msgs  chan *Message
	died  chan struct{} // closed when the kernel dies or the connection drops
	ended chan struct{} // closed when the requester stops listening
	once  sync.Once
}

func (s *sub) kill() { s.once.Do(func() { close(s.died) }) }

// websocketChannels is the Jupyter server's kernel websocket, which
// relays every channel over one connection.
type websocketChannels struct {
	ws      *websocket.Conn
	v1      bool
	writeMu sync.Mutex
}

func dialWebsocket(ctx context.Context, jc *jupyter.Client, kernelID string) (*conn, error) {
	session := newID()
	ws, err := jc.DialWebsocket(ctx, "api/kernels/"+url.PathEscape(kernelID)+"/channels",
		url.Values{"session_id": {session}}, []string{Subprotocol})
	if err != nil {
		return nil, fmt.Errorf("connect to kernel %s: %w", kernelID, err)
	}
	ws.SetReadLimit(256 << 20)
	wc := &websocketChannels{ws: ws, v1: ws.Subprotocol() == Subprotocol}
	c := newConn(session, wc)
	go wc.readLoop(c)
	// The server proves the new connection's IOPub subscription itself
	// (kernel_info requests until IOPub answers), except while it takes the
	// kernel for busy, which it does right after a kernel died mid-run and
	// was restarted (its last state, jupyter_server 2.21): the request sent
	// next then ran without a single IOPub message reaching the sidecar.
	if err := c.awaitSubscription(ctx); err != nil {
		c.shutdown(err)
		return nil, fmt.Errorf("connect to kernel %s: %w", kernelID, err)
	}
	return c, nil
}

func (w *websocketChannels) readLoop(c *conn) {
	var err error
	defer func() { c.shutdown(err) }()
	for {
		var kind int
		var data []byte
		kind, data, err = w.ws.ReadMessage()
		if err != nil {
			return
		}
		var m *Message
		if w.v1 && kind == websocket.BinaryMessage {
			m, err = decodeV1(data)
		} else {
			m, err = decodeLegacy(data)
		}
		if err != nil {
			continue // one bad frame does not end the connection
		}
		err = nil
		c.dispatch(m)
	}
}

func (w *websocketChannels) write(m *Message) error {
	var data []byte
	var err error
	kind := websocket.TextMessage
	if w.v1 {
		data, err = encodeV1(m)
		kind = websocket.BinaryMessage
	} else {
		data, err = encodeLegacy(m)
	}
	if err != nil {
		return err
	}
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	return w.ws.WriteMessage(kind, data)
}

func (w *websocketChannels) close() { _ = w.ws.Close() }

// dispatch routes a message to the request it answers, waiting for a slow
// requester (backpressure on the connection, not dropped outputs). A status
// of "dead" or "restarting" injected by the server ends every request in
// flight.
func (c *conn) dispatch(m *Message) {
	if m.Header.MsgType == "status" && m.Channel == "iopub" {
		var st struct {
			ExecutionState string `json:"execution_state"`
		}
		_ = json.Unmarshal(m.Content, &st)
		if st.ExecutionState == "dead" || st.ExecutionState == "restarting" {
			// Requests in flight are lost, and requests sent while the
			// kernel restarts can be dropped: start over on a fresh
			// connection (the server waits for the new kernel on connect).
			c.shutdown(ErrKernelDied)
			return
		}
	}
	c.mu.Lock()
	s, ok := c.subs[m.ParentHeader.MsgID]
	c.mu.Unlock()
	if !ok {
		return
	}
	select {
	case s.msgs <- m:
	case <-s.ended:
	case <-s.died:
	}
}

func (c *conn) shutdown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	if err == nil {
		err = errors.New("closed")
	}
	c.err = err
	close(c.closed)
	for id, s := range c.subs {
		s.kill()
		delete(c.subs, id)
	}
	c.ch.close()
}

// closeErr is why the connection closed.
func (c *conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// request sends a shell request of this session and returns the
// subscription to its answers. The caller must call c.unsubscribe(s) when
// done.
func (c *conn) request(msgType string, content any) (*sub, error) {
	m, err := newMessage("shell", msgType, c.session, content, nil)
	if err != nil {
		return nil, err
	}
	s := &sub{id: m.Header.MsgID, msgs: make(chan *Message, 256), died: make(chan struct{}), ended: make(chan struct{})}
	c.mu.Lock()
	if c.isClosed() {
		c.mu.Unlock()
		return nil, fmt.Errorf("kernel connection closed: %v", c.err)
	}
	c.subs[s.id] = s
	c.mu.Unlock()
	if err := c.write(m); err != nil {
		c.unsubscribe(s)
		return nil, err
	}
	return s, nil
}

// write sends a message without expecting answers (input_reply).
func (c *conn) write(m *Message) error { return c.ch.write(m) }

func (c *conn) unsubscribe(s *sub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[s.id] == s {
		delete(c.subs, s.id)
	}
	close(s.ended)
}

func (c *conn) close() { c.shutdown(errors.New("closed by the sidecar")) }

// awaitSubscription asks for kernel_info until an IOPub message about the
// request arrives: a kernel publishes busy and idle for every request, so
// that message proves the subscription reached the kernel (a message
// published before it would be lost). A kernel busy with earlier code
// answers when that code ends.
func (c *conn) awaitSubscription(ctx context.Context) error {
	for range maxProbes {
		if live, err := c.probe(ctx); err != nil || live {
			return err
		}
	}
	return errors.New("the kernel answers on shell but publishes nothing on IOPub")
}

// maxProbes bounds the kernel_info requests of awaitSubscription (each
// waits 100 ms after its reply): the subscription takes well under a
// millisecond on loopback.
const maxProbes = 20

// probe sends one kernel_info_request; live is whether an IOPub message
// about it arrived by shortly after its reply.
func (c *conn) probe(ctx context.Context) (live bool, err error) {
	s, err := c.request("kernel_info_request", map[string]any{})
	if err != nil {
		return false, err
	}
	defer c.unsubscribe(s)
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-s.died:
			return false, c.closeErr()
		case <-settle:
			return false, nil // published before the subscription took
		case m := <-s.msgs:
			if m.Channel == "iopub" {
				return true, nil
			}
			// The reply; the status messages travel on another
			// socket and may still be on their way.
			settle = time.After(100 * time.Millisecond)
		}
	}
}
