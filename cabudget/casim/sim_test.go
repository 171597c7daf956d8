package casim

import (
	"context"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
)

// A small run of the scenario: with the recommended accounts no
// order is refused, nothing expires, and no new domain waits a day; with
// too few accounts the waits grow (the simulation can fail).
func TestSimulation(t *testing.T) {
	cfg := Default()
	cfg.DomainsPerDay, cfg.Days, cfg.ShortAfterDay, cfg.OutageStart = 2_000, 90, 30, 40*24*time.Hour
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Accounts != 2 || res.RenewalOrders == 0 || res.Refused != 0 || res.ExpiredBeforeRenew != 0 || res.LongestFirstWait > 24*time.Hour || res.FirstOrders < res.Domains-100 {
		t.Fatalf("recommended accounts: %+v", res)
	}
	// More new domains a day than one account's 2,400 orders: the queue
	// grows, the CA still refuses nothing.
	cfg.Accounts, cfg.DomainsPerDay, cfg.Days = 1, 3_000, 20
	res, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 0 || res.LongestFirstWait < 24*time.Hour {
		t.Fatalf("one account for 3000 a day: %+v", res)
	}
	if got := Recommend(50_000, 6*time.Hour, cabudget.LetsEncrypt[cabudget.Orders]); got != 27 {
		t.Fatalf("Recommend(50000/day, 6h) = %d, want 27", got)
	}
}
