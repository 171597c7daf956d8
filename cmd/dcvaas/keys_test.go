package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func hexKey() (string, []byte) {
	k := make([]byte, crypt.KeySize)
	rand.Read(k)
	return hex.EncodeToString(k), k
}

func TestKeysRotate(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "dcvaas.db")
	oldHex, oldKey := hexKey()
	newHex, newKey := hexKey()

	// Secrets sealed under the old key, as a running server left them.
	db, err := sqlstore.Open(ctx, dbPath, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org, user, err := db.Bootstrap(ctx, "Acme", "owner@acme.test", &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin})
	if err != nil {
		t.Fatal(err)
	}
	oldRing, _ := crypt.NewKeyring(oldKey)
	actor := dcvaas.Actor{OrgID: org.ID, UserID: user.ID}
	var ids []string
	for range 3 {
		c := &dcvaas.Connection{Provider: dcvaas.ProviderCloudflare, Kind: dcvaas.ConnectionCredential}
		if err := db.CreateConnection(ctx, actor, c, func(id string) (string, error) {
			return oldRing.Encrypt([]byte(`{"apiToken":"cf-secret"}`), connection.SecretAD(id))
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	db.Close()

	rotate := func(vars map[string]string) (string, error) {
		var out bytes.Buffer
		vars["DCVAAS_DATABASE_URL"] = dbPath
		err := run(ctx, []string{"keys", "rotate", "--batch", "2"}, env(vars), &out, io.Discard)
		return out.String(), err
	}
	// Without the old key nothing can be opened: the run stops and says where.
	if _, err := rotate(map[string]string{"DCVAAS_ENCRYPTION_KEY": newHex}); err == nil || !strings.Contains(err.Error(), "oauth_connections") {
		t.Fatalf("rotate without the old key: %v", err)
	}
	if _, err := rotate(map[string]string{"DCVAAS_ENCRYPTION_KEY": newHex, "DCVAAS_ENCRYPTION_OLD_KEYS": "nothex"}); err == nil ||
		!strings.Contains(err.Error(), "DCVAAS_ENCRYPTION_OLD_KEYS") || strings.Contains(err.Error(), "nothex") {
		t.Fatalf("bad old key: %v", err)
	}
	out, err := rotate(map[string]string{"DCVAAS_ENCRYPTION_KEY": newHex, "DCVAAS_ENCRYPTION_OLD_KEYS": " " + oldHex + " ,"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "oauth_connections    secret_enc       3 re-sealed") || !strings.Contains(out, crypt.KeyID(newKey)) {
		t.Fatalf("output:\n%s", out)
	}
	// Idempotent, and the old key is no longer needed.
	out, err = rotate(map[string]string{"DCVAAS_ENCRYPTION_KEY": newHex})
	if err != nil || strings.Contains(out, "1 re-sealed") || strings.Contains(out, "3 re-sealed") {
		t.Fatalf("second run: %v\n%s", err, out)
	}

	db, err = sqlstore.Open(ctx, dbPath, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newRing, _ := crypt.NewKeyring(newKey)
	for _, id := range ids {
		c, err := db.FindConnection(ctx, org.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := newRing.Decrypt(c.SecretEnc, connection.SecretAD(id)); err != nil || string(plain) != `{"apiToken":"cf-secret"}` {
			t.Fatalf("connection %s: %v", id, err)
		}
	}
}

func TestConnectionConfig(t *testing.T) {
	base := map[string]string{"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "x.db")}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	parse := func(m map[string]string) (*Config, error) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return parseConfig(fs, nil, env(m))
	}

	cfg, err := parse(with("DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID", "id", "DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET", "secret",
		"DCVAAS_PUBLIC_URL", "https://dcvaas.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	cf := cfg.Connections.OAuth["cloudflare"]
	if cf == nil || cf.AuthURL != connection.CloudflareOAuth.AuthURL || cf.TokenURL != connection.CloudflareOAuth.TokenURL ||
		cfg.Connections.PublicURL != "https://dcvaas.example.com" || cfg.Connections.OAuth["godaddy"] != nil {
		t.Fatalf("connections %+v", cfg.Connections)
	}

	for _, tc := range []struct {
		vars []string
		want string
	}{
		{[]string{"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID", "id", "DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET", "s"}, "DCVAAS_PUBLIC_URL"},
		{[]string{"DCVAAS_OAUTH_CLOUDFLARE_CLIENT_ID", "id", "DCVAAS_PUBLIC_URL", "https://x.test"}, "DCVAAS_OAUTH_CLOUDFLARE_CLIENT_SECRET"},
		{[]string{"DCVAAS_OAUTH_GODADDY_CLIENT_ID", "id", "DCVAAS_OAUTH_GODADDY_CLIENT_SECRET", "s", "DCVAAS_PUBLIC_URL", "https://x.test"}, "DCVAAS_OAUTH_GODADDY_AUTH_URL"},
		{[]string{"DCVAAS_CLOUDFLARE_API_URL", "ftp://x"}, "DCVAAS_CLOUDFLARE_API_URL"},
	} {
		if _, err := parse(with(tc.vars...)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to name %s", tc.vars, err, tc.want)
		}
	}
}
