package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/jobs"
)

// renewalSettings configure the daily renewal check, delegation
// monitoring and metrics (issue 5). DCVAAS_RENEW_BEFORE is acme.go's: the
// check and the renewal itself must agree on when a certificate is due.
var renewalSettings = []setting{
	{"renewal-cron", "DCVAAS_RENEWAL_CRON", "0 0 * * *", "cron schedule, in UTC, of the daily renewal check and CNAME check (5 fields, an optional leading seconds field, or @daily)", groupRenewal},
	{"renewal-spread", "DCVAAS_RENEWAL_SPREAD", "1h", "window over which the renewals and CNAME checks a check queues are spread, so a CA never sees a burst (0: all at once)", groupRenewal},
	{"metrics-addr", "DCVAAS_METRICS_ADDR", "", "host:port to serve GET /metrics on instead of the HTTP API's address", groupHTTP},
}

// renewalConfig is the validated part of Config for the renewal check.
type renewalConfig struct {
	Schedule    jobs.Schedule
	Spread      time.Duration
	MetricsAddr string
}

// parseRenewal reads renewalSettings; bad reports a setting's error.
func parseRenewal(get func(string) string, bad func(env, format string, args ...any)) renewalConfig {
	var c renewalConfig
	var err error
	if c.Schedule, err = jobs.ParseSchedule(get("DCVAAS_RENEWAL_CRON")); err != nil {
		bad("DCVAAS_RENEWAL_CRON", "want a cron expression like \"0 0 * * *\" (minute hour day month weekday, UTC) or @daily, got %q: %v",
			get("DCVAAS_RENEWAL_CRON"), err)
	}
	if c.Spread, err = time.ParseDuration(get("DCVAAS_RENEWAL_SPREAD")); err != nil || c.Spread < 0 || c.Spread > 24*time.Hour {
		bad("DCVAAS_RENEWAL_SPREAD", "want a duration from 0 to 24h, like 1h, got %q", get("DCVAAS_RENEWAL_SPREAD"))
	}
	if c.MetricsAddr = get("DCVAAS_METRICS_ADDR"); c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("DCVAAS_METRICS_ADDR", "want host:port like 127.0.0.1:9100, got %q", c.MetricsAddr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad("DCVAAS_METRICS_ADDR", "invalid port %q", port)
		}
	}
	return c
}

// engineRenewal is the job engine's part of the configuration. Renewals
// are paced for the first CA of DCVAAS_ACME_CAS, where they go.
func (c *Config) engineRenewal() jobs.RenewalConfig {
	rc := jobs.RenewalConfig{Schedule: c.Renewal.Schedule, Spread: c.Renewal.Spread, RenewBefore: c.ACME.RenewBefore}
	if len(c.ACME.CAs) > 0 {
		ca := c.ACME.CAs[0]
		rc.OrderPace = jobs.OrderPace(ca.Limits[cabudget.Orders], ca.Accounts)
	}
	return rc
}

// RenewalWindow lets the renewal check ask a certificate's CA for its ARI
// window through the issuer the jobs use.
func (j *jobIssuer) RenewalWindow(ctx context.Context, cert *dcvaas.Certificate) (*acme.Window, error) {
	return j.is.RenewalWindow(ctx, cert)
}

const cronUsage = `usage: dcvaas cron run [--json] [--delegation] [flags]

Runs the daily renewal check now against the configured database: queues a
renewal for every active domain whose certificate is due (asking the CAs for
their ARI windows where due), and exits once they are queued; a running
'dcvaas serve' executes them. --delegation also queues the daily CNAME check
of every active domain.`

// cronCmd is `dcvaas cron run`.
func cronCmd(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		if helpRequested(args) { // help.go
			return noFlags(fs, args, nil)
		}
		fmt.Fprintln(stderr, cronUsage)
		if len(args) == 0 {
			return errors.New("cron: no subcommand given")
		}
		return fmt.Errorf("cron: unknown subcommand %q", args[0])
	}
	asJSON := fs.Bool("json", false, "print one JSON object with the run's counts instead of text")
	delegation := fs.Bool("delegation", false, "also queue the CNAME check of every active domain")
	cfg, err := parseConfig(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{keyring: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	db, kr, log := a.db, a.kr, a.log
	issuer, err := newIssuer(cfg, db, kr, log) // for the CAs' ARI windows
	if err != nil {
		return err
	}
	engine, err := newEngine(cfg, db, log, issuer, nil, nil) // never started: it only queues
	if err != nil {
		return err
	}
	defer engine.Stop(context.WithoutCancel(ctx))

	run, err := engine.RenewalCheckNow(ctx)
	if err != nil {
		return fmt.Errorf("renewal check failed: %w", err)
	}
	out := map[string]any{
		"runId": run.ID, "status": run.Status, "scanned": run.Scanned, "due": run.Due, "queued": run.Queued,
		"skipped": run.Skipped, "ariChecks": run.ARIChecks, "errors": run.Errors, "startedAt": run.StartedAt,
	}
	if run.FinishedAt != nil {
		out["finishedAt"] = *run.FinishedAt
	}
	var checks int
	if *delegation {
		if checks, err = engine.DelegationScan(ctx); err != nil {
			return err
		}
		out["delegationChecksQueued"] = checks
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "renewal check %s: scanned %d active domains, %d due, %d renewals queued, %d already queued, %d ARI requests, %d errors\n",
		run.ID, run.Scanned, run.Due, run.Queued, run.Skipped, run.ARIChecks, run.Errors)
	if *delegation {
		fmt.Fprintf(stdout, "CNAME checks queued for %d active domains\n", checks)
	}
	return nil
}
