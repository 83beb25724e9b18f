package kernel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/zmtp"
)

// A kernel started by the local Jupyter server listens on loopback ports
// named in its connection file. Speaking to them directly skips the
// server's websocket relay, which costs a round trip through the server's
// event loop and several milliseconds of its CPU per execution; the
// server still sees every IOPub message on its own subscription, so its
// kernel state, activity and culling are unchanged.

// connectionInfo is the part of a kernel's connection file the sidecar
// uses (jupyter_client writes kernel-<id>.json into the runtime dir).
type connectionInfo struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	Key             string `json:"key"`
	SignatureScheme string `json:"signature_scheme"`
}

// readConnectionFile reads the connection file of kernel id in dir, if
// the kernel is one the sidecar can reach directly.
func readConnectionFile(dir, id string) (*connectionInfo, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.Contains(id, "..") {
		return nil, fmt.Errorf("kernel id %q cannot name a connection file", id)
	}
	b, err := os.ReadFile(filepath.Join(dir, "kernel-"+id+".json"))
	if err != nil {
		return nil, err
	}
	var info connectionInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("kernel %s connection file: %w", id, err)
	}
	if info.Transport != "tcp" {
		return nil, fmt.Errorf("kernel %s: transport %q is not tcp", id, info.Transport)
	}
	if info.Key != "" && info.SignatureScheme != "hmac-sha256" {
		return nil, fmt.Errorf("kernel %s: signature scheme %q is not hmac-sha256", id, info.SignatureScheme)
	}
	return &info, nil
}

func (info *connectionInfo) addr(port int) string {
	ip := info.IP
	if ip == "" || ip == "0.0.0.0" || ip == "*" {
		ip = "127.0.0.1"
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// zmqChannels are the kernel's shell, stdin and IOPub sockets. Shell and
// stdin share one identity: the kernel sends input_request to the
// identity of the shell request that asked for input.
type zmqChannels struct {
	shell, stdin, iopub *zmtp.Conn
	sign                *signer
}

// dialZMQ connects to the kernel's sockets and returns once its IOPub
// subscription is live (a message published before it would be lost).
func dialZMQ(ctx context.Context, info *connectionInfo) (*conn, error) {
	session := newID()
	z := &zmqChannels{sign: newSigner(info.Key)}
	// A kernel on another host (a remote provisioner writing its address
	// here) may not answer at all: give up soon and use the websocket.
	dctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var err error
	if z.iopub, err = zmtp.Dial(dctx, info.addr(info.IOPubPort), zmtp.Sub, nil); err != nil {
		return nil, err
	}
	if z.shell, err = zmtp.Dial(dctx, info.addr(info.ShellPort), zmtp.Dealer, []byte(session)); err != nil {
		z.close()
		return nil, err
	}
	if z.stdin, err = zmtp.Dial(dctx, info.addr(info.StdinPort), zmtp.Dealer, []byte(session)); err != nil {
		z.close()
		return nil, err
	}
	c := newConn(session, z)
	go z.readLoop(c, "shell", z.shell)
	go z.readLoop(c, "stdin", z.stdin)
	go z.readLoop(c, "iopub", z.iopub)
	if err := c.awaitSubscription(ctx); err != nil {
		c.shutdown(err)
		return nil, err
	}
	return c, nil
}

// connectTimeout bounds connecting to the kernel's three sockets.
const connectTimeout = 3 * time.Second

func (z *zmqChannels) readLoop(c *conn, channel string, zc *zmtp.Conn) {
	for {
		parts, err := zc.Recv()
		if err != nil {
			// The kernel process ended (shut down, died or restarted),
			// or the sidecar closed the connection (then the connection
			// is already shut down and this changes nothing).
			c.shutdown(ErrKernelDied)
			return
		}
		m, err := z.decode(channel, parts)
		if err != nil {
			continue // an unsigned or malformed message is dropped, as Jupyter does
		}
		c.dispatch(m)
	}
}

// delimiter separates the routing identities from a message's frames.
var delimiter = []byte("<IDS|MSG>")

var errUnsigned = errors.New("kernel message with a wrong signature")

// decode reads [identities…, <IDS|MSG>, signature, header, parent,
// metadata, content, buffers…].
func (z *zmqChannels) decode(channel string, parts [][]byte) (*Message, error) {
	i := 0
	for i < len(parts) && !bytes.Equal(parts[i], delimiter) {
		i++
	}
	parts = parts[min(i+1, len(parts)):]
	if len(parts) < 5 {
		return nil, errFrame
	}
	if !z.sign.valid(parts[0], parts[1:5]) {
		return nil, errUnsigned
	}
	return fromParts(channel, parts[1:])
}

func (z *zmqChannels) write(m *Message) error {
	signed, err := jsonParts(m)
	if err != nil {
		return err
	}
	frames := append([][]byte{delimiter, z.sign.sign(signed)}, signed...)
	frames = append(frames, m.Buffers...)
	switch m.Channel {
	case "shell":
		return z.shell.Send(frames)
	case "stdin":
		return z.stdin.Send(frames)
	}
	return fmt.Errorf("cannot send on channel %q", m.Channel)
}

func (z *zmqChannels) close() {
	for _, zc := range []*zmtp.Conn{z.shell, z.stdin, z.iopub} {
		if zc != nil {
			_ = zc.Close()
		}
	}
}

// signer signs messages with the kernel's key (HMAC-SHA256 over header,
// parent, metadata and content, hex encoded); an empty key signs nothing.
type signer struct {
	mu  sync.Mutex
	mac hash.Hash
}

func newSigner(key string) *signer {
	if key == "" {
		return &signer{}
	}
	return &signer{mac: hmac.New(sha256.New, []byte(key))}
}

func (s *signer) sign(parts [][]byte) []byte {
	if s.mac == nil {
		return []byte{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mac.Reset()
	for _, p := range parts {
		s.mac.Write(p)
	}
	return hex.AppendEncode(nil, s.mac.Sum(nil))
}

func (s *signer) valid(sig []byte, parts [][]byte) bool {
	if s.mac == nil {
		return true
	}
	return hmac.Equal(sig, s.sign(parts))
}
