package sqlstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestCreateDomainLookupsUseIndexes: the lookups every POST /api/domains
// runs find their rows through an index, not by reading the table (which
// made creates slow down with every domain already stored).
func TestCreateDomainLookupsUseIndexes(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		plan := queryPlan(t, b.db, sqlstore.DeletedTargetQuery, b.org.ID, "shop.example.com")
		if !strings.Contains(plan, "domains_org_name_deleted") {
			t.Fatalf("the deleted-domain lookup does not use its index:\n%s", plan)
		}
	})
}

// queryPlan returns the database's plan for query. On PostgreSQL,
// sequential scans are priced out first, so that a small table still
// shows whether an index can serve the query at all.
func queryPlan(t *testing.T, db *sqlstore.DB, query string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	explain := "EXPLAIN QUERY PLAN "
	if db.Dialect() == sqlstore.Postgres {
		if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		explain = "EXPLAIN "
	}
	rows, err := tx.QueryContext(ctx, explain+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				parts = append(parts, string(v))
			case string:
				parts = append(parts, v)
			}
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
