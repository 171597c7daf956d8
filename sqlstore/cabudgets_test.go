package sqlstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// Budgets shared through the database: all or nothing per order, and
// never more tokens than the budget holds however many takers race —
// on PostgreSQL, two store handles play two nodes of a cluster.
func TestCABudgets(t *testing.T) {
	for _, d := range storetest.Dialects(t) {
		t.Run(string(d), func(t *testing.T) {
			url := storetest.URL(t, d)
			node1 := storetest.Open(t, url)
			node2 := node1
			if d == sqlstore.Postgres {
				node2 = storetest.Open(t, url)
			}
			ctx := context.Background()
			t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			lim := cabudget.Limits{cabudget.Orders: {Count: 3, Window: 3 * time.Minute}, cabudget.PerDomain: {Count: 2, Window: time.Hour}}
			take := func(db *sqlstore.DB, name string, at time.Time) *cabudget.Wait {
				t.Helper()
				w, err := db.TakeBudgets(ctx, cabudget.OrderSpends("letsencrypt", lim, 1, []string{name, "*." + name}), at, false)
				if err != nil {
					t.Fatal(err)
				}
				return w
			}
			if w := take(node1, "a.example.com", t0); w != nil {
				t.Fatal(w)
			}
			if w := take(node2, "b.example.com", t0); w != nil {
				t.Fatal(w)
			}
			// The registered domain's budget is empty; the order budget
			// still has one token, which the refused order must not spend.
			w := take(node1, "c.example.com", t0)
			if w == nil || w.For != "letsencrypt per-domain budget of example.com" || !w.Until.Equal(t0.Add(30*time.Minute)) {
				t.Fatalf("wait = %v, want the per-domain budget until +30m", w)
			}
			if w := take(node2, "shop.example.org", t0); w != nil {
				t.Fatalf("last order token not there: %v", w)
			}
			w = take(node1, "x.example.net", t0)
			if w == nil || w.For != "letsencrypt orders budget" || !w.Until.Equal(t0.Add(time.Minute)) {
				t.Fatalf("wait = %v, want the orders budget until +1m", w)
			}
			// An ARI renewal is counted, not limited.
			if w, err := node1.TakeBudgets(ctx, cabudget.OrderSpends("letsencrypt", lim, 1, []string{"a.example.com"}), t0, true); err != nil || w != nil {
				t.Fatalf("exempt take: %v %v", w, err)
			}
			st, err := node2.ListBudgets(ctx, cabudget.Orders)
			if err != nil || len(st) != 1 {
				t.Fatalf("budgets = %v, %v", st, err)
			}
			if s := st[0]; s.Taken != 3 || s.Exempt != 1 || s.Remaining(t0) != 0 || !s.NextRefill(t0).Equal(t0.Add(time.Minute)) || s.Limit != lim[cabudget.Orders] {
				t.Fatalf("orders budget = %+v", s)
			}
			if n, err := node1.PruneBudgets(ctx, t0.Add(2*time.Hour)); err != nil || n != 2 {
				t.Fatalf("pruned %d, %v; want the 2 per-domain rows of full budgets", n, err)
			}

			// Racing takers: 40 goroutines over two nodes, one second of
			// budget time each, want no more than the budget allows.
			race := cabudget.Limits{cabudget.Orders: {Count: 5, Window: 10 * time.Second}}
			var got atomic.Int64
			var wg sync.WaitGroup
			t1 := t0.Add(24 * time.Hour)
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db := node1
					if i%2 == 1 {
						db = node2
					}
					at := t1.Add(time.Duration(i%4) * time.Second)
					w, err := db.TakeBudgets(ctx, cabudget.OrderSpends("zerossl", race, 2, nil), at, false)
					if err != nil {
						t.Error(err)
					} else if w == nil {
						got.Add(1)
					}
				}()
			}
			wg.Wait()
			// 5 at once, then one back every 2s: by t1+3s at most 6.
			if n := got.Load(); n < 5 || n > 6 {
				t.Fatalf("%d tokens taken by racing nodes, want 5 or 6 (5 + one refilled)", n)
			}
			st, _ = node1.ListBudgets(ctx, cabudget.Orders)
			for _, s := range st {
				if s.CA == "zerossl" && s.Taken != got.Load() {
					t.Fatalf("stored taken = %d, takers saw %d", s.Taken, got.Load())
				}
			}
		})
	}
}
