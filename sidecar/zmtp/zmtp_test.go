package zmtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// peer is the other end, written byte by byte from RFC 23 rather than with
// this package's encoder.
type peer struct {
	t  *testing.T
	nc net.Conn
}

func (p *peer) read(n int) []byte {
	p.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(p.nc, b); err != nil {
		p.t.Fatalf("peer read: %v", err)
	}
	return b
}

// frame reads one frame: flags and body.
func (p *peer) frame() (byte, []byte) {
	p.t.Helper()
	flags := p.read(1)[0]
	var n uint64
	if flags&0x02 != 0 {
		n = binary.BigEndian.Uint64(p.read(8))
	} else {
		n = uint64(p.read(1)[0])
	}
	return flags, p.read(int(n))
}

func (p *peer) write(b ...[]byte) {
	p.t.Helper()
	if _, err := p.nc.Write(bytes.Join(b, nil)); err != nil {
		p.t.Fatalf("peer write: %v", err)
	}
}

func greetingOf(mechanism string) []byte {
	g := append([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 1}, mechanism...)
	return append(g, make([]byte, 64-len(g))...)
}

// ready is a READY command with one property, short framing.
func ready(socketType string) []byte {
	body := append([]byte{5}, "READY"...)
	body = append(body, 11)
	body = append(body, "Socket-Type"...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(socketType)))
	body = append(body, socketType...)
	return append([]byte{0x04, byte(len(body))}, body...)
}

// dialPeer connects a Conn of socketType to a peer that runs serve.
func dialPeer(t *testing.T, socketType string, identity []byte, serve func(p *peer)) (*Conn, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		serve(&peer{t: t, nc: nc})
	}()
	t.Cleanup(func() { <-done })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Dial(ctx, ln.Addr().String(), socketType, identity)
}

// A DEALER greets as ZMTP 3.0 NULL client, announces its type and
// identity, and exchanges multipart messages of short and long frames.
func TestDealerHandshakeAndMessages(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	got := make(chan [][]byte, 1)
	c, err := dialPeer(t, Dealer, []byte("session-1"), func(p *peer) {
		g := p.read(64)
		if !bytes.Equal(g[:12], []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0}) || string(bytes.TrimRight(g[12:32], "\x00")) != "NULL" || g[32] != 0 {
			t.Errorf("greeting = %x", g)
		}
		p.write(greetingOf("NULL"))
		flags, body := p.frame()
		want := append([]byte{5}, "READY"...)
		want = append(want, 11)
		want = append(want, "Socket-Type"...)
		want = append(want, 0, 0, 0, 6)
		want = append(want, "DEALER"...)
		want = append(want, 8)
		want = append(want, "Identity"...)
		want = append(want, 0, 0, 0, 9)
		want = append(want, "session-1"...)
		if flags != 0x04 || !bytes.Equal(body, want) {
			t.Errorf("READY = %x %q", flags, body)
		}
		p.write(ready("ROUTER"))
		// A message from the client: a short frame with MORE, a long one.
		var msg [][]byte
		for {
			flags, body := p.frame()
			msg = append(msg, body)
			if flags&0x01 == 0 {
				break
			}
		}
		got <- msg
		// To the client: a PING first (answered with PONG), then a
		// message of an empty frame and a long last frame.
		p.write([]byte{0x04, 9, 4}, []byte("PING"), []byte{0, 10}, []byte("ab"))
		p.write([]byte{0x01, 0}, []byte{0x02}, binary.BigEndian.AppendUint64(nil, 300), long)
		if flags, body := p.frame(); flags != 0x04 || string(body) != "\x04PONGab" {
			t.Errorf("answer to PING = %x %q", flags, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send([][]byte{[]byte("<IDS|MSG>"), long}); err != nil {
		t.Fatal(err)
	}
	if m := <-got; len(m) != 2 || string(m[0]) != "<IDS|MSG>" || !bytes.Equal(m[1], long) {
		t.Fatalf("peer got %q", m)
	}
	m, err := c.Recv()
	if err != nil || len(m) != 2 || len(m[0]) != 0 || !bytes.Equal(m[1], long) {
		t.Fatalf("Recv = %q, %v", m, err)
	}
	if _, err := c.Recv(); err == nil {
		t.Fatal("Recv after the peer closed: no error")
	}
}

// A SUB subscribes to everything with the ZMTP 3.0 subscription message.
func TestSubSubscribesToEverything(t *testing.T) {
	c, err := dialPeer(t, Sub, nil, func(p *peer) {
		p.read(64)
		p.write(greetingOf("NULL"))
		if _, body := p.frame(); !strings.Contains(string(body), "SUB") || strings.Contains(string(body), "Identity") {
			t.Errorf("READY = %q", body)
		}
		p.write(ready("PUB"))
		if flags, body := p.frame(); flags != 0 || !bytes.Equal(body, []byte{1}) {
			t.Errorf("subscription = %x %x", flags, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// Peers that cannot be spoken to fail the dial with the reason.
func TestHandshakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(p *peer)
		want  string
	}{
		{"curve", func(p *peer) { p.read(64); p.write(greetingOf("CURVE")) }, "mechanism CURVE"},
		{"zmtp 2", func(p *peer) { p.read(64); p.write([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 1}, make([]byte, 53)) }, "ZMTP 3"},
		{"error command", func(p *peer) {
			p.read(64)
			p.write(greetingOf("NULL"))
			p.frame()
			p.write([]byte{0x04, 10, 5}, []byte("ERROR"), []byte{3}, []byte("no!"))
		}, "ERROR instead of READY"},
		{"message before ready", func(p *peer) {
			p.read(64)
			p.write(greetingOf("NULL"))
			p.frame()
			p.write([]byte{0x00, 2}, []byte("hi"))
		}, "message before READY"},
		{"closed", func(p *peer) { p.read(64) }, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialPeer(t, Dealer, nil, tc.serve)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A frame longer than the limit ends the connection instead of allocating.
func TestOversizedFrame(t *testing.T) {
	c, err := dialPeer(t, Dealer, nil, func(p *peer) {
		p.read(64)
		p.write(greetingOf("NULL"))
		p.frame()
		p.write(ready("ROUTER"))
		p.write([]byte{0x02}, binary.BigEndian.AppendUint64(nil, 1<<40))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Recv(); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("Recv = %v", err)
	}
}
