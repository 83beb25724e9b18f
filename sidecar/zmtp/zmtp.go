// Package zmtp speaks ZeroMQ's wire protocol (ZMTP 3.0, RFC 23) to one
// peer over one TCP connection: the NULL mechanism, and the DEALER and SUB
// socket types a Jupyter kernel client needs for its shell, stdin and
// IOPub channels.
//
// It is written here rather than taken from a ZeroMQ library because a
// kernel client must know the moment its kernel goes away (the process
// died or was restarted): a ZeroMQ socket hides a lost peer behind
// reconnection and a receive that blocks, while here a read on a closed
// connection fails at once.
package zmtp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Socket types this package speaks.
const (
	Dealer = "DEALER"
	Sub    = "SUB"
)

// Frame flags (RFC 23, "Framing").
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

// maxFrame bounds one frame; a kernel's outputs (images, data frames) are
// large but not this large.
const maxFrame = 1 << 30

// Conn is a ZMTP connection to one peer. Send may be called from one
// goroutine and Recv from another at the same time.
type Conn struct {
	nc net.Conn
	r  *bufio.Reader

	writeMu sync.Mutex
	w       *bufio.Writer
}

// Dial connects to addr (host:port) as a socket of type socketType. A
// DEALER's identity is the routing id its ROUTER peer sees (a Jupyter
// kernel answers stdin requests to the identity of the shell request), a
// SUB subscribes to every message.
func Dial(ctx context.Context, addr, socketType string, identity []byte) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Small buffers: a kernel client holds three connections per kernel,
	// and frames larger than a buffer pass straight through it.
	c := &Conn{nc: nc, r: bufio.NewReaderSize(nc, 8<<10), w: bufio.NewWriterSize(nc, 8<<10)}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if err := c.handshake(socketType, identity); err != nil {
		nc.Close()
		return nil, fmt.Errorf("zmtp handshake with %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	if socketType == Sub {
		// ZMTP 3.0 subscribes with a message: 0x01 then the topic prefix
		// (empty: everything).
		if err := c.Send([][]byte{{1}}); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// greeting is the fixed 64 bytes each side sends first: signature,
// version 3.0, mechanism NULL, as-server 0, filler.
func greeting() []byte {
	g := make([]byte, 64)
	g[0], g[9] = 0xff, 0x7f
	g[10], g[11] = 3, 0
	copy(g[12:32], "NULL")
	return g
}

func (c *Conn) handshake(socketType string, identity []byte) error {
	if _, err := c.nc.Write(greeting()); err != nil {
		return err
	}
	var peer [64]byte
	if _, err := io.ReadFull(c.r, peer[:]); err != nil {
		return err
	}
	if peer[0] != 0xff || peer[9]&1 != 1 || peer[10] < 3 {
		return errors.New("the peer does not speak ZMTP 3")
	}
	if mech := string(bytes.TrimRight(peer[12:32], "\x00")); mech != "NULL" {
		return fmt.Errorf("the peer wants security mechanism %s; only NULL is supported", mech)
	}
	props := map[string][]byte{"Socket-Type": []byte(socketType)}
	if identity != nil {
		props["Identity"] = identity
	}
	if err := c.writeFrame(flagCommand, readyCommand(props)); err != nil {
		return err
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	flags, body, err := c.readFrame()
	if err != nil {
		return err
	}
	if flags&flagCommand == 0 {
		return errors.New("the peer sent a message before READY")
	}
	name, _, err := parseCommand(body)
	if err != nil {
		return err
	}
	if name != "READY" {
		return fmt.Errorf("the peer answered %s instead of READY", name)
	}
	return nil
}

// readyCommand encodes READY with its metadata properties: a name of at
// most 255 bytes, a 4-byte big-endian value length, the value.
func readyCommand(props map[string][]byte) []byte {
	b := []byte{5}
	b = append(b, "READY"...)
	for _, name := range []string{"Socket-Type", "Identity"} {
		v, ok := props[name]
		if !ok {
			continue
		}
		b = append(b, byte(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

func parseCommand(body []byte) (name string, data []byte, err error) {
	if len(body) < 1 || len(body) < 1+int(body[0]) {
		return "", nil, errors.New("malformed ZMTP command")
	}
	return string(body[1 : 1+body[0]]), body[1+body[0]:], nil
}

// Send writes one multipart message.
func (c *Conn) Send(parts [][]byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for i, p := range parts {
		var flags byte
		if i < len(parts)-1 {
			flags = flagMore
		}
		if err := c.writeFrame(flags, p); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

func (c *Conn) writeFrame(flags byte, body []byte) error {
	if len(body) > 255 {
		var h [9]byte
		h[0] = flags | flagLong
		binary.BigEndian.PutUint64(h[1:], uint64(len(body)))
		if _, err := c.w.Write(h[:]); err != nil {
			return err
		}
	} else if _, err := c.w.Write([]byte{flags, byte(len(body))}); err != nil {
		return err
	}
	_, err := c.w.Write(body)
	return err
}

// Recv reads the next multipart message, skipping commands (a peer may
// send PING or SUBSCRIBE-like commands between messages). It fails when
// the connection is closed or the peer breaks the framing.
func (c *Conn) Recv() ([][]byte, error) {
	var parts [][]byte
	for {
		flags, body, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			if len(parts) > 0 {
				return nil, errors.New("a ZMTP command inside a multipart message")
			}
			if name, ctx, err := parseCommand(body); err == nil && name == "PING" {
				c.pong(ctx)
			}
			continue
		}
		parts = append(parts, body)
		if flags&flagMore == 0 {
			return parts, nil
		}
	}
}

// pong answers a heartbeat (ZMTP 3.1, only sent by peers that configured
// one): PONG echoes the ping's context after its 2-byte TTL.
func (c *Conn) pong(ping []byte) {
	if len(ping) < 2 {
		return
	}
	b := append([]byte{4}, "PONG"...)
	b = append(b, ping[2:]...)
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.writeFrame(flagCommand, b) == nil {
		_ = c.w.Flush()
	}
}

func (c *Conn) readFrame() (byte, []byte, error) {
	flags, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	var n uint64
	if flags&flagLong != 0 {
		var h [8]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[:])
	} else {
		s, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n = uint64(s)
	}
	if n > maxFrame {
		return 0, nil, fmt.Errorf("ZMTP frame of %d bytes is over the limit", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, nil, err
	}
	return flags, body, nil
}

// Close closes the connection; a Recv in progress fails.
func (c *Conn) Close() error { return c.nc.Close() }
