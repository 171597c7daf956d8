package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestSQLiteSynchronous: commits are synced to disk before they are
// acknowledged (synchronous=FULL with WAL) unless the operator opts out.
func TestSQLiteSynchronous(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opt  string
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"", 2}, {"full", 2}, {"normal", 1}, {"NORMAL", 1}} {
		db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlstore.Options{Synchronous: c.opt})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var mode string
		if err := db.SQL().QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if err := db.SQL().QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != c.want || mode != "wal" {
			t.Errorf("Synchronous %q: synchronous=%d journal_mode=%s, want %d and wal", c.opt, got, mode, c.want)
		}
	}
	if _, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlstore.Options{Synchronous: "off"}); err == nil {
		t.Fatal("synchronous=off accepted")
	}
}
