package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
		(id, org_id, user_id, name, prefix, token_hash, role, created_at, expires_at, scope)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.ID, t.OrgID, t.UserID, t.Name, t.Prefix, t.Hash, string(t.Role), micros(t.CreatedAt), nullMicros(t.ExpiresAt), scope); err != nil {
		return err
	}
	actor.OrgID = t.OrgID
	details := map[string]any{"name": t.Name, "role": t.Role, "prefix": t.Prefix}
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
		return db.createToken(ctx, tx, actor, t)
	})
}

// Authenticate implements dcvaas.TokenStore.
func (db *DB) Authenticate(ctx context.Context, hash string, now time.Time) (*dcvaas.Authenticated, error) {
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
	rows, err := db.read.QueryContext(ctx, `SELECT id, org_id, user_id, name, prefix, role, created_at, last_used_at, expires_at, scope
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
		var scope sql.NullString
		if err := rows.Scan(&t.ID, &t.OrgID, &t.UserID, &t.Name, &t.Prefix, &role, &created, &lastUsed, &expires, &scope); err != nil {
			return nil, 0, err
		}
		var err error
		if t.Scope, err = decodeScope(scope); err != nil {
			return nil, 0, fmt.Errorf("token %s scope: %w", t.ID, err)
		}
		t.Role, t.CreatedAt, t.LastUsedAt, t.ExpiresAt = dcvaas.TokenRole(role), fromMicros(created), fromNullMicros(lastUsed), fromNullMicros(expires)
		out = append(out, &t)
	}
	return out, total, rows.Err()
}

// RevokeToken implements dcvaas.TokenStore.
func (db *DB) RevokeToken(ctx context.Context, actor dcvaas.Actor, id string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL`,
			micros(db.now()), id, actor.OrgID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "token not found")
		}
		// Its browser sessions end with it (AuthenticateSession also checks
		// the token; deleting them keeps no dead session around).
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_id = $1`, id); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "token.revoked", "token", id, nil)
	})
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
