package dcvaas

import (
	"context"
	"time"
)

// Webhook is an organization's endpoint that receives its events, signed
// the way Standard Webhooks v1 says (webhook/).
type Webhook struct {
	ID    string
	OrgID string
	URL   string
	// EventTypes are patterns as EventTypeMatch takes them; empty: all.
	EventTypes  []string
	Description string
	Enabled     bool
	// SecretEnc is the signing secret ("whsec_…") sealed by the keyring
	// with WebhookSecretAD(ID). It never leaves the service after creation.
	SecretEnc string
	// PrevSecretEnc is the secret a rotation replaced, sealed the same
	// way; it keeps signing beside the new one until PrevSecretExpiresAt.
	PrevSecretEnc       string
	PrevSecretExpiresAt *time.Time
	// DisabledReason says why the service disabled the endpoint (410 Gone,
	// days of failures); "" when enabled or disabled by a person.
	DisabledReason string
	// FailingSince is when the first of an unbroken run of failed attempts
	// happened (nil after a success): 5 days of it disable the endpoint.
	FailingSince *time.Time
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// WebhookSecretAD is the associated data both sealed secrets of a webhook
// are sealed with (sqlstore's key rotation repeats it).
func WebhookSecretAD(id string) []byte { return []byte("webhook:" + id) }

// SecretOverlap is how long a replaced secret keeps signing deliveries.
const SecretOverlap = 24 * time.Hour

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

const (
	// DeliveryPending: an attempt is queued (now or at NextAttemptAt).
	DeliveryPending DeliveryStatus = "pending"
	// DeliveryDelivered: the receiver answered 2xx.
	DeliveryDelivered DeliveryStatus = "delivered"
	// DeliveryFailed: every attempt of the schedule failed, or the
	// receiver answered 410 Gone.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliveryCanceled: the endpoint was disabled before it was delivered.
	DeliveryCanceled DeliveryStatus = "canceled"
)

// WebhookDelivery is one event on its way to one endpoint: one per
// (event, endpoint), retried on the delivery schedule.
type WebhookDelivery struct {
	ID        string
	WebhookID string
	OrgID     string
	EventID   string
	EventType EventType
	// Payload is the event's JSON envelope: the body of every attempt.
	Payload []byte
	Status  DeliveryStatus
	// Attempts made so far.
	Attempts      int
	NextAttemptAt *time.Time
	// Gen names the one queued attempt allowed to run; a manual retry
	// moves it on, so an attempt queued before runs no more.
	Gen       int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// History is the delivery's attempts, oldest first (lists only).
	History []WebhookAttempt
}

// WebhookAttempt is one HTTP request of a delivery.
type WebhookAttempt struct {
	Attempt    int
	At         time.Time
	StatusCode int // 0: no HTTP answer (Error says why)
	Error      string
	Latency    time.Duration
	// Response is the first 1 KiB of the response body.
	Response string
}

// WebhookStore persists webhook endpoints and their deliveries. Every
// method scopes ids to orgID/actor.OrgID: another organization's ids are
// ENOTFOUND.
type WebhookStore interface {
	// CreateWebhook inserts w (ID, timestamps filled in) with the secret
	// that seal returns for the new ID; audit "webhook.created".
	CreateWebhook(ctx context.Context, actor Actor, w *Webhook, seal func(id string) (string, error)) error
	// FindWebhook returns one of the org's webhooks. ENOTFOUND.
	FindWebhook(ctx context.Context, orgID, id string) (*Webhook, error)
	// ListWebhooks returns the org's webhooks newest first and the total.
	ListWebhooks(ctx context.Context, orgID string, p Page) ([]*Webhook, int, error)
	// UpdateWebhook applies change to the stored webhook and saves it;
	// audit "webhook.updated" with details. ENOTFOUND, or change's error.
	UpdateWebhook(ctx context.Context, actor Actor, id string, change func(w *Webhook) (details map[string]any, err error)) (*Webhook, error)
	// DeleteWebhook removes the webhook, its secrets and its deliveries;
	// audit "webhook.deleted". ENOTFOUND.
	DeleteWebhook(ctx context.Context, actor Actor, id string) error
	// RotateWebhookSecret makes newEnc the secret and the current one the
	// previous, signing beside it until overlapUntil; audit
	// "webhook.secret_rotated". ENOTFOUND.
	RotateWebhookSecret(ctx context.Context, actor Actor, id, newEnc string, overlapUntil time.Time) (*Webhook, error)
	// QueueWebhookTest writes a webhook.test event and queues its delivery
	// to this endpoint only; audit "webhook.tested". ENOTFOUND.
	QueueWebhookTest(ctx context.Context, actor Actor, id string) (*WebhookDelivery, error)
	// ListWebhookDeliveries returns the webhook's deliveries newest first,
	// each with its attempts, and the total. ENOTFOUND.
	ListWebhookDeliveries(ctx context.Context, orgID, webhookID string, p Page) ([]*WebhookDelivery, int, error)
	// RetryWebhookDelivery queues one more attempt of the delivery now,
	// whatever its status; audit "webhook.delivery_retried". ENOTFOUND.
	RetryWebhookDelivery(ctx context.Context, actor Actor, webhookID, deliveryID string) (*WebhookDelivery, error)
}
