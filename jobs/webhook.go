package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/webhook"
	"github.com/riverqueue/river"
)

// Webhook delivery. A fan-out loop on every node reads the event outbox
// after a cursor kept in the database and, in one transaction, makes one
// delivery per (event, endpoint) and queues its first attempt as a River
// job (sqlstore.FanOutWebhooks). Attempts run in River's queue "webhooks",
// with a worker budget of their own (WebhookConfig.Workers) apart from the
// default queue's issuance and DNS jobs, so a slow receiver never holds up
// issuance; within it no endpoint may hold more than PerEndpoint workers
// of a node at once, so one slow receiver cannot starve the others.
//
// Each River job is one attempt of one delivery at one gen. Its outcome,
// and the queue entry of the next attempt, commit together
// (sqlstore.RecordDeliveryResult); a River job whose gen is no longer the
// delivery's (a manual retry happened, or the outcome was recorded before
// a crash) does nothing.

// QueueWebhooks is the River queue of delivery attempts.
const QueueWebhooks = "webhooks"

const kindWebhookDelivery = "webhook_delivery"

type webhookDeliveryArgs struct {
	DeliveryID string `json:"delivery_id"`
	Gen        int64  `json:"gen"`
}

func (webhookDeliveryArgs) Kind() string { return kindWebhookDelivery }

// DefaultWebhookSchedule is the wait before each retry of a failed
// delivery (±20% jitter): 8 attempts over about 28 hours.
var DefaultWebhookSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// WebhookConfig configures delivery. Zero values take the defaults.
type WebhookConfig struct {
	// Sealer opens the endpoints' signing secrets (the keyring). Nil: this
	// engine delivers no webhooks (no fan-out, no delivery workers).
	Sealer webhook.Sealer
	// Policy is the SSRF guard's (DCVAAS_WEBHOOK_ALLOW_HTTP/_PRIVATE).
	Policy webhook.Policy
	// Workers is the queue's worker budget on this node (default 32).
	Workers int
	// PerEndpoint bounds a slow endpoint's attempts running at once on
	// this node (default Workers/4, at least 2); any endpoint's are bounded
	// by half the Workers. More wait a few seconds.
	PerEndpoint int
	// Timeout bounds one attempt (default 15s).
	Timeout time.Duration
	// Schedule is the wait before each retry (default
	// DefaultWebhookSchedule); its length is the number of retries.
	Schedule []time.Duration
	// Jitter is the share by which each wait varies (default 0.2; a
	// negative value: none).
	Jitter float64
	// DisableAfter disables an endpoint whose attempts have all failed
	// this long (default 5 days).
	DisableAfter time.Duration
	// PollInterval is how often the fan-out looks for new events
	// (default 100ms).
	PollInterval time.Duration
	// UserAgent of every attempt (default "dcvaas-webhooks/<version>").
	UserAgent string
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	setDefault(&c.Workers, 32)
	setDefault(&c.PerEndpoint, max(2, c.Workers/4))
	setDefault(&c.Timeout, 15*time.Second)
	setDefault(&c.DisableAfter, 5*24*time.Hour)
	setDefault(&c.PollInterval, 100*time.Millisecond)
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultWebhookSchedule
	}
	if c.Jitter == 0 {
		c.Jitter = 0.2
	} else if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.UserAgent == "" {
		c.UserAgent = "dcvaas-webhooks/" + dcvaas.Version + " (+https://github.com/dcvaas/dcvaas)"
	}
	return c
}

// fanOutBatch bounds the events one fan-out transaction reads.
const fanOutBatch = 500

// hooks is the engine's webhook part.
type hooks struct {
	cfg    WebhookConfig
	client *http.Client

	mu sync.Mutex
	// running holds, per endpoint, the start times of its attempts running
	// on this node.
	running map[string][]time.Time
	// slow holds, per slow endpoint, until when it counts as slow.
	slow map[string]time.Time

	// results gathers concurrent attempts' records into shared
	// transactions (batch.go).
	results *batcher[sqlstore.DeliveryResult, sqlstore.Recorded]

	// held counts attempts put off because their endpoint was slow.
	held atomic.Int64

	stop func()
	done chan struct{}
}

func newHooks(cfg WebhookConfig, db *sqlstore.DB) *hooks {
	cfg = cfg.withDefaults()
	return &hooks{cfg: cfg, client: cfg.Policy.Client(cfg.Timeout), running: map[string][]time.Time{}, slow: map[string]time.Time{},
		results: &batcher[sqlstore.DeliveryResult, sqlstore.Recorded]{max: roundMax, run: db.RecordDeliveryResults}}
}

// slowAfter is how long a request may wait for its answer before its
// endpoint counts as slow; it then stays slow for slowFor.
const (
	slowAfter = 2 * time.Second
	slowFor   = time.Minute
)

// acquire registers a request to endpoint id starting at now, unless the
// endpoint has its share of this node's webhook workers: half of them at
// most, and PerEndpoint while it is slow (a request of it waited past
// slowAfter within slowFor, or its oldest running one waits so now). A
// fast receiver is not held back; a slow or hanging one cannot take the
// workers of the others.
func (h *hooks) acquire(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.running[id]
	limit := max(h.cfg.PerEndpoint, h.cfg.Workers/2)
	if len(r) > 0 && now.Sub(r[0]) > slowAfter {
		h.slow[id] = now.Add(slowFor)
	}
	if until, ok := h.slow[id]; ok {
		if now.Before(until) {
			limit = h.cfg.PerEndpoint
		} else {
			delete(h.slow, id)
		}
	}
	if len(r) >= limit {
		return false
	}
	h.running[id] = append(r, now)
	return true
}

