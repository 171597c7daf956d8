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
	// EntityType and EntityID, when set, keep one entity's entries (a
	// domain's timeline).
	EntityType string
	EntityID   string
	From       *time.Time
	To         *time.Time
	Page
}

// AuditStore reads the audit log; writes happen inside the mutations.
type AuditStore interface {
	// ListAudit returns the org's entries newest first and the total count.
	ListAudit(ctx context.Context, orgID string, f AuditFilter) ([]*AuditEntry, int, error)
}

// AuditActions is every action an audit entry can have: the one registry
// that GET /api/audit?action= accepts and its OpenAPI enum lists. Add a new
// action here in the same change that starts writing it, or nobody can
// filter by it.
var AuditActions = []string{
	"organization.created", "organization.updated",
	"token.created", "token.revoked",
	"domain.created", "domain.deleted", "domain.dns_verified", "domain.failed",
	"domain.dns_setup", "domain.cname_missing", "domain.cname_restored", "domain.csr_submitted",
	"job.queued", "job.started", "job.succeeded", "job.failed", "job.retried", "job.retry_scheduled",
	"certificate.issued", "certificate.key_read",
	"ca.failover", "ca.rate_limit",
	"connection.created", "connection.deleted", "connection.needs_reauth", "connection.token_refreshed",
	"cron.renewal_queued",
	"session.created", "session.deleted",
	"member.added", "member.updated", "member.removed", "member.joined",
	"webhook.created", "webhook.updated", "webhook.deleted", "webhook.secret_rotated", "webhook.tested",
	"webhook.delivery_retried", "webhook.disabled",
}

// KnownAuditAction reports whether action is in AuditActions.
func KnownAuditAction(action string) bool {
	for _, a := range AuditActions {
		if a == action {
			return true
		}
	}
	return false
}
