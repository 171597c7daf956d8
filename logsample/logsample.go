// Package logsample bounds repeated log lines: a slog.Handler wrapper that
// passes the first N records of each key per minute and then counts the
// rest, writing one "log lines suppressed" summary per key when its minute
// is over. A flood of bad requests, or a resolver outage seen by every
// domain's check, so writes at most N lines (plus one summary) per key and
// minute instead of one per event.
package logsample

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// maxKeys bounds the keys tracked in one minute; records of further keys
// share one overflow key.
const maxKeys = 10_000

// Handler is the sampling slog.Handler.
type Handler struct {
	next  slog.Handler
	state *state
	attrs []slog.Attr // from WithAttrs, for keying
}

type state struct {
	n    int
	keys []string // attribute names whose values, with the message, form the key
	now  func() time.Time

	mu     sync.Mutex
	minute time.Time
	counts map[string]*count
}

type count struct {
	seen  int
	level slog.Level
	msg   string
}

// New returns a handler passing to next the first n records per minute of
// each key: the level, the message and the values of the attributes named
// keys (e.g. "route", "status"). now may be nil (time.Now).
func New(next slog.Handler, n int, now func() time.Time, keys ...string) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{next: next, state: &state{n: max(n, 1), keys: keys, now: now, counts: map[string]*count{}}}
}

// Logger is New wrapped in a *slog.Logger.
func Logger(log *slog.Logger, n int, keys ...string) *slog.Logger {
	return slog.New(New(log.Handler(), n, nil, keys...))
}

func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), state: h.state, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state, attrs: h.attrs}
}

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	key := h.key(r)
	s := h.state
	s.mu.Lock()
	minute := s.now().Truncate(time.Minute)
	var summaries []slog.Record
	if !minute.Equal(s.minute) {
		summaries = s.rollover(minute)
	}
	c := s.counts[key]
	if c == nil {
		if len(s.counts) >= maxKeys {
			key = "(other keys)"
			if c = s.counts[key]; c == nil {
				c = &count{level: slog.LevelWarn, msg: key}
				s.counts[key] = c
			}
		} else {
			c = &count{level: r.Level, msg: r.Message}
			s.counts[key] = c
		}
	}
	c.seen++
	pass := c.seen <= s.n
	s.mu.Unlock()
	for _, sr := range summaries {
		_ = h.next.Handle(ctx, sr)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// Flush writes the summaries of the current minute now (at shutdown).
func (h *Handler) Flush(ctx context.Context) {
	s := h.state
	s.mu.Lock()
	summaries := s.rollover(s.now().Truncate(time.Minute).Add(time.Nanosecond))
	s.mu.Unlock()
	for _, sr := range summaries {
		_ = h.next.Handle(ctx, sr)
	}
}

// rollover starts minute, returning the summaries of the one that ended.
// The caller holds mu.
func (s *state) rollover(minute time.Time) []slog.Record {
	var out []slog.Record
	for key, c := range s.counts {
		if c.seen > s.n {
			r := slog.NewRecord(s.now(), max(c.level, slog.LevelWarn), "log lines suppressed", 0)
			r.AddAttrs(slog.String("message", c.msg), slog.String("key", key), slog.Int("suppressed", c.seen-s.n),
				slog.Time("minute", s.minute))
			out = append(out, r)
		}
	}
	s.minute = minute
	s.counts = map[string]*count{}
	return out
}

func (h *Handler) key(r slog.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s", r.Level, r.Message)
	if len(h.state.keys) == 0 {
		return b.String()
	}
	vals := make([]string, len(h.state.keys))
	set := func(a slog.Attr) {
		for i, k := range h.state.keys {
			if a.Key == k {
				vals[i] = a.Value.String()
			}
		}
	}
	for _, a := range h.attrs {
		set(a)
	}
	r.Attrs(func(a slog.Attr) bool { set(a); return true })
	for _, v := range vals {
		b.WriteString("|")
		b.WriteString(v)
	}
	return b.String()
}
