package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestMemoryBudget(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC)
	for i := 1; i <= 3; i++ {
		d, _ := m.Take(ctx, "org", 3, now)
		if !d.Allowed || d.Remaining != 3-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	d, _ := m.Take(ctx, "org", 3, now)
	if d.Allowed || d.Remaining != 0 || !d.Reset.Equal(now.Add(time.Minute)) || !d.RetryAt.Equal(now.Add(20*time.Second)) {
		t.Fatalf("over limit: %+v", d)
	}
	if d, _ := m.Take(ctx, "other", 3, now); !d.Allowed {
		t.Fatal("keys must not share a budget")
	}
	// One request back every 20 s, not the whole budget at a boundary.
	if d, _ := m.Take(ctx, "org", 3, now.Add(19*time.Second)); d.Allowed {
		t.Fatalf("allowed before the emission interval: %+v", d)
	}
	if d, _ := m.Take(ctx, "org", 3, now.Add(20*time.Second)); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after 20 s: %+v", d)
	}
	if d, _ := m.Take(ctx, "org", 3, now.Add(3*time.Minute)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("idle key: %+v", d)
	}
	m.Take(ctx, "x", 3, now.Add(10*time.Minute))
	if m.Len() != 1 {
		t.Fatalf("idle keys not swept: %d left", m.Len())
	}
}

// TestMemoryBoundaryBurst: a fixed one-minute window let 2×limit through in
// two seconds around a minute boundary; GCRA lets limit (plus what two
// seconds earn) through.
func TestMemoryBoundaryBurst(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	const limit = 60
	before := time.Date(2026, 1, 1, 10, 0, 59, 0, time.UTC)
	after := before.Add(2 * time.Second) // 10:01:01, the next minute
	allowed := 0
	for _, at := range []time.Time{before, after} {
		for range limit {
			if d, _ := m.Take(ctx, "org", limit, at); d.Allowed {
				allowed++
			}
		}
	}
	if allowed != limit+2 {
		t.Fatalf("%d of %d allowed across the boundary, want %d", allowed, 2*limit, limit+2)
	}
}

func TestMemoryAllows(t *testing.T) {
	m := NewMemory()
	now := time.Now().Truncate(time.Second)
	for range 2 {
		if _, ok := m.Allows("ip:1", 2, now); !ok {
			t.Fatal("refused with budget left")
		}
		m.Take(context.Background(), "ip:1", 2, now)
	}
	if d, ok := m.Allows("ip:1", 2, now); ok || d.RetryAt.Sub(now) != 30*time.Second {
		t.Fatalf("allowed over budget: %+v", d)
	}
}
