package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas"
)

func (db *DB) createToken(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, t *dcvaas.Token) error {
	t.ID, t.CreatedAt = newID(), db.now().UTC()
	scope, err := encodeScope(t.Scope)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens
		(id, org_id, user_id, name, prefix, token_hash, role, created_at, expires_at, scope, parent_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		t.ID, t.OrgID, t.UserID, t.Name, t.Prefix, t.Hash, string(t.Role), micros(t.CreatedAt), nullMicros(t.ExpiresAt), scope,
		sql.NullString{String: t.ParentID, Valid: t.ParentID != ""}); err != nil {
		return err
	}
	actor.OrgID = t.OrgID
	details := map[string]any{"name": t.Name, "role": t.Role, "prefix": t.Prefix}
	if t.ParentID != "" {
		details["parentId"] = t.ParentID
	}
	if t.Scope != nil {
		details["scope"] = t.Scope
	}
	return db.audit(ctx, tx, actor, "token.created", "token", t.ID, details)
}

// CreateToken implements dcvaas.TokenStore.
func (db *DB) CreateToken(ctx context.Context, actor dcvaas.Actor, t *dcvaas.Token) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		// The user must still belong to the org the token is for.
		if _, err := db.findMembership(ctx, tx, t.UserID, t.OrgID); err != nil {
			return err
		}
		if actor.TokenID != "" {
			// Read in the transaction: a parent revoked at the same moment
			// creates nothing.
			parent, err := db.liveToken(ctx, tx, actor.TokenID)
			if err != nil {
				return err
			}
			if err := parent.Contains(t); err != nil {
				return err
			}
			t.ParentID = parent.ID
		}
		return db.createToken(ctx, tx, actor, t)
	})
}

// liveToken reads an unrevoked, unexpired token for the containment rule.
func (db *DB) liveToken(ctx context.Context, tx *sql.Tx, id string) (*dcvaas.Token, error) {
	var t dcvaas.Token
	var role string
	var expires sql.NullInt64
	var scope sql.NullString
	q := `SELECT id, org_id, user_id, role, expires_at, scope FROM api_tokens
		WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`
	if db.dialect == Postgres {
		// A revocation running now waits for this transaction, or this
		// one for it and then finds the parent revoked (RevokeToken).
		q += " FOR SHARE"
	}
	err := tx.QueryRowContext(ctx, q, id, micros(db.now())).Scan(&t.ID, &t.OrgID, &t.UserID, &role, &expires, &scope)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "invalid, expired or revoked token")
	} else if err != nil {
		return nil, err
	}
	t.Role, t.ExpiresAt = dcvaas.TokenRole(role), fromNullMicros(expires)
	if t.Scope, err = decodeScope(scope); err != nil {
		return nil, fmt.Errorf("token %s scope: %w", t.ID, err)
	}
	return &t, nil
}

// Authenticate implements dcvaas.TokenStore.
func (db *DB) Authenticate(ctx context.Context, hash string, now time.Time) (*dcvaas.Authenticated, error) {
	if db.dialect == Postgres {
		return db.authenticatePostgres(ctx, hash, now)
	}
	a, gen, ok := db.cachedAuth(hash, now)
	if ok {
		return a, nil
	}
	a, _, err := db.authenticate(ctx, hash, now)
	if err != nil {
		return nil, err
	}
	db.cacheAuth(gen, hash, a)
	return a, nil
}

// authenticatePostgres keeps answers under the identity generation, which
// the notifications of any node's changes move (changes.go): a known token
// costs no round trip, and a change is seen on this node at once, on
// another when its notification arrives. Concurrent reads of one token
// are one (after a start or a change, a token's requests come in bursts).
func (db *DB) authenticatePostgres(ctx context.Context, hash string, now time.Time) (*dcvaas.Authenticated, error) {
	gen, stale := db.generation(changeIdentity)
	if stale == 0 {
		if a, ok := db.pgAuth.Get(gen, hash); ok && (a.Token.ExpiresAt == nil || a.Token.ExpiresAt.After(now)) {
			return copyAuth(a), nil
		}
	}
	flight := strconv.FormatUint(gen, 10) + "/" + strconv.FormatUint(stale, 10) + "/" + hash
	read := db.authReads.DoChan(flight, func() (any, error) {
		// Not ended by the first caller's cancellation, which would fail
		// the others; each caller waits only as long as its own context.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
		defer cancel()
		a, _, err := db.authenticate(ctx, hash, now)
		if err == nil {
			db.pgAuth.Put(gen, hash, *copyAuth(*a))
		}
		return a, err
	})
	select {
	case r := <-read:
		if r.Err != nil {
			return nil, r.Err
		}
		a := copyAuth(*r.Val.(*dcvaas.Authenticated))
		if a.Token.ExpiresAt != nil && !a.Token.ExpiresAt.After(now) {
			// Read by a caller that came a moment earlier.
			return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "invalid, expired or revoked token")
		}
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sharedReadTimeout bounds a read that several callers wait for.
const sharedReadTimeout = 10 * time.Second

// authQuery reads who a token is; on PostgreSQL also its organization's
// identity version (admit.go), which SQLite does not keep.
func authQuery(d Dialect) string {
	version := "-1"
	if d == Postgres {
		version = "o.identity_version"
	}
	return `SELECT t.id, t.org_id, t.user_id, t.name, t.prefix, t.role, t.created_at,
		t.last_used_at, t.expires_at, t.scope, m.role, o.settings, ` + version + `
		FROM api_tokens t JOIN organization_members m ON m.org_id = t.org_id AND m.user_id = t.user_id
		JOIN organizations o ON o.id = t.org_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)`
}

var authQueries = map[Dialect]string{SQLite: authQuery(SQLite), Postgres: authQuery(Postgres)}

// authenticate asks the database who the token with that hash is, and
// returns the identity version the answer was read at (-1 on SQLite).
func (db *DB) authenticate(ctx context.Context, hash string, now time.Time) (*dcvaas.Authenticated, int64, error) {
	var t dcvaas.Token
	var role, memberRole, settings string
	var created, version int64
	var lastUsed, expires sql.NullInt64
	var scope sql.NullString
	err := db.read.QueryRowContext(ctx, authQueries[db.dialect], hash, micros(now)).
		Scan(&t.ID, &t.OrgID, &t.UserID, &t.Name, &t.Prefix, &role, &created, &lastUsed, &expires, &scope, &memberRole, &settings, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "invalid, expired or revoked token")
	} else if err != nil {
		return nil, 0, err
	}
	// A viewer's tokens only read, whatever role they were minted with.
	t.Role = dcvaas.MemberRole(memberRole).TokenCap(dcvaas.TokenRole(role))
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = fromMicros(created), fromNullMicros(lastUsed), fromNullMicros(expires)
	if t.Scope, err = decodeScope(scope); err != nil {
		return nil, 0, fmt.Errorf("token %s scope: %w", t.ID, err)
	}
	a := &dcvaas.Authenticated{Token: &t, MemberRole: dcvaas.MemberRole(memberRole)}
	if err := json.Unmarshal([]byte(settings), &a.OrgSettings); err != nil {
		return nil, 0, fmt.Errorf("organization %s settings: %w", t.OrgID, err)
	}
	return a, version, nil
}

