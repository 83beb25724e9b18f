package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/embed"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// syncBuffer is a log sink the HTTP handlers' goroutines write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSDKLoggerWritesZerolog(t *testing.T) {
	tests := []struct {
		name  string
		level zerolog.Level // the sidecar's level
		log   func(*slog.Logger)
		want  map[string]any // nil: nothing written
	}{
		{"error with attributes", zerolog.InfoLevel,
			func(l *slog.Logger) {
				l.Error("server connect failed", "error", errors.New("boom"), "n", 3, "ok", true)
			},
			map[string]any{"level": "error", "message": "server connect failed", "error": "boom", "n": 3.0, "ok": true, "component": "go-sdk"}},
		{"warning", zerolog.InfoLevel,
			func(l *slog.Logger) { l.Warn("writing close event", "took", time.Second) },
			map[string]any{"level": "warn", "message": "writing close event", "took": 1000.0}},
		{"info is the SDK's session chatter: debug", zerolog.InfoLevel,
			func(l *slog.Logger) { l.Info("server session connected", "session_id", "s1") },
			nil},
		{"info at debug level", zerolog.DebugLevel,
			func(l *slog.Logger) { l.Info("server session connected", "session_id", "s1") },
			map[string]any{"level": "debug", "message": "server session connected", "session_id": "s1"}},
		{"groups and attributes of the logger", zerolog.InfoLevel,
			func(l *slog.Logger) {
				l.With("a", "x").WithGroup("g").With("b", "y").Error("m", slog.Group("h", "c", "z"))
			},
			map[string]any{"a": "x", "g.b": "y", "g.h.c": "z", "message": "m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf syncBuffer
			tc.log(sdkLogger(zerolog.New(&buf).Level(tc.level)))
			lines := buf.lines(t)
			if tc.want == nil {
				if len(lines) != 0 {
					t.Fatalf("wrote %v, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("wrote %d lines (%v), want 1", len(lines), lines)
			}
			for k, v := range tc.want {
				if lines[0][k] != v {
					t.Errorf("%s = %v, want %v (line %v)", k, lines[0][k], v, lines[0])
				}
			}
		})
	}
}

// go-sdk's own errors reach the sidecar's log: a 2026-07-28 request sent
// into a stateful session (the stateful transport refuses it and logs why),
// and initialize under 2026-07-28 (the server refuses a method the new
// protocol removed, and logs it).
func TestSDKErrorsReachTheLog(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.InfoLevel)
	s := New(Config{BaseURL: "/"}, &tools.Tools{Sessions: tools.NewSessions(), Views: &embed.Hub{}}, log)
	h := s.Handler()
	post := func(t *testing.T, body string, header map[string]string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest("POST", "http://127.0.0.1/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(AuthHeader, "token")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	init := post(t, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`, nil)
	session := init.Header().Get("Mcp-Session-Id")
	if init.Code != 200 || session == "" {
		t.Fatalf("initialize: %d %s", init.Code, init.Body)
	}
	post(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"})

	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		want   string // in a go-sdk log line's message
		level  string
	}{
		{"a 2026-07-28 request in a stateful session",
			`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			map[string]string{"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"},
			400, "this server is stateful", "warn"},
		{"initialize under 2026-07-28",
			`{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"t","version":"0"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"0"}}}}`,
			map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "initialize"},
			0, "method removed in the new protocol", "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := post(t, tc.body, tc.header)
			if tc.status != 0 && rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			for _, l := range buf.lines(t) {
				if l["component"] == "go-sdk" && strings.Contains(l["message"].(string), tc.want) {
					if l["level"] != tc.level {
						t.Errorf("level %v, want %s: %v", l["level"], tc.level, l)
					}
					return
				}
			}
			t.Fatalf("no go-sdk line with %q in the log:\n%s", tc.want, buf.String())
		})
	}
}
