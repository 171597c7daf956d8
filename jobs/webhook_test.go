package jobs

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/webhook"
)

// hookBundle is an engine that delivers webhooks on a fast schedule, the
// service that manages endpoints, and receivers on the loopback.
type hookBundle struct {
	*bundle
	svc *webhook.Service
}

func setupHooks(t *testing.T, dialect sqlstore.Dialect, configure ...func(*WebhookConfig)) *hookBundle {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, dialect, func(c *Config) {
		c.Webhooks = WebhookConfig{
			Sealer: kr, Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true},
			Schedule: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
			Jitter:   -1, PollInterval: 20 * time.Millisecond, Timeout: 5 * time.Second,
		}
		for _, f := range configure {
			f(&c.Webhooks)
		}
	})
	return &hookBundle{bundle: b, svc: &webhook.Service{Store: b.db, Sealer: kr, Policy: webhook.Policy{AllowHTTP: true, AllowPrivate: true}, Clock: b.clock.Now}}
}

// received is one request a receiver got.
type received struct {
	ID, Timestamp, Signature, UserAgent, ContentType string
	Body                                             []byte
	Envelope                                         dcvaas.Envelope
}

// recv is a webhook receiver: it answers with the next status of its
// script (then 200) and keeps every request.
type recv struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	script []int
}

func newRecv(t *testing.T, script ...int) *recv {
	r := &recv{t: t, script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		g := received{ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
			Signature: req.Header.Get("webhook-signature"), UserAgent: req.UserAgent(), ContentType: req.Header.Get("Content-Type"), Body: body}
		if err := json.Unmarshal(body, &g.Envelope); err != nil {
			t.Errorf("receiver: body is not an event: %v", err)
		}
		r.mu.Lock()
		r.got = append(r.got, g)
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "answer "+http.StatusText(status))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recv) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until the receiver has n requests.
func (r *recv) waitFor(n int, timeout time.Duration) []received {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver got %d requests in %s, want %d", len(got), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify checks a request with the Standard Webhooks library and secret.
func verify(t *testing.T, g received, secret string) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", g.ID)
	h.Set("webhook-timestamp", g.Timestamp)
	h.Set("webhook-signature", g.Signature)
	return wh.Verify(g.Body, h)
}

func (b *hookBundle) create(url string, types ...string) (*dcvaas.Webhook, string) {
	b.t.Helper()
	in := webhook.Input{URL: &url}
	if types != nil {
		in.EventTypes = &types
	}
	w, secret, err := b.svc.Create(b.ctx, b.actor, in)
	if err != nil {
		b.t.Fatal(err)
	}
	return w, secret
}

func (b *hookBundle) deliveries(w *dcvaas.Webhook) []*dcvaas.WebhookDelivery {
	b.t.Helper()
	ds, _, err := b.db.ListWebhookDeliveries(b.ctx, b.org.ID, w.ID, dcvaas.Page{Limit: 200})
	if err != nil {
		b.t.Fatal(err)
	}
	return ds
}

