package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestAdmit: Admit authenticates and counts in one step, and its answers
// follow every change that could alter them, made by this node or another,
// through the store or by hand.
func TestAdmit(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			db := storetest.Open(t, url)
			now := time.Now()
			expires := now.Add(time.Hour)
			tok := &dcvaas.Token{Name: "t", Prefix: "dcv_x", Hash: "hash", Role: dcvaas.TokenAdmin, ExpiresAt: &expires}
			org, owner, err := db.Bootstrap(ctx, "Acme", "ops@acme.test", tok)
			if err != nil {
				t.Fatal(err)
			}
			admit := func(t *testing.T, want string) *dcvaas.Admission {
				t.Helper()
				a, err := db.Admit(ctx, "hash", 100, 100, now)
				if code := dcvaas.ErrorCode(err); code != want {
					t.Fatalf("Admit: %v, want %q", err, want)
				}
				if err != nil {
					return nil
				}
				if a.RateErr != nil || a.Auth.Token.ID != tok.ID {
					t.Fatalf("admission %+v", a)
				}
				return &a
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.SQL().ExecContext(ctx, q, args...); err != nil {
					t.Fatal(err)
				}
			}

			first, second := admit(t, ""), admit(t, "")
			if first.Rate.Remaining != 99 || second.Rate.Remaining != 98 || !second.Rate.Allowed {
				t.Fatalf("counts: %+v then %+v", first.Rate, second.Rate)
			}
			if dialect == sqlstore.Postgres {
				// The answer is kept: behind the triggers' back, a change is
				// not seen (only this test can do that).
				exec(`ALTER TABLE api_tokens DISABLE TRIGGER USER`)
				exec(`UPDATE api_tokens SET revoked_at = 1 WHERE id = $1`, tok.ID)
				admit(t, "")
				exec(`UPDATE api_tokens SET revoked_at = NULL WHERE id = $1`, tok.ID)
				exec(`ALTER TABLE api_tokens ENABLE TRIGGER USER`)
			}

			// Revoked by hand: refused at once, and again.
			exec(`UPDATE api_tokens SET revoked_at = 1 WHERE id = $1`, tok.ID)
			admit(t, dcvaas.EUNAUTHORIZED)
			admit(t, dcvaas.EUNAUTHORIZED)
			exec(`UPDATE api_tokens SET revoked_at = NULL WHERE id = $1`, tok.ID)
			admit(t, "")

			// Recording a use changes no answer, and does not end it.
			if err := db.TouchToken(ctx, tok.ID, now); err != nil {
				t.Fatal(err)
			}
			admit(t, "")

			// The member's role and the organization's defaults are read
			// again after they change.
			rsa := dcvaas.OrgSettings{DefaultKeyType: dcvaas.KeyRSA2048}
			actor := dcvaas.Actor{OrgID: org.ID, UserID: owner.ID, MemberRole: dcvaas.RoleOwner}
			if _, err := db.UpdateOrganization(ctx, actor, org.ID, dcvaas.OrgUpdate{Settings: &rsa}); err != nil {
				t.Fatal(err)
			}
			if a := admit(t, ""); a.Auth.OrgSettings.DefaultKeyType != dcvaas.KeyRSA2048 {
				t.Fatalf("settings %+v after the change", a.Auth.OrgSettings)
			}

			exec(`UPDATE organization_members SET role = 'member' WHERE org_id = $1 AND user_id = $2`, org.ID, owner.ID)
			if a := admit(t, ""); a.Auth.MemberRole != dcvaas.RoleMember {
				t.Fatalf("member role %q after the change", a.Auth.MemberRole)
			}

			// Expired since it was kept.
			if _, err := db.Admit(ctx, "hash", 100, 100, expires); dcvaas.ErrorCode(err) != dcvaas.EUNAUTHORIZED {
				t.Fatalf("expired token admitted: %v", err)
			}

			// Revoked through another node, then removed from the
			// organization: on PostgreSQL this node refuses it at its next
			// request. (SQLite has one node; another process on the same
			// file, like `dcvaas bootstrap`, is noticed by polling.)
			other := storetest.Open(t, url)
			refused := func() {
				t.Helper()
				if dialect == sqlstore.SQLite {
					time.Sleep(time.Second)
				}
				admit(t, dcvaas.EUNAUTHORIZED)
			}
			if err := other.RevokeToken(ctx, actor, tok.ID); err != nil {
				t.Fatal(err)
			}
			refused()
			exec(`UPDATE api_tokens SET revoked_at = NULL WHERE id = $1`, tok.ID)
			admit(t, "")
			if _, err := other.SQL().ExecContext(ctx, `DELETE FROM organization_members WHERE org_id = $1 AND user_id = $2`, org.ID, owner.ID); err != nil {
				t.Fatal(err)
			}
			refused()
		})
	}
}
