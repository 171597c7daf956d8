package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// openSQLite opens a migrated SQLite store with a scratch table t(k).
func openSQLite(t *testing.T) *DB {
	db, _ := openSQLiteFile(t)
	return db
}

func openSQLiteFile(t *testing.T) (*DB, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return db, path
}

func keys(t *testing.T, db *DB) map[string]bool {
	t.Helper()
	rows, err := db.read.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out[k] = true
	}
	return out
}

func (db *DB) queued() int {
	db.committer.mu.Lock()
	defer db.committer.mu.Unlock()
	return len(db.committer.pending)
}

func (db *DB) committing() bool {
	db.committer.mu.Lock()
	defer db.committer.mu.Unlock()
	return db.committer.running
}

// Transactions that run together share a commit, yet each one's failure
// undoes only its own writes.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	// The change count then moves only with this store's commits.
	db.stopWatch()
	// The first transaction holds the writer until all the others queue.
	release := make(chan struct{})
	first := make(chan error)
	go func() {
		first <- db.inTx(ctx, func(tx *sql.Tx) error { <-release; return nil })
	}()
	for db.queued() == 0 && !db.committing() {
		runtime.Gosched()
	}
	commits := db.cache.gen.Load()
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.inTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ($1)`, fmt.Sprint(i)); err != nil {
					return err
				}
				switch i % 4 {
				case 1: // fails after writing
					return errors.New("refused")
				case 2: // a statement fails: a duplicate key
					_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ($1)`, fmt.Sprint(i))
					return err
				}
				return nil
			})
		})
	}
	for db.queued() < n {
		runtime.Gosched()
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := keys(t, db)
	for i := range n {
		ok := i%4 == 0 || i%4 == 3
		if (errs[i] == nil) != ok || got[fmt.Sprint(i)] != ok {
			t.Fatalf("tx %d: err %v, row present %v", i, errs[i], got[fmt.Sprint(i)])
		}
	}
	if len(got) != n/2 {
		t.Fatalf("%d rows, want %d", len(got), n/2)
	}
	// Each commit moves the change count once: the first transaction's,
	// then one per group of at most maxGroup.
	if moved, want := db.cache.gen.Load()-commits, uint64(1+(n+maxGroup-1)/maxGroup); moved > want {
		t.Fatalf("%d commits for %d queued transactions, want at most %d", moved, n, want)
	}
}

func TestGroupCommitPanicReachesItsCaller(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var recovered any
	wg.Go(func() {
		defer func() { recovered = recover() }()
		db.inTx(ctx, func(tx *sql.Tx) error {
			tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('panicked')`)
			panic("boom")
		})
	})
	for i := range 20 {
		wg.Go(func() {
			if err := db.inTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ($1)`, fmt.Sprint(i))
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if recovered != "boom" {
		t.Fatalf("recovered %v", recovered)
	}
	got := keys(t, db)
	if got["panicked"] || len(got) != 20 {
		t.Fatalf("rows %v", got)
	}
}

func TestGroupCommitCanceledCallerWritesNothing(t *testing.T) {
	db := openSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := db.inTx(ctx, func(tx *sql.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err %v, ran %v", err, ran)
	}
	// A statement under a context that ends mid-transaction fails, and
	// the store stays usable.
	ctx, cancel = context.WithCancel(context.Background())
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('a')`); err != nil {
			return err
		}
		cancel()
		_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('b')`)
		return err
	})
	if err == nil {
		t.Fatal("canceled transaction committed")
	}
	if err := db.inTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO t (k) VALUES ('c')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, db); len(got) != 1 || !got["c"] {
		t.Fatalf("rows %v", got)
	}
}