// waitDelivery waits until the webhook's only delivery of typ has status st.
func (b *hookBundle) waitDelivery(w *dcvaas.Webhook, typ dcvaas.EventType, st dcvaas.DeliveryStatus) *dcvaas.WebhookDelivery {
	b.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		for _, d := range b.deliveries(w) {
			if d.EventType == typ && d.Status == st {
				return d
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no %s delivery of %s is %s: %+v", typ, w.ID, st, b.deliveries(w))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhookDelivery: an event reaches a subscribed endpoint signed as
// Standard Webhooks says (verified with its library), with webhook-id the
// event id and dcvaas's User-Agent; an endpoint subscribed to other types
// gets nothing.
func TestWebhookDelivery(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect)
		all, certs := newRecv(t), newRecv(t)
		w, secret := b.create(all.srv.URL + "/hook")
		wc, _ := b.create(certs.srv.URL, "certificate.*")
		b.start()
		d, _ := b.domain("hooked")
		g := all.waitFor(1, 30*time.Second)[0]
		if err := verify(t, g, secret); err != nil {
			t.Fatalf("signature does not verify with standard-webhooks: %v (%+v)", err, g)
		}
		if g.Envelope.Type != dcvaas.EventDomainCreated || g.Envelope.OrganizationID != b.org.ID || !strings.Contains(string(g.Envelope.Data), d.ID) {
			t.Fatalf("envelope %+v", g.Envelope)
		}
		if g.ID != g.Envelope.ID || !strings.HasPrefix(g.UserAgent, "dcvaas-webhooks/") || g.ContentType != "application/json" {
			t.Fatalf("headers: id %q (event %q), user agent %q, content type %q", g.ID, g.Envelope.ID, g.UserAgent, g.ContentType)
		}
		dl := b.waitDelivery(w, dcvaas.EventDomainCreated, dcvaas.DeliveryDelivered)
		if dl.Attempts != 1 || len(dl.History) != 1 || dl.History[0].StatusCode != 200 || dl.History[0].Response != "answer OK" {
			t.Fatalf("delivery record %+v", dl)
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(certs.requests()); n != 0 || len(b.deliveries(wc)) != 0 {
			t.Fatalf("certificate.* endpoint got %d requests for domain.created", n)
		}
		// The test event goes to its endpoint only, whatever its types.
		if _, err := b.db.QueueWebhookTest(b.ctx, b.actor, wc.ID); err != nil {
			t.Fatal(err)
		}
		tg := certs.waitFor(1, 30*time.Second)[0]
		if tg.Envelope.Type != dcvaas.EventWebhookTest {
			t.Fatalf("test event: %+v", tg.Envelope)
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(all.requests()); n != 1 {
			t.Fatalf("the test event reached another endpoint (%d requests)", n)
		}
		// A manual retry sends the delivered event again, same webhook-id.
		if _, err := b.db.RetryWebhookDelivery(b.ctx, b.actor, w.ID, dl.ID); err != nil {
			t.Fatal(err)
		}
		again := all.waitFor(2, 30*time.Second)[1]
		if again.ID != g.ID || verify(t, again, secret) != nil {
			t.Fatalf("replay: id %q, want %q", again.ID, g.ID)
		}
	})
}

// TestWebhookRetries: 500, 500, 200 is delivered on the third attempt,
// each attempt recorded, the webhook-id stable. (River moves scheduled
// jobs to the queue every 5 s, so each retry waits up to that long.)
func TestWebhookRetries(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect)
		r := newRecv(t, 500, 500, 200)
		w, secret := b.create(r.srv.URL)
		b.start()
		b.domain("retried")
		got := r.waitFor(3, 30*time.Second)
		for _, g := range got {
			if g.ID != got[0].ID || verify(t, g, secret) != nil {
				t.Fatalf("attempt %+v", g)
			}
		}
		d := b.waitDelivery(w, dcvaas.EventDomainCreated, dcvaas.DeliveryDelivered)
		var codes []int
		for _, a := range d.History {
			codes = append(codes, a.StatusCode)
		}
		if d.Attempts != 3 || !slices.Equal(codes, []int{500, 500, 200}) || d.History[0].Error != "HTTP 500" {
			t.Fatalf("delivery %+v, codes %v", d, codes)
		}
		hw, _ := b.db.FindWebhook(b.ctx, b.org.ID, w.ID)
		if hw.FailingSince != nil {
			t.Fatal("failingSince kept after a success")
		}
	})
}

// TestWebhookGone: 410 disables the endpoint at once, audited, and the
// organization's other endpoints get webhook.disabled; after the schedule
// ends, a failing delivery is failed.
func TestWebhookGone(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect)
		gone, other := newRecv(t, 410), newRecv(t, 500, 500, 500, 500)
		wg, _ := b.create(gone.srv.URL, "domain.*")
		wo, _ := b.create(other.srv.URL, "webhook.disabled")
		b.start()
		b.domain("gone")
		d := b.waitDelivery(wg, dcvaas.EventDomainCreated, dcvaas.DeliveryFailed)
		if d.Attempts != 1 || d.History[0].StatusCode != 410 {
			t.Fatalf("delivery %+v", d)
		}
		hw, _ := b.db.FindWebhook(b.ctx, b.org.ID, wg.ID)
		if hw.Enabled || !strings.Contains(hw.DisabledReason, "410") {
			t.Fatalf("endpoint after 410: %+v", hw)
		}
		if a := actions(b.audit(wg.ID)); !slices.Contains(a, "webhook.disabled") {
			t.Fatalf("audit %v", a)
		}
		// The other endpoint hears of it, four times (schedule of 3 retries), then gives up.
		got := other.waitFor(4, 40*time.Second)
		if got[0].Envelope.Type != dcvaas.EventWebhookDisabled || !strings.Contains(string(got[0].Envelope.Data), wg.ID) {
			t.Fatalf("webhook.disabled event %+v", got[0].Envelope)
		}
		fd := b.waitDelivery(wo, dcvaas.EventWebhookDisabled, dcvaas.DeliveryFailed)
		if fd.Attempts != 4 {
			t.Fatalf("final failure after %d attempts, want 4", fd.Attempts)
		}
		// Disabled: new events are not sent to it.
		b.domain("after")
		time.Sleep(300 * time.Millisecond)
		if n := len(gone.requests()); n != 1 {
			t.Fatalf("a disabled endpoint got %d requests", n)
		}
	})
}

