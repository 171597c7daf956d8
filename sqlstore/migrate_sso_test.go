package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
)

// Migration 00140 rebuilds organization_members and web_sessions on
// SQLite: a database with rows in them keeps them, up and down.
func TestSSOMigrationKeepsRows(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "u.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := db.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 71); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO organizations (id, name, settings, created_at, updated_at) VALUES ('o1', 'Acme', '{}', 1, 1)`,
		`INSERT INTO users (id, email, created_at) VALUES ('u1', 'a@acme.test', 1)`,
		`INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ('o1', 'u1', 'owner', 1)`,
		`INSERT INTO api_tokens (id, org_id, user_id, name, prefix, token_hash, role, created_at) VALUES ('t1', 'o1', 'u1', 'n', 'p', 'h', 'admin', 1)`,
		`INSERT INTO web_sessions (id_hash, token_id, created_at, last_seen_at, expires_at) VALUES ('s1', 't1', 1, 1, 99999999999999)`,
	} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	rows := func() int {
		var n int
		if err := db.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM organization_members m
			JOIN web_sessions s ON s.token_id = 't1' WHERE m.role = 'owner' AND m.user_id = 'u1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 1 {
		t.Fatalf("rows after the upgrade: %d", n)
	}
	if _, err := db.write.ExecContext(ctx, `UPDATE organization_members SET role = 'viewer'`); err != nil {
		t.Fatal("viewer refused after the upgrade:", err)
	}
	if _, err := p.DownTo(ctx, 71); err != nil {
		t.Fatal(err)
	}
	var role string
	if err := db.write.QueryRowContext(ctx, `SELECT role FROM organization_members`).Scan(&role); err != nil || role != "member" {
		t.Fatalf("viewer after the downgrade: %q %v", role, err)
	}
}
