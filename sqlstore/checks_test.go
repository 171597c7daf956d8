package sqlstore_test

import (
	"testing"

	"github.com/dcvaas/dcvaas"
)

// TestEnumChecks: the database itself refuses a value outside an
// enumeration (here a key type that skipped every check above it), and
// the store reports it as EINVALID naming the field, not as an internal
// error. Migration 00092 keeps existing rows and refuses to run over an
// invalid one.
func TestEnumChecks(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "kept.example.com")
		bad := &dcvaas.Domain{Name: "bad.example.com", CNAMETarget: "bad.verify.test", IncludeWildcard: true, KeyType: "dsa"}
		_, err := b.db.CreateDomain(b.ctx, b.actor, bad)
		wantCode(t, err, dcvaas.EINVALID)
		if e, ok := err.(*dcvaas.Error); !ok || e.Fields["keyType"] == "" {
			t.Fatalf("error %v does not name keyType", err)
		}
		for _, q := range []string{
			`UPDATE domains SET key_type = 'dsa' WHERE id = $1`,
			`UPDATE api_tokens SET role = 'owner' WHERE org_id = (SELECT org_id FROM domains WHERE id = $1)`,
			`UPDATE domains SET cname_status = 'maybe' WHERE id = $1`,
			`UPDATE jobs SET status = 'lost' WHERE domain_id = $1`,
		} {
			if _, err := b.db.SQL().Exec(q, d.ID); err == nil {
				t.Errorf("%s: accepted", q)
			}
		}

		// Down to before 00092 and up again over existing rows: the rows
		// stay, the rule comes back.
		if err := b.db.MigrateDownTo(b.ctx, 91); err != nil {
			t.Fatal(err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE domains SET key_type = 'dsa' WHERE id = $1`, d.ID); err != nil {
			t.Fatalf("without 00092: %v", err)
		}
		if err := b.db.Migrate(b.ctx); err == nil {
			t.Fatal("00092 ran over a domain with key type dsa")
		}
		if _, err := b.db.SQL().Exec(`UPDATE domains SET key_type = 'rsa2048' WHERE id = $1`, d.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.db.Migrate(b.ctx); err != nil {
			t.Fatal(err)
		}
		got, err := b.db.FindDomain(b.ctx, b.org.ID, d.ID)
		if err != nil || got.Name != "kept.example.com" || got.KeyType != "rsa2048" {
			t.Fatalf("after migrating: %+v %v", got, err)
		}
		if _, err := b.db.SQL().Exec(`UPDATE domains SET key_type = 'dsa' WHERE id = $1`, d.ID); err == nil {
			t.Fatal("00092 again: dsa accepted")
		}
	})
}
