package sqlstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
)

func bootstrapToken(t *testing.T, db *DB) (*dcvaas.Token, *dcvaas.Organization) {
	t.Helper()
	tok := &dcvaas.Token{Name: "t", Prefix: "dcv_x", Hash: "hash", Role: dcvaas.TokenAdmin}
	org, _, err := db.Bootstrap(context.Background(), "Acme", "ops@acme.test", tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, org
}

// The identity answers stay cached across other writes, and any change
// to a watched table ends them, whatever statement made it.
func TestIdentityCacheFollowsEveryWrite(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	tok, org := bootstrapToken(t, db)
	now := time.Now()
	if _, err := db.Authenticate(ctx, "hash", now); err != nil {
		t.Fatal(err)
	}
	identity := db.cache.identity.Load()
	if _, _, ok := db.cachedAuth("hash", now); !ok {
		t.Fatal("authentication was not cached")
	}
	// A write elsewhere leaves it.
	if _, err := db.write.Exec(`INSERT INTO t (k) VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := db.cachedAuth("hash", now); !ok || db.cache.identity.Load() != identity {
		t.Fatal("an unrelated write ended the cached authentication")
	}
	// Revoking by hand, not through the store, still counts.
	if _, err := db.write.Exec(`UPDATE api_tokens SET revoked_at = 1 WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "hash", now); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
		t.Fatalf("revoked token authenticated: %v", err)
	}
	// So does a change of the organization's defaults inside a
	// transaction; a rolled back one does not.
	if _, err := db.write.Exec(`UPDATE api_tokens SET revoked_at = NULL WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	if a, err := db.Authenticate(ctx, "hash", now); err != nil || a.OrgSettings.DefaultKeyType != "" {
		t.Fatalf("auth %+v, %v", a, err)
	}
	tx, _ := db.write.Begin()
	tx.Exec(`UPDATE organizations SET settings = '{"defaultKeyType":"rsa2048"}' WHERE id = $1`, org.ID)
	tx.Rollback()
	if a, err := db.Authenticate(ctx, "hash", now); err != nil || a.OrgSettings.DefaultKeyType != "" {
		t.Fatalf("auth after rollback %+v, %v", a, err)
	}
	tx, _ = db.write.Begin()
	tx.Exec(`UPDATE organizations SET settings = '{"defaultKeyType":"ec384"}' WHERE id = $1`, org.ID)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, err := db.Authenticate(ctx, "hash", now); err != nil || a.OrgSettings.DefaultKeyType != "ec384" {
		t.Fatalf("auth after the change %+v, %v", a, err)
	}
}

// A token revoked by another process stops working within the
// data_version poll.
func TestIdentityCacheSeesOtherProcesses(t *testing.T) {
	db, path := openSQLiteFile(t)
	ctx := context.Background()
	tok, _ := bootstrapToken(t, db)
	if _, err := db.Authenticate(ctx, "hash", time.Now()); err != nil {
		t.Fatal(err)
	}
	// A second store on the same file stands in for `dcvaas` run beside
	// `serve`: it has its own connections and its own counts.
	other, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.SQL().Exec(`UPDATE api_tokens SET revoked_at = 1 WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * dataVersionPoll)
	for {
		_, err := db.Authenticate(ctx, "hash", time.Now())
		if dcvaas.ErrorCode(err) == dcvaas.EUNAUTHORIZED {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked elsewhere, still authenticated after %s: %v", 5*dataVersionPoll, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An expired token is refused even while its answer is cached.
func TestCachedTokenExpires(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	tok, _ := bootstrapToken(t, db)
	exp := time.Now().Add(time.Hour)
	if _, err := db.write.Exec(`UPDATE api_tokens SET expires_at = $1 WHERE id = $2`, micros(exp), tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "hash", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Authenticate(ctx, "hash", exp.Add(time.Second)); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
		t.Fatalf("expired token authenticated: %v", err)
	}
}

// The statement cache serves a query again while rows of the same text are
// still open, and does not keep a statement that fails to compile.
func TestStatementCache(t *testing.T) {
	db := openSQLite(t)
	for _, k := range []string{"a", "b", "c"} {
		db.write.Exec(`INSERT INTO t (k) VALUES ($1)`, k)
	}
	const q = `SELECT k FROM t ORDER BY k`
	outer, err := db.read.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	var n int
	for outer.Next() {
		// The same text, on a connection whose cached statement may be
		// the one outer reads from.
		inner, err := db.read.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for inner.Next() {
			n++
		}
		inner.Close()
	}
	if n != 9 {
		t.Fatalf("read %d rows, want 9", n)
	}
	for range 2 {
		if _, err := db.read.Exec(`SELEC nothing`); err == nil {
			t.Fatal("bad SQL ran")
		}
	}
	// Many distinct texts stay bounded and correct.
	for i := range maxCachedStmts + 10 {
		var v int
		if err := db.read.QueryRow(`SELECT $1 + `+strconv.Itoa(i), 1).Scan(&v); err != nil || v != i+1 {
			t.Fatalf("query %d: %d, %v", i, v, err)
		}
	}
}
