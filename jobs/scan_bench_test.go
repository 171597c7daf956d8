package jobs

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// BenchmarkRenewalScan times one renewal check over a large fleet: N active
// domains (DCVAAS_BENCH_SCAN_DOMAINS; the benchmark is skipped without it,
// as it seeds a million rows), every tenth due by its remaining lifetime.
// Each iteration queues N/10 renewals — jobs rows, two audit entries each,
// River jobs — and is then undone, untimed. Beside it, in the same run, the
// baseline: the same keyset pass over the same rows reading only.
//
//	DCVAAS_BENCH_SCAN_DOMAINS=1000000 go test ./jobs -run '^$' -bench RenewalScan -benchtime 3x
func BenchmarkRenewalScan(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("DCVAAS_BENCH_SCAN_DOMAINS"))
	if n <= 0 {
		b.Skip("set DCVAAS_BENCH_SCAN_DOMAINS (e.g. 1000000) to seed that many domains")
	}
	for _, dialect := range storetest.Dialects(b) {
		b.Run(string(dialect), func(b *testing.B) {
			bb := seedFleet(b, dialect, n)
			b.Run("read-only", func(b *testing.B) {
				for range b.N {
					start := time.Now()
					var rows int
					after := ""
					for {
						page, err := bb.db.ActiveDomains(bb.ctx, after, bb.e.cfg.Renewal.PageSize)
						if err != nil {
							b.Fatal(err)
						}
						rows += len(page)
						if len(page) < bb.e.cfg.Renewal.PageSize {
							break
						}
						after = page[len(page)-1].DomainID
					}
					if rows != n {
						b.Fatalf("read %d rows, want %d", rows, n)
					}
					b.ReportMetric(time.Since(start).Seconds(), "s/scan")
				}
			})
			b.Run("check", func(b *testing.B) {
				var secs []float64
				for range b.N {
					b.StopTimer()
					resetRenewals(b, bb)
					peak := watchHeap()
					b.StartTimer()
					start := time.Now()
					run, err := bb.e.RenewalCheck(bb.ctx, CauseSchedule)
					took := time.Since(start)
					b.StopTimer()
					heap := peak()
					if err != nil {
						b.Fatal(err)
					}
					if run.Scanned != n || run.Queued != n/10 {
						b.Fatalf("run %+v, want %d scanned, %d queued", run, n, n/10)
					}
					secs = append(secs, took.Seconds())
					b.Logf("%s: scanned %d, queued %d in %s; peak heap %.0f MB", dialect, run.Scanned, run.Queued,
						took.Round(time.Millisecond), float64(heap)/(1<<20))
					b.ReportMetric(float64(heap)/(1<<20), "MB-peak-heap")
				}
				slices.Sort(secs)
				b.ReportMetric(secs[len(secs)/2], "s/check-median")
			})
		})
	}
}

