package connection_test

import (
	"net/url"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
)

// Issue 13: an authorizeUrl in someone else's hands is worthless. Only a
// browser signed in as an admin of the flow's organization can start it,
// once, and only that browser, still signed in so, can finish it.
func TestFlowIsBoundToTheAdminsBrowser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddZone("example.com")
		tok := &dcvaas.Token{Name: "other", Prefix: "dcv_y", Hash: "other-hash", Role: dcvaas.TokenAdmin}
		other, otherUser, err := b.db.Bootstrap(b.ctx, "Other", "mallory@other.example", tok)
		if err != nil {
			t.Fatal(err)
		}
		stranger := dcvaas.Actor{OrgID: other.ID, UserID: otherUser.ID, TokenID: tok.ID, TokenRole: dcvaas.TokenAdmin, MemberRole: dcvaas.RoleOwner}
		reader := b.actor
		reader.TokenRole = dcvaas.TokenRead
		stateOf := func(authURL string) string { return must(url.Parse(authURL)).Query().Get("state") }
		authorize := func() string {
			t.Helper()
			u, err := b.svc.Authorize(b.ctx, b.actor, "cloudflare")
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		refused := func(p connection.CallbackParams, want string) {
			t.Helper()
			redirect, conn, err := b.svc.Callback(b.ctx, "cloudflare", p)
			if err == nil || conn != nil {
				t.Fatalf("callback succeeded: %s", redirect)
			}
			if got := reason(t, redirect); got != want {
				t.Fatalf("reason %s, want %s", got, want)
			}
		}

		t.Run("start", func(t *testing.T) {
			state := stateOf(authorize())
			_, _, err := b.svc.Start(b.ctx, stranger, "cloudflare", state)
			wantCode(t, err, dcvaas.ENOTFOUND)
			_, _, err = b.svc.Start(b.ctx, reader, "cloudflare", state)
			wantCode(t, err, dcvaas.EFORBIDDEN)
			_, _, err = b.svc.Start(b.ctx, b.actor, "godaddy", state)
			wantCode(t, err, dcvaas.EINVALID) // no OAuth for GoDaddy here
			if _, _, err := b.svc.Start(b.ctx, b.actor, "cloudflare", state); err != nil {
				t.Fatal(err)
			}
			_, _, err = b.svc.Start(b.ctx, b.actor, "cloudflare", state)
			wantCode(t, err, dcvaas.ECONFLICT) // single use
		})
		t.Run("callback without the binding cookie", func(t *testing.T) {
			p := b.params(b.consent(t, authorize()))
			p.Binding = ""
			refused(p, connection.ReasonOtherBrowser)
		})
		t.Run("callback with another flow's binding cookie", func(t *testing.T) {
			mine := b.params(b.consent(t, authorize()))
			theirs := b.params(b.consent(t, authorize()))
			mine.Binding = theirs.Binding
			refused(mine, connection.ReasonOtherBrowser)
		})
		t.Run("never started: the provider URL forwarded to a victim", func(t *testing.T) {
			// Without the start page there is no consent URL to forward,
			// but a state that reaches the callback unbound must fail too.
			state := stateOf(authorize())
			refused(connection.CallbackParams{Code: "anything", State: state, Session: &b.actor}, connection.ReasonOtherBrowser)
		})
		t.Run("callback not signed in", func(t *testing.T) {
			p := b.params(b.consent(t, authorize()))
			p.Session = nil
			refused(p, connection.ReasonNotSignedIn)
		})
		t.Run("callback signed in to another organization", func(t *testing.T) {
			p := b.params(b.consent(t, authorize()))
			p.Session = &stranger
			refused(p, connection.ReasonNotSignedIn)
		})
		t.Run("callback signed in read-only", func(t *testing.T) {
			p := b.params(b.consent(t, authorize()))
			p.Session = &reader
			refused(p, connection.ReasonNotSignedIn)
		})

		for _, org := range []string{b.actor.OrgID, other.ID} {
			if _, total, _ := b.svc.List(b.ctx, org, dcvaas.Page{Limit: 10}); total != 0 {
				t.Fatalf("org %s has %d connections", org, total)
			}
		}
		// The one that is bound and signed in still works.
		if conn := b.connectOAuth(t); conn.OrgID != b.actor.OrgID {
			t.Fatalf("connection %+v", conn)
		}
	})
}
