package httpapi

import (
	"context"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/orgname"
)

type listOrganizationsInput struct {
	Limit  int `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int `query:"offset" default:"0" minimum:"0"`
}

type organizationListOutput struct {
	Body organizationList
}

// listOrganizations lists the organizations of the token's user, not only
// the token's own.
func (s *server) listOrganizations(ctx context.Context, in *listOrganizationsInput) (*organizationListOutput, error) {
	os, total, err := s.store.ListOrganizations(ctx, actorFrom(ctx).UserID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	items := convert(os, toOrganization)
	return &organizationListOutput{Body: organizationList{Items: items, Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type createOrganizationRequest struct {
	Name     string       `json:"name" minLength:"1" maxLength:"100" doc:"1 to 100 characters after trimming spaces; no control, format or bidirectional characters; width variants folded (PRECIS Nickname, RFC 8266). Not unique: names are for display."`
	Settings *orgSettings `json:"settings,omitempty" nullable:"false"`
}

type createOrganizationInput struct {
	Body createOrganizationRequest
}

type organizationOutput struct {
	Body organization
}

// createOrganization makes the caller's user the owner of a new
// organization. The token stays scoped to its own organization.
func (s *server) createOrganization(ctx context.Context, in *createOrganizationInput) (*organizationOutput, error) {
	fields := map[string]string{}
	name := orgName(fields, "body.name", in.Body.Name)
	var settings dcvaas.OrgSettings
	if in.Body.Settings != nil {
		checkSettings(fields, "body.settings", in.Body.Settings)
		settings = in.Body.Settings.toDomain()
	}
	if len(fields) > 0 {
		return nil, invalid(fields)
	}
	org, err := s.store.CreateOrganization(ctx, actorFrom(ctx), name, settings)
	if err != nil {
		return nil, err
	}
	return &organizationOutput{Body: toOrganization(org)}, nil
}

type updateOrganizationRequest struct {
	Name *string `json:"name,omitempty" nullable:"false" minLength:"1" maxLength:"100"`
	// Settings replaces the settings as a whole: send every setting to keep.
	Settings *orgSettings `json:"settings,omitempty" nullable:"false" doc:"Replaces all settings; settings left out are cleared."`
}

type updateOrganizationInput struct {
	ID   string `path:"id" doc:"The organization's id."`
	Body updateOrganizationRequest
}

// updateOrganization changes any organization the user administers, not
// only the token's own: the store checks the membership.
func (s *server) updateOrganization(ctx context.Context, in *updateOrganizationInput) (*organizationOutput, error) {
	fields := map[string]string{}
	var u dcvaas.OrgUpdate
	if in.Body.Name == nil && in.Body.Settings == nil {
		fields["body"] = "nothing to change: give name, settings or both"
	}
	if in.Body.Name != nil {
		name := orgName(fields, "body.name", *in.Body.Name)
		u.Name = &name
	}
	if in.Body.Settings != nil {
		checkSettings(fields, "body.settings", in.Body.Settings)
		settings := in.Body.Settings.toDomain()
		u.Settings = &settings
	}
	if len(fields) > 0 {
		return nil, invalid(fields)
	}
	org, err := s.store.UpdateOrganization(ctx, actorFrom(ctx), in.ID, u)
	if err != nil {
		return nil, err
	}
	return &organizationOutput{Body: toOrganization(org)}, nil
}

// cleanName trims a display name and checks it (dcvaas.CleanDisplayName),
// recording a problem under field.
func cleanName(fields map[string]string, field, name string) string {
	name, problem := dcvaas.CleanDisplayName(name)
	if problem != "" {
		fields[field] = problem
	}
	return name
}

// orgName normalizes an organization's name (orgname.Normalize),
// recording a problem under field.
func orgName(fields map[string]string, field, name string) string {
	out, err := orgname.Normalize(name)
	if err != nil {
		fields[field] = err.Error()
	}
	return out
}

// checkSettings adds what the schema cannot say: the contact is one bare
// address (the "email" format also accepts "Name <addr>").
func checkSettings(fields map[string]string, field string, s *orgSettings) {
	if problem := dcvaas.CheckContactEmail(s.ContactEmail); problem != "" {
		fields[field+".contactEmail"] = problem
	}
}
