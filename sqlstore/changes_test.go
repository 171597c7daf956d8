package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestChangesFollowEveryNode: on PostgreSQL, who a token is and the
// delivery generation are answered from memory (no statement) while nothing
// changed; a change by this node is seen at its next call, one by another
// node once its notification arrives; and a lost listener makes callers
// read afresh until it is back, every kept answer dropped.
func TestChangesFollowEveryNode(t *testing.T) {
	if !slices.Contains(storetest.Dialects(t), sqlstore.Postgres) {
		t.Skip("needs PostgreSQL")
	}
	ctx := context.Background()
	url := storetest.URL(t, sqlstore.Postgres)
	a, other := storetest.Open(t, url), storetest.Open(t, url)
	boot := &dcvaas.Token{Name: "bootstrap", Prefix: "dcv_abc", Hash: "h0", Role: dcvaas.TokenAdmin}
	org, user, err := a.Bootstrap(ctx, "Acme", "owner@acme.test", boot)
	if err != nil {
		t.Fatal(err)
	}
	actor := dcvaas.Actor{OrgID: org.ID, UserID: user.ID, TokenID: boot.ID, TokenRole: dcvaas.TokenAdmin, MemberRole: dcvaas.RoleOwner}
	now := time.Now()
	tokens := map[string]*dcvaas.Token{}
	for _, h := range []string{"h-local", "h-remote", "h-outage"} {
		tok := &dcvaas.Token{OrgID: org.ID, UserID: user.ID, Name: h, Prefix: "dcv_x", Hash: h, Role: dcvaas.TokenRead}
		if err := a.CreateToken(ctx, actor, tok); err != nil {
			t.Fatal(err)
		}
		tokens[h] = tok
	}
	d := &dcvaas.Domain{Name: "shop.example.com", CNAMETarget: "l1.verify.test", KeyType: dcvaas.KeyEC256}
	if _, err := a.CreateDomain(ctx, actor, d); err != nil {
		t.Fatal(err)
	}
	authAll := func() {
		t.Helper()
		for h := range tokens {
			if _, err := a.Authenticate(ctx, h, now); err != nil {
				t.Fatalf("%s: %v", h, err)
			}
		}
	}
	gen := func() (uint64, bool) {
		t.Helper()
		g, stale, err := a.DeliveryGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return g, stale == 0
	}
	waitCurrent := func() uint64 {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if g, ok := gen(); ok {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatal("the change listener never became current")
			}
		}
	}
	refusedWithin := func(hash string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			_, err := a.Authenticate(ctx, hash, now)
			if dcvaas.ErrorCode(err) == dcvaas.EUNAUTHORIZED {
				return time.Since(start)
			} else if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > limit {
				t.Fatalf("%s still accepted after %s", hash, limit)
			}
			time.Sleep(time.Millisecond)
		}
	}

	// Kept answers cost no statement.
	waitCurrent()
	authAll()
	g0 := waitCurrent()
	q := a.QueryCount()
	for range 100 {
		authAll()
		if g, ok := gen(); !ok || g != g0 {
			t.Fatalf("generation %d (current %v) with nothing changed, want %d", g, ok, g0)
		}
	}
	if n := a.QueryCount() - q; n != 0 {
		t.Fatalf("kept answers ran %d statements", n)
	}

	// This node's changes: at its next call.
	if err := a.RevokeToken(ctx, actor, tokens["h-local"].ID); err != nil {
		t.Fatal(err)
	}
	refusedWithin("h-local", 0)
	if _, err := a.SQL().Exec(`UPDATE domains SET status = 'failed' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	if g, ok := gen(); ok && g == g0 {
		t.Fatal("this node's domain change left the delivery generation current")
	}
	g1 := waitCurrent()
	if g1 <= g0 {
		t.Fatalf("delivery generation %d after a change, was %d", g1, g0)
	}

	// Another node's changes: once notified.
	if err := other.RevokeToken(ctx, actor, tokens["h-remote"].ID); err != nil {
		t.Fatal(err)
	}
	took := refusedWithin("h-remote", 2*time.Second)
	if _, err := other.SQL().Exec(`UPDATE domains SET status = 'active' WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for g, _ := gen(); g == g1; g, _ = gen() {
		if time.Since(start) > 2*time.Second {
			t.Fatal("another node's domain change never moved the delivery generation")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("another node's changes seen after %s (token) and %s (delivery)", took, time.Since(start))

	// The listener lost: a change made meanwhile, whose notification
	// nobody hears, is still seen, and the listener comes back.
	g2 := waitCurrent()
	pid := a.ChangeListenerPID()
	if _, err := other.SQL().Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeToken(ctx, actor, tokens["h-outage"].ID); err != nil {
		t.Fatal(err)
	}
	refusedWithin("h-outage", 10*time.Second)
	if g3 := waitCurrent(); g3 <= g2 || a.ChangeListenerPID() == pid {
		t.Fatalf("after the listener's loss: generation %d (was %d), listener %d (was %d)", g3, g2, a.ChangeListenerPID(), pid)
	}
}

func TestMayWrite(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT version FROM delivery_version": false,
		"  select\n\t1":                        false,
		"(SELECT 1) UNION (SELECT 2)":          false,
		"begin":                                false,
		"rollback":                             false,
		"":                                     false,
		"commit":                               true,
		"COMMIT":                               true,
		"UPDATE domains SET status = 'failed'": true,
		"INSERT INTO x VALUES (1)":             true,
		"WITH v AS (UPDATE river_job SET x = 1 RETURNING id) SELECT id FROM v": true,
		"DELETE FROM events": true,
	} {
		if got := sqlstore.MayWrite(sql); got != want {
			t.Errorf("mayWrite(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestDeliveryGeneration: the generation moves when what the Caddy
// endpoint serves changes (a domain's status), not when anything else of a
// domain does, on both databases.
func TestDeliveryGeneration(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "shop.example.com")
		// settled returns the generation once it is current (PostgreSQL:
		// the listener has confirmed this node's writes).
		settled := func() uint64 {
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				g, stale, err := b.db.DeliveryGeneration(b.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if stale == 0 {
					return g
				}
				if time.Now().After(deadline) {
					t.Fatal("the delivery generation never became current")
				}
			}
		}
		exec := func(q string) {
			t.Helper()
			if _, err := b.db.SQL().Exec(q, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		g0 := settled()
		exec(`UPDATE domains SET updated_at = updated_at + 1 WHERE id = $1`)
		if g := settled(); g != g0 {
			t.Fatalf("a domain's updated_at moved the generation from %d to %d", g0, g)
		}
		exec(`UPDATE domains SET status = 'active' WHERE id = $1`)
		if g := settled(); g <= g0 {
			t.Fatalf("a domain's status change left the generation at %d (was %d)", g, g0)
		}
	})
}
