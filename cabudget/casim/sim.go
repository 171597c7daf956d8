// Package casim simulates years of issuance against a CA that enforces
// Let's Encrypt's published limits, in minutes, on a simulated clock. It
// drives the real budget code — cabudget.OrderSpends, cabudget.Memory
// (the Bucket arithmetic the SQL store runs in its UPDATE), Wait and
// FailOver — and aggregates the rest: domains live as cohorts (issued in
// the same minute, same lifetime) instead of database rows, and time moves
// a minute at a time.
package casim

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
)

// Config is one simulated run.
type Config struct {
	DomainsPerDay int
	Days          int
	// Accounts at the CA; 0: Recommend's answer.
	Accounts int
	// ShortAfterDay: certificates issued from this day on are 45-day
	// ones, before it 90-day ones.
	ShortAfterDay int
	// CNAMELossPerMonth is the share of domains whose delegation goes
	// each month (0.01).
	CNAMELossPerMonth float64
	// OutageStart and Outage: the CA answers nothing for this long.
	OutageStart, Outage time.Duration
	Limits              cabudget.Limits
}

// Default is the scenario.
func Default() Config {
	return Config{DomainsPerDay: 50_000, Days: 200, ShortAfterDay: 100, CNAMELossPerMonth: 0.01,
		OutageStart: 150 * 24 * time.Hour, Outage: 6 * time.Hour, Limits: cabudget.LetsEncrypt}
}

// Recommend is the sizing rule: accounts enough for a day's new domains
// plus the backlog of the longest CA outage planned for, drained within a
// day: ceil(perDay × (1 + outage/24h) / ordersPerAccountPerDay).
func Recommend(perDay int, outage time.Duration, orders cabudget.Limit) int {
	perAccount := float64(orders.Count) * float64(24*time.Hour) / float64(orders.Window)
	return int(math.Ceil(float64(perDay) * (1 + outage.Hours()/24) / perAccount))
}

// Result is what a run found.
type Result struct {
	Accounts           int
	Domains            int
	FirstOrders        int
	RenewalOrders      int
	Refused            int // orders the simulated CA refused for a limit
	FailedInOutage     int // orders sent while the CA was down
	ExpiredBeforeRenew int
	LostDelegation     int
	LongestFirstWait   time.Duration
	MaxBudgetRows      int
	Wall               time.Duration
}

type cohort struct {
	count    int
	notAfter int32 // minute
	short    bool
}

type waiting struct {
	since int32 // minute the domain's first order was queued
	n     int
}

