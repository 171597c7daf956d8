package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/benchdoc"
	"github.com/dcvaas/dcvaas/cabudget/casim"
)

// caSim runs the CA budget simulation (cabudget/casim): the issue's
// 10-million-domain scenario with the recommended accounts, and with the
// bare minimum for comparison.
func caSim(ctx context.Context, args []string) error {
	fs := flagSet("ca-sim")
	perDay := fs.Int("per-day", 50_000, "new domains a day")
	days := fs.Int("days", 200, "simulated days")
	compare := fs.Bool("compare", false, "also run with only the accounts a day's new orders need (no outage headroom)")
	write := fs.String("write", "", "markdown file whose \"## CA budgets simulation\" section gets the results")
	fs.Parse(args)
	if *perDay < 1 || *days < 1 {
		return fmt.Errorf("-per-day and -days must be positive")
	}
	cfg := casim.Default()
	cfg.DomainsPerDay, cfg.Days = *perDay, *days
	cfg.ShortAfterDay = *days / 2
	cfg.OutageStart = time.Duration(*days*3/4) * 24 * time.Hour
	rec := casim.Recommend(cfg.DomainsPerDay, cfg.Outage, cfg.Limits["orders"])
	bare := (cfg.DomainsPerDay + 2399) / 2400

	var out strings.Builder
	fmt.Fprintf(&out, "Command: `go run ./cmd/dcvaas-bench ca-sim -per-day %d -days %d -write docs/benchmarks.md` (%d CPUs, %s).\n\n",
		*perDay, *days, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&out, "%d new domains a day for %d days (%d domains), 90-day certificates until day %d and 45-day ones after, "+
		"ARI renewal at two-thirds of the lifetime, %.0f%% of delegations lost a month, one %s CA outage on day %d; "+
		"the simulated CA enforces Let's Encrypt's published limits (%s).\n\n",
		cfg.DomainsPerDay, cfg.Days, cfg.DomainsPerDay*cfg.Days, cfg.ShortAfterDay, cfg.CNAMELossPerMonth*100, cfg.Outage,
		int(cfg.OutageStart/(24*time.Hour)), cfg.Limits)
	out.WriteString("| accounts | first orders | ARI renewals | refused by the CA | expired before renewal | lost delegation | sent into the outage | longest first-certificate wait | live budget rows (max) | wall time |\n")
	out.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	runs := []int{rec}
	if *compare {
		runs = append(runs, bare)
	}
	for _, n := range runs {
		c := cfg
		c.Accounts = n
		r, err := casim.Run(ctx, c)
		if err != nil {
			return err
		}
		label := fmt.Sprintf("%d (recommended)", n)
		if n == bare {
			label = fmt.Sprintf("%d (day's orders only)", n)
		}
		fmt.Fprintf(&out, "| %s | %d | %d | %d | %d | %d | %d | %s | %d | %s |\n", label, r.FirstOrders, r.RenewalOrders, r.Refused,
			r.ExpiredBeforeRenew, r.LostDelegation, r.FailedInOutage, r.LongestFirstWait.Round(time.Minute), r.MaxBudgetRows, r.Wall.Round(time.Second))
		fmt.Print(out.String()[strings.LastIndex(strings.TrimRight(out.String(), "\n"), "\n")+1:])
		os.Stdout.Sync()
	}
	fmt.Fprintf(&out, "\nSizing rule: accounts = ceil(new domains a day × (1 + longest CA outage / 24 h) / 2,400), "+
		"2,400 being one account's new orders a day (300 per 3 h); %d a day with a 6 h outage → %d accounts. "+
		"ARI renewals are exempt and need no accounts.\n", cfg.DomainsPerDay, rec)
	out.WriteString("\nWhat is real code: `cabudget.OrderSpends`, `cabudget.Memory` (the same GCRA arithmetic, `cabudget.Bucket`, that " +
		"`sqlstore.TakeBudgets` runs in its conditional UPDATE), `Wait`. What is aggregated: domains are cohorts (same minute, same lifetime) " +
		"instead of rows, time moves a minute at a time, a waiting account's queue waits for the refill as its deferred jobs would, " +
		"ARI renewals are counted through the budget store once per cohort (they are exempt and never wait), the outage is probed once a minute (each probe spends a token, as a real order does), and the simulated CA is a separate " +
		"floating-point token bucket. Database rows and bytes per domain are measured apart, by the real engine and store " +
		"(\"Database footprint per domain\" below); of the budgets, only the live rows counted above stay (per-domain and duplicate rows are " +
		"pruned by the daily renewal check once full again; about 150 bytes each).\n")
	if *write != "" {
		return benchdoc.ReplaceSection(*write, "## CA budgets simulation", out.String())
	}
	return nil
}
