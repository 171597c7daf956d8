// Package dcvaas holds the vocabulary of the service: the types, their states,
// the store interfaces and the error codes. It imports nothing of ours;
// adapters (sqlstore, httpapi, jobs, …) depend on it, never the reverse.
package dcvaas

import (
	"context"
	"time"
)

// Version is set at build time with -ldflags "-X github.com/dcvaas/dcvaas.Version=…".
var Version = "dev"

// Actor is who performs a change: it scopes every store call to one
// organization and is written into the audit entry of each mutation.
type Actor struct {
	OrgID     string
	UserID    string
	TokenID   string
	TokenRole TokenRole
	// Scope is the token's domain scope (delivery tokens); nil: all.
	Scope *TokenScope
	// MemberRole is the user's role in OrgID.
	MemberRole MemberRole
	IP         string
	UserAgent  string
}

// SystemActor returns the actor for changes made by the service itself
// (jobs, scheduler) on behalf of an organization.
func SystemActor(orgID string) Actor { return Actor{OrgID: orgID} }

// Page selects a window of a list.
type Page struct {
	Limit  int
	Offset int
}

// Clock lets tests move time; production uses time.Now.
type Clock func() time.Time

// Store is everything the API and the workers need from the database. Every
// mutation writes its audit entry (and the job it causes) in the same
// transaction as the change itself.
type Store interface {
	DomainStore
	JobStore
	OrgStore
	TokenStore
	AuditStore

	// Ping checks the database is reachable and fully migrated.
	Ping(ctx context.Context) error
}
