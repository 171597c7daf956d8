package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestAccessLogAndRequestID: every request gets an id (the client's when
// usable), echoed in the response, its problem details and its access log
// line, which names the route pattern, status, duration and organization.
func TestAccessLogAndRequestID(t *testing.T) {
	b := setup(t, sqlstore.SQLite)

	r := b.do(http.MethodGet, "/api/domains/no-such-id", b.a.admin, nil, "X-Request-Id", "client-req-42")
	p := r.wantProblem(t, http.StatusNotFound)
	if r.header.Get("X-Request-Id") != "client-req-42" || p["requestId"] != "client-req-42" {
		t.Errorf("client's id not echoed: header %q, problem %v", r.header.Get("X-Request-Id"), p["requestId"])
	}
	if p["type"] != "/problems/not-found" {
		t.Errorf("type %v, want /problems/not-found", p["type"])
	}

	// An unusable id (spaces, quotes) is replaced, not logged as sent.
	r = b.do(http.MethodGet, "/api/domains", b.a.admin, nil, "X-Request-Id", `bad "id"`)
	r.want(t, http.StatusOK)
	gen := r.header.Get("X-Request-Id")
	if gen == "" || strings.Contains(gen, " ") {
		t.Errorf("generated id %q", gen)
	}

	logs := b.logs.String()
	var line404, line200 string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="http request"`) && strings.Contains(l, "requestId=client-req-42") {
			line404 = l
		}
		if strings.Contains(l, `msg="http request"`) && strings.Contains(l, "requestId="+gen) {
			line200 = l
		}
	}
	for _, want := range []string{"method=GET", `route="GET /api/domains/{id}"`, "status=404", "durationMs=", "organizationId=" + b.a.org.ID} {
		if !strings.Contains(line404, want) {
			t.Errorf("access log line lacks %s: %q\nall logs:\n%s", want, line404, logs)
		}
	}
	if !strings.Contains(line200, `route="GET /api/domains"`) || !strings.Contains(line200, "status=200") {
		t.Errorf("access log of the list: %q", line200)
	}
	if strings.Contains(logs, "no-such-id") {
		t.Error("the access log shows the raw path; it should show the route pattern")
	}

	// Unauthenticated: no organization, still an id in the problem.
	r = b.do(http.MethodGet, "/api/domains", "", nil)
	if p := r.wantProblem(t, http.StatusUnauthorized); p["requestId"] != r.header.Get("X-Request-Id") || p["type"] != "/problems/unauthorized" {
		t.Errorf("401 problem %v, header id %q", p, r.header.Get("X-Request-Id"))
	}

	// The problem type resolves to a page.
	r = b.do(http.MethodGet, "/problems/not-found", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "Not found") {
		t.Errorf("problem page: %d %s", r.status, r.body)
	}
	b.do(http.MethodGet, "/problems/nonsense", "", nil).wantProblem(t, http.StatusNotFound)

	// 415 says what it is.
	r = b.do(http.MethodPost, "/api/domains", b.a.admin, "domainName=shop.example.com", "Content-Type", "application/x-www-form-urlencoded")
	p = r.wantProblem(t, http.StatusUnsupportedMediaType)
	if d, _ := p["detail"].(string); p["type"] != "/problems/unsupported-media-type" || !strings.Contains(d, "application/json") {
		t.Errorf("415 problem %v", p)
	}
}
