package httpapi

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
)

type member struct {
	UserID    string    `json:"userId"`
	Email     string    `json:"email"`
	Role      string    `json:"role" enum:"owner,admin,member,viewer" doc:"viewer: read only (every token of a viewer acts as a read token); member: may change domains, not the organization; admin and owner: also its members and settings."`
	CreatedAt time.Time `json:"createdAt"`
}

type memberList struct {
	Items  []member `json:"items"`
	Total  int      `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
}

func toMember(m *dcvaas.Member) member {
	return member{UserID: m.UserID, Email: m.Email, Role: string(m.Role), CreatedAt: m.CreatedAt.UTC()}
}

type listMembersInput struct {
	ID     string `path:"id" doc:"The organization's id."`
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int    `query:"offset" default:"0" minimum:"0"`
}

type memberListOutput struct {
	Body memberList
}

// listMembers lists the members of any organization the caller's user
// belongs to (404 otherwise), like updateOrganization.
func (s *server) listMembers(ctx context.Context, in *listMembersInput) (*memberListOutput, error) {
	ms, total, err := s.store.ListMembers(ctx, actorFrom(ctx), in.ID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	return &memberListOutput{Body: memberList{Items: convert(ms, toMember), Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type addMemberRequest struct {
	Email string `json:"email" minLength:"3" maxLength:"254" example:"jane@example.com" doc:"The person's e-mail address: single sign-on signs them in by it."`
	Role  string `json:"role" enum:"owner,admin,member,viewer"`
}

type addMemberInput struct {
	ID   string `path:"id" doc:"The organization's id."`
	Body addMemberRequest
}

type memberOutput struct {
	Body member
}

// addMember adds a member by e-mail, or changes an existing member's role.
func (s *server) addMember(ctx context.Context, in *addMemberInput) (*memberOutput, error) {
	m, err := s.store.AddMember(ctx, actorFrom(ctx), in.ID, in.Body.Email, dcvaas.MemberRole(in.Body.Role))
	if err != nil {
		return nil, bodyFields(err)
	}
	return &memberOutput{Body: toMember(m)}, nil
}

type removeMemberInput struct {
	ID     string `path:"id" doc:"The organization's id."`
	UserID string `path:"userId" doc:"The member's user id."`
}

// removeMember ends a membership: the user's tokens and sessions lose
// access to the organization at their next request.
func (s *server) removeMember(ctx context.Context, in *removeMemberInput) (*struct{}, error) {
	if err := s.store.RemoveMember(ctx, actorFrom(ctx), in.ID, in.UserID); err != nil {
		return nil, err
	}
	return nil, nil
}
