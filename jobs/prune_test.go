package jobs

import (
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// The daily renewal check prunes the CA budgets that are full again, so
// the table does not keep a row for every registered domain and name set
// ever ordered; budgets still being refilled, and the account order
// budgets the API lists, stay.
func TestRenewalCheckPrunesFullBudgets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		lim := cabudget.Limits{cabudget.Orders: {Count: 300, Window: 3 * time.Hour}, cabudget.PerDomain: {Count: 1, Window: time.Hour},
			cabudget.Duplicate: {Count: 1, Window: time.Hour}}
		now := b.clock.Now()
		take := func(name string, at time.Time) {
			t.Helper()
			if w, err := b.db.TakeBudgets(b.ctx, cabudget.OrderSpends("letsencrypt", lim, 1, []string{name}), at, false); err != nil || w != nil {
				t.Fatalf("take %s: %v %v", name, w, err)
			}
		}
		take("old.example.com", now.Add(-3*time.Hour)) // full again an hour later
		take("new.example.org", now.Add(-time.Minute)) // refills in 59 minutes
		before, err := b.db.ListBudgets(b.ctx)
		if err != nil || len(before) != 5 {
			t.Fatalf("budgets before = %d, %v; want orders + 2 per-domain + 2 duplicate", len(before), err)
		}
		if _, err := b.e.RenewalCheck(b.ctx, CauseCLI); err != nil {
			t.Fatal(err)
		}
		after, err := b.db.ListBudgets(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		left := map[string]bool{}
		for _, s := range after {
			left[s.Name()] = true
		}
		want := []string{"letsencrypt orders budget", "letsencrypt per-domain budget of example.org"}
		if len(after) != 3 || !left[want[0]] || !left[want[1]] {
			t.Fatalf("budgets after the check = %v; want the orders budget and new.example.org's two", left)
		}
		for name := range left {
			if name == "letsencrypt per-domain budget of example.com" {
				t.Fatalf("the full per-domain budget of example.com was kept")
			}
		}
	})
}
