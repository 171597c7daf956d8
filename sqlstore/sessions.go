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

// sessionTouchInterval is how stale last_seen_at may get: recording every
// page view would make each read a write, and the idle limit is hours.
const sessionTouchInterval = time.Minute

// CreateSession implements dcvaas.SessionStore. Expired sessions are swept
// on the way, so the table stays bounded without a periodic job.
func (db *DB) CreateSession(ctx context.Context, actor dcvaas.Actor, s *dcvaas.Session) error {
	now := db.now().UTC()
	s.TokenID, s.CreatedAt, s.LastSeenAt = actor.TokenID, now, now
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, token_id, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, s.Hash, s.TokenID, micros(now), micros(now), micros(s.ExpiresAt)); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "session.created", "token", actor.TokenID, nil)
	})
}

// AuthenticateSession implements dcvaas.SessionStore: the token checks are
// Authenticate's, so a revoked or expired token ends its sessions at once.
func (db *DB) AuthenticateSession(ctx context.Context, hash string, now time.Time, idle time.Duration) (*dcvaas.Authenticated, error) {
	var t dcvaas.Token
	var role, memberRole, settings string
	var created, lastSeen int64
	var lastUsed, expires sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT t.id, t.org_id, t.user_id, t.name, t.prefix, t.role, t.created_at,
		t.last_used_at, t.expires_at, m.role, o.settings, s.last_seen_at
		FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id
		JOIN organization_members m ON m.org_id = t.org_id AND m.user_id = t.user_id
		JOIN organizations o ON o.id = t.org_id
		WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3
		AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)`,
		hash, micros(now), micros(now.Add(-idle))).
		Scan(&t.ID, &t.OrgID, &t.UserID, &t.Name, &t.Prefix, &role, &created, &lastUsed, &expires, &memberRole, &settings, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "signed out: the session expired or its token was revoked")
	} else if err != nil {
		return nil, err
	}
	t.Role, t.CreatedAt, t.LastUsedAt, t.ExpiresAt = dcvaas.TokenRole(role), fromMicros(created), fromNullMicros(lastUsed), fromNullMicros(expires)
	a := &dcvaas.Authenticated{Token: &t, MemberRole: dcvaas.MemberRole(memberRole)}
	if err := json.Unmarshal([]byte(settings), &a.OrgSettings); err != nil {
		return nil, fmt.Errorf("organization %s settings: %w", t.OrgID, err)
	}
	if now.Sub(fromMicros(lastSeen)) >= sessionTouchInterval {
		if _, err := db.write.ExecContext(ctx, `UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2`, micros(now), hash); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// DeleteSession implements dcvaas.SessionStore.
func (db *DB) DeleteSession(ctx context.Context, actor dcvaas.Actor, hash string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = $1`, hash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return db.audit(ctx, tx, actor, "session.deleted", "token", actor.TokenID, nil)
	})
}
