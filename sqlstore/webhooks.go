package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Webhook endpoints (migration 00080). The store treats the sealed secrets
// as opaque: the webhook service seals them, the delivery worker opens
// them, so no plaintext secret reaches this package.

const webhookColumns = `id, org_id, url, description, event_types, enabled, secret_enc, prev_secret_enc,
	prev_secret_expires_at, disabled_reason, failing_since, created_by, created_at, updated_at`

func scanWebhook(row interface{ Scan(...any) error }) (*dcvaas.Webhook, error) {
	var w dcvaas.Webhook
	var types string
	var prevExp, failing sql.NullInt64
	var created, updated int64
	if err := row.Scan(&w.ID, &w.OrgID, &w.URL, &w.Description, &types, &w.Enabled, &w.SecretEnc, &w.PrevSecretEnc,
		&prevExp, &w.DisabledReason, &failing, &w.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(types), &w.EventTypes); err != nil {
		return nil, fmt.Errorf("webhook %s event types: %w", w.ID, err)
	}
	w.PrevSecretExpiresAt, w.FailingSince = fromNullMicros(prevExp), fromNullMicros(failing)
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &w, nil
}

// webhookDetails is what the audit log says about a webhook: never a secret.
func webhookDetails(w *dcvaas.Webhook) map[string]any {
	return map[string]any{"url": w.URL, "eventTypes": nonNil(w.EventTypes), "enabled": w.Enabled, "description": w.Description}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func eventTypesJSON(types []string) string {
	raw, _ := json.Marshal(nonNil(types))
	return string(raw)
}

// CreateWebhook implements dcvaas.WebhookStore.
func (db *DB) CreateWebhook(ctx context.Context, actor dcvaas.Actor, w *dcvaas.Webhook, seal func(id string) (string, error)) error {
	now := db.now().UTC()
	w.ID, w.OrgID, w.CreatedBy, w.CreatedAt, w.UpdatedAt = newID(), actor.OrgID, actor.UserID, now, now
	var err error
	if w.SecretEnc, err = seal(w.ID); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks (`+webhookColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '', NULL, '', NULL, $8, $9, $9)`,
			w.ID, w.OrgID, w.URL, w.Description, eventTypesJSON(w.EventTypes), w.Enabled, w.SecretEnc, w.CreatedBy, micros(now)); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "webhook.created", "webhook", w.ID, webhookDetails(w))
	})
}

func (db *DB) findWebhook(ctx context.Context, q querier, orgID, id string, lock bool) (*dcvaas.Webhook, error) {
	query := `SELECT ` + webhookColumns + ` FROM webhooks WHERE id = $1 AND org_id = $2`
	if lock {
		query += db.dialect.forUpdate()
	}
	w, err := scanWebhook(q.QueryRowContext(ctx, query, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "webhook not found")
	}
	return w, err
}

// FindWebhook implements dcvaas.WebhookStore. It reads from the writer, so
// an answer right after a change (a rotation) shows it.
func (db *DB) FindWebhook(ctx context.Context, orgID, id string) (*dcvaas.Webhook, error) {
	return db.findWebhook(ctx, db.write, orgID, id, false)
}

// ListWebhooks implements dcvaas.WebhookStore.
func (db *DB) ListWebhooks(ctx context.Context, orgID string, p dcvaas.Page) ([]*dcvaas.Webhook, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE org_id = $1`, orgID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE org_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, orgID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*dcvaas.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, w)
	}
	return out, total, rows.Err()
}

// UpdateWebhook implements dcvaas.WebhookStore.
func (db *DB) UpdateWebhook(ctx context.Context, actor dcvaas.Actor, id string, change func(w *dcvaas.Webhook) (map[string]any, error)) (*dcvaas.Webhook, error) {
	var out *dcvaas.Webhook
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		wasEnabled := w.Enabled
		details, err := change(w)
		if err != nil {
			return err
		}
		if w.Enabled && !wasEnabled {
			// Enabled again by a person: the failure record starts over.
			w.DisabledReason, w.FailingSince = "", nil
		}
		w.UpdatedAt = db.now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET url = $1, description = $2, event_types = $3, enabled = $4,
			disabled_reason = $5, failing_since = $6, updated_at = $7 WHERE id = $8`,
			w.URL, w.Description, eventTypesJSON(w.EventTypes), w.Enabled, w.DisabledReason, nullMicros(w.FailingSince),
			micros(w.UpdatedAt), w.ID); err != nil {
			return err
		}
		out = w
		return db.audit(ctx, tx, actor, "webhook.updated", "webhook", w.ID, details)
	})
	return out, err
}

