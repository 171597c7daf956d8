package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/dcvaas/dcvaas"
	"github.com/google/uuid"
)

// newID returns a time-ordered opaque id (UUIDv7), so ids sort like
// creation times and break ties in "newest first" lists.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// audit writes one audit entry inside tx; every mutation calls it with its
// own change so that the log can never disagree with the data.
func (db *DB) audit(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, action, entityType, entityID string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit details: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_logs
		(id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		newID(), actor.OrgID, actor.UserID, actor.TokenID, action, entityType, entityID,
		string(raw), actor.IP, actor.UserAgent, micros(db.now()))
	return err
}

// ListAudit implements dcvaas.AuditStore.
func (db *DB) ListAudit(ctx context.Context, orgID string, f dcvaas.AuditFilter) ([]*dcvaas.AuditEntry, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.UserID != "" {
		w.add("user_id = ?", f.UserID)
	}
	if f.From != nil {
		w.add("created_at >= ?", micros(*f.From))
	}
	if f.To != nil {
		w.add("created_at <= ?", micros(*f.To))
	}
	var total int
	if err := db.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_logs"+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	limit, args := w.page(f.Limit, f.Offset)
	rows, err := db.read.QueryContext(ctx, `SELECT id, org_id, user_id, token_id, action, entity_type, entity_id,
		details, ip, user_agent, created_at FROM audit_logs`+w.String()+" ORDER BY created_at DESC, id DESC"+limit, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*dcvaas.AuditEntry
	for rows.Next() {
		var e dcvaas.AuditEntry
		var details string
		var created int64
		if err := rows.Scan(&e.ID, &e.OrgID, &e.UserID, &e.TokenID, &e.Action, &e.EntityType, &e.EntityID,
			&details, &e.IP, &e.UserAgent, &created); err != nil {
			return nil, 0, err
		}
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, 0, fmt.Errorf("audit %s details: %w", e.ID, err)
		}
		e.CreatedAt = fromMicros(created)
		out = append(out, &e)
	}
	return out, total, rows.Err()
}
