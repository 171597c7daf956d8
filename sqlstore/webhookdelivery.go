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

// Webhook delivery: the fan-out from the event outbox to delivery rows, and
// the record of each attempt. The job engine (jobs/webhook.go) runs both.

// DeliveryAttempt is one attempt of a delivery to queue.
type DeliveryAttempt struct {
	DeliveryID string
	// Gen is the delivery's gen the attempt belongs to.
	Gen int64
	// At is when to run it; zero: now.
	At time.Time
}

// DeliveryEnqueuer queues delivery attempts inside the store's
// transactions (the job engine's River client): a delivery row and its
// queued attempt commit together.
type DeliveryEnqueuer interface {
	EnqueueDeliveriesTx(ctx context.Context, tx *sql.Tx, attempts []DeliveryAttempt) error
}

// SetDeliveryEnqueuer installs e; without one, deliveries are recorded
// but nothing runs them.
func (db *DB) SetDeliveryEnqueuer(e DeliveryEnqueuer) { db.deliveryEnqueuer = e }

func (db *DB) enqueueDeliveries(ctx context.Context, tx *sql.Tx, as []DeliveryAttempt) error {
	if db.deliveryEnqueuer == nil || len(as) == 0 {
		return nil
	}
	return db.deliveryEnqueuer.EnqueueDeliveriesTx(ctx, tx, as)
}

// deliveryInsertRows bounds one multi-row insert of deliveries (12
// parameters a row; SQLite allows 32,766 in all).
const deliveryInsertRows = 200

// FanOutWebhooks reads up to batch events after the dispatch cursor and,
// in one transaction, creates a delivery for each (event, enabled
// endpoint of its organization that subscribes to its type and existed
// when it happened), queues each delivery's first attempt and moves the
// cursor past the batch. A crash at any point leaves either all of it or
// none; two nodes running it at once take turns on the cursor row
// (PostgreSQL: FOR UPDATE), and the (event, endpoint) key refuses a
// second delivery. It returns the events read and the deliveries made.
func (db *DB) FanOutWebhooks(ctx context.Context, batch int) (events, deliveries int, err error) {
	var c dcvaas.Cursor
	if err := db.read.QueryRowContext(ctx, `SELECT txid, seq FROM webhook_dispatch WHERE id = 1`).Scan(&c.Tx, &c.Seq); err != nil {
		return 0, 0, err
	}
	// Nothing new (most polls): no write transaction.
	var one int
	err = db.read.QueryRowContext(ctx, `SELECT 1 FROM events WHERE (txid > $1 OR (txid = $1 AND seq > $2))`+db.visible()+` LIMIT 1`,
		c.Tx, c.Seq).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		events, deliveries = 0, 0
		if err := tx.QueryRowContext(ctx, `SELECT txid, seq FROM webhook_dispatch WHERE id = 1`+db.dialect.forUpdate()).Scan(&c.Tx, &c.Seq); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
			WHERE (txid > $1 OR (txid = $1 AND seq > $2))`+db.visible()+` ORDER BY txid, seq LIMIT $3`, c.Tx, c.Seq, max(batch, 1))
		if err != nil {
			return err
		}
		es, err := scanEvents(rows)
		if err != nil || len(es) == 0 {
			return err
		}
		events = len(es)
		hooks, err := enabledWebhooks(ctx, tx, es)
		if err != nil {
			return err
		}
		now := micros(db.now())
		var vals []any
		n := 0
		var queued []DeliveryAttempt
		flush := func() error {
			if n == 0 {
				return nil
			}
			rows, err := tx.QueryContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`) VALUES `+numberedRows(n, 12)+
				` ON CONFLICT (event_id, webhook_id) DO NOTHING RETURNING id`, vals...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				queued = append(queued, DeliveryAttempt{DeliveryID: id})
			}
			vals, n = vals[:0], 0
			return rows.Close()
		}
		for _, e := range es {
			if e.Type == dcvaas.EventWebhookTest {
				continue // delivered to its one endpoint by QueueWebhookTest
			}
			var payload []byte
			for _, w := range hooks[e.OrgID] {
				if e.Timestamp.Before(w.CreatedAt) || !dcvaas.EventTypeMatch(w.EventTypes, e.Type) {
					continue
				}
				if payload == nil {
					if payload, err = json.Marshal(e.Envelope()); err != nil {
						return err
					}
				}
				vals = append(vals, newID(), w.ID, e.OrgID, e.ID, string(e.Type), string(payload),
					string(dcvaas.DeliveryPending), 0, 0, now, now, now)
				if n++; n == deliveryInsertRows {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		deliveries = len(queued)
		if err := db.enqueueDeliveries(ctx, tx, queued); err != nil {
			return err
		}
		last := es[len(es)-1].Cursor
		_, err = tx.ExecContext(ctx, `UPDATE webhook_dispatch SET txid = $1, seq = $2 WHERE id = 1`, last.Tx, last.Seq)
		return err
	})
	return events, deliveries, err
}

// enabledWebhooks returns the enabled endpoints of the organizations of es.
func enabledWebhooks(ctx context.Context, tx *sql.Tx, es []*dcvaas.Event) (map[string][]*dcvaas.Webhook, error) {
	seen := map[string]bool{}
	var marks []string
	var args []any
	for _, e := range es {
		if !seen[e.OrgID] {
			seen[e.OrgID] = true
			args = append(args, e.OrgID)
			marks = append(marks, fmt.Sprintf("$%d", len(args)))
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE enabled AND org_id IN (`+strings.Join(marks, ", ")+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]*dcvaas.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out[w.OrgID] = append(out[w.OrgID], w)
	}
	return out, rows.Err()
}