// DeleteWebhook implements dcvaas.WebhookStore. The row goes for good (a
// soft delete would keep the secret); its deliveries and attempts follow
// (ON DELETE CASCADE), and their queued attempts find nothing to do.
func (db *DB) DeleteWebhook(ctx context.Context, actor dcvaas.Actor, id string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "webhook.deleted", "webhook", id, webhookDetails(w))
	})
}

// RotateWebhookSecret implements dcvaas.WebhookStore. Both columns are
// sealed with the same associated data, so the current envelope moves to
// prev_secret_enc unopened. A second rotation within the overlap drops the
// oldest secret: at most two sign.
func (db *DB) RotateWebhookSecret(ctx context.Context, actor dcvaas.Actor, id, newEnc string, overlapUntil time.Time) (*dcvaas.Webhook, error) {
	var out *dcvaas.Webhook
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		until := overlapUntil.UTC()
		w.PrevSecretEnc, w.PrevSecretExpiresAt, w.SecretEnc, w.UpdatedAt = w.SecretEnc, &until, newEnc, db.now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET secret_enc = $1, prev_secret_enc = $2, prev_secret_expires_at = $3,
			updated_at = $4 WHERE id = $5`, w.SecretEnc, w.PrevSecretEnc, micros(until), micros(w.UpdatedAt), id); err != nil {
			return err
		}
		out = w
		return db.audit(ctx, tx, actor, "webhook.secret_rotated", "webhook", id,
			map[string]any{"url": w.URL, "previousSecretSignsUntil": until.Format(time.RFC3339)})
	})
	return out, err
}

// QueueWebhookTest implements dcvaas.WebhookStore. The event goes into the
// outbox like any other (so it is listed and streamed), but the fan-out
// skips webhook.test: its one delivery is made here, to this endpoint,
// whether or not the endpoint subscribes to the type or is enabled.
func (db *DB) QueueWebhookTest(ctx context.Context, actor dcvaas.Actor, id string) (*dcvaas.WebhookDelivery, error) {
	var d *dcvaas.WebhookDelivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := db.findWebhook(ctx, tx, actor.OrgID, id, false)
		if err != nil {
			return err
		}
		now := db.now().UTC()
		ev := &dcvaas.Event{ID: newID(), Type: dcvaas.EventWebhookTest, OrgID: w.OrgID, Timestamp: now}
		if ev.Data, err = json.Marshal(&dcvaas.EventData{WebhookID: w.ID, URL: w.URL}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, org_id, type, domain_id, data, created_at) VALUES ($1, $2, $3, '', $4, $5)`,
			ev.ID, ev.OrgID, string(ev.Type), string(ev.Data), micros(now)); err != nil {
			return err
		}
		payload, err := json.Marshal(ev.Envelope())
		if err != nil {
			return err
		}
		d = &dcvaas.WebhookDelivery{ID: newID(), WebhookID: w.ID, OrgID: w.OrgID, EventID: ev.ID, EventType: ev.Type,
			Payload: payload, Status: dcvaas.DeliveryPending, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $8, $8)`,
			d.ID, d.WebhookID, d.OrgID, d.EventID, string(d.EventType), string(payload), string(d.Status), micros(now)); err != nil {
			return err
		}
		if err := db.enqueueDeliveries(ctx, tx, []DeliveryAttempt{{DeliveryID: d.ID}}); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "webhook.tested", "webhook", w.ID, map[string]any{"url": w.URL, "eventId": ev.ID, "deliveryId": d.ID})
	})
	return d, err
}

const deliveryColumns = `id, webhook_id, org_id, event_id, event_type, payload, status, attempts, gen, next_attempt_at, created_at, updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (*dcvaas.WebhookDelivery, error) {
	var d dcvaas.WebhookDelivery
	var typ, payload, status string
	var next sql.NullInt64
	var created, updated int64
	if err := row.Scan(&d.ID, &d.WebhookID, &d.OrgID, &d.EventID, &typ, &payload, &status, &d.Attempts, &d.Gen, &next,
		&created, &updated); err != nil {
		return nil, err
	}
	d.EventType, d.Payload, d.Status = dcvaas.EventType(typ), []byte(payload), dcvaas.DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromNullMicros(next), fromMicros(created), fromMicros(updated)
	return &d, nil
}

