package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/webhook"
)

// The webhooks page: every change goes through webhook.Service, the same
// instance as the API's /api/webhooks, so the URL rules (SSRF guard),
// event patterns, sealing and audit entries are the API's. A signing
// secret appears only in the answer to create and rotate (no-store).

type webhooksData struct {
	Items   []*dcvaas.Webhook
	Total   int
	Enabled bool
	// Created/Rotated: the endpoint and its secret, on this answer only.
	Secret     string
	SecretFor  string
	Form       webhookForm
	Prev, Next string
}

type webhookForm struct {
	URL, EventTypes, Description string
}

type webhookData struct {
	Hook       *dcvaas.Webhook
	Deliveries []*dcvaas.WebhookDelivery
	Total      int
	Secret     string
	Prev, Next string
}

// lastAttempt is a delivery's newest attempt, or nil.
func lastAttempt(d *dcvaas.WebhookDelivery) *dcvaas.WebhookAttempt {
	if len(d.History) == 0 {
		return nil
	}
	return &d.History[len(d.History)-1]
}

func (s *server) webhooksReady(w http.ResponseWriter, r *http.Request, c *call) bool {
	if s.Webhooks == nil {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "webhooks are not configured on this server"))
		return false
	}
	return true
}

func (s *server) canChangeWebhooks(w http.ResponseWriter, r *http.Request, c *call) bool {
	if !s.webhooksReady(w, r, c) {
		return false
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return false
	}
	return true
}

func (s *server) webhooks(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderWebhooks(w, r, c, http.StatusOK, &webhooksData{}, nil)
}

func (s *server) renderWebhooks(w http.ResponseWriter, r *http.Request, c *call, status int, d *webhooksData, formErr error) {
	if !s.webhooksReady(w, r, c) {
		return
	}
	off := offsetOf(r)
	items, total, err := s.Webhooks.Store.ListWebhooks(r.Context(), c.actor.OrgID, dcvaas.Page{Limit: pageSize, Offset: off})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Items, d.Total, d.Enabled = items, total, true
	d.Prev, d.Next = pager("/webhooks", r.URL.Query(), off, total)
	v := s.newView(r, c, "Webhooks", "webhooks")
	v.Data = d
	if formErr != nil {
		v.Error, v.Fields = dcvaas.ErrorMessage(formErr), formFields(fieldErrors(formErr))
	}
	s.render(w, status, "webhooks.html", v)
}

// formFields maps the service's field names (body.url) to the form's (url).
func formFields(in map[string]string) map[string]string {
	if in == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range in {
		out[strings.TrimPrefix(k, "body.")] = v
	}
	return out
}

// eventTypes reads the form's event types: separated by commas, spaces
// or lines; none selects every type.
func eventTypes(raw string) []string {
	return append([]string{}, strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })...)
}

// createWebhook adds an endpoint (webhook.Service.Create) and shows its
// secret once, on this response only.
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.canChangeWebhooks(w, r, c) {
		return
	}
	form := webhookForm{URL: strings.TrimSpace(r.PostFormValue("url")), EventTypes: r.PostFormValue("eventTypes"),
		Description: strings.TrimSpace(r.PostFormValue("description"))}
	types := eventTypes(form.EventTypes)
	hook, secret, err := s.Webhooks.Create(r.Context(), c.actor, webhook.Input{URL: &form.URL, EventTypes: &types, Description: &form.Description})
	if err != nil {
		if dcvaas.ErrorCode(err) != dcvaas.EINVALID {
			s.fail(w, r, c, err)
			return
		}
		s.renderWebhooks(w, r, c, http.StatusUnprocessableEntity, &webhooksData{Form: form}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderWebhooks(w, r, c, http.StatusCreated, &webhooksData{Secret: secret, SecretFor: hook.URL}, nil)
}

// webhook shows one endpoint and its recent deliveries.
func (s *server) webhook(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderWebhook(w, r, c, http.StatusOK, "")
}

func (s *server) renderWebhook(w http.ResponseWriter, r *http.Request, c *call, status int, secret string) {
	if !s.webhooksReady(w, r, c) {
		return
	}
	id := r.PathValue("id")
	hook, err := s.Webhooks.Store.FindWebhook(r.Context(), c.actor.OrgID, id)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	off := 0
	if secret == "" {
		off = offsetOf(r)
	}
	ds, total, err := s.Webhooks.Store.ListWebhookDeliveries(r.Context(), c.actor.OrgID, id, dcvaas.Page{Limit: pageSize, Offset: off})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d := &webhookData{Hook: hook, Deliveries: ds, Total: total, Secret: secret}
	d.Prev, d.Next = pager("/webhooks/"+url.PathEscape(id), r.URL.Query(), off, total)
	v := s.newView(r, c, "Webhook", "webhooks")
	v.Data = d
	s.render(w, status, "webhook.html", v)
}

// setWebhookEnabled enables or disables an endpoint (webhook.Service.Update);
// enabling clears the failure record, as in the API.
func (s *server) setWebhookEnabled(enabled bool) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		if !s.canChangeWebhooks(w, r, c) {
			return
		}
		id := r.PathValue("id")
		if _, err := s.Webhooks.Update(r.Context(), c.actor, id, webhook.Input{Enabled: &enabled}); err != nil {
			s.fail(w, r, c, err)
			return
		}
		msg := "Endpoint disabled."
		if enabled {
			msg = "Endpoint enabled."
		}
		back(w, r, "/webhooks/"+url.PathEscape(id), msg)
	}
}

// testWebhook queues a webhook.test delivery to this endpoint only.
func (s *server) testWebhook(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.canChangeWebhooks(w, r, c) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.Webhooks.Store.QueueWebhookTest(r.Context(), c.actor, id); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/webhooks/"+url.PathEscape(id), "Test event queued; its delivery appears below.")
}

// rotateWebhook gives the endpoint a new secret (webhook.Service.Rotate)
// and shows it once, on this response only.
func (s *server) rotateWebhook(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.canChangeWebhooks(w, r, c) {
		return
	}
	_, secret, err := s.Webhooks.Rotate(r.Context(), c.actor, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderWebhook(w, r, c, http.StatusOK, secret)
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.canChangeWebhooks(w, r, c) {
		return
	}
	if err := s.Webhooks.Store.DeleteWebhook(r.Context(), c.actor, r.PathValue("id")); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/webhooks", "Endpoint deleted.")
}

// retryDelivery queues one more attempt of a delivery now.
func (s *server) retryDelivery(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.canChangeWebhooks(w, r, c) {
		return
	}
	id := r.PathValue("id")
	if _, err := s.Webhooks.Store.RetryWebhookDelivery(r.Context(), c.actor, id, r.PathValue("delivery")); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/webhooks/"+url.PathEscape(id), "Delivery queued again.")
}