// LoadDelivery returns a delivery and its endpoint, for the worker that
// attempts it. ENOTFOUND when either is gone (the endpoint was deleted).
func (db *DB) LoadDelivery(ctx context.Context, id string) (*dcvaas.WebhookDelivery, *dcvaas.Webhook, error) {
	row := db.read.QueryRowContext(ctx, `SELECT `+qualify("d", deliveryColumns)+`, `+qualify("w", webhookColumns)+`
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1`, id)
	var w *dcvaas.Webhook
	d, err := scanDelivery(scanFunc(func(ddest ...any) error {
		var werr error
		w, werr = scanWebhook(scanFunc(func(wdest ...any) error { return row.Scan(append(ddest, wdest...)...) }))
		return werr
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "delivery not found")
	}
	if err != nil {
		return nil, nil, err
	}
	return d, w, nil
}

// DeliveryResult is what one attempt of a delivery came to.
type DeliveryResult struct {
	DeliveryID string
	// Gen is the gen the attempt ran under: a result for an older gen (a
	// manual retry happened meanwhile) is not recorded.
	Gen       int64
	WebhookID string
	OrgID     string
	URL       string
	Attempt   dcvaas.WebhookAttempt
	Delivered bool
	// WasFailing: the endpoint had a failure record when the attempt
	// began; a success clears it (otherwise there is nothing to clear).
	WasFailing bool
	// Next is when to try again; nil: no more attempts (failed).
	Next *time.Time
	// Disable, when not "", disables the endpoint at once for this reason
	// (410 Gone).
	Disable string
	// DisableAfter disables the endpoint when its attempts have all failed
	// for this long (5 days); 0: never.
	DisableAfter time.Duration
}

// RecordDeliveryResult records an attempt in one transaction: the
// delivery's new status, the attempt, the next attempt's queue entry, the
// endpoint's failure record and, when the endpoint is disabled by it, the
// audit entry and the webhook.disabled event (which the fan-out then sends
// to the organization's other endpoints). It reports false, changing
// nothing, when the attempt was no longer the delivery's current one.
func (db *DB) RecordDeliveryResult(ctx context.Context, r DeliveryResult) (recorded bool, disabled bool, err error) {
	res, err := db.RecordDeliveryResults(ctx, []DeliveryResult{r})
	if err != nil {
		return false, false, err
	}
	return res[0].Recorded, res[0].Disabled, nil
}

// Recorded says what RecordDeliveryResults did with one result.
type Recorded struct {
	// Recorded: false when the attempt was no longer the delivery's
	// current one (nothing changed).
	Recorded bool
	// Disabled: the result disabled the endpoint.
	Disabled bool
}

// RecordDeliveryResults records the results of several attempts in one
// transaction (the worker pool's concurrent attempts share one commit),
// each as RecordDeliveryResult says: the delivery rows in one UPDATE, the
// attempts in one INSERT, the next attempts in one queue insert; only
// failures touch their endpoint, one by one.
func (db *DB) RecordDeliveryResults(ctx context.Context, rs []DeliveryResult) ([]Recorded, error) {
	out := make([]Recorded, len(rs))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		clear(out)
		now := micros(db.now())
		var vals []any
		var rows []string
		type plan struct {
			status dcvaas.DeliveryStatus
			gen    int64
		}
		plans := make([]plan, len(rs))
		byID := map[string]int{}
		for i, r := range rs {
			p := plan{dcvaas.DeliveryFailed, r.Gen}
			switch {
			case r.Delivered:
				p.status = dcvaas.DeliveryDelivered
			case r.Next != nil && r.Disable == "":
				p.status, p.gen = dcvaas.DeliveryPending, r.Gen+1
			}
			plans[i] = p
			var next sql.NullInt64
			if p.status == dcvaas.DeliveryPending {
				next = nullMicros(r.Next)
			}
			if _, dup := byID[r.DeliveryID]; dup {
				continue // two results of one delivery: the first wins, the second finds the gen moved
			}
			byID[r.DeliveryID] = i
			n := len(vals)
			rows = append(rows, fmt.Sprintf("($%d, CAST($%d AS BIGINT), $%d, CAST($%d AS BIGINT), CAST($%d AS BIGINT))", n+1, n+2, n+3, n+4, n+5))
			vals = append(vals, r.DeliveryID, r.Gen, string(p.status), p.gen, next)
		}
		vals = append(vals, now, string(dcvaas.DeliveryPending))
		// A CTE names the VALUES columns on both databases (SQLite has no
		// column list on a subquery's alias).
		res, err := tx.QueryContext(ctx, fmt.Sprintf(`WITH v (id, oldgen, status, newgen, next) AS (VALUES %[2]s)
			UPDATE webhook_deliveries SET status = v.status, attempts = webhook_deliveries.attempts + 1,
			gen = v.newgen, next_attempt_at = v.next, updated_at = $%[1]d
			FROM v
			WHERE webhook_deliveries.id = v.id AND webhook_deliveries.gen = v.oldgen AND webhook_deliveries.status = $%[3]d
			RETURNING webhook_deliveries.id, webhook_deliveries.attempts`, len(vals)-1, strings.Join(rows, ", "), len(vals)), vals...)
		if err != nil {
			return err
		}
		attempts := map[int]int{}
		for res.Next() {
			var id string
			var n int
			if err := res.Scan(&id, &n); err != nil {
				res.Close()
				return err
			}
			attempts[byID[id]] = n
		}
		if err := res.Close(); err != nil {
			return err
		}
		if len(attempts) == 0 {
			return nil
		}
		var avals []any
		var queue []DeliveryAttempt
		for i, r := range rs {
			n, ok := attempts[i]
			if !ok {
				continue
			}
			out[i].Recorded = true
			a := r.Attempt
			avals = append(avals, r.DeliveryID, n, micros(a.At), a.StatusCode, a.Error, a.Latency.Microseconds(), a.Response)
			if plans[i].status == dcvaas.DeliveryPending {
				queue = append(queue, DeliveryAttempt{DeliveryID: r.DeliveryID, Gen: plans[i].gen, At: *r.Next})
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, error,
			latency_us, response_body) VALUES `+numberedRows(len(avals)/7, 7), avals...); err != nil {
			return err
		}
		if err := db.enqueueDeliveries(ctx, tx, queue); err != nil {
			return err
		}
		for i, r := range rs {
			if !out[i].Recorded {
				continue
			}
			if out[i].Disabled, err = db.endpointHealth(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// endpointHealth updates the endpoint's failure record after an attempt
// and disables it when r says so or its failures have lasted too long; it
// reports whether it disabled it.
func (db *DB) endpointHealth(ctx context.Context, tx *sql.Tx, r DeliveryResult) (bool, error) {
	if r.Delivered {
		if !r.WasFailing {
			return false, nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, r.WebhookID)
		return false, err
	}
	now := db.now().UTC()
	var since sql.NullInt64
	var enabled bool
	err := tx.QueryRowContext(ctx, `UPDATE webhooks SET failing_since = COALESCE(failing_since, $1) WHERE id = $2
		RETURNING failing_since, enabled`, micros(r.Attempt.At), r.WebhookID).Scan(&since, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // deleted meanwhile
	}
	if err != nil || !enabled {
		return false, err
	}
	reason := r.Disable
	if reason == "" && r.DisableAfter > 0 && since.Valid && now.Sub(fromMicros(since.Int64)) >= r.DisableAfter {
		reason = fmt.Sprintf("every delivery attempt failed for %s (since %s)", r.DisableAfter, fromMicros(since.Int64).Format(time.RFC3339))
	}
	if reason == "" {
		return false, nil
	}
	return true, db.disableWebhook(ctx, tx, r.OrgID, r.WebhookID, r.URL, reason)
}

// disableWebhook turns an endpoint off on the service's behalf, with its
// audit entry and webhook.disabled event.
func (db *DB) disableWebhook(ctx context.Context, tx *sql.Tx, orgID, id, url, reason string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3`,
		reason, micros(db.now()), id); err != nil {
		return err
	}
	if err := db.audit(ctx, tx, dcvaas.SystemActor(orgID), "webhook.disabled", "webhook", id,
		map[string]any{"url": url, "reason": reason}); err != nil {
		return err
	}
	return db.event(ctx, tx, eventRow{orgID: orgID, typ: dcvaas.EventWebhookDisabled,
		data: &dcvaas.EventData{WebhookID: id, URL: url, Reason: reason}})
}

// CancelDelivery marks a pending delivery canceled (its endpoint is
// disabled), unless a newer attempt took over.
func (db *DB) CancelDelivery(ctx context.Context, id string, gen int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $1, next_attempt_at = NULL, updated_at = $2
			WHERE id = $3 AND gen = $4 AND status = $5`,
			string(dcvaas.DeliveryCanceled), micros(db.now()), id, gen, string(dcvaas.DeliveryPending))
		return err
	})
}

// DeleteDeliveriesBefore deletes finished deliveries (and their attempts)
// created before t: the event retention applies to them too.
func (db *DB) DeleteDeliveriesBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE id IN
				(SELECT id FROM webhook_deliveries WHERE created_at < $1 AND status <> $2 ORDER BY created_at LIMIT 1000)`,
				micros(t), string(dcvaas.DeliveryPending))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < 1000 {
			return total, err
		}
	}
}
