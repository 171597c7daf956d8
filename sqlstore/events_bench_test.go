package sqlstore_test

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/benchdoc"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestEventWriteCost measures what the domain.created event adds to
// POST /api/domains (goal, issue 11: the POST rate drops by at most 10%),
// through the API and in the store's half alone, and writes
// docs/benchmarks.md. It runs only when asked:
//
//	DCVAAS_BENCH_EVENTS=1 DCVAAS_TEST_POSTGRES_URL=… go test ./sqlstore -run TestEventWriteCost -v
//
// CreateDomain slows down as its tables grow, and the machine's load
// drifts; so the two sides (event written, event left out) alternate in
// short blocks on one database, and each pair of neighbouring blocks gives
// one ratio. The median ratio is the result.
func TestEventWriteCost(t *testing.T) {
	if os.Getenv("DCVAAS_BENCH_EVENTS") == "" {
		t.Skip("set DCVAAS_BENCH_EVENTS=1 to measure the event write and update docs/benchmarks.md")
	}
	const goroutines, block, pairs, warmup = 32, 250, 40, 500
	var doc strings.Builder
	fmt.Fprintf(&doc, "What writing the `domain.created` event row costs `POST /api/domains` (the store's `CreateDomain`: domain\n"+
		"row, audit entry, dns_check job and the event, in one transaction), from %d concurrent clients: through\n"+
		"the HTTP API (httpapi in front of the store, loopback keep-alive connections), which is what the goal\n"+
		"speaks of, and calling the store alone. The two sides, with the event and without it (`SetSkipEvents`),\n"+
		"alternate in blocks of %d creates on one database (on, off, off, on, …, after %d creates of warm-up), so\n"+
		"that both meet the same table sizes and the same moment of the machine; each pair of neighbouring blocks\n"+
		"gives a ratio (with / without), and the median of the %d pairs is read. creates/s per side: all its\n"+
		"creates over all its time.\n\n", goroutines, block, warmup, pairs)
	doc.WriteString("Command: `DCVAAS_BENCH_EVENTS=1 DCVAAS_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./sqlstore -run TestEventWriteCost -v`  \n")
	doc.WriteString(benchdoc.Machine("") + "\n\n")
	doc.WriteString("| database | through | without event (creates/s) | with event (creates/s) | ratio, all blocks | median pair ratio | pair ratios (min–max) |\n|---|---|---|---|---|---|---|\n")
	for _, dialect := range storetest.Dialects(t) {
		db := storetest.NewDB(t, dialect, sqlstore.Options{})
		plain, err := apitoken.Generate()
		if err != nil {
			t.Fatal(err)
		}
		tok := &dcvaas.Token{Name: "bench", Prefix: apitoken.DisplayPrefix(plain), Hash: apitoken.Hash(plain), Role: dcvaas.TokenAdmin}
		org, _, err := db.Bootstrap(t.Context(), "Bench", "bench@bench.example.com", tok)
		if err != nil {
			t.Fatal(err)
		}
		var limiter dcvaas.RateLimiter = ratelimit.NewMemory()
		if dialect == sqlstore.Postgres {
			limiter = db // as serve does: admission in one statement
		}
		srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{
			Store: db, Limiter: limiter, RateLimit: 1 << 30, Unavailable: sqlstore.IsUnavailable,
			VerifyZone: "verify.example.net.", AllowTLDs: []string{"example"},
		}))
		defer srv.Close()
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: goroutines}}
		var n atomic.Int64
		viaStore := func() error {
			i := n.Add(1)
			d := &dcvaas.Domain{Name: fmt.Sprintf("b%d.example.com", i), CNAMETarget: fmt.Sprintf("b%d.verify.example.net", i), KeyType: dcvaas.KeyEC256}
			_, err := db.CreateDomain(t.Context(), dcvaas.Actor{OrgID: org.ID}, d)
			return err
		}
		viaAPI := func() error {
			req, err := http.NewRequest("POST", srv.URL+"/api/domains", strings.NewReader(fmt.Sprintf(`{"domainName":"b%d.example.com"}`, n.Add(1))))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+plain)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				return fmt.Errorf("POST /api/domains: %d %s", resp.StatusCode, body)
			}
			return nil
		}
		// run does count creates with op from goroutines and returns how
		// long they took; a create that fails ends the measurement.
		var broken atomic.Bool
		run := func(op func() error, events bool, count int) time.Duration {
			db.SetSkipEvents(!events)
			defer db.SetSkipEvents(false)
			took, err := concurrently(goroutines, count, op)
			if err != nil {
				t.Error(err)
				broken.Store(true)
			}
			return took
		}
		for _, m := range []struct {
			through string
			op      func() error
		}{{"HTTP API", viaAPI}, {"store", viaStore}} {
			run(m.op, true, warmup)
			var on, off time.Duration
			var ratios []float64
			for p := range pairs {
				// on, off, off, on, …: neither side always goes first.
				first := p%2 == 0
				a := run(m.op, first, block)
				c := run(m.op, !first, block)
				tOn, tOff := a, c
				if !first {
					tOn, tOff = c, a
				}
				on, off = on+tOn, off+tOff
				ratios = append(ratios, tOff.Seconds()/tOn.Seconds())
			}
			if broken.Load() {
				return
			}
			slices.SortFunc(ratios, cmp.Compare)
			total := float64(pairs * block)
			rateOn, rateOff := total/on.Seconds(), total/off.Seconds()
			median := ratios[len(ratios)/2]
			fmt.Fprintf(&doc, "| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f–%.2f |\n", dialect, m.through, rateOff, rateOn, rateOn/rateOff, median, ratios[0], ratios[len(ratios)-1])
			t.Logf("%s through %s: without %.0f/s, with %.0f/s, median pair ratio %.2f", dialect, m.through, rateOff, rateOn, median)
			if m.through == "HTTP API" && median < 0.9 {
				t.Errorf("%s: with the event, POST /api/domains runs at %.2f× its rate without (median pair); goal ≥ 0.90", dialect, median)
			}
		}
	}
	doc.WriteString("\nThe goal is read on the HTTP API rows; the store rows show the event's cost without the rest of the\n" +
		"request around it. The event is one more statement of the same transaction (on PostgreSQL, one more CTE\n" +
		"of the single combined statement: no extra round trip); the events table has three indexes (org + order,\n" +
		"order, created_at) and no index on `id`, to keep the write small.\n\n")
	if err := benchdoc.ReplaceSection("../docs/benchmarks.md", "## Events: cost of the outbox write", doc.String()); err != nil {
		t.Fatal(err)
	}
}

// concurrently calls op count times from goroutines and returns how long
// that took, or the first error (the goroutine that met it stops).
func concurrently(goroutines, count int, op func() error) (time.Duration, error) {
	var left atomic.Int64
	left.Store(int64(count))
	var first atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return time.Since(start), *err
	}
	return time.Since(start), nil
}
