package dcvaas

import (
	"context"
	"time"
)

// AuditEntry records one change: who, what, on which entity, from where.
type AuditEntry struct {
	ID         string
	OrgID      string
	UserID     string
	TokenID    string
	Action     string // e.g. "domain.created"
	EntityType string // e.g. "domain"
	EntityID   string
	Details    map[string]any
	IP         string
	UserAgent  string
	CreatedAt  time.Time
}

// AuditFilter narrows ListAudit; zero fields match everything.
type AuditFilter struct {
	Action string
	UserID string
	From   *time.Time
	To     *time.Time
	Page
}

// AuditStore reads the audit log; writes happen inside the mutations.
type AuditStore interface {
	// ListAudit returns the org's entries newest first and the total count.
	ListAudit(ctx context.Context, orgID string, f AuditFilter) ([]*AuditEntry, int, error)
}
