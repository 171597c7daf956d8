// Package ratelimit holds the in-process rate limiter, for single-node
// deployments (SQLite). Clusters count in the database instead
// (sqlstore.DB implements the same dcvaas.RateLimiter).
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Memory counts requests per key in fixed one-minute windows.
type Memory struct {
	mu      sync.Mutex
	windows map[string]*window
	swept   time.Time
}

type window struct {
	start time.Time
	count int
}

// NewMemory returns an empty limiter.
func NewMemory() *Memory { return &Memory{windows: map[string]*window{}} }

// Take implements dcvaas.RateLimiter; it never fails.
func (m *Memory) Take(_ context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, error) {
	start := now.UTC().Truncate(time.Minute)
	m.mu.Lock()
	defer m.mu.Unlock()
	// Drop finished windows once a minute so idle keys do not pile up.
	if start.After(m.swept) {
		for k, w := range m.windows {
			if w.start.Before(start) {
				delete(m.windows, k)
			}
		}
		m.swept = start
	}
	w := m.windows[key]
	if w == nil || !w.start.Equal(start) {
		w = &window{start: start}
		m.windows[key] = w
	}
	w.count++
	return dcvaas.RateDecision{
		Allowed:   w.count <= limit,
		Limit:     limit,
		Remaining: max(limit-w.count, 0),
		Reset:     start.Add(time.Minute),
	}, nil
}
