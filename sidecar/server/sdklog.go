package server

import (
	"context"
	"log/slog"

	"github.com/rs/zerolog"
)

// sdkLogger is the *slog.Logger handed to go-sdk, so that its own session
// and transport errors reach the sidecar's log (go-sdk discards them when
// it has no logger). Its lines carry component "go-sdk".
func sdkLogger(log zerolog.Logger) *slog.Logger {
	return slog.New(&zerologHandler{log: log.With().Str("component", "go-sdk").Logger()})
}

// zerologHandler is a slog.Handler that writes to a zerolog.Logger.
//
// go-sdk logs at Info what happens to every session (connected,
// initialized, subscribed, ended) — under the stateless protocol a session
// per request — so its Info lines go out at Debug; its warnings and errors
// keep their level.
type zerologHandler struct {
	log    zerolog.Logger
	prefix string      // the open groups, "a.b.", prefixed to attribute keys
	attrs  []slog.Attr // from WithAttrs, their keys prefixed already
}

func sdkLevel(l slog.Level) zerolog.Level {
	switch {
	case l >= slog.LevelError:
		return zerolog.ErrorLevel
	case l >= slog.LevelWarn:
		return zerolog.WarnLevel
	default:
		return zerolog.DebugLevel
	}
}

func (h *zerologHandler) Enabled(_ context.Context, l slog.Level) bool {
	return sdkLevel(l) >= h.log.GetLevel()
}

func (h *zerologHandler) Handle(_ context.Context, r slog.Record) error {
	ev := h.log.WithLevel(sdkLevel(r.Level))
	for _, a := range h.attrs {
		addAttr(ev, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(ev, h.prefix, a)
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (h *zerologHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	all := append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		all = append(all, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &zerologHandler{log: h.log, prefix: h.prefix, attrs: all}
}

func (h *zerologHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &zerologHandler{log: h.log, prefix: h.prefix + name + ".", attrs: h.attrs}
}

// addAttr adds a to ev, a group's members as "group.key".
func addAttr(ev *zerolog.Event, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, m := range v.Group() {
			addAttr(ev, p, m)
		}
	case slog.KindString:
		ev.Str(prefix+a.Key, v.String())
	case slog.KindInt64:
		ev.Int64(prefix+a.Key, v.Int64())
	case slog.KindBool:
		ev.Bool(prefix+a.Key, v.Bool())
	case slog.KindDuration:
		ev.Dur(prefix+a.Key, v.Duration())
	default:
		if err, ok := v.Any().(error); ok {
			ev.Str(prefix+a.Key, err.Error())
			return
		}
		ev.Interface(prefix+a.Key, v.Any())
	}
}
