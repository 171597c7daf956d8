package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestBackupRestore: a backup taken while the database is open holds its
// rows; restore refuses a backup whose secrets the configured key cannot
// open and leaves the database as it was; with the right key it replaces
// the database.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "dcvaas.db")
	keyHex, key := hexKey()
	otherHex, _ := hexKey()

	db, err := sqlstore.Open(ctx, dbPath, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org, user, err := db.Bootstrap(ctx, "Acme", "owner@acme.example.com", &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := crypt.NewKeyring(key)
	c := &dcvaas.Connection{Provider: dcvaas.ProviderCloudflare, Kind: dcvaas.ConnectionCredential}
	if err := db.CreateConnection(ctx, dcvaas.Actor{OrgID: org.ID, UserID: user.ID}, c, func(id string) (string, error) {
		return ring.Encrypt([]byte(`{"apiToken":"cf-secret"}`), connection.SecretAD(id))
	}); err != nil {
		t.Fatal(err)
	}

	cmd := func(vars map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		vars["DCVAAS_DATABASE_URL"] = dbPath
		err := run(ctx, args, env(vars), &out, io.Discard)
		return out.String(), err
	}
	withKey := map[string]string{"DCVAAS_ENCRYPTION_KEY": keyHex}

	// Online: the store above is still open while the copy is taken.
	backupFile := filepath.Join(dir, "backup.db")
	if out, err := cmd(withKey, "backup", "--to", backupFile); err != nil || !strings.Contains(out, "backup written") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if fi, err := os.Stat(backupFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := cmd(withKey, "backup", "--to", backupFile); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}

	// A change after the backup, which a restore must undo.
	if _, _, err := db.Bootstrap(ctx, "Later", "later@acme.example.com", &dcvaas.Token{Name: "t2", Hash: "h2", Role: dcvaas.TokenAdmin}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	orgCount := func() int {
		t.Helper()
		db, err := sqlstore.Open(ctx, dbPath, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM organizations").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := orgCount(); n != 2 {
		t.Fatalf("organizations before restore: %d", n)
	}

	// The wrong key: refused, nothing changed.
	out, err := cmd(map[string]string{"DCVAAS_ENCRYPTION_KEY": otherHex}, "restore", "--from", backupFile)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "oauth_connections") {
		t.Fatalf("restore with another key: %v\n%s", err, out)
	}
	if strings.Contains(err.Error(), "cf-secret") {
		t.Fatal("the error shows the secret")
	}
	if n := orgCount(); n != 2 {
		t.Fatalf("organizations after a refused restore: %d", n)
	}
	if _, err := os.Stat(dbPath + ".restoring"); !os.IsNotExist(err) {
		t.Fatalf("the checked copy was left behind: %v", err)
	}
	// A damaged file: refused.
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("not a database at all, just some bytes that are long enough to be read"), 0o600)
	if _, err := cmd(withKey, "restore", "--from", junk); err == nil {
		t.Fatal("restore of a junk file succeeded")
	}
	if n := orgCount(); n != 2 {
		t.Fatalf("organizations after a junk restore: %d", n)
	}

	// The right key: the database is the backup again.
	if out, err := cmd(withKey, "restore", "--from", backupFile); err != nil || !strings.Contains(out, "1 sealed values opened") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if n := orgCount(); n != 1 {
		t.Fatalf("organizations after restore: %d", n)
	}
}
