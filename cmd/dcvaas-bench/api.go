package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/benchdoc"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// apiBench measures the HTTP API: /healthz as the baseline, authenticated
// GET /api/domains?limit=50 and POST /api/domains (domain row + audit entry
// + job in one transaction), on SQLite and PostgreSQL.
func apiBench(ctx context.Context, args []string) error {
	fs := flagSet("api")
	duration := fs.Duration("duration", 5*time.Second, "length of each measurement")
	clients := fs.Int("clients", 32, "concurrent clients")
	rounds := fs.Int("rounds", 3, "measurements per scenario; the median is reported")
	write := fs.String("write", "", "markdown file whose API section is replaced with the results")
	only := fs.String("only", "", "run only scenarios whose name contains this (for profiling)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	only1 := fs.String("db", "", "run only this database: sqlite or postgres (for profiling)")
	conns := fs.Int("db-conns", 0, "PostgreSQL pool size; 0: the default of dcvaas serve")
	syncModes := fs.String("sqlite-sync", "full", "SQLite synchronous mode: full (the default of dcvaas serve), normal, or both (each measured in turn, FULL first, in this run)")
	fs.Parse(args)
	switch {
	case *duration <= 0:
		return fmt.Errorf("-duration must be positive, got %s", *duration)
	case *clients < 1 || *rounds < 1:
		return fmt.Errorf("-clients and -rounds must be at least 1, got %d and %d", *clients, *rounds)
	case *conns < 0 || *conns == 1:
		return fmt.Errorf("-db-conns must be 0 (the default) or at least 2, got %d", *conns)
	case *only1 != "" && *only1 != string(sqlstore.SQLite) && *only1 != string(sqlstore.Postgres):
		return fmt.Errorf("-db must be sqlite or postgres, got %q", *only1)
	}
	modes := []string{*syncModes}
	if *syncModes == "both" {
		modes = []string{"full", "normal"}
	}
	for _, m := range modes {
		if _, err := sqlstore.SQLiteSynchronous(m); err != nil {
			return fmt.Errorf("-sqlite-sync: %w", err)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	onlyScenario = *only

	var out strings.Builder
	out.WriteString(apiBenchAbout)
	fmt.Fprintf(&out, "Command: `go run ./cmd/dcvaas-bench api -duration %s -clients %d -rounds %d%s`  \n", *duration, *clients, *rounds, cmdFlags(*syncModes, *only, *only1))
	fmt.Fprintf(&out, "Machine: %d CPUs (%s/%s), %s; load generator in the same process; median of %d rounds; %s.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), *rounds, time.Now().UTC().Format("2006-01-02"))
	dialects := []sqlstore.Dialect{sqlstore.SQLite}
	if os.Getenv("DCVAAS_TEST_POSTGRES_URL") != "" {
		dialects = append(dialects, sqlstore.Postgres)
	}
	for _, d := range dialects {
		if *only1 != "" && string(d) != *only1 {
			continue
		}
		dmodes := modes
		if d != sqlstore.SQLite {
			dmodes = []string{""}
		}
		for _, mode := range dmodes {
			rows, err := apiBenchDialect(ctx, d, mode, *duration, *clients, *rounds, *conns)
			if err != nil {
				return fmt.Errorf("%s: %w", d, err)
			}
			title := string(d)
			if mode != "" {
				title += " (synchronous=" + strings.ToUpper(mode) + ")"
			}
			fmt.Fprintf(&out, "**%s**\n\n| scenario | req/s | p50 | p99 | vs /healthz | errors |\n|---|---|---|---|---|---|\n", title)
			base := rows[0].rate
			if onlyScenario != "" {
				base = 0
			}
			for _, r := range rows {
				fmt.Fprintln(&out, r.row(base))
			}
			fmt.Fprintln(&out)
		}
	}
	fmt.Print(out.String())
	if *write != "" {
		return benchdoc.ReplaceSection(*write, "## HTTP API", out.String())
	}
	return nil
}

// cmdFlags is the optional flags of a run, as typed, for its Command line.
func cmdFlags(sync, only, db string) string {
	var b strings.Builder
	if sync != "full" {
		fmt.Fprintf(&b, " -sqlite-sync %s", sync)
	}
	if only != "" {
		fmt.Fprintf(&b, " -only '%s'", only)
	}
	if db != "" {
		fmt.Fprintf(&b, " -db %s", db)
	}
	return b.String()
}

func apiBenchDialect(ctx context.Context, dialect sqlstore.Dialect, sync string, d time.Duration, clients, rounds, conns int) ([]result, error) {
	dbURL, cleanup, err := freshDatabase(dialect)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{MaxConns: conns, Synchronous: sync})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	// The job engine, not started: POST /api/domains queues its dns_check
	// through it as in `dcvaas serve` (jobs row, River job and their link in
	// the domain's transaction), but no worker runs the checks — the job
	// benchmarks measure those.
	if err := jobs.Migrate(ctx, db); err != nil {
		return nil, err
	}
	if _, err := jobs.New(jobs.Config{DB: db, Logger: slog.New(slog.DiscardHandler), Clock: time.Now}); err != nil {
		return nil, err
	}
	token, err := apitoken.Generate()
	if err != nil {
		return nil, err
	}
	tok := &dcvaas.Token{Name: "bench", Prefix: apitoken.DisplayPrefix(token), Hash: apitoken.Hash(token), Role: dcvaas.TokenAdmin}
	if _, _, err := db.Bootstrap(ctx, "Bench", "bench@bench.test", tok); err != nil {
		return nil, err
	}
	var limiter dcvaas.RateLimiter = ratelimit.NewMemory()
	if dialect == sqlstore.Postgres {
		limiter = db
	}
	handler := httpapi.NewServer(httpapi.Deps{Store: db, Limiter: limiter, RateLimit: 1 << 30, VerifyZone: "verify.bench.test",
		Clock: time.Now, Logger: slog.New(slog.DiscardHandler), Ready: db.Ping})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients * 2, ReadBufferSize: 64 << 10}}

	post := func(name string) *http.Request {
		req, _ := http.NewRequest("POST", base+"/api/domains", bytes.NewReader([]byte(`{"domainName":"`+name+`"}`)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	// Seed enough domains that every list page is full.
	for i := range 200 {
		resp, err := client.Do(post(fmt.Sprintf("seed%d.bench.example.com", i)))
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			return nil, fmt.Errorf("seed: status %d", resp.StatusCode)
		}
	}
	round := 0
	scenarios := []struct {
		name   string
		status int
		req    func(n int64) *http.Request
	}{
		{"GET /healthz (baseline)", 200, func(int64) *http.Request { r, _ := http.NewRequest("GET", base+"/healthz", nil); return r }},
		{"GET /api/domains?limit=50", 200, func(int64) *http.Request {
			r, _ := http.NewRequest("GET", base+"/api/domains?limit=50", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}},
		{"POST /api/domains", 201, func(n int64) *http.Request { return post(fmt.Sprintf("r%d-%d.bench.example.com", round, n)) }},
	}
	var out []result
	for _, s := range scenarios {
		if onlyScenario != "" && !strings.Contains(s.name, onlyScenario) {
			continue
		}
		var runs []result
		for range rounds {
			round++
			load(ctx, client, clients, time.Second/2, s.status, s.req) // warm up connections and caches
			round++
			r := load(ctx, client, clients, d, s.status, s.req)
			r.name = s.name
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b result) int { return cmp.Compare(a.rate, b.rate) })
		out = append(out, runs[len(runs)/2])
	}
	return out, nil
}

// apiBenchAbout opens the benchmark's section of docs/benchmarks.md.
const apiBenchAbout = `The HTTP API (httpapi with the store, as ` + "`dcvaas serve`" + ` builds it) on a loopback
listener, loaded by 32 concurrent keep-alive clients in the same process, each sending its next request as
soon as the last is answered. /healthz (no token, no database) is the baseline of the same run.
GET /api/domains?limit=50 reads a full page of 50 domains with a valid token; POST /api/domains creates
a domain with its audit entry and its dns_check queued through the job engine (jobs row, River job) in
one transaction, as in serve; the engine is not started, so no check runs. The PostgreSQL rate limit
counts in the database (cluster-wide), and the same statement confirms the token's cached answer
(sqlstore/admit.go); SQLite's counts in memory. The clients read with a 64 KiB buffer, so a
25 KB page takes the load generator a read or two instead of seven.

`

// onlyScenario limits a run to matching scenarios.
var onlyScenario string

// freshDatabase returns the URL of an empty database: a temporary SQLite
// file, or a new schema in the PostgreSQL of DCVAAS_TEST_POSTGRES_URL.
func freshDatabase(dialect sqlstore.Dialect) (string, func(), error) {
	if dialect == sqlstore.SQLite {
		dir, err := os.MkdirTemp("", "dcvaas-bench")
		if err != nil {
			return "", nil, err
		}
		return filepath.Join(dir, "bench.db"), func() { os.RemoveAll(dir) }, nil
	}
	return storetest.PostgresSchema(os.Getenv(storetest.PostgresEnv), "bench_")
}
