package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// scriptedReceiver is a webhook receiver whose answers the test decides:
// answer(n) gives the status of its n-th request (1-based). Every request
// is verified with the Standard Webhooks library and kept.
type scriptedReceiver struct {
	mu     sync.Mutex
	secret string
	answer func(n int) int
	got    []hookRequest
	url    string
}

type hookRequest struct {
	id, typ string // webhook-id header, event type
	eventID string // the body's id
	status  int    // what the receiver answered
	verr    string // the Standard Webhooks library's verdict, "" when verified
}

func newScriptedReceiver(t *testing.T, answer func(n int) int) *scriptedReceiver {
	r := &scriptedReceiver{answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		h := hookRequest{id: req.Header.Get("webhook-id")}
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			h.verr = err.Error()
		}
		var e struct{ ID, Type string }
		json.Unmarshal(body, &e)
		h.eventID, h.typ = e.ID, e.Type
		h.status = r.answer(len(r.got) + 1)
		if h.verr != "" {
			h.status = http.StatusBadRequest
		}
		r.got = append(r.got, h)
		w.WriteHeader(h.status)
		fmt.Fprintf(w, "answer %d", h.status)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

func (r *scriptedReceiver) setAnswer(f func(int) int) { r.mu.Lock(); r.answer = f; r.mu.Unlock() }

func (r *scriptedReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.got...)
}

// addWebhook creates a webhook for the receiver and keeps its secret.
func (r *scriptedReceiver) add(t *testing.T, base, token string) string {
	t.Helper()
	status, w := call(t, "POST", base+"/api/webhooks", token, map[string]any{"url": r.url, "eventTypes": []string{"domain.created"}})
	if status != http.StatusCreated {
		t.Fatalf("create webhook: %d %v", status, w)
	}
	r.mu.Lock()
	r.secret = w["secret"].(string)
	r.mu.Unlock()
	return w["id"].(string)
}

// waitRequests waits until the receiver has had n requests.
func (r *scriptedReceiver) waitRequests(t *testing.T, n int, within time.Duration, logs *syncBuffer) []hookRequest {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := r.requests()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver had %d requests after %s, want %d: %+v\n%s", len(got), within, n, got, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webhookServe builds dcvaas, migrates the database, bootstraps an
// organization and returns the settings of a serve that delivers to
// loopback receivers.
func webhookServe(t *testing.T, bin, dbURL string) (vars []string, token string) {
	t.Helper()
	dnsSrv := resolvetest.New(t)
	vars = []string{
		"DCVAAS_DATABASE_URL=" + dbURL,
		"DCVAAS_ENCRYPTION_KEY=" + strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE=verify.example",
		"DCVAAS_RESOLVERS=" + dnsSrv.Addr,
		"DCVAAS_SHUTDOWN_TIMEOUT=5s",
		"DCVAAS_DNS_ADDR=127.0.0.1:0",
		"DCVAAS_ACME_CAS=nowhere",
		"DCVAAS_ACME_NOWHERE_DIRECTORY=https://127.0.0.1:1/directory",
		"DCVAAS_WEBHOOK_ALLOW_HTTP=true",
		"DCVAAS_WEBHOOK_ALLOW_PRIVATE=true",
	}
	creds := migrateAndBootstrap(t, bin, vars)
	return vars, creds.Token
}

func buildDcvaas(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dcvaas")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// deliveries reads GET /api/webhooks/{id}/deliveries.
func deliveries(t *testing.T, base, token, webhookID string) []any {
	t.Helper()
	status, got := call(t, "GET", base+"/api/webhooks/"+webhookID+"/deliveries", token, nil)
	if status != http.StatusOK {
		t.Fatalf("deliveries: %d %v", status, got)
	}
	items, _ := got["items"].([]any)
	return items
}

// TestWebhookSurvivesKill kills serve with SIGKILL after a domain's
// domain.created event was committed and before any delivery of it
// succeeded (the receiver is down: 503), brings the receiver back, starts
// serve again, and checks that the event arrives exactly once, verified,
// with the event's id as webhook-id (the id of the failed attempts too, so a
// receiver can de-duplicate). Two moments: right after POST /api/domains
// answered (the fan-out may not have run yet), and after a failed first
// attempt was recorded with its retry queued.
func TestWebhookSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills serve; ~25s")
	}
	bin := buildDcvaas(t)
	for _, dialect := range storetest.Dialects(t) {
		for _, afterAttempt := range []bool{false, true} {
			name := string(dialect) + "/at-once"
			if afterAttempt {
				name = string(dialect) + "/after-attempt"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				webhookSurvivesKill(t, bin, storetest.URL(t, dialect), afterAttempt)
			})
		}
	}
}

