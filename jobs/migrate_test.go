package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/riverqueue/river/rivermigrate"
)

// TestMigrationCheck: the readiness check fails while River's tables are
// missing or a migration is pending, and passes once all are applied.
func TestMigrationCheck(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		ctx := context.Background()
		db := storetest.NewDB(t, dialect) // the store's migrations only
		check, err := MigrationCheck(db)
		if err != nil {
			t.Fatal(err)
		}
		want := func(prefix string) {
			t.Helper()
			err := check(ctx)
			if prefix == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			if dcvaas.ErrorCode(err) != dcvaas.EUNAVAILABLE || !strings.HasPrefix(dcvaas.ErrorMessage(err), prefix) {
				t.Fatalf("check: %v, want EUNAVAILABLE %q", err, prefix)
			}
		}
		want("job queue migrations not applied")

		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		want("")

		// One migration rolled back, as an older binary would leave it.
		m, err := migrator(db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{MaxSteps: 1}); err != nil {
			t.Fatal(err)
		}
		all := m.AllVersions()
		latest := all[len(all)-1].Version
		want(fmt.Sprintf("job queue migrations pending (version %d of %d applied)", latest-1, latest))

		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		want("")
	})
}
