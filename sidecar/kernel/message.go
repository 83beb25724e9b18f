// Package kernel talks to Jupyter kernels — on a local kernel's own
// ZeroMQ sockets, or over the server's kernel websocket: message framing
// and signing, one connection per kernel with its own session id,
// in-order execution, and turning IOPub messages into nbformat outputs.
package kernel

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Header is a Jupyter message header.
type Header struct {
	MsgID    string `json:"msg_id"`
	MsgType  string `json:"msg_type"`
	Session  string `json:"session"`
	Username string `json:"username"`
	Date     string `json:"date"`
	Version  string `json:"version"`
}

// Message is one Jupyter message on a channel (shell, iopub, stdin, control).
type Message struct {
	Channel      string          `json:"channel"`
	Header       Header          `json:"header"`
	ParentHeader Header          `json:"parent_header"`
	Metadata     json.RawMessage `json:"metadata"`
	Content      json.RawMessage `json:"content"`
	Buffers      [][]byte        `json:"-"`
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newMessage builds a request from this client session.
func newMessage(channel, msgType, session string, content any, parent *Header) (*Message, error) {
	c, err := json.Marshal(content)
	if err != nil {
		return nil, err
	}
	m := &Message{
		Channel: channel,
		Header: Header{MsgID: newID(), MsgType: msgType, Session: session, Username: "jupyter-mcp-sidecar",
			Date: time.Now().UTC().Format(time.RFC3339Nano), Version: "5.3"},
		Metadata: json.RawMessage("{}"),
		Content:  c,
	}
	if parent != nil {
		m.ParentHeader = *parent
	}
	return m, nil
}

// Subprotocol is the binary framing of jupyter_server ≥ 2
// (docs/source/developers/websocket-protocols.rst).
const Subprotocol = "v1.kernel.websocket.jupyter.org"

// encodeV1 frames a message: u64le count of offsets, the offsets, then the
// channel, header, parent header, metadata, content and buffers. The server
// signs the message for the kernel; the client needs no key.
func encodeV1(m *Message) ([]byte, error) {
	signed, err := jsonParts(m)
	if err != nil {
		return nil, err
	}
	parts := append([][]byte{[]byte(m.Channel)}, signed...)
	parts = append(parts, m.Buffers...)
	n := len(parts) + 1 // offsets: start of each part, then the end
	out := make([]byte, 8*(n+1))
	binary.LittleEndian.PutUint64(out, uint64(n))
	pos := uint64(len(out))
	for i, p := range parts {
		binary.LittleEndian.PutUint64(out[8*(i+1):], pos)
		pos += uint64(len(p))
	}
	binary.LittleEndian.PutUint64(out[8*n:], pos)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

// parentOrEmpty writes {} for a missing parent, as Jupyter does.
func parentOrEmpty(h Header) any {
	if h.MsgID == "" {
		return map[string]any{}
	}
	return h
}

var errFrame = errors.New("malformed kernel websocket frame")

func decodeV1(b []byte) (*Message, error) {
	if len(b) < 8 {
		return nil, errFrame
	}
	n := binary.LittleEndian.Uint64(b)
	if n < 6 || n > 1<<20 || uint64(len(b)) < 8*(n+1) {
		return nil, errFrame
	}
	offsets := make([]uint64, n)
	for i := range offsets {
		offsets[i] = binary.LittleEndian.Uint64(b[8*(i+1):])
	}
	part := func(i int) ([]byte, error) {
		start, end := offsets[i], uint64(len(b))
		if i+1 < len(offsets) {
			end = offsets[i+1]
		}
		if start > end || end > uint64(len(b)) {
			return nil, errFrame
		}
		return b[start:end], nil
	}
	var parts [][]byte
	for i := 0; i < int(n)-1; i++ {
		p, err := part(i)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return fromParts(string(parts[0]), parts[1:])
}

// fromParts reads a message from its header, parent header, metadata,
// content and buffers, as both framings carry them.
func fromParts(channel string, parts [][]byte) (*Message, error) {
	if len(parts) < 4 {
		return nil, errFrame
	}
	m := &Message{Channel: channel}
	if err := json.Unmarshal(parts[0], &m.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errFrame, err)
	}
	_ = json.Unmarshal(parts[1], &m.ParentHeader) // {} for unsolicited messages
	m.Metadata = json.RawMessage(parts[2])
	m.Content = json.RawMessage(parts[3])
	m.Buffers = parts[4:]
	return m, nil
}

// jsonParts encodes a message's header, parent header, metadata and
// content, the parts that are signed.
func jsonParts(m *Message) ([][]byte, error) {
	var parts [][]byte
	for _, v := range []any{m.Header, parentOrEmpty(m.ParentHeader), m.Metadata, m.Content} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
	}
	return parts, nil
}

// decodeLegacy reads the JSON text framing used without a subprotocol.
func decodeLegacy(b []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errFrame, err)
	}
	if m.Channel == "" {
		m.Channel = "shell"
	}
	return &m, nil
}

func encodeLegacy(m *Message) ([]byte, error) {
	return json.Marshal(struct {
		Channel      string          `json:"channel"`
		Header       Header          `json:"header"`
		ParentHeader any             `json:"parent_header"`
		Metadata     json.RawMessage `json:"metadata"`
		Content      json.RawMessage `json:"content"`
	}{m.Channel, m.Header, parentOrEmpty(m.ParentHeader), m.Metadata, m.Content})
}
