package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/dcvaas/dcvaas/webhook"
	"github.com/riverqueue/river"
)

// BenchmarkWebhookFanOut: b.N events (10,000 in docs/benchmarks.md) are
// written to the outbox untimed, for an organization with 3 endpoints on
// 3 loopback receivers; the clock runs from the engine's start until all
// 3·b.N deliveries are recorded delivered: fan-out, River jobs, signing,
// HTTP, the record of each attempt. Reports deliveries/s.
//
// Its baselines: <db>/river, raw River doing 3·b.N no-op jobs on the same
// database kind with the same worker count and fetch settings; /http: the same 3·b.N signed POSTs to the same receivers
// from as many goroutines as the engine has webhook workers, with no
// database — the ceiling the HTTP side alone allows in the same run.
//
//	DCVAAS_TEST_POSTGRES_URL=… go test ./jobs -run '^$' -bench WebhookFanOut -benchtime 10000x -count 3
func BenchmarkWebhookFanOut(b *testing.B) {
	const endpoints = 3
	receivers := make([]*httptest.Server, endpoints)
	var hits atomic.Int64
	for i := range receivers {
		receivers[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		b.Cleanup(receivers[i].Close)
	}
	policy := webhook.Policy{AllowHTTP: true, AllowPrivate: true}
	workers := WebhookConfig{}.withDefaults().Workers
	b.Run("http", func(b *testing.B) {
		client := policy.Client(15 * time.Second)
		secret, _ := webhook.NewSecret()
		body := []byte(`{"id":"x","type":"domain.created","timestamp":"2026-12-02T00:00:00Z","organizationId":"o","data":{}}`)
		next := make(chan int, endpoints*b.N)
		for i := range endpoints * b.N {
			next <- i
		}
		close(next)
		b.ResetTimer()
		t0 := time.Now()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					res := webhook.Send(context.Background(), client, webhook.Request{URL: receivers[i%endpoints].URL, ID: fmt.Sprint(i),
						Body: body, Secrets: []string{secret}, UserAgent: "bench"}, time.Now)
					if !res.OK() {
						b.Errorf("baseline send: %+v", res)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(endpoints*b.N)/time.Since(t0).Seconds(), "deliveries/s")
	})
	for _, dialect := range storetest.Dialects(b) {
		// Baseline: raw River doing as many no-op jobs on the same
		// database kind, same workers and fetch settings.
		b.Run(string(dialect)+"/river", func(b *testing.B) {
			_, client, done := rawRiver(b, dialect)
			params := make([]river.InsertManyParams, endpoints*b.N)
			for i := range params {
				params[i] = river.InsertManyParams{Args: noopArgs{}}
			}
			for chunk := range slices.Chunk(params, 1000) {
				if _, err := client.InsertMany(context.Background(), chunk); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			t0 := time.Now()
			if err := client.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			for done() < endpoints*b.N {
				time.Sleep(2 * time.Millisecond)
			}
			b.ReportMetric(float64(endpoints*b.N)/time.Since(t0).Seconds(), "jobs/s")
			b.StopTimer()
			client.Stop(context.Background())
		})
		b.Run(string(dialect)+"/engine", func(b *testing.B) {
			clk := &clock{}
			db := storetest.NewDB(b, dialect, sqlstore.Options{Clock: clk.Now})
			ctx := context.Background()
			if err := Migrate(ctx, db); err != nil {
				b.Fatal(err)
			}
			key := make([]byte, crypt.KeySize)
			rand.Read(key)
			kr, _ := crypt.NewKeyring(key)
			cfg := testConfig(db, "127.0.0.1:53", clk)
			cfg.FetchCooldown = benchCooldown
			cfg.Webhooks = WebhookConfig{Sealer: kr, Policy: policy, Workers: benchHookWorkers}
			e, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			org, user, err := db.Bootstrap(ctx, "Bench", "bench@acme.test", &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin})
			if err != nil {
				b.Fatal(err)
			}
			svc := &webhook.Service{Store: db, Sealer: kr, Policy: policy}
			for _, r := range receivers {
				u := r.URL + "/hook"
				if _, _, err := svc.Create(ctx, dcvaas.Actor{OrgID: org.ID, UserID: user.ID}, webhook.Input{URL: &u}); err != nil {
					b.Fatal(err)
				}
			}
			clk.Advance(time.Second) // events happen after the endpoints exist
			data := &dcvaas.EventData{Domain: &dcvaas.EventDomain{ID: "d", DomainName: "bench.example.com", Status: dcvaas.DomainActive, CNAMEStatus: "ok"}}
			for done := 0; done < b.N; {
				n := min(500, b.N-done)
				if err := db.InTx(ctx, func(tx *sql.Tx) error {
					for range n {
						if err := db.WriteEventTx(ctx, tx, org.ID, "d", dcvaas.EventDomainVerified, data); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			want := int64(endpoints * b.N)
			delivered := func() int64 {
				var n int64
				if err := db.SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'delivered'`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				return n
			}
			hits.Store(0)
			b.ResetTimer()
			t0 := time.Now()
			if err := e.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for hits.Load() < want || delivered() < want {
				time.Sleep(20 * time.Millisecond)
				if time.Since(t0) > 10*time.Minute {
					b.Fatalf("%d of %d delivered after 10 minutes", delivered(), want)
				}
			}
			elapsed := time.Since(t0)
			b.StopTimer()
			e.Stop(ctx)
			if h := hits.Load(); h != want {
				b.Fatalf("receivers got %d requests for %d deliveries", h, want)
			}
			b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(e.hooks.held.Load()), "held")
		})
	}
}

// benchHookWorkers is the webhook queue's workers in the benchmark
// (DCVAAS_BENCH_HOOK_WORKERS; default the engine's).
var benchHookWorkers = func() int {
	if n, err := strconv.Atoi(os.Getenv("DCVAAS_BENCH_HOOK_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 0
}()
