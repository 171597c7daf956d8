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
	s, err := db.auditStmt(auditEntry{actor, action, entityType, entityID, details})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.query, s.args...)
	return err
}

// auditEntry is one entry of a multi-row audit insert (writes.audit).
type auditEntry struct {
	actor                      dcvaas.Actor
	action, entityType, entity string
	details                    map[string]any
}

// auditStmt is the insert of entries, in order, in one statement.
func (db *DB) auditStmt(entries ...auditEntry) (stmt, error) {
	const cols = 11
	args := make([]any, 0, cols*len(entries))
	now := micros(db.now())
	for _, e := range entries {
		details := e.details
		if details == nil {
			details = map[string]any{}
		}
		raw, err := json.Marshal(details)
		if err != nil {
			return stmt{}, fmt.Errorf("audit details: %w", err)
		}
		args = append(args, newID(), e.actor.OrgID, e.actor.UserID, e.actor.TokenID, e.action, e.entityType, e.entity,
			string(raw), e.actor.IP, e.actor.UserAgent, now)
	}
	return stmt{`INSERT INTO audit_logs
		(id, org_id, user_id, token_id, action, entity_type, entity_id, details, ip, user_agent, created_at)
		VALUES ` + numberedRows(len(entries), cols), args}, nil
}

// ListAudit implements dcvaas.AuditStore.
func (db *DB) ListAudit(ctx context.Context, orgID string, f dcvaas.AuditFilter) ([]*dcvaas.AuditEntry, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.EntityID != "" {
		w.add("entity_type = ?", f.EntityType)
		w.add("entity_id = ?", f.EntityID)
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
