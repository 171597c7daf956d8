package jobs

import (
	"context"
	"log/slog"
	"strings"
)

// riverLog is the logger River gets: its routine lines ("River client
// started", leadership changes, periodic maintenance) are internal detail,
// so info becomes debug; warnings and errors stay. Its snake_case keys
// become camelCase, the one key style of dcvaas's logs and JSON.
func riverLog(log *slog.Logger) *slog.Logger {
	return slog.New(riverHandler{log.Handler()})
}

type riverHandler struct{ next slog.Handler }

func (h riverHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l == slog.LevelInfo {
		l = slog.LevelDebug
	}
	return h.next.Enabled(ctx, l)
}

func (h riverHandler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	out := slog.NewRecord(r.Time, level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(camelAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h riverHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	for i, a := range attrs {
		attrs[i] = camelAttr(a)
	}
	return riverHandler{h.next.WithAttrs(attrs)}
}

func (h riverHandler) WithGroup(name string) slog.Handler {
	return riverHandler{h.next.WithGroup(camel(name))}
}

func camelAttr(a slog.Attr) slog.Attr {
	a.Key = camel(a.Key)
	return a
}

// camel turns client_id into clientId.
func camel(k string) string {
	if !strings.Contains(k, "_") {
		return k
	}
	parts := strings.Split(k, "_")
	for i := 1; i < len(parts); i++ {
		if p := parts[i]; p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}