// TestWebhookDisableAfterFailures: an endpoint whose attempts all failed
// for DisableAfter is disabled with an audit entry and event.
func TestWebhookDisableAfterFailures(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect, func(c *WebhookConfig) {
			c.DisableAfter = 150 * time.Millisecond
			c.Schedule = []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
		})
		r := newRecv(t, 503, 503, 503, 503)
		w, _ := b.create(r.srv.URL)
		b.start()
		b.domain("dying")
		deadline := time.Now().Add(40 * time.Second)
		for {
			hw, _ := b.db.FindWebhook(b.ctx, b.org.ID, w.ID)
			if !hw.Enabled {
				if !strings.Contains(hw.DisabledReason, "failed for") || hw.FailingSince == nil {
					t.Fatalf("disabled as %+v", hw)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("not disabled after its failures")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// On PostgreSQL, ListEvents shows an event once no transaction
		// older than its own is still running anywhere (River's own work
		// included), so the committed event may appear a moment later.
		var es []*dcvaas.Event
		for deadline := time.Now().Add(10 * time.Second); ; {
			var err error
			es, err = b.db.ListEvents(b.ctx, b.org.ID, dcvaas.EventFilter{Types: []string{"webhook.disabled"}, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(es) != 1 {
			t.Fatalf("webhook.disabled events: %d", len(es))
		}
		// Enabling it again clears the record.
		on := true
		hw, err := b.svc.Update(b.ctx, b.actor, w.ID, webhook.Input{Enabled: &on})
		if err != nil || !hw.Enabled || hw.DisabledReason != "" || hw.FailingSince != nil {
			t.Fatalf("re-enabled: %+v, %v", hw, err)
		}
	})
}

// TestWebhookRotation: after a rotation, deliveries carry two signatures,
// and the old and the new secret each verify alone with the library.
func TestWebhookRotation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect)
		r := newRecv(t)
		w, oldSecret := b.create(r.srv.URL)
		_, newSecret, err := b.svc.Rotate(b.ctx, b.actor, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.start()
		b.domain("rotated")
		g := r.waitFor(1, 30*time.Second)[0]
		if n := len(strings.Fields(g.Signature)); n != 2 {
			t.Fatalf("%d signatures during the overlap, want 2", n)
		}
		if err := verify(t, g, newSecret); err != nil {
			t.Fatalf("new secret: %v", err)
		}
		if err := verify(t, g, oldSecret); err != nil {
			t.Fatalf("old secret: %v", err)
		}
		// After the overlap only the new secret signs.
		b.clock.Advance(dcvaas.SecretOverlap + time.Minute)
		if _, err := b.db.QueueWebhookTest(b.ctx, b.actor, w.ID); err != nil {
			t.Fatal(err)
		}
		g = r.waitFor(2, 30*time.Second)[1]
		if n := len(strings.Fields(g.Signature)); n != 1 || verify(t, g, oldSecret) == nil {
			t.Fatalf("after the overlap: %d signatures, old secret still verifies", n)
		}
	})
}

// TestWebhookEventsWhileStopped: events written while no engine runs (a
// node killed between the change and the delivery) are delivered once
// one starts, each once.
func TestWebhookEventsWhileStopped(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setupHooks(t, dialect)
		r := newRecv(t)
		w, _ := b.create(r.srv.URL)
		for _, l := range []string{"a1", "a2", "a3"} {
			b.domain(l)
		}
		b.start()
		got := r.waitFor(3, 30*time.Second)
		time.Sleep(300 * time.Millisecond)
		if len(r.requests()) != 3 || len(b.deliveries(w)) != 3 {
			t.Fatalf("%d requests, %d deliveries, want 3 each (%v)", len(r.requests()), len(b.deliveries(w)), got)
		}
	})
}

// TestWebhookSlowEndpoint: a receiver that hangs does not hold up another
// endpoint's deliveries: once its requests wait past slowAfter it keeps
// at most PerEndpoint of the webhook workers, and the others flow.
func TestWebhookSlowEndpoint(t *testing.T) {
	b := setupHooks(t, sqlstore.SQLite, func(c *WebhookConfig) {
		c.Workers, c.PerEndpoint, c.Timeout = 4, 2, 15*time.Second
	})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	fast := newRecv(t)
	b.create(slow.URL)
	b.create(fast.srv.URL)
	const n = 20
	for i := range n {
		b.domain("slow" + string(rune('a'+i)))
	}
	start := time.Now()
	b.start()
	fast.waitFor(n, 40*time.Second)
	took := time.Since(start)
	// Without the cap, 20 slow deliveries of 10 s on 4 workers would hold
	// the fast ones back for about 50 s.
	if took > 30*time.Second || b.e.hooks.held.Load() == 0 {
		t.Fatalf("the fast endpoint got its %d events after %s (%d attempts held back)", n, took, b.e.hooks.held.Load())
	}
	t.Logf("fast endpoint: %d events in %s beside a hanging one; %d attempts held back", n, took, b.e.hooks.held.Load())
}
