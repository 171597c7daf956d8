package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestMemoryWindow(t *testing.T) {
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
	if d.Allowed || d.Remaining != 0 || !d.Reset.Equal(now.Truncate(time.Minute).Add(time.Minute)) {
		t.Fatalf("over limit: %+v", d)
	}
	if d, _ := m.Take(ctx, "other", 3, now); !d.Allowed {
		t.Fatal("keys must not share a budget")
	}
	if d, _ := m.Take(ctx, "org", 3, now.Add(time.Minute)); !d.Allowed || d.Remaining != 2 {
		t.Fatalf("next window: %+v", d)
	}
	if len(m.windows) != 1 {
		t.Fatalf("old windows not swept: %d left", len(m.windows))
	}
}