// TouchToken implements dcvaas.TokenStore. It is not audited: it records a
// use, not a change.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, micros(at), id)
	return err
}

// ListTokens implements dcvaas.TokenStore.
func (db *DB) ListTokens(ctx context.Context, orgID string, p dcvaas.Page) ([]*dcvaas.Token, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE org_id = $1 AND revoked_at IS NULL`, orgID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, org_id, user_id, name, prefix, role, created_at, last_used_at, expires_at, scope, parent_id
		FROM api_tokens WHERE org_id = $1 AND revoked_at IS NULL
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, orgID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*dcvaas.Token
	for rows.Next() {
		var t dcvaas.Token
		var role string
		var created int64
		var lastUsed, expires sql.NullInt64
		var scope, parent sql.NullString
		if err := rows.Scan(&t.ID, &t.OrgID, &t.UserID, &t.Name, &t.Prefix, &role, &created, &lastUsed, &expires, &scope, &parent); err != nil {
			return nil, 0, err
		}
		var err error
		if t.Scope, err = decodeScope(scope); err != nil {
			return nil, 0, fmt.Errorf("token %s scope: %w", t.ID, err)
		}
		t.Role, t.CreatedAt, t.LastUsedAt, t.ExpiresAt = dcvaas.TokenRole(role), fromMicros(created), fromNullMicros(lastUsed), fromNullMicros(expires)
		t.ParentID = parent.String
		out = append(out, &t)
	}
	return out, total, rows.Err()
}

// RevokeToken implements dcvaas.TokenStore. The token and every live
// token below it (created by it, by those, …) are revoked in one
// transaction: no descendant outlives its ancestor. On SQLite the single
// writer serializes this with every CreateToken. On PostgreSQL a
// CreateToken holds its parent's row FOR SHARE: one that got there first
// makes the update below wait for its commit, and the statement is then
// run again (with a fresh snapshot) until it revokes nothing more, so the
// child it created is found; one that comes later finds its parent
// revoked.
func (db *DB) RevokeToken(ctx context.Context, actor dcvaas.Actor, id string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		now := micros(db.now())
		var found string
		err := tx.QueryRowContext(ctx, `SELECT id FROM api_tokens WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL`+db.dialect.forUpdate(),
			id, actor.OrgID).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "token not found")
		} else if err != nil {
			return err
		}
		var revoked []string
		for {
			more, err := db.revokeSubtree(ctx, tx, id, now)
			if err != nil {
				return err
			}
			if len(more) == 0 {
				break
			}
			revoked = append(revoked, more...)
		}
		slices.Sort(revoked)
		for _, r := range revoked {
			// Their browser sessions end with them (AuthenticateSession
			// also checks the token; deleting them keeps no dead session).
			if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_id = $1`, r); err != nil {
				return err
			}
			var details map[string]any
			if r != id {
				details = map[string]any{"revokedWith": id}
			}
			if err := db.audit(ctx, tx, actor, "token.revoked", "token", r, details); err != nil {
				return err
			}
		}
		return nil
	})
}

// revokeSubtree revokes the live tokens at and below id and returns their
// ids.
func (db *DB) revokeSubtree(ctx context.Context, tx *sql.Tx, id string, now int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `WITH RECURSIVE subtree (id) AS (
			SELECT id FROM api_tokens WHERE id = $1
			UNION
			SELECT t.id FROM api_tokens t JOIN subtree s ON t.parent_id = s.id
		)
		UPDATE api_tokens SET revoked_at = $2
		WHERE id IN (SELECT id FROM subtree) AND revoked_at IS NULL
		RETURNING id`, id, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// encodeScope is a token scope as the scope column keeps it: JSON, or
// NULL for an unscoped token.
func encodeScope(s *dcvaas.TokenScope) (sql.NullString, error) {
	if s == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return sql.NullString{}, fmt.Errorf("token scope: %w", err)
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

func decodeScope(v sql.NullString) (*dcvaas.TokenScope, error) {
	if !v.Valid {
		return nil, nil
	}
	var s dcvaas.TokenScope
	if err := json.Unmarshal([]byte(v.String), &s); err != nil {
		return nil, err
	}
	return &s, nil
}
