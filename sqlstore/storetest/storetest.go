// Package storetest gives tests a fresh, migrated database of each dialect:
// SQLite always, PostgreSQL when DCVAAS_TEST_POSTGRES_URL is set (CI sets it).
// Each call gets its own SQLite file or PostgreSQL schema, so tests never
// see each other's rows.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// PostgresEnv names the variable holding the test PostgreSQL URL.
const PostgresEnv = "DCVAAS_TEST_POSTGRES_URL"

// Dialects returns the dialects to run a test against, saying so when
// PostgreSQL is skipped.
func Dialects(t testing.TB) []sqlstore.Dialect {
	t.Helper()
	if os.Getenv(PostgresEnv) == "" {
		t.Logf("%s is unset: PostgreSQL half skipped", PostgresEnv)
		SkippedPostgres()
		return []sqlstore.Dialect{sqlstore.SQLite}
	}
	return []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres}
}

// URL returns a database URL for a fresh, empty database of the dialect; the
// database (file or schema) is removed when the test ends.
func URL(t testing.TB, dialect sqlstore.Dialect) string {
	t.Helper()
	if dialect == sqlstore.SQLite {
		return filepath.Join(t.TempDir(), "dcvaas.db")
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		SkippedPostgres()
		t.Skipf("%s is unset", PostgresEnv)
	}
	u, drop, err := PostgresSchema(base, "test_")
	if err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(drop)
	return u
}

// PostgresSchema creates a schema with a random name (after prefix) in the
// PostgreSQL database of base, and returns base's URL set to use it and a
// function that drops it with everything in it. The benchmarks outside
// tests use it too.
func PostgresSchema(base, prefix string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		if admin, err := sql.Open("pgx", base); err == nil {
			admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		}
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// NewDB opens and migrates a fresh database, closed when the test ends.
func NewDB(t testing.TB, dialect sqlstore.Dialect, opts ...sqlstore.Options) *sqlstore.DB {
	t.Helper()
	return Open(t, URL(t, dialect), opts...)
}

// Open opens the database at url (from URL) and migrates it; it is closed
// when the test ends. Opening one url twice gives two nodes of one
// database.
func Open(t testing.TB, url string, opts ...sqlstore.Options) *sqlstore.DB {
	t.Helper()
	var o sqlstore.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, url, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
