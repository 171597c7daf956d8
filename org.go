package dcvaas

import (
	"context"
	"time"
)

// MemberRole is a user's role in an organization.
type MemberRole string

const (
	RoleOwner  MemberRole = "owner"
	RoleAdmin  MemberRole = "admin"
	RoleMember MemberRole = "member"
)

// CanAdminister reports whether the role may change the organization itself.
func (r MemberRole) CanAdminister() bool { return r == RoleOwner || r == RoleAdmin }

// Organization is a tenant: every domain, job, token and audit entry belongs
// to exactly one.
type Organization struct {
	ID        string
	Name      string
	Settings  OrgSettings
	CreatedAt time.Time
	UpdatedAt time.Time
	// Role is the requesting user's role in it (set by ListOrganizations).
	Role MemberRole
}

// OrgSettings are an organization's defaults and contacts.
type OrgSettings struct {
	// DefaultIncludeWildcard applies when a new domain does not say.
	DefaultIncludeWildcard *bool  `json:"defaultIncludeWildcard,omitempty"`
	DefaultKeyType         string `json:"defaultKeyType,omitempty"`
	ContactEmail           string `json:"contactEmail,omitempty"`
}

// User is a person; they reach organizations through memberships.
type User struct {
	ID        string
	Email     string
	CreatedAt time.Time
}

// OrgUpdate is a partial change of an organization; nil fields stay.
type OrgUpdate struct {
	Name     *string
	Settings *OrgSettings
}

// OrgStore persists organizations, users and memberships.
type OrgStore interface {
	// Bootstrap creates an organization, its owner (found or created by
	// email) and a first admin token, atomically. Organization names are
	// not unique.
	Bootstrap(ctx context.Context, orgName, ownerEmail string, tok *Token) (*Organization, *User, error)
	// CreateOrganization creates an org owned by actor.UserID; audit
	// "organization.created" in the new org.
	CreateOrganization(ctx context.Context, actor Actor, name string, settings OrgSettings) (*Organization, error)
	// ListOrganizations returns the orgs the user belongs to, with Role set.
	ListOrganizations(ctx context.Context, userID string, p Page) ([]*Organization, int, error)
	// FindMembership returns the org and the user's role in it. ENOTFOUND
	// when the user is not a member.
	FindMembership(ctx context.Context, userID, orgID string) (*Organization, error)
	// UpdateOrganization changes orgID, which actor.UserID must administer
	// (owner or admin); audit "organization.updated" in that org. ENOTFOUND
	// when not a member, EFORBIDDEN for plain members.
	UpdateOrganization(ctx context.Context, actor Actor, orgID string, u OrgUpdate) (*Organization, error)
}
