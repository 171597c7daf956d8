package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestAuditFilters(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d sqlstore.Dialect) {
		b := setup(t, d, "")
		ctx := context.Background()
		owner := mustUser(t, b, "ops@acme.example")
		// Day 1 (2026-11-01): the owner adds jane; day 3: jane adds a domain.
		if _, err := b.db.AddMember(ctx, dcvaas.Actor{OrgID: b.orgA.ID, UserID: owner}, b.orgA.ID, "jane@acme.example", dcvaas.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		jane := mustUser(t, b, "jane@acme.example")
		b.clock.Advance(48 * time.Hour)
		if _, err := b.db.AddMember(ctx, dcvaas.Actor{OrgID: b.orgA.ID, UserID: jane}, b.orgA.ID, "bob@acme.example", dcvaas.RoleViewer); err != nil {
			t.Fatal(err)
		}
		br := b.browser()
		br.signIn(b.reader, "/")
		rows := func(query string) string {
			t.Helper()
			r := br.send("GET", "/audit"+query, nil)
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d", query, r.status)
			}
			return r.body
		}
		all := rows("")
		if !strings.Contains(all, "jane@acme.example") || !strings.Contains(all, "member.added") {
			t.Fatal("audit page lacks entries or actors' e-mails")
		}
		byJane := rows("?user=" + jane)
		if !strings.Contains(byJane, "1 entries") || !strings.Contains(byJane, `<td class="actor">jane@acme.example`) {
			t.Fatalf("actor filter: %s", byJane)
		}
		if day1 := rows("?action=member.added&from=2026-11-01&to=2026-11-01"); !strings.Contains(day1, "1 entries") || !strings.Contains(day1, `<td class="actor">ops@acme.example`) {
			t.Fatal("date filter of day 1")
		}
		if day3 := rows("?action=member.added&from=2026-11-03"); !strings.Contains(day3, "1 entries") || !strings.Contains(day3, `<td class="actor">jane@acme.example`) {
			t.Fatal("date filter from day 3")
		}
		for _, bad := range []string{"?action=member.eaten", "?from=yesterday", "?from=2026-11-03&to=2026-11-01"} {
			if r := br.send("GET", "/audit"+bad, nil); r.status != http.StatusUnprocessableEntity {
				t.Fatalf("%s: %d", bad, r.status)
			}
		}
	})
}
