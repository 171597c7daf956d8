package dcvaas

import (
	"context"
	"time"
)

// Session is a browser's sign-in: the random id in its cookie (only the
// SHA-256 is stored) exchanged once for the API token that signed in.
type Session struct {
	Hash string // hex SHA-256 of the cookie's id
	// TokenID is the API token that signed in; empty for a single sign-on,
	// whose session is UserID's in OrgID instead.
	TokenID    string
	UserID     string
	OrgID      string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end, whatever the activity.
	ExpiresAt time.Time
}

// SessionStore persists browser sessions.
type SessionStore interface {
	// CreateSession stores s for actor.TokenID (sets TokenID and
	// CreatedAt), or, when actor has no token (single sign-on), for
	// actor.UserID in actor.OrgID; audit "session.created".
	CreateSession(ctx context.Context, actor Actor, s *Session) error
	// AuthenticateSession returns who the session with that hash is: live
	// while seen within idle, before its ExpiresAt, and while its token is
	// live and its user a member (a single sign-on's: while its user is a
	// member, with the membership's rights). EUNAUTHORIZED otherwise.
	AuthenticateSession(ctx context.Context, hash string, now time.Time, idle time.Duration) (*Authenticated, error)
	// SwitchSession moves a single sign-on's session (actor's, of the
	// hash) to another organization of its user; audit "session.created"
	// there. ENOTFOUND when the user is not a member of orgID or the
	// session is a token's.
	SwitchSession(ctx context.Context, actor Actor, hash, orgID string) error
	// DeleteSession ends the session (sign-out); audit "session.deleted".
	// Deleting one that is gone is not an error.
	DeleteSession(ctx context.Context, actor Actor, hash string) error
}

// CanChange reports whether the actor may change anything: only admin
// tokens may; read-only ones may only look. The API and the dashboard both
// ask this one question.
func (a Actor) CanChange() bool { return a.TokenRole == TokenAdmin }
