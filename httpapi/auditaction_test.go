package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

func TestAuditActionMustBeKnown(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	b.createDomain(b.a.admin, "shop.example.com")
	if items := b.do(http.MethodGet, "/api/audit?action=domain.created", b.a.admin, nil).want(t, http.StatusOK).items(t); len(items) != 1 {
		t.Errorf("domain.created entries: %d, want 1", len(items))
	}
	r := b.do(http.MethodGet, "/api/audit?action=domain.creatd", b.a.admin, nil)
	p := r.wantProblem(t, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.body), "domain.created") || !strings.Contains(strings.Join(fieldsOf(p), ","), "query.action") {
		t.Errorf("unknown action: problem does not list the known ones: %s", r.body)
	}
}

// TestIssueInWrongStateSaysWhatToDo: /issue before the CNAME is found
// answers 409 with what to do instead, in the user's words.
func TestIssueInWrongStateSaysWhatToDo(t *testing.T) {
	b := setup(t, sqlstore.SQLite)
	d := b.createDomain(b.a.admin, "shop.example.com")
	p := b.do(http.MethodPost, "/api/domains/"+d["id"].(string)+"/issue", b.a.admin, nil).wantProblem(t, http.StatusConflict)
	detail, _ := p["detail"].(string)
	for _, want := range []string{"CNAME has not been found", "_acme-challenge.shop.example.com CNAME " + d["cnameTarget"].(string), "/verify"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail %q lacks %q", detail, want)
		}
	}
	if p["type"] != "/problems/conflict" {
		t.Errorf("type %v", p["type"])
	}
}
