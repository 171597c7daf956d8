package httpapi

import (
	"context"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
)

type listAuditInput struct {
	Action auditAction `query:"action" example:"domain.created"`
	UserID string      `query:"user_id" doc:"Only changes made by this user."`
	From   time.Time   `query:"from" doc:"Only entries at or after this time (RFC 3339)."`
	To     time.Time   `query:"to" doc:"Only entries at or before this time (RFC 3339); not before from."`
	Limit  int         `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int         `query:"offset" default:"0" minimum:"0"`
}

type auditListOutput struct {
	Body auditList
}

func (s *server) listAudit(ctx context.Context, in *listAuditInput) (*auditListOutput, error) {
	if in.Action != "" && !dcvaas.KnownAuditAction(string(in.Action)) {
		return nil, invalid(map[string]string{"query.action": "unknown action; known actions: " + strings.Join(dcvaas.AuditActions, ", ")})
	}
	f := dcvaas.AuditFilter{Action: string(in.Action), UserID: in.UserID, Page: page(in.Limit, in.Offset)}
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

// auditAction is the action filter: one of dcvaas.AuditActions, the one
// registry, which the OpenAPI enum lists (and huma checks, 422 with the
// list otherwise).
type auditAction string

// Schema implements huma.SchemaProvider.
func (auditAction) Schema(huma.Registry) *huma.Schema {
	s := &huma.Schema{Type: huma.TypeString, Description: "Only entries with this action.", Examples: []any{"domain.created"}}
	for _, a := range dcvaas.AuditActions {
		s.Enum = append(s.Enum, a)
	}
	return s
}
