package jobs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestTwoEngines runs two engines — two River clients, each on its own
// store pool, as two `dcvaas serve` nodes would — on one PostgreSQL, and
// checks that every job ran exactly once, never on both at the same time,
// and that both nodes did work.
func TestTwoEngines(t *testing.T) {
	if !containsPostgres(storetest.Dialects(t)) {
		storetest.SkippedPostgres()
		t.Skip("needs PostgreSQL (" + storetest.PostgresEnv + ")")
	}
	ctx := context.Background()
	url := storetest.URL(t, sqlstore.Postgres)
	clk := &clock{}
	dns := resolvetest.New(t)
	var (
		mu      sync.Mutex
		running = map[string]bool{}
		runs    = map[string]int{}
		perNode [2]int
		overlap []string
	)
	var dbs [2]*sqlstore.DB
	var engines [2]*Engine
	for i := range engines {
		db := storetest.Open(t, url, sqlstore.Options{Clock: clk.Now})
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(db, dns.Addr, clk)
		cfg.Workers = 8
		e, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.handlers[dcvaas.JobDNSCheck] = func(ctx context.Context, r *run) outcome {
			id := r.job.ID
			mu.Lock()
			if running[id] {
				overlap = append(overlap, id)
			}
			running[id] = true
			runs[id]++
			perNode[i]++
			mu.Unlock()
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			mu.Lock()
			delete(running, id)
			mu.Unlock()
			return succeed(map[string]any{"node": i})
		}
		dbs[i], engines[i] = db, e
	}
	org, user, err := dbs[0].Bootstrap(ctx, "Acme", "owner@acme.test", &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	actor := dcvaas.Actor{OrgID: org.ID, UserID: user.ID}
	for _, e := range engines {
		startEngine(t, e)
	}

	// All jobs are queued through one node, so that both compete for the
	// same rows rather than each working what it queued.
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			d := &dcvaas.Domain{Name: fmt.Sprintf("d%d.example.com", i), CNAMETarget: fmt.Sprintf("t%d.verify.example", i), KeyType: dcvaas.KeyEC256}
			if _, err := dbs[0].CreateDomain(ctx, actor, d); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		_, done, err := dbs[0].ListJobs(ctx, org.ID, dcvaas.JobFilter{Status: dcvaas.JobSucceeded, Page: dcvaas.Page{Limit: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs succeeded", done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlap) > 0 {
		t.Fatalf("jobs run by two workers at once: %v", overlap)
	}
	for id, c := range runs {
		if c != 1 {
			t.Errorf("job %s ran %d times", id, c)
		}
	}
	if len(runs) != n || perNode[0] == 0 || perNode[1] == 0 {
		t.Fatalf("ran %d jobs; per node %v", len(runs), perNode)
	}
	var started int
	if err := dbs[0].SQL().QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_logs WHERE action = 'job.started'`).Scan(&started); err != nil || started != n {
		t.Fatalf("job.started entries = %d, %v", started, err)
	}
	t.Logf("per node: %v", perNode)
}

func containsPostgres(ds []sqlstore.Dialect) bool {
	for _, d := range ds {
		if d == sqlstore.Postgres {
			return true
		}
	}
	return false
}