// ListWebhookDeliveries implements dcvaas.WebhookStore.
func (db *DB) ListWebhookDeliveries(ctx context.Context, orgID, webhookID string, p dcvaas.Page) ([]*dcvaas.WebhookDelivery, int, error) {
	if _, err := db.findWebhook(ctx, db.read, orgID, webhookID, false); err != nil {
		return nil, 0, err
	}
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1`, webhookID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE webhook_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, webhookID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	out := []*dcvaas.WebhookDelivery{}
	byID := map[string]*dcvaas.WebhookDelivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, 0, err
		}
		d.History = []dcvaas.WebhookAttempt{}
		out, byID[d.ID] = append(out, d), d
	}
	if err := rows.Close(); err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		return out, total, nil
	}
	ids := make([]string, len(out))
	args := make([]any, len(out))
	for i, d := range out {
		ids[i], args[i] = fmt.Sprintf("$%d", i+1), d.ID
	}
	arows, err := db.read.QueryContext(ctx, `SELECT delivery_id, attempt, started_at, status_code, error, latency_us, response_body
		FROM webhook_attempts WHERE delivery_id IN (`+strings.Join(ids, ", ")+`) ORDER BY delivery_id, attempt`, args...)
	if err != nil {
		return nil, 0, err
	}
	defer arows.Close()
	for arows.Next() {
		var id string
		var a dcvaas.WebhookAttempt
		var at, lat int64
		if err := arows.Scan(&id, &a.Attempt, &at, &a.StatusCode, &a.Error, &lat, &a.Response); err != nil {
			return nil, 0, err
		}
		a.At, a.Latency = fromMicros(at), time.Duration(lat)*time.Microsecond
		if d := byID[id]; d != nil {
			d.History = append(d.History, a)
		}
	}
	return out, total, arows.Err()
}

// RetryWebhookDelivery implements dcvaas.WebhookStore. The delivery's gen
// moves on, so an attempt queued before (a scheduled retry) runs no more:
// one retry replaces the schedule's next step.
func (db *DB) RetryWebhookDelivery(ctx context.Context, actor dcvaas.Actor, webhookID, deliveryID string) (*dcvaas.WebhookDelivery, error) {
	var d *dcvaas.WebhookDelivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.findWebhook(ctx, tx, actor.OrgID, webhookID, false); err != nil {
			return err
		}
		now := db.now().UTC()
		var err error
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE webhook_deliveries SET status = $1, gen = gen + 1, next_attempt_at = $2,
			updated_at = $2 WHERE id = $3 AND webhook_id = $4 RETURNING `+deliveryColumns,
			string(dcvaas.DeliveryPending), micros(now), deliveryID, webhookID))
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "delivery not found")
		}
		if err != nil {
			return err
		}
		if err := db.enqueueDeliveries(ctx, tx, []DeliveryAttempt{{DeliveryID: d.ID, Gen: d.Gen}}); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "webhook.delivery_retried", "webhook", webhookID,
			map[string]any{"deliveryId": d.ID, "eventId": d.EventID, "eventType": d.EventType})
	})
	return d, err
}

var _ dcvaas.WebhookStore = (*DB)(nil)
