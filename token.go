package dcvaas

import (
	"context"
	"slices"
	"strings"
	"time"
)

// TokenRole is what an API token may do.
type TokenRole string

const (
	TokenAdmin TokenRole = "admin" // read and change everything in its org
	TokenRead  TokenRole = "read"  // read only: mutations get 403
	// TokenDelivery lists the organization's domains and reads their
	// certificates and private keys, nothing else: what a server that
	// installs certificates (dcvaas sync, Caddy) needs, and no more.
	TokenDelivery TokenRole = "delivery"
)

// TokenScope limits a delivery token to some of its organization's
// domains; a domain outside it is not found (404) through that token.
// A nil scope sees every domain.
type TokenScope struct {
	DomainIDs []string `json:"domainIds,omitempty"`
	// Names are exact domain names or patterns "*.suffix", which match
	// every name under suffix (at any depth) but not suffix itself.
	Names []string `json:"names,omitempty"`
}

// Allows reports whether the domain with that id and (normalized) name is
// inside the scope.
func (s *TokenScope) Allows(id, name string) bool {
	if s == nil {
		return true
	}
	for _, d := range s.DomainIDs {
		if d == id {
			return true
		}
	}
	for _, p := range s.Names {
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(name, "."+suffix) {
				return true
			}
		} else if p == name {
			return true
		}
	}
	return false
}

// Token is an API token's metadata. The plaintext exists only in the
// response that created it; the database keeps its SHA-256.
type Token struct {
	ID     string
	OrgID  string
	UserID string
	Name   string
	Prefix string // first characters of the token, to recognize it
	Hash   string // hex SHA-256 of the plaintext
	Role   TokenRole
	// Scope limits a delivery token to some domains; nil: all of them.
	Scope      *TokenScope
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	// ParentID is the token that created this one ("" for a bootstrap or
	// command-line token); revoking it revokes this one too.
	ParentID string
}

// Contains checks that parent may create child: a token gives no more
// than it has. The child is of the parent's organization, its role is no
// more than the parent's (admin may create any role; read and delivery
// only their own), a scoped parent's child is scoped inside the parent's
// scope, and it expires no later than the parent (a parent that expires
// cannot create one that never does). It returns EFORBIDDEN for another
// organization, else EINVALID naming the fields ("role", "scope",
// "expiresAt"), or nil.
func (parent *Token) Contains(child *Token) error {
	if child.OrgID != parent.OrgID {
		return Errorf(EFORBIDDEN, "a token creates tokens only in its own organization; use a token of that organization")
	}
	fields := map[string]string{}
	if parent.Role != TokenAdmin && child.Role != parent.Role {
		fields["role"] = "must not be more than the creating token's role (" + string(parent.Role) + ")"
	}
	if parent.Scope != nil && !parent.Scope.containsScope(child.Scope) {
		fields["scope"] = "must lie inside the creating token's scope"
	}
	if parent.ExpiresAt != nil {
		switch {
		case child.ExpiresAt == nil:
			fields["expiresAt"] = "required: the creating token expires at " + parent.ExpiresAt.UTC().Format(time.RFC3339) + ", and a token it creates must expire no later"
		case child.ExpiresAt.After(*parent.ExpiresAt):
			fields["expiresAt"] = "must not be after the creating token's expiry, " + parent.ExpiresAt.UTC().Format(time.RFC3339)
		}
	}
	if len(fields) > 0 {
		return &Error{Code: EINVALID, Message: "a token cannot create a token with more than it has", Fields: fields}
	}
	return nil
}

// containsScope reports whether every domain c allows, s allows too, as
// far as the lists tell (ids must be s's ids; names must be s's names or
// names that one of s's patterns matches).
func (s *TokenScope) containsScope(c *TokenScope) bool {
	if c == nil {
		return false
	}
	for _, id := range c.DomainIDs {
		if !slices.Contains(s.DomainIDs, id) {
			return false
		}
	}
	for _, n := range c.Names {
		if slices.Contains(s.Names, n) {
			continue
		}
		name := strings.TrimPrefix(n, "*.")
		if n != name {
			name = "x." + name // a pattern inside a pattern: test a name under it
		}
		ok := false
		for _, p := range s.Names {
			if suffix, isPattern := strings.CutPrefix(p, "*."); isPattern && strings.HasSuffix(name, "."+suffix) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Authenticated is what a valid token resolves to.
type Authenticated struct {
	Token      *Token
	MemberRole MemberRole
	// OrgSettings are the defaults of the token's organization, read with
	// it: creating a domain needs them, and a second query would cost more.
	OrgSettings OrgSettings
}

// Admission is a request let in: who its token is, and its count against
// its user's and its organization's rate limits (TakeRequest).
type Admission struct {
	Auth *Authenticated
	Rate RateDecision
	// RateErr says the count could not be taken (Rate is then empty); the
	// token was authenticated all the same.
	RateErr error
}

// Admitter authenticates a request's token and counts the request against
// its user's (userLimit) and organization's (orgLimit) rate limits in one
// step. A store that counts in a
// database shared by a cluster does it so that the count's round trip also
// confirms a cached authentication, exactly: every request reaches the
// database once instead of twice. Errors are Authenticate's.
type Admitter interface {
	Admit(ctx context.Context, hash string, orgLimit, userLimit int, now time.Time) (Admission, error)
}

// TokenStore persists API tokens.
type TokenStore interface {
	// Authenticate finds the live token with that hash, whose user is still
	// a member of its org. EUNAUTHORIZED when missing, expired or revoked.
	Authenticate(ctx context.Context, hash string, now time.Time) (*Authenticated, error)
	// TouchToken records a use (callers throttle it).
	TouchToken(ctx context.Context, id string, at time.Time) error
	// CreateToken inserts t for t.OrgID/t.UserID; audit "token.created".
	// For an actor authenticated by a token it records that token as the
	// parent and refuses what the parent may not create (Token.Contains):
	// EFORBIDDEN, EINVALID; EUNAUTHORIZED when the parent is gone.
	CreateToken(ctx context.Context, actor Actor, t *Token) error
	// ListTokens returns the org's unrevoked tokens, newest first.
	ListTokens(ctx context.Context, orgID string, p Page) ([]*Token, int, error)
	// RevokeToken revokes a token of the org and, in the same transaction,
	// every live token it created, transitively; audit "token.revoked" for
	// each. ENOTFOUND.
	RevokeToken(ctx context.Context, actor Actor, id string) error
}
