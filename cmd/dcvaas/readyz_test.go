package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestReadyzNeedsRiverMigrations: /readyz answers 503 problem+json while
// the job queue's newest migration is missing from the database (as after
// a rollback by an older binary), and 200 again once it is back.
func TestReadyzNeedsRiverMigrations(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			dbURL := storetest.URL(t, dialect)
			base := startServe(t, map[string]string{
				"DCVAAS_DATABASE_URL":   dbURL,
				"DCVAAS_ENCRYPTION_KEY": strings.Repeat("ef", 32),
				"DCVAAS_VERIFY_ZONE":    "verify.example",
			})
			db := storetest.Open(t, dbURL)
			readyz := func(want int) {
				t.Helper()
				resp, err := http.Get(base + "/readyz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var p map[string]any
				json.NewDecoder(resp.Body).Decode(&p)
				if resp.StatusCode != want {
					t.Fatalf("readyz: %d %v, want %d", resp.StatusCode, p, want)
				}
				if want == http.StatusServiceUnavailable {
					if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" || p["status"] != 503.0 || p["detail"] != "not ready" {
						t.Fatalf("readyz problem: %s %v", ct, p)
					}
				}
			}
			readyz(http.StatusOK)

			// Hide River's newest migration: for the check it is not applied.
			hide := `UPDATE river_migration SET line = 'hidden' WHERE line = 'main' AND version = (SELECT MAX(version) FROM river_migration WHERE line = 'main')`
			if _, err := db.SQL().Exec(hide); err != nil {
				t.Fatal(err)
			}
			readyz(http.StatusServiceUnavailable)

			if _, err := db.SQL().Exec(`UPDATE river_migration SET line = 'main' WHERE line = 'hidden'`); err != nil {
				t.Fatal(err)
			}
			readyz(http.StatusOK)

			// No queue tables at all.
			if _, err := db.SQL().Exec(`ALTER TABLE river_migration RENAME TO river_migration_gone`); err != nil {
				t.Fatal(err)
			}
			readyz(http.StatusServiceUnavailable)
			if _, err := db.SQL().Exec(`ALTER TABLE river_migration_gone RENAME TO river_migration`); err != nil {
				t.Fatal(err)
			}
		})
	}
}
