package httpapi

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
)

type listAuditInput struct {
	Action string    `query:"action" maxLength:"100" example:"domain.created"`
	UserID string    `query:"user_id" doc:"Only changes made by this user."`
	From   time.Time `query:"from" doc:"Only entries at or after this time (RFC 3339)."`
	To     time.Time `query:"to" doc:"Only entries at or before this time (RFC 3339); not before from."`
	Limit  int       `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int       `query:"offset" default:"0" minimum:"0"`
}

type auditListOutput struct {
	Body auditList
}

func (s *server) listAudit(ctx context.Context, in *listAuditInput) (*auditListOutput, error) {
	f := dcvaas.AuditFilter{Action: in.Action, UserID: in.UserID, Page: page(in.Limit, in.Offset)}
	if !in.From.IsZero() {
		f.From = &in.From
	}
	if !in.To.IsZero() {
		f.To = &in.To
	}
	if f.From != nil && f.To != nil && f.From.After(*f.To) {
		return nil, invalid(map[string]string{"query.to": "must not be before from"})
	}
	es, total, err := s.store.ListAudit(ctx, actorFrom(ctx).OrgID, f)
	if err != nil {
		return nil, err
	}
	items := convert(es, toAuditEntry)
	return &auditListOutput{Body: auditList{Items: items, Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}
