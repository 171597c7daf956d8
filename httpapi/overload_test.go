package httpapi_test

import (
	"context"
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestLockedDatabase: with the database locked by someone else, a request
// that needs it answers 503 with Retry-After within a few seconds (not a
// 500 after 20), and /readyz answers within a second, unready.
func TestLockedDatabase(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		b.do("GET", "/api/domains", b.a.admin, nil).want(t, 200) // the token is known
		ctx := context.Background()
		var raw *sql.DB
		var err error
		if dialect == sqlstore.SQLite {
			// BEGIN EXCLUSIVE (in WAL mode: the write lock) held by
			// another connection, as another process (dcvaas cron run, a
			// sqlite3 shell) can.
			raw, err = sql.Open("sqlite", "file:"+b.url+"?_pragma=busy_timeout(10000)")
		} else {
			raw, err = sql.Open("pgx", b.url)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		conn, err := raw.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		lock := []string{`BEGIN EXCLUSIVE`, `UPDATE organizations SET name = name`}
		if dialect == sqlstore.Postgres {
			lock = []string{`BEGIN`, `LOCK TABLE domains, jobs, audit_logs, organizations IN ACCESS EXCLUSIVE MODE`}
		}
		for _, q := range lock {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		defer conn.ExecContext(ctx, `ROLLBACK`)

		start := time.Now()
		r := b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "locked.example.com"})
		took := time.Since(start)
		r.wantProblem(t, 503)
		if retry, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || retry < 1 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		if took > 8*time.Second {
			t.Fatalf("503 after %s", took)
		}
		t.Logf("POST answered 503 after %s", took)
		start = time.Now()
		b.do("GET", "/readyz", "", nil)
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Fatalf("/readyz answered after %s", took)
		}

		if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		b.do("GET", "/readyz", "", nil).want(t, 200)
		b.do("POST", "/api/domains", b.a.admin, map[string]any{"domainName": "unlocked.example.com"}).want(t, 201)
	})
}

// TestReadyzBounded: a readiness check that does not answer in time is
// unready, answered within a second.
func TestReadyzBounded(t *testing.T) {
	hung := make(chan struct{})
	defer close(hung)
	b := setup(t, sqlstore.SQLite, options{ready: func(ctx context.Context) error {
		<-hung // ignores ctx, like a busy SQLite call
		return nil
	}})
	start := time.Now()
	r := b.do("GET", "/readyz", "", nil)
	r.wantProblem(t, 503)
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("/readyz answered after %s", took)
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}
