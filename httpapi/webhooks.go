package httpapi

import (
	"context"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/webhook"
)

// Webhook endpoints: the handlers translate between JSON and
// webhook.Service, which owns every rule. A signing secret appears only in
// the answers of create and rotate-secret, which say Cache-Control:
// no-store.

type webhookEndpoint struct {
	ID             string     `json:"id"`
	URL            string     `json:"url" example:"https://hooks.example.com/dcvaas"`
	EventTypes     []string   `json:"eventTypes" nullable:"false" doc:"Exact event types or prefixes such as certificate.*; empty: every type."`
	Description    string     `json:"description"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabledReason,omitempty" doc:"Why dcvaas disabled the endpoint (410 Gone, or 5 days of failed deliveries); enable it again with PATCH."`
	FailingSince   *time.Time `json:"failingSince,omitempty" doc:"Every delivery attempt since then failed; after 5 days the endpoint is disabled."`
	// PreviousSecretExpiresAt: during a rotation's overlap.
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty" doc:"Until then the previous secret signs every delivery too."`
	CreatedAt               time.Time  `json:"createdAt"`
	UpdatedAt               time.Time  `json:"updatedAt"`
}

func toWebhook(w *dcvaas.Webhook, now time.Time) webhookEndpoint {
	out := webhookEndpoint{ID: w.ID, URL: w.URL, EventTypes: w.EventTypes, Description: w.Description, Enabled: w.Enabled,
		DisabledReason: w.DisabledReason, FailingSince: utc(w.FailingSince), CreatedAt: w.CreatedAt.UTC(), UpdatedAt: w.UpdatedAt.UTC()}
	if out.EventTypes == nil {
		out.EventTypes = []string{}
	}
	if w.PrevSecretEnc != "" && w.PrevSecretExpiresAt != nil && now.Before(*w.PrevSecretExpiresAt) {
		out.PreviousSecretExpiresAt = utc(w.PrevSecretExpiresAt)
	}
	return out
}

type webhookWithSecret struct {
	webhookEndpoint
	Secret string `json:"secret" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" doc:"The signing secret (Standard Webhooks: whsec_ + base64 of 32 bytes). Shown only in this answer."`
}

type createWebhookRequest struct {
	URL         string   `json:"url" maxLength:"2048" doc:"https:// (http:// only where DCVAAS_WEBHOOK_ALLOW_HTTP=true); never a loopback, private, link-local, CGNAT or multicast address."`
	EventTypes  []string `json:"eventTypes,omitempty" maxItems:"32" doc:"Exact event types or prefixes such as certificate.*; empty or absent: every type."`
	Description string   `json:"description,omitempty" maxLength:"500"`
	Enabled     *bool    `json:"enabled,omitempty" doc:"Default true."`
}

type createWebhookInput struct {
	Body createWebhookRequest
}

type webhookSecretOutput struct {
	Location     string `header:"Location"`
	CacheControl string `header:"Cache-Control"`
	Body         webhookWithSecret
}

// webhookService returns the service, or ENOTIMPLEMENTED.
func (s *server) webhookService() (*webhook.Service, error) {
	if s.webhooks == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "webhooks are not configured on this server")
	}
	return s.webhooks, nil
}

func (s *server) createWebhook(ctx context.Context, in *createWebhookInput) (*webhookSecretOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	b := in.Body
	input := webhook.Input{URL: &b.URL, Description: &b.Description, Enabled: b.Enabled}
	if b.EventTypes != nil {
		input.EventTypes = &b.EventTypes
	}
	w, secret, err := svc.Create(ctx, actorFrom(ctx), input)
	if err != nil {
		return nil, err
	}
	return &webhookSecretOutput{Location: "/api/webhooks/" + w.ID, CacheControl: "no-store",
		Body: webhookWithSecret{toWebhook(w, s.now()), secret}}, nil
}

