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
	ExpiresAt      *time.Time  `json:"expiresAt,omitempty" nullable:"false" doc:"In the future, and not after the calling token's expiry; never expires when left out (refused when the calling token expires)."`
	OrganizationID string      `json:"organizationId,omitempty" doc:"The calling token's organization (the default); a token creates tokens only there (403 for another)."`
}

type createTokenInput struct {
	Body createTokenRequest
}

type createdTokenOutput struct {
	Body createdToken
}

// createToken mints a token for the caller's user in the calling token's
// organization, with no more than the calling token has: its role at most
// the caller's, its expiry no later, its scope inside the caller's (the
// store applies dcvaas.Token.Contains and records the caller as the
// parent, so that revoking the caller revokes it). Minting into another
// organization takes a credential of that organization acting there.
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
		// Not a member: the organization is not found (404), as anywhere.
		if _, err := s.store.FindMembership(ctx, actor.UserID, id); err != nil {
			return nil, err
		}
		return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "a token creates tokens only in its own organization; use a token of that organization")
	}
	secret, t, err := apitoken.Mint(apitoken.Request{Name: in.Body.Name, Role: dcvaas.TokenRole(in.Body.Role), ExpiresAt: in.Body.ExpiresAt},
		orgID, actor.UserID, s.now())
	if err != nil {
		return nil, bodyFields(err)
	}
	t.Scope = scope
	if err := s.store.CreateToken(ctx, actor, t); err != nil {
		return nil, bodyFields(err)
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
		ParentID:       t.ParentID,
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
