package jobs

import (
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestRenewalCheckPacesOrders: the renewals that spend the CA's new-order
// budget (no ARI window, so no replaces) start one OrderPace apart, a
// steady flow at the pace the budget refills, not all at the check; a
// renewal ARI covers (exempt from the budget) is not held back.
func TestRenewalCheckPacesOrders(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		const pace = 7 * time.Minute
		b := setup(t, dialect, func(c *Config) {
			c.Issuer = newFakeARI()
			c.Renewal.OrderPace = pace
		})
		now := b.clock.Now().Truncate(time.Second)
		var budgeted []string
		for _, l := range []string{"a", "b", "c", "d", "e"} {
			budgeted = append(budgeted, b.activeDomain("paced"+l, now.Add(-70*day), now.Add(20*day)).ID)
		}
		covered := b.activeDomain("covered", now.Add(-10*day), now.Add(80*day))
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE domains SET ari_start = $1, ari_end = $2, ari_next_check = $3,
			renewal_info_for = expires_at WHERE id = $4`, now.Add(-time.Hour).UnixMicro(), now.Add(day).UnixMicro(),
			now.Add(day).UnixMicro(), covered.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().ExecContext(b.ctx, `UPDATE domains SET ari_next_check = $1 WHERE id <> $2`, now.Add(day).UnixMicro(), covered.ID); err != nil {
			t.Fatal(err)
		}
		start := b.clock.Now()
		if run := b.check(); run.Due != 6 || run.Queued != 6 {
			t.Fatalf("run = %+v", run)
		}
		var offsets []time.Duration
		for _, id := range budgeted {
			r := b.renewals(id)
			if len(r) != 1 {
				t.Fatalf("%d renewals of %s", len(r), id)
			}
			offsets = append(offsets, r[0].RunAt.Sub(start))
		}
		slices.Sort(offsets)
		for k, off := range offsets {
			if want := time.Duration(k) * pace; off < want-time.Second || off > want+time.Second {
				t.Fatalf("renewal %d starts %s after the check, want %s (all: %v)", k, off, want, offsets)
			}
		}
		if r := b.renewals(covered.ID); len(r) != 1 || r[0].RunAt.Sub(start) > time.Second {
			t.Fatalf("the ARI renewal was held back: %+v", r)
		}
	})
}

func TestOrderPace(t *testing.T) {
	le := cabudget.Default("letsencrypt")[cabudget.Orders] // 300 per 3h: one back every 36s
	for _, tc := range []struct {
		lim      cabudget.Limit
		accounts int
		want     time.Duration
	}{
		{le, 1, 72 * time.Second},
		{le, 3, 24 * time.Second},
		{cabudget.Limit{}, 1, 0},
	} {
		if got := OrderPace(tc.lim, tc.accounts); got != tc.want {
			t.Errorf("OrderPace(%v, %d) = %s, want %s", tc.lim, tc.accounts, got, tc.want)
		}
	}
}
