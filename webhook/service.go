package webhook

import (
	"context"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Sealer seals and opens secrets at rest (crypt.Keyring).
type Sealer interface {
	Encrypt(plaintext, associatedData []byte) (string, error)
	Decrypt(envelope string, associatedData []byte) ([]byte, error)
}

// Service owns the rules of webhook endpoints; the API only translates.
type Service struct {
	Store  dcvaas.WebhookStore
	Sealer Sealer
	Policy Policy
	Clock  dcvaas.Clock
}

// Input is what a client sets on an endpoint (nil: unchanged, on update).
type Input struct {
	URL         *string
	EventTypes  *[]string
	Description *string
	Enabled     *bool
}

// MaxDescription bounds a description, in bytes.
const MaxDescription = 500

// MaxEventTypes bounds the patterns of one endpoint.
const MaxEventTypes = 32

// validate checks in; fields name the JSON body fields at fault.
func (s *Service) validate(in Input) error {
	fields := map[string]string{}
	if in.URL != nil {
		if err := s.Policy.CheckURL(*in.URL); err != nil {
			fields["body.url"] = err.Error()
		}
	}
	if in.EventTypes != nil {
		if len(*in.EventTypes) > MaxEventTypes {
			fields["body.eventTypes"] = "at most 32 event types"
		}
		for _, p := range *in.EventTypes {
			if !dcvaas.ValidEventPattern(p) {
				fields["body.eventTypes"] = "unknown event type or prefix " + p + " (exact names, or prefixes like certificate.*)"
				break
			}
		}
	}
	if in.Description != nil && len(*in.Description) > MaxDescription {
		fields["body.description"] = "at most 500 bytes"
	}
	if len(fields) > 0 {
		return &dcvaas.Error{Code: dcvaas.EINVALID, Message: "validation failed", Fields: fields}
	}
	return nil
}

func (s *Service) seal(secret, id string) (string, error) {
	if s.Sealer == nil {
		return "", dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "webhooks need the encryption keyring")
	}
	return s.Sealer.Encrypt([]byte(secret), dcvaas.WebhookSecretAD(id))
}

// Create adds an endpoint (enabled unless in says otherwise) and returns
// it with its signing secret, which is shown this once.
func (s *Service) Create(ctx context.Context, actor dcvaas.Actor, in Input) (*dcvaas.Webhook, string, error) {
	if in.URL == nil {
		return nil, "", &dcvaas.Error{Code: dcvaas.EINVALID, Message: "validation failed", Fields: map[string]string{"body.url": "required"}}
	}
	if err := s.validate(in); err != nil {
		return nil, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	w := &dcvaas.Webhook{URL: *in.URL, Enabled: true, EventTypes: []string{}}
	if in.EventTypes != nil {
		w.EventTypes = dedupe(*in.EventTypes)
	}
	if in.Description != nil {
		w.Description = *in.Description
	}
	if in.Enabled != nil {
		w.Enabled = *in.Enabled
	}
	if err := s.Store.CreateWebhook(ctx, actor, w, func(id string) (string, error) { return s.seal(secret, id) }); err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

func dedupe(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, p := range in {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Update changes the fields in sets. Enabling an endpoint the service
// disabled clears its failure record.
func (s *Service) Update(ctx context.Context, actor dcvaas.Actor, id string, in Input) (*dcvaas.Webhook, error) {
	if err := s.validate(in); err != nil {
		return nil, err
	}
	return s.Store.UpdateWebhook(ctx, actor, id, func(w *dcvaas.Webhook) (map[string]any, error) {
		changed := map[string]any{}
		if in.URL != nil && *in.URL != w.URL {
			w.URL, changed["url"] = *in.URL, *in.URL
		}
		if in.EventTypes != nil {
			w.EventTypes = dedupe(*in.EventTypes)
			changed["eventTypes"] = w.EventTypes
		}
		if in.Description != nil && *in.Description != w.Description {
			w.Description, changed["description"] = *in.Description, *in.Description
		}
		if in.Enabled != nil && *in.Enabled != w.Enabled {
			w.Enabled, changed["enabled"] = *in.Enabled, *in.Enabled
		}
		return map[string]any{"url": w.URL, "changed": changed}, nil
	})
}

// Rotate gives the endpoint a new secret and returns it, shown this once;
// the old one keeps signing beside it for dcvaas.SecretOverlap.
func (s *Service) Rotate(ctx context.Context, actor dcvaas.Actor, id string) (*dcvaas.Webhook, string, error) {
	if _, err := s.Store.FindWebhook(ctx, actor.OrgID, id); err != nil {
		return nil, "", err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, "", err
	}
	env, err := s.seal(secret, id)
	if err != nil {
		return nil, "", err
	}
	w, err := s.Store.RotateWebhookSecret(ctx, actor, id, env, s.now().Add(dcvaas.SecretOverlap))
	if err != nil {
		return nil, "", err
	}
	return w, secret, nil
}

func (s *Service) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// Secrets opens the secrets that sign a delivery to w at now: the current
// one, and the previous one while its overlap lasts.
func Secrets(sealer Sealer, w *dcvaas.Webhook, now time.Time) ([]string, error) {
	if sealer == nil {
		return nil, errors.New("webhooks need the encryption keyring")
	}
	cur, err := sealer.Decrypt(w.SecretEnc, dcvaas.WebhookSecretAD(w.ID))
	if err != nil {
		return nil, err
	}
	out := []string{string(cur)}
	if w.PrevSecretEnc != "" && w.PrevSecretExpiresAt != nil && now.Before(*w.PrevSecretExpiresAt) {
		prev, err := sealer.Decrypt(w.PrevSecretEnc, dcvaas.WebhookSecretAD(w.ID))
		if err != nil {
			return nil, err
		}
		out = append(out, string(prev))
	}
	return out, nil
}