func webhookSurvivesKill(t *testing.T, bin, dbURL string, afterAttempt bool) {
	vars, token := webhookServe(t, bin, dbURL)
	// A kill at once may land between an attempt's request and the commit
	// of its outcome: its River job then stays running until the rescuer
	// (DCVAAS_JOB_RESCUE_AFTER, 2m by default) gives it to the next process.
	vars = append(vars, "DCVAAS_JOB_RESCUE_AFTER=5s")
	// Down: every request answered 503 (after verifying it).
	recv := newScriptedReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	first := startBinary(t, bin, vars)
	hookID := recv.add(t, first.base, token)
	status, dom := call(t, "POST", first.base+"/api/domains", token, map[string]any{"domainName": "kill-" + randLabel(5) + ".example.com"})
	if status != http.StatusCreated {
		t.Fatalf("create domain: %d %v", status, dom)
	}
	if afterAttempt {
		// The first attempt reached the receiver and was refused; its
		// outcome and the retry ~5s later committed. Kill before the retry.
		recv.waitRequests(t, 1, 10*time.Second, first.logs)
		deadline := time.Now().Add(5 * time.Second)
		for {
			items := deliveries(t, first.base, token, hookID)
			if len(items) == 1 && items[0].(map[string]any)["attempts"] == 1.0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("first attempt not recorded: %v", items)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first.kill(t)
	killed := time.Now()

	// The race is real: nothing was acknowledged before the kill.
	before := recv.requests()
	for _, h := range before {
		if h.verr != "" {
			t.Fatalf("attempt before the kill does not verify: %s", h.verr)
		}
		if h.status < 300 {
			t.Fatalf("the receiver acknowledged %+v before the kill", h)
		}
	}
	if afterAttempt && len(before) == 0 {
		t.Fatal("no attempt before the kill")
	}

	// The receiver is up again; so is serve (a new process).
	recv.setAnswer(func(int) int { return http.StatusOK })
	second := startBinary(t, bin, vars)
	status, evs := call(t, "GET", second.base+"/api/events?type=domain.created", token, nil)
	items, _ := evs["items"].([]any)
	if status != http.StatusOK || len(items) != 1 {
		t.Fatalf("events: %d %v", status, evs)
	}
	eventID := items[0].(map[string]any)["id"].(string)
	for _, h := range before {
		if h.id != eventID || h.eventID != eventID || h.typ != "domain.created" {
			t.Fatalf("attempt before the kill = %+v, want webhook-id %s", h, eventID)
		}
	}
	acked := func() (ok []hookRequest) {
		for _, h := range recv.requests() {
			if h.verr != "" {
				t.Fatalf("delivery does not verify: %s", h.verr)
			}
			if h.status == http.StatusOK {
				ok = append(ok, h)
			}
		}
		return ok
	}
	// Within River's leader lease of the killed process (it schedules the
	// queued retry) plus the retry's wait.
	deadline := time.Now().Add(40 * time.Second)
	for len(acked()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery 40s after the restart: %+v\n%s", recv.requests(), second.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("delivered %s after the kill (%d failed attempts before it)", time.Since(killed).Round(10*time.Millisecond), len(before))
	// Exactly one acknowledged delivery, the same event under the same id.
	time.Sleep(time.Second)
	if got := acked(); len(got) != 1 || got[0].id != eventID || got[0].eventID != eventID || got[0].typ != "domain.created" {
		t.Fatalf("acknowledged after restart = %+v, want one domain.created with webhook-id %s", got, eventID)
	}
	// The record agrees: delivered, on the attempt after the failed ones.
	ds := deliveries(t, second.base, token, hookID)
	if len(ds) != 1 {
		t.Fatalf("deliveries = %v", ds)
	}
	// Every attempt is recorded, except one whose outcome the kill cut off.
	d := ds[0].(map[string]any)
	n, _ := d["attempts"].(float64)
	hist, _ := d["history"].([]any)
	reqs := len(recv.requests())
	if d["status"] != "delivered" || d["eventId"] != eventID || len(hist) != int(n) || n < 1 ||
		hist[len(hist)-1].(map[string]any)["statusCode"] != 200.0 ||
		(afterAttempt && int(n) != reqs) || (!afterAttempt && int(n) != reqs && int(n) != reqs-1) {
		t.Fatalf("delivery = %v; receiver had %d requests", d, reqs)
	}
	second.stop(t)
}

// TestWebhookRetriesThroughServe runs the retry and 410 rules through a real
// serve. The retry schedule is 5s, 5min, … with no setting to shorten it, so
// the test waits for the automatic second attempt (~5s) and then asks for
// the third with POST …/deliveries/{id}/retry rather than waiting 5 minutes.
func TestWebhookRetriesThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for the first retry (~5s)")
	}
	bin := buildDcvaas(t)
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			webhookRetries(t, bin, storetest.URL(t, dialect))
		})
	}
}