func (h *hooks) release(id string, started time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if now.Sub(started) > slowAfter {
		h.slow[id] = now.Add(slowFor)
	}
	r := h.running[id]
	if i := slices.Index(r, started); i >= 0 {
		r = slices.Delete(r, i, i+1)
	}
	if len(r) == 0 {
		delete(h.running, id)
	} else {
		h.running[id] = r
	}
}

// EnqueueDeliveriesTx implements sqlstore.DeliveryEnqueuer.
func (e *Engine) EnqueueDeliveriesTx(ctx context.Context, tx *sql.Tx, as []sqlstore.DeliveryAttempt) error {
	params := make([]river.InsertManyParams, len(as))
	for i, a := range as {
		opts := &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: riverMaxAttempts}
		if !a.At.IsZero() {
			opts.ScheduledAt = a.At
		}
		params[i] = river.InsertManyParams{Args: webhookDeliveryArgs{DeliveryID: a.DeliveryID, Gen: a.Gen}, InsertOpts: opts}
	}
	if _, err := e.client.InsertManyFastTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue webhook deliveries: %w", err)
	}
	return nil
}

type webhookDeliveryWorker struct {
	river.WorkerDefaults[webhookDeliveryArgs]
	e *Engine
}

func (w *webhookDeliveryWorker) Work(ctx context.Context, job *river.Job[webhookDeliveryArgs]) error {
	return w.e.deliver(ctx, job.Args)
}

// Timeout leaves room past the attempt's own limit for recording it.
func (w *webhookDeliveryWorker) Timeout(*river.Job[webhookDeliveryArgs]) time.Duration {
	if w.e.hooks == nil {
		return 0
	}
	return w.e.hooks.cfg.Timeout + 30*time.Second
}

// deliver makes one attempt of a delivery and records it.
func (e *Engine) deliver(ctx context.Context, a webhookDeliveryArgs) error {
	h := e.hooks
	if h == nil {
		return errors.New("webhook delivery is not configured on this node")
	}
	d, w, err := e.db.LoadDelivery(ctx, a.DeliveryID)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return nil // the endpoint was deleted
	}
	if err != nil {
		return err
	}
	if d.Gen != a.Gen || d.Status != dcvaas.DeliveryPending {
		return nil // a newer attempt took over, or this one was recorded
	}
	if !w.Enabled && d.EventType != dcvaas.EventWebhookTest {
		return e.db.CancelDelivery(ctx, d.ID, d.Gen)
	}
	secrets, err := webhook.Secrets(h.cfg.Sealer, w, e.now())
	if err != nil {
		// The keyring lacks the key: an operator's problem, not the
		// receiver's; River retries without using a delivery attempt.
		return fmt.Errorf("webhook %s: open signing secret: %w", w.ID, err)
	}
	started := time.Now()
	if !h.acquire(w.ID, started) {
		// A slow endpoint has its share of this node's workers: try again
		// in a few seconds (a snooze uses no attempt).
		h.held.Add(1)
		return river.JobSnooze(time.Duration(2000+rand.IntN(2000)) * time.Millisecond)
	}
	actx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	res := webhook.Send(actx, h.client, webhook.Request{URL: w.URL, ID: d.EventID, Body: d.Payload, Secrets: secrets, UserAgent: h.cfg.UserAgent}, e.now)
	cancel()
	h.release(w.ID, started)
	r := sqlstore.DeliveryResult{
		DeliveryID: d.ID, Gen: d.Gen, WebhookID: w.ID, OrgID: w.OrgID, URL: w.URL, DisableAfter: h.cfg.DisableAfter,
		WasFailing: w.FailingSince != nil,
		Attempt:    dcvaas.WebhookAttempt{At: res.At, StatusCode: res.StatusCode, Error: res.Err, Latency: res.Latency, Response: res.Body},
	}
	switch {
	case res.OK():
		r.Delivered = true
	case res.Gone():
		r.Disable = "the receiver answered 410 Gone"
	case d.Attempts < len(h.cfg.Schedule):
		wait := jitter(h.cfg.Schedule[d.Attempts], h.cfg.Jitter)
		if res.RetryAfter > wait {
			wait = res.RetryAfter
		}
		next := e.now().Add(wait).UTC()
		r.Next = &next
	}
	// Recorded even when the job's context ended (shutdown): the attempt
	// happened. (The batcher's rounds run under a context of their own.)
	rec, err := h.results.do(r)
	if err != nil {
		return fmt.Errorf("record webhook delivery %s: %w", d.ID, err)
	}
	if rec.Disabled {
		e.log.WarnContext(ctx, "webhook endpoint disabled", "webhookId", w.ID, "orgId", w.OrgID, "status", res.StatusCode)
	}
	return nil
}

func jitter(d time.Duration, share float64) time.Duration {
	if share <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + share*(2*rand.Float64()-1)))
}

// startFanOut runs the fan-out loop until stopFanOut.
func (e *Engine) startFanOut() {
	h := e.hooks
	if h == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.cfg.PollInterval)
		defer t.Stop()
		for {
			n, err := e.FanOutWebhooks(ctx)
			if err != nil && ctx.Err() == nil {
				e.log.WarnContext(ctx, "webhook fan-out failed", "err", err)
			}
			if n == fanOutBatch && err == nil {
				continue // more waiting
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (e *Engine) stopFanOut() {
	if h := e.hooks; h != nil && h.stop != nil {
		h.stop()
		<-h.done
		h.stop = nil
	}
}

// FanOutWebhooks runs one round of the fan-out and returns the events it
// read (for tests and benchmarks; the loop calls it every PollInterval).
func (e *Engine) FanOutWebhooks(ctx context.Context) (int, error) {
	n, _, err := e.db.FanOutWebhooks(ctx, fanOutBatch)
	return n, err
}
