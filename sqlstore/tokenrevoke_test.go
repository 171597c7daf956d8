package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/dcvaas/dcvaas"
)

// TestRevokeRacesCreate: a token created by a parent at the moment the
// parent's grandparent is revoked is either refused or revoked with it;
// no live token is ever left under a revoked one.
func TestRevokeRacesCreate(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		mint := func(parent *dcvaas.Token, hash string) (*dcvaas.Token, error) {
			actor := b.actor
			if parent != nil {
				actor.TokenID = parent.ID
			}
			tok := &dcvaas.Token{OrgID: b.org.ID, UserID: b.actor.UserID, Name: hash, Prefix: "dcv_x", Hash: hash, Role: dcvaas.TokenAdmin}
			return tok, b.db.CreateToken(b.ctx, actor, tok)
		}
		for i := range 20 {
			root, err := mint(nil, fmt.Sprintf("root-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			mid, err := mint(root, fmt.Sprintf("mid-%d", i))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				mint(mid, fmt.Sprintf("leaf-%d", i)) // may be refused: the parent is revoked
			}()
			go func() {
				defer wg.Done()
				if err := b.db.RevokeToken(b.ctx, b.actor, root.ID); err != nil {
					t.Error(err)
				}
			}()
			wg.Wait()
			var live int
			if err := b.db.SQL().QueryRow(`SELECT COUNT(*) FROM api_tokens WHERE token_hash IN ($1, $2, $3) AND revoked_at IS NULL`,
				fmt.Sprintf("root-%d", i), fmt.Sprintf("mid-%d", i), fmt.Sprintf("leaf-%d", i)).Scan(&live); err != nil {
				t.Fatal(err)
			}
			if live != 0 {
				t.Fatalf("round %d: %d tokens live under a revoked root", i, live)
			}
		}
	})
}
