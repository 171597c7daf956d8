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
	var tokenID, userID, orgID sql.NullString
	entityType, entityID, details := "token", actor.TokenID, map[string]any(nil)
	if actor.TokenID != "" {
		tokenID = sql.NullString{String: actor.TokenID, Valid: true}
	} else {
		if actor.UserID == "" || actor.OrgID == "" {
			return fmt.Errorf("session without a token needs a user and an organization")
		}
		s.UserID, s.OrgID = actor.UserID, actor.OrgID
		userID = sql.NullString{String: actor.UserID, Valid: true}
		orgID = sql.NullString{String: actor.OrgID, Valid: true}
		entityType, entityID, details = "user", actor.UserID, map[string]any{"method": "sso"}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < $1`, micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, token_id, user_id, org_id, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.Hash, tokenID, userID, orgID, micros(now), micros(now), micros(s.ExpiresAt)); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "session.created", entityType, entityID, details)
	})
}

// SSOTokenName is what a single sign-on's stand-in token is called.
const SSOTokenName = "single sign-on"

// AuthenticateSession implements dcvaas.SessionStore: the token checks are
// Authenticate's, so a revoked or expired token ends its sessions at once.
// A single sign-on has no token: it lives while its user is a member of
// its organization, with the rights of that membership (viewer: read,
// else admin), presented as a token without id.
func (db *DB) AuthenticateSession(ctx context.Context, hash string, now time.Time, idle time.Duration) (*dcvaas.Authenticated, error) {
	var t dcvaas.Token
	var tokenID, name, prefix, role sql.NullString
	var memberRole, settings, orgID, userID string
	var created, lastUsed, expires sql.NullInt64
	var lastSeen int64
	err := db.read.QueryRowContext(ctx, `SELECT t.id, t.name, t.prefix, t.role, t.created_at,
		t.last_used_at, t.expires_at, m.org_id, m.user_id, m.role, o.settings, s.last_seen_at
		FROM web_sessions s LEFT JOIN api_tokens t ON t.id = s.token_id
		JOIN organization_members m ON m.org_id = COALESCE(t.org_id, s.org_id) AND m.user_id = COALESCE(t.user_id, s.user_id)
		JOIN organizations o ON o.id = m.org_id
		WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3
		AND (s.token_id IS NULL OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)))`,
		hash, micros(now), micros(now.Add(-idle))).
		Scan(&tokenID, &name, &prefix, &role, &created, &lastUsed, &expires, &orgID, &userID, &memberRole, &settings, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "signed out: the session expired, its token was revoked or its membership ended")
	} else if err != nil {
		return nil, err
	}
	mr := dcvaas.MemberRole(memberRole)
	t.OrgID, t.UserID = orgID, userID
	if tokenID.Valid {
		t.ID, t.Name, t.Prefix, t.Role = tokenID.String, name.String, prefix.String, mr.TokenCap(dcvaas.TokenRole(role.String))
		t.CreatedAt, t.LastUsedAt, t.ExpiresAt = fromMicros(created.Int64), fromNullMicros(lastUsed), fromNullMicros(expires)
	} else {
		t.Name, t.Role = SSOTokenName, mr.TokenCap(dcvaas.TokenAdmin)
	}
	a := &dcvaas.Authenticated{Token: &t, MemberRole: mr}
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

// SwitchSession implements dcvaas.SessionStore.
func (db *DB) SwitchSession(ctx context.Context, actor dcvaas.Actor, hash, orgID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE web_sessions SET org_id = $1 WHERE id_hash = $2 AND token_id IS NULL AND user_id = $3
			AND EXISTS (SELECT 1 FROM organization_members m WHERE m.org_id = $1 AND m.user_id = $3)`, orgID, hash, actor.UserID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "organization not found")
		}
		from := actor.OrgID
		actor.OrgID = orgID
		return db.audit(ctx, tx, actor, "session.created", "user", actor.UserID, map[string]any{"method": "sso", "switchedFrom": from})
	})
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
		if actor.TokenID == "" {
			return db.audit(ctx, tx, actor, "session.deleted", "user", actor.UserID, map[string]any{"method": "sso"})
		}
		return db.audit(ctx, tx, actor, "session.deleted", "token", actor.TokenID, nil)
	})
}
