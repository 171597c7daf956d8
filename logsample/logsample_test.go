package logsample

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestSampling(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{now: time.Date(2026, 1, 1, 10, 0, 5, 0, time.UTC)}
	h := New(slog.NewTextHandler(&buf, nil), 3, clk.Now, "status")
	log := slog.New(h).With("component", "api")
	for range 1000 {
		log.Warn("request refused", "status", 401)
	}
	log.Warn("request refused", "status", 429) // another key
	lines := func() int { return strings.Count(buf.String(), "\n") }
	if n := lines(); n != 4 {
		t.Fatalf("%d lines in the first minute, want 4:\n%s", n, buf.String())
	}
	clk.Advance(time.Minute)
	log.Warn("request refused", "status", 401)
	out := buf.String()
	if n := lines(); n != 6 || !strings.Contains(out, "suppressed=997") || !strings.Contains(out, `message="request refused"`) {
		t.Fatalf("next minute: want a summary and the line:\n%s", out)
	}
	for range 10 {
		log.Warn("request refused", "status", 401)
	}
	h.Flush(context.Background())
	if !strings.Contains(buf.String(), "suppressed=8") {
		t.Fatalf("flush wrote no summary:\n%s", buf.String())
	}
}

func TestSamplingBoundedKeys(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{now: time.Date(2026, 1, 1, 10, 0, 5, 0, time.UTC)}
	log := slog.New(New(slog.NewTextHandler(&buf, nil), 1, clk.Now, "ip"))
	for i := range maxKeys + 5000 {
		log.Warn("bad", "ip", i)
	}
	if n := strings.Count(buf.String(), "\n"); n != maxKeys+1 {
		t.Fatalf("%d lines, want %d", n, maxKeys+1)
	}
}
