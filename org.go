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
	// RoleViewer may only look: every token of a viewer acts as a read
	// token, and a single sign-on as a viewer is read-only.
	RoleViewer MemberRole = "viewer"
)

// MemberRoles are the roles a membership can have, strongest first.
var MemberRoles = []MemberRole{RoleOwner, RoleAdmin, RoleMember, RoleViewer}

// Valid reports whether r is one of MemberRoles.
func (r MemberRole) Valid() bool {
	for _, m := range MemberRoles {
		if r == m {
			return true
		}
	}
	return false
}

// CanAdminister reports whether the role may change the organization itself.
func (r MemberRole) CanAdminister() bool { return r == RoleOwner || r == RoleAdmin }

// TokenCap is the most a token (or a single sign-on) of a member with
// this role may do: viewers only read, whatever their token says.
func (r MemberRole) TokenCap(t TokenRole) TokenRole {
	if r == RoleViewer {
		return TokenRead
	}
	return t
}

// Member is a user's membership of an organization.
type Member struct {
	UserID    string
	Email     string
	Role      MemberRole
	CreatedAt time.Time
}

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

	// ListMembers returns orgID's members, oldest first. ENOTFOUND when
	// actor.UserID is not a member of it.
	ListMembers(ctx context.Context, actor Actor, orgID string, p Page) ([]*Member, int, error)
	// AddMember makes the user with that e-mail (created when unknown) a
	// member of orgID with role, or changes the role of one who is; audit
	// "member.added" or "member.updated". Owners and admins only
	// (EFORBIDDEN), only owners grant or take the owner role, the last
	// owner keeps it (ECONFLICT); ENOTFOUND when actor.UserID is not a
	// member; EINVALID for a bad e-mail or role.
	AddMember(ctx context.Context, actor Actor, orgID, email string, role MemberRole) (*Member, error)
	// RemoveMember ends userID's membership of orgID, which ends its
	// tokens' and sessions' access there; audit "member.removed". Rules as
	// AddMember's; ENOTFOUND when userID is not a member.
	RemoveMember(ctx context.Context, actor Actor, orgID, userID string) error
	// MembershipsByEmail returns the user with that e-mail (ENOTFOUND when
	// unknown) and the organizations they belong to, with Role set,
	// oldest membership first.
	MembershipsByEmail(ctx context.Context, email string) (*User, []*Organization, error)
	// JoinByEmail makes the user with that e-mail (created when unknown)
	// a member of orgID with role unless they already are one; audit
	// "member.joined" (single sign-on's automatic join). ENOTFOUND for an
	// unknown organization.
	JoinByEmail(ctx context.Context, actor Actor, orgID, email string, role MemberRole) error
}