// Run runs the simulation.
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	if cfg.Accounts <= 0 {
		cfg.Accounts = Recommend(cfg.DomainsPerDay, cfg.Outage, cfg.Limits[cabudget.Orders])
	}
	res := Result{Accounts: cfg.Accounts}
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	minutes := int32(cfg.Days * 1440)
	budgets := cabudget.NewMemory()
	ca := newCA(cfg.Limits, cfg.Accounts)
	// due[m]: cohorts whose renewal falls in minute m.
	due := make([][]cohort, minutes+1)
	queues := make([][]waiting, cfg.Accounts)
	nextAccount := 0
	names := 0
	outFrom, outTo := int32(cfg.OutageStart/time.Minute), int32((cfg.OutageStart+cfg.Outage)/time.Minute)
	lossPerMinute := cfg.CNAMELossPerMonth / (30 * 1440)
	var lossCarry float64
	onboardCarry := 0.0
	perMinute := float64(cfg.DomainsPerDay) / 1440
	live := 0 // domains with a certificate and a delegation

	schedule := func(m int32, n int, short bool) {
		life := int32(90 * 1440)
		if short {
			life = 45 * 1440
		}
		// ARI window at two-thirds of the lifetime; the renewal check
		// spreads the renewals of one minute's cohort over its spread,
		// here within the same minute.
		at := m + life*2/3
		if at <= minutes {
			due[at] = append(due[at], cohort{count: n, notAfter: m + life, short: short})
		}
	}

	for m := int32(0); m < minutes; m++ {
		if m%1440 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		now := t0.Add(time.Duration(m) * time.Minute)
		down := m >= outFrom && m < outTo
		short := int(m/1440) >= cfg.ShortAfterDay

		// New domains, assigned to accounts in turn (a stable assignment:
		// the account is the domain's for good).
		onboardCarry += perMinute
		for onboardCarry >= 1 {
			onboardCarry--
			a := nextAccount
			nextAccount = (nextAccount + 1) % cfg.Accounts
			q := queues[a]
			if len(q) > 0 && q[len(q)-1].since == m {
				q[len(q)-1].n++
			} else {
				q = append(q, waiting{since: m, n: 1})
			}
			queues[a] = q
			res.Domains++
		}

		// Delegations lost this minute: those domains never renew.
		lossCarry += float64(live) * lossPerMinute
		lost := int(lossCarry)
		lossCarry -= float64(lost)

		// Renewals due: ARI renewals (replaces) are counted, not limited.
		for _, c := range due[m] {
			n := c.count
			if lost > 0 {
				k := min(lost, n)
				n -= k
				lost -= k
				live -= k
				res.LostDelegation += k
			}
			renewed := 0
			for i := range n {
				names++
				if i == 0 {
					// ARI renewals only add to the budgets' exempt counts
					// (never a wait, checked here once per cohort); the
					// rest of the cohort skips the store to keep a
					// 10-million-domain run within minutes.
					sp := cabudget.OrderSpends("letsencrypt", cfg.Limits, 1+names%cfg.Accounts, domainNames(names))
					if w, err := budgets.TakeBudgets(ctx, sp, now, true); err != nil || w != nil {
						return res, fmt.Errorf("exempt renewal waited: %v %v", w, err)
					}
				}
				if down {
					// Retried after the outage (backoff 1m doubling to 1h):
					// it renews within the outage plus an hour, long before
					// notAfter; counted as sent into the outage.
					res.FailedInOutage++
				} else if !ca.order(now, 1+names%cfg.Accounts, true) {
					res.Refused++
				}
				renewed++
			}
			res.RenewalOrders += renewed
			at := m
			if down {
				at = outTo + 60
			}
			if at >= c.notAfter {
				res.ExpiredBeforeRenew += renewed
			}
			schedule(at, renewed, short)
		}
		due[m] = nil

		if down {
			// One probe a minute finds the CA down; it spends a token
			// like any order (the budget is taken before the request).
			sp := cabudget.OrderSpends("letsencrypt", cfg.Limits, 1, nil)
			if w, _ := budgets.TakeBudgets(ctx, sp, now, false); w == nil {
				res.FailedInOutage++
			}
			continue
		}

		// First orders, each account's queue in order, as long as its
		// budgets give tokens; the rest wait for the refill.
		issued := 0
		for a := range queues {
			q := queues[a]
			for len(q) > 0 {
				names++
				sp := cabudget.OrderSpends("letsencrypt", cfg.Limits, a+1, domainNames(names))
				w, err := budgets.TakeBudgets(ctx, sp, now, false)
				if err != nil {
					return res, err
				}
				if w != nil {
					break // deferred to w.Until; nothing else of this account goes before
				}
				if !ca.order(now, a+1, false) {
					res.Refused++
				}
				res.FirstOrders++
				if wait := time.Duration(m-q[0].since) * time.Minute; wait > res.LongestFirstWait {
					res.LongestFirstWait = wait
				}
				issued++
				if q[0].n--; q[0].n == 0 {
					q = q[1:]
				}
			}
			queues[a] = q
		}
		if issued > 0 {
			schedule(m, issued, short)
			live += issued
		}
		if m%360 == 0 {
			res.MaxBudgetRows = max(res.MaxBudgetRows, budgets.Prune(now))
		}
	}
	// Domains still queued at the end have waited since they came.
	for _, q := range queues {
		if len(q) > 0 {
			if wait := time.Duration(minutes-q[0].since) * time.Minute; wait > res.LongestFirstWait {
				res.LongestFirstWait = wait
			}
		}
	}
	res.Wall = time.Since(start)
	return res, nil
}

// domainNames are a customer's names: each customer its own registered
// domain, apex and wildcard.
func domainNames(i int) []string {
	d := "shop.customer" + strconv.Itoa(i) + ".com"
	return []string{d, "*." + d}
}
