// Package ratelimit holds the in-process rate limiter, for single-node
// deployments (SQLite) and for per-client-IP limits, and the client-IP
// rules (X-Forwarded-For from trusted proxies only). Clusters count
// organizations and users in the database instead (sqlstore.DB implements
// the same dcvaas.RateLimiter).
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// maxKeys bounds the memory a flood of distinct keys (client addresses)
// can take: past it, keys whose budget is full again are swept at once,
// and if that frees nothing a new key is refused.
const maxKeys = 200_000

// Memory implements dcvaas.RateLimiter (GCRA) in memory.
type Memory struct {
	mu    sync.Mutex
	tats  map[string]int64 // key → theoretical arrival time, µs
	swept time.Time
}

// NewMemory returns an empty limiter.
func NewMemory() *Memory { return &Memory{tats: map[string]int64{}} }

// Take implements dcvaas.RateLimiter; it never fails.
func (m *Memory) Take(_ context.Context, key string, limit int, now time.Time) (dcvaas.RateDecision, error) {
	g := dcvaas.NewGCRA(limit)
	us := now.UnixMicro()
	m.mu.Lock()
	defer m.mu.Unlock()
	// A key whose TAT has passed is as good as absent: drop those once a
	// minute so idle keys do not pile up.
	if now.Sub(m.swept) >= time.Minute || len(m.tats) >= maxKeys {
		m.sweep(us)
		m.swept = now
	}
	tat, ok := m.tats[key]
	if !ok && len(m.tats) >= maxKeys {
		return dcvaas.RateDecision{Limit: g.Limit, Reset: now.Add(time.Minute), RetryAt: now.Add(time.Second)}, nil
	}
	newTAT, granted := g.Apply(tat, us, 1)
	m.tats[key] = newTAT
	return g.Decisions(newTAT, us, 1, granted)[0], nil
}

// Allows reports whether a request of key would be allowed at now, without
// counting it; it is how a client that is over its budget is turned away
// before its request costs anything.
func (m *Memory) Allows(key string, limit int, now time.Time) (dcvaas.RateDecision, bool) {
	g := dcvaas.NewGCRA(limit)
	us := now.UnixMicro()
	m.mu.Lock()
	tat := m.tats[key]
	m.mu.Unlock()
	newTAT, granted := g.Apply(tat, us, 1)
	if granted == 1 {
		return dcvaas.RateDecision{Allowed: true, Limit: g.Limit}, true
	}
	return g.Decisions(newTAT, us, 1, 0)[0], false
}

func (m *Memory) sweep(now int64) {
	for k, tat := range m.tats {
		if tat <= now {
			delete(m.tats, k)
		}
	}
}

// Len is the number of keys held, for tests.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tats)
}
