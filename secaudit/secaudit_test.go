package secaudit_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestAggregate: a thousand failed authentications from one address in a
// minute are one entry with count 1000, written when the minute is over;
// two recorders (two nodes) add to the same entry.
func TestAggregate(t *testing.T) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.NewDB(t, d, sqlstore.Options{})
			clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)}
			a, b := secaudit.New(db, clk.Now, nil), secaudit.New(db, clk.Now, nil)
			for range 1000 {
				a.Add(dcvaas.SecurityAuthFailed, "", "192.0.2.1")
			}
			b.Add(dcvaas.SecurityAuthFailed, "", "192.0.2.1")
			a.Add(dcvaas.SecurityKeyReadDenied, "org-1", "192.0.2.9")
			if err := a.Flush(ctx, false); err != nil {
				t.Fatal(err)
			}
			list := func() []dcvaas.SecurityCount {
				t.Helper()
				cs, err := db.ListSecurityCounts(ctx, clk.Now().Add(-time.Hour), 100)
				if err != nil {
					t.Fatal(err)
				}
				return cs
			}
			if cs := list(); len(cs) != 0 {
				t.Fatalf("written before the minute ended: %+v", cs)
			}
			clk.Advance(time.Minute)
			a.Add(dcvaas.SecurityAuthFailed, "", "192.0.2.1") // the next minute
			if err := a.Flush(ctx, false); err != nil {
				t.Fatal(err)
			}
			if err := b.Stop(ctx); err != nil { // shutdown writes all
				t.Fatal(err)
			}
			minute := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			want := []dcvaas.SecurityCount{
				{Action: dcvaas.SecurityAuthFailed, Source: "192.0.2.1", Minute: minute, Count: 1001},
				{Action: dcvaas.SecurityKeyReadDenied, OrgID: "org-1", Source: "192.0.2.9", Minute: minute, Count: 1},
			}
			cs := list()
			if len(cs) != 2 || cs[0] != want[0] || cs[1] != want[1] {
				t.Fatalf("entries %+v, want %+v", cs, want)
			}
		})
	}
}

type failing struct{ dcvaas.SecurityAuditStore }

func (failing) AddSecurityCounts(context.Context, []dcvaas.SecurityCount) error {
	return errors.New("down")
}

// TestBounded: many sources share one overflow entry; a failed write
// keeps the counts.
func TestBounded(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 1, 12, 0, 10, 0, time.UTC)}
	var got []dcvaas.SecurityCount
	store := &memStore{add: func(cs []dcvaas.SecurityCount) { got = append(got, cs...) }}
	r := secaudit.New(store, clk.Now, nil)
	for i := range 20_000 {
		r.Add(dcvaas.SecurityAuthFailed, "", "198.51.100."+strconv.Itoa(i))
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total, overflow int64
	for _, c := range got {
		total += c.Count
		if c.Source == secaudit.Overflow {
			overflow = c.Count
		}
	}
	if len(got) != 10_001 || total != 20_000 || overflow != 10_000 {
		t.Fatalf("%d entries, total %d, overflow %d", len(got), total, overflow)
	}

	f := secaudit.New(failing{}, clk.Now, nil)
	f.Add(dcvaas.SecurityAuthFailed, "", "192.0.2.1")
	if err := f.Flush(context.Background(), true); err == nil {
		t.Fatal("no error")
	}
}

type memStore struct {
	dcvaas.SecurityAuditStore
	add func([]dcvaas.SecurityCount)
}

func (m *memStore) AddSecurityCounts(_ context.Context, cs []dcvaas.SecurityCount) error {
	m.add(cs)
	return nil
}