func webhookRetries(t *testing.T, bin, dbURL string) {
	vars, token := webhookServe(t, bin, dbURL)
	srv := startBinary(t, bin, vars)
	base := srv.base
	flaky := newScriptedReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	gone := newScriptedReceiver(t, func(int) int { return http.StatusGone })
	flakyID := flaky.add(t, base, token)
	goneID := gone.add(t, base, token)

	status, dom := call(t, "POST", base+"/api/domains", token, map[string]any{"domainName": "retry-" + randLabel(5) + ".example.com"})
	if status != http.StatusCreated {
		t.Fatalf("create domain: %d %v", status, dom)
	}

	// 410 Gone: the endpoint is disabled at once, with the reason.
	gone.waitRequests(t, 1, 10*time.Second, srv.logs)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, w := call(t, "GET", base+"/api/webhooks/"+goneID, token, nil)
		if w["enabled"] == false {
			if r, _ := w["disabledReason"].(string); !strings.Contains(r, "410") {
				t.Fatalf("disabled webhook = %v", w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook answered 410 still = %v", w)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// 500, then the automatic retry ~5s later (±20%): 500 again.
	first := flaky.waitRequests(t, 1, 10*time.Second, srv.logs)[0]
	second := flaky.waitRequests(t, 2, 15*time.Second, srv.logs)[1]
	if second.id != first.id || first.typ != "domain.created" {
		t.Fatalf("attempts = %+v, %+v", first, second)
	}
	var d map[string]any
	deadline = time.Now().Add(5 * time.Second)
	for {
		items := deliveries(t, base, token, flakyID)
		if len(items) == 1 {
			d = items[0].(map[string]any)
			if d["attempts"] == 2.0 && d["nextAttemptAt"] != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries after two 500s = %v", items)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The next automatic attempt is the schedule's second step, 5 min ±20%.
	next, err := time.Parse(time.RFC3339Nano, d["nextAttemptAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if wait := time.Until(next); wait < 3*time.Minute || wait > 7*time.Minute {
		t.Fatalf("third attempt in %s, want about 5 min", wait)
	}
	if d["status"] != "pending" || d["eventId"] != first.id {
		t.Fatalf("delivery = %v", d)
	}
	// The third attempt, now: 200.
	if status, got := call(t, "POST", base+"/api/webhooks/"+flakyID+"/deliveries/"+d["id"].(string)+"/retry", token, nil); status != http.StatusAccepted {
		t.Fatalf("retry: %d %v", status, got)
	}
	third := flaky.waitRequests(t, 3, 10*time.Second, srv.logs)[2]
	if third.id != first.id || third.status != http.StatusOK {
		t.Fatalf("third attempt = %+v", third)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		d = deliveries(t, base, token, flakyID)[0].(map[string]any)
		if d["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery after the 200 = %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	hist, _ := d["history"].([]any)
	var seen []string
	for _, a := range hist {
		a := a.(map[string]any)
		seen = append(seen, fmt.Sprintf("%v:%v", a["attempt"], a["statusCode"]))
	}
	if got := strings.Join(seen, " "); got != "1:500 2:500 3:200" || d["attempts"] != 3.0 || d["nextAttemptAt"] != nil {
		t.Fatalf("history %q, delivery %v; want 1:500 2:500 3:200", got, d)
	}
	for _, r := range append(flaky.requests(), gone.requests()...) {
		if r.verr != "" {
			t.Fatalf("a delivery does not verify: %s", r.verr)
		}
	}
	// The disabled endpoint got nothing more; the flaky one is healthy.
	if n := len(gone.requests()); n != 1 {
		t.Fatalf("the disabled endpoint had %d requests", n)
	}
	_, w := call(t, "GET", base+"/api/webhooks/"+flakyID, token, nil)
	if w["enabled"] != true || w["failingSince"] != nil {
		t.Fatalf("webhook after delivery = %v", w)
	}
	srv.stop(t)
}