// seedFleet fills a fresh database with n active domains in one statement
// (generate_series on PostgreSQL, a recursive CTE on SQLite): every tenth
// certificate has 10 of 90 days left, the rest 80. Their renewal
// information is current, as it is after the check has seen them once,
// and each has the history of its issuance (a job, an audit entry).
func seedFleet(b *testing.B, dialect sqlstore.Dialect, n int) *bundle {
	b.Helper()
	ctx := context.Background()
	clk := &clock{}
	db := storetest.NewDB(b, dialect, sqlstore.Options{Clock: clk.Now})
	if err := Migrate(ctx, db); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(db, resolvetest.New(b).Addr, clk)
	if size, _ := strconv.Atoi(os.Getenv("DCVAAS_BENCH_SCAN_PAGE")); size > 0 { // default: the engine's
		cfg.Renewal.PageSize = size
	}
	e, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tok := &dcvaas.Token{Name: "t", Prefix: "dcv_x", Hash: fmt.Sprintf("hash-%p", b), Role: dcvaas.TokenAdmin}
	org, _, err := db.Bootstrap(ctx, "Acme", "owner@acme.test", tok)
	if err != nil {
		b.Fatal(err)
	}
	now := clk.Now()
	us := func(d time.Duration) int64 { return now.Add(d).UnixMicro() }
	args := []any{org.ID, now.UnixMicro(), us(-80 * day), us(10 * day), us(-10 * day), us(80 * day), us(365 * day), n}
	const cols = `id, org_id, domain_name, cname_target, status, last_error, include_wildcard, key_type, created_at, updated_at,
		last_issued_at, expires_at, deleted_at, cname_status, cert_not_before, renewal_info_for, ari_next_check`
	id, name, target := "printf('d%08d', i)", "printf('d%08d.example.com', i)", "printf('t%08d.verify.example', i)"
	if dialect == sqlstore.Postgres {
		id, name, target = "'d' || lpad(i::text, 8, '0')", "'d' || lpad(i::text, 8, '0') || '.example.com'", "'t' || lpad(i::text, 8, '0') || '.verify.example'"
	}
	sel := `SELECT ` + id + `, $1, ` + name + `, ` + target + `, 'active', '', true, 'ec256', CAST($2 AS BIGINT), CAST($2 AS BIGINT), CAST($2 AS BIGINT),
		CASE WHEN i % 10 = 0 THEN CAST($4 AS BIGINT) ELSE CAST($6 AS BIGINT) END, NULL, 'ok',
		CASE WHEN i % 10 = 0 THEN CAST($3 AS BIGINT) ELSE CAST($5 AS BIGINT) END,
		CASE WHEN i % 10 = 0 THEN CAST($4 AS BIGINT) ELSE CAST($6 AS BIGINT) END, CAST($7 AS BIGINT)`
	q := `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $8)
		INSERT INTO domains (` + cols + `) ` + sel + ` FROM s`
	if dialect == sqlstore.Postgres {
		q = `INSERT INTO domains (` + cols + `) ` + sel + ` FROM generate_series(1, CAST($8 AS INTEGER)) AS i`
	}
	start := time.Now()
	if _, err := db.SQL().ExecContext(ctx, q, args...); err != nil {
		b.Fatalf("seed: %v\n%s", err, q)
	}
	// The history such a fleet has: each domain's issuance job and its
	// certificate.issued audit entry (indexes of realistic size, and
	// statistics that know these tables are large).
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO jobs (`+history("jobs")+`) SELECT 'j' || substr(id, 2), org_id, id,
		'start_issuance', 'succeeded', 1, 3, NULL, '', created_at, created_at, created_at FROM domains`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO audit_logs (`+history("audit_logs")+`) SELECT 'a' || substr(id, 2), org_id, '', '',
		'certificate.issued', 'domain', id, '{}', '', '', created_at FROM domains`); err != nil {
		b.Fatal(err)
	}
	analyze := `ANALYZE`
	if dialect == sqlstore.Postgres {
		analyze = `VACUUM ANALYZE`
	}
	if _, err := db.SQL().ExecContext(ctx, analyze); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: seeded %d domains in %s", dialect, n, time.Since(start).Round(time.Millisecond))
	return &bundle{t: nil, ctx: ctx, db: db, e: e, clock: clk, org: org, actor: dcvaas.SystemActor(org.ID), n: new(atomic.Int64)}
}

func history(table string) string {
	if table == "jobs" {
		return `id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at`
	}
	return `id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at`
}

// resetRenewals undoes a check: its renewals, their queue entries and
// audit entries, and its run record.
func resetRenewals(b *testing.B, bb *bundle) {
	b.Helper()
	for _, q := range []string{
		`DELETE FROM jobs WHERE type = 'renewal'`,
		`DELETE FROM river_job WHERE kind = 'renewal'`,
		`DELETE FROM audit_logs WHERE action IN ('job.queued', 'cron.renewal_queued')`,
		`DELETE FROM renewal_runs`,
	} {
		if _, err := bb.db.SQL().ExecContext(bb.ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	if bb.db.Dialect() == sqlstore.Postgres {
		for _, t := range []string{"jobs", "river_job", "audit_logs"} {
			if _, err := bb.db.SQL().ExecContext(bb.ctx, `VACUUM ANALYZE `+t); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC()
}

// watchHeap samples the heap in use until the returned function is
// called, which reports the peak above the level at the start.
func watchHeap() func() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}