type listWebhooksInput struct {
	Limit  int `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int `query:"offset" default:"0" minimum:"0"`
}

type webhookList struct {
	Items  []webhookEndpoint `json:"items" nullable:"false"`
	Total  int               `json:"total"`
	Limit  int               `json:"limit"`
	Offset int               `json:"offset"`
}

type webhookListOutput struct {
	Body webhookList
}

func (s *server) listWebhooks(ctx context.Context, in *listWebhooksInput) (*webhookListOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	ws, total, err := svc.Store.ListWebhooks(ctx, actorFrom(ctx).OrgID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &webhookListOutput{Body: webhookList{Items: convert(ws, func(w *dcvaas.Webhook) webhookEndpoint { return toWebhook(w, now) }),
		Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type webhookIDInput struct {
	ID string `path:"id" doc:"The webhook's id."`
}

type webhookOutput struct {
	Body webhookEndpoint
}

func (s *server) getWebhook(ctx context.Context, in *webhookIDInput) (*webhookOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	w, err := svc.Store.FindWebhook(ctx, actorFrom(ctx).OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	return &webhookOutput{Body: toWebhook(w, s.now())}, nil
}

type updateWebhookRequest struct {
	URL         *string   `json:"url,omitempty" maxLength:"2048"`
	EventTypes  *[]string `json:"eventTypes,omitempty" maxItems:"32" doc:"Replaces the list; [] selects every type."`
	Description *string   `json:"description,omitempty" maxLength:"500"`
	Enabled     *bool     `json:"enabled,omitempty" doc:"true also clears a disabledReason and the failure record."`
}

type updateWebhookInput struct {
	ID   string `path:"id" doc:"The webhook's id."`
	Body updateWebhookRequest
}

func (s *server) updateWebhook(ctx context.Context, in *updateWebhookInput) (*webhookOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	b := in.Body
	w, err := svc.Update(ctx, actorFrom(ctx), in.ID, webhook.Input{URL: b.URL, EventTypes: b.EventTypes, Description: b.Description, Enabled: b.Enabled})
	if err != nil {
		return nil, err
	}
	return &webhookOutput{Body: toWebhook(w, s.now())}, nil
}

func (s *server) deleteWebhook(ctx context.Context, in *webhookIDInput) (*struct{}, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	return nil, svc.Store.DeleteWebhook(ctx, actorFrom(ctx), in.ID)
}

func (s *server) rotateWebhookSecret(ctx context.Context, in *webhookIDInput) (*webhookSecretOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	w, secret, err := svc.Rotate(ctx, actorFrom(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &webhookSecretOutput{Location: "/api/webhooks/" + w.ID, CacheControl: "no-store",
		Body: webhookWithSecret{toWebhook(w, s.now()), secret}}, nil
}

type webhookAttempt struct {
	Attempt      int       `json:"attempt" doc:"1 for the first attempt."`
	At           time.Time `json:"at"`
	StatusCode   int       `json:"statusCode,omitempty" doc:"The receiver's HTTP status; absent when it gave none (see error)."`
	Error        string    `json:"error,omitempty" doc:"Why the attempt failed: a network error, a refused address, a timeout, or the HTTP status."`
	LatencyMs    float64   `json:"latencyMs"`
	ResponseBody string    `json:"responseBody" doc:"The first 1 KiB of the response body."`
}

type webhookDelivery struct {
	ID            string           `json:"id"`
	EventID       string           `json:"eventId" doc:"The webhook-id header of every attempt."`
	EventType     dcvaas.EventType `json:"eventType"`
	Status        string           `json:"status" enum:"pending,delivered,failed,canceled" doc:"canceled: the endpoint was disabled first."`
	Attempts      int              `json:"attempts"`
	NextAttemptAt *time.Time       `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time        `json:"createdAt"`
	UpdatedAt     time.Time        `json:"updatedAt"`
	History       []webhookAttempt `json:"history" nullable:"false" doc:"Every attempt, oldest first."`
}

func toDelivery(d *dcvaas.WebhookDelivery) webhookDelivery {
	out := webhookDelivery{ID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: string(d.Status), Attempts: d.Attempts,
		NextAttemptAt: utc(d.NextAttemptAt), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), History: []webhookAttempt{}}
	if d.Status != dcvaas.DeliveryPending {
		out.NextAttemptAt = nil
	}
	for _, a := range d.History {
		out.History = append(out.History, webhookAttempt{Attempt: a.Attempt, At: a.At.UTC(), StatusCode: a.StatusCode, Error: a.Error,
			LatencyMs: float64(a.Latency.Microseconds()) / 1000, ResponseBody: a.Response})
	}
	return out
}

type webhookDeliveryOutput struct {
	Body webhookDelivery
}

func (s *server) testWebhook(ctx context.Context, in *webhookIDInput) (*webhookDeliveryOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	d, err := svc.Store.QueueWebhookTest(ctx, actorFrom(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &webhookDeliveryOutput{Body: toDelivery(d)}, nil
}

type listDeliveriesInput struct {
	ID     string `path:"id" doc:"The webhook's id."`
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int    `query:"offset" default:"0" minimum:"0"`
}

type deliveryList struct {
	Items  []webhookDelivery `json:"items" nullable:"false" doc:"Newest first."`
	Total  int               `json:"total"`
	Limit  int               `json:"limit"`
	Offset int               `json:"offset"`
}

type deliveryListOutput struct {
	Body deliveryList
}

func (s *server) listWebhookDeliveries(ctx context.Context, in *listDeliveriesInput) (*deliveryListOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	ds, total, err := svc.Store.ListWebhookDeliveries(ctx, actorFrom(ctx).OrgID, in.ID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	return &deliveryListOutput{Body: deliveryList{Items: convert(ds, toDelivery), Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type retryDeliveryInput struct {
	ID         string `path:"id" doc:"The webhook's id."`
	DeliveryID string `path:"deliveryId" doc:"The delivery's id."`
}

func (s *server) retryWebhookDelivery(ctx context.Context, in *retryDeliveryInput) (*webhookDeliveryOutput, error) {
	svc, err := s.webhookService()
	if err != nil {
		return nil, err
	}
	d, err := svc.Store.RetryWebhookDelivery(ctx, actorFrom(ctx), in.ID, in.DeliveryID)
	if err != nil {
		return nil, err
	}
	return &webhookDeliveryOutput{Body: toDelivery(d)}, nil
}
