package httpapi

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
)

type createTokenRequest struct {
	Name           string      `json:"name" minLength:"1" maxLength:"100" example:"ci deploy"`
	Role           string      `json:"role" enum:"admin,read,delivery" doc:"read tokens get 403 on every change; delivery tokens only list domains and read certificates and private keys (403 for everything else)."`
	Scope          *tokenScope `json:"scope,omitempty" doc:"Delivery tokens only: limit the token to these domains; any other is 404 through it. Ids must be the organization's domains; names are normalized like domain names."`
	ExpiresAt      *time.Time  `json:"expiresAt,omitempty" nullable:"false" doc:"In the future; never expires when left out."`
	OrganizationID string      `json:"organizationId,omitempty" doc:"Default: the calling token's organization. Another organization requires the caller to be its owner or admin."`
}

type createTokenInput struct {
	Body createTokenRequest
}

type createdTokenOutput struct {
	Body createdToken
}

// createToken mints a token for the caller's user. For the token's own
// organization anyone may (a token never has more rights than its user,
// whose membership is checked on every request); minting into another
// organization widens what this caller can reach, so there it takes an
// owner or admin.
func (s *server) createToken(ctx context.Context, in *createTokenInput) (*createdTokenOutput, error) {
	actor := actorFrom(ctx)
	// The scope is checked against the organization's domains; the name,
	// role and expiry with the dashboard's rules (apitoken.Mint).
	fields := map[string]string{}
	scope := s.tokenScope(ctx, fields, in.Body.Role, in.Body.Scope)
	if len(fields) > 0 {
		return nil, invalid(fields)
	}
	orgID := actor.OrgID
	if id := in.Body.OrganizationID; id != "" && id != actor.OrgID {
		org, err := s.store.FindMembership(ctx, actor.UserID, id)
		if err != nil {
			return nil, err
		}
		if !org.Role.CanAdminister() {
			return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an owner or admin may create tokens for that organization")
		}
		orgID = id
	}
	secret, t, err := apitoken.Mint(apitoken.Request{Name: in.Body.Name, Role: dcvaas.TokenRole(in.Body.Role), ExpiresAt: in.Body.ExpiresAt},
		orgID, actor.UserID, s.now())
	if err != nil {
		return nil, bodyFields(err)
	}
	t.Scope = scope
	if err := s.store.CreateToken(ctx, actor, t); err != nil {
		return nil, err
	}
	return &createdTokenOutput{Body: createdToken{
		ID:             t.ID,
		OrganizationID: t.OrgID,
		Name:           t.Name,
		Prefix:         t.Prefix,
		Role:           string(t.Role),
		Scope:          toTokenScope(t.Scope),
		CreatedAt:      t.CreatedAt.UTC(),
		ExpiresAt:      utc(t.ExpiresAt),
		Token:          secret,
	}}, nil
}

type listTokensInput struct {
	Limit  int `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int `query:"offset" default:"0" minimum:"0"`
}

type tokenListOutput struct {
	Body tokenList
}

// listTokens lists the organization's live tokens (all users'), metadata
// only.
func (s *server) listTokens(ctx context.Context, in *listTokensInput) (*tokenListOutput, error) {
	ts, total, err := s.store.ListTokens(ctx, actorFrom(ctx).OrgID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	items := convert(ts, toToken)
	return &tokenListOutput{Body: tokenList{Items: items, Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type tokenIDInput struct {
	ID string `path:"id" doc:"The token's id."`
}

// revokeToken takes effect on the token's next request: every request
// authenticates against the store.
func (s *server) revokeToken(ctx context.Context, in *tokenIDInput) (*struct{}, error) {
	if err := s.store.RevokeToken(ctx, actorFrom(ctx), in.ID); err != nil {
		return nil, err
	}
	return nil, nil
}
