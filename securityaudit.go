package dcvaas

import (
	"context"
	"time"
)

// Security audit actions: events that come in floods (an attacker guessing
// tokens) and so are recorded in aggregate, one entry per action, source
// and minute with a count, instead of one row each.
const (
	SecurityAuthFailed    = "auth.failed"                 // a request with no valid credentials
	SecurityKeyReadDenied = "certificate.key_read_denied" // a private key asked for without the right
)

// SecurityCount is one aggregated security audit entry.
type SecurityCount struct {
	Action string
	// OrgID is the organization concerned (a denied key read's); "" for
	// failed authentications, which have none.
	OrgID  string
	Source string // the client address
	Minute time.Time
	Count  int64
}

// SecurityAuditStore keeps the aggregated security audit.
type SecurityAuditStore interface {
	// AddSecurityCounts adds each count to its entry (action, org, source,
	// minute), creating it; nodes of a cluster add to the same entries.
	AddSecurityCounts(ctx context.Context, counts []SecurityCount) error
	// ListSecurityCounts returns the entries from since on, newest first,
	// at most limit.
	ListSecurityCounts(ctx context.Context, since time.Time, limit int) ([]SecurityCount, error)
}
