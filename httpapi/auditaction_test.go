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

// TestReAddedDomainKeepsItsCNAMETarget: deleting a domain and adding it
// again to the same organization keeps the customer's CNAME valid; another
// organization adding the name gets a target of its own.
func TestReAddedDomainKeepsItsCNAMETarget(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		first := b.createDomain(b.a.admin, "shop.example.com")
		b.do(http.MethodDelete, "/api/domains/"+first["id"].(string), b.a.admin, nil).want(t, http.StatusNoContent)
		again := b.createDomain(b.a.admin, "shop.example.com")
		if again["cnameTarget"] != first["cnameTarget"] || again["id"] == first["id"] {
			t.Errorf("re-added: target %v (was %v), id %v (was %v)", again["cnameTarget"], first["cnameTarget"], again["id"], first["id"])
		}
		got := b.do(http.MethodGet, "/api/domains/"+again["id"].(string), b.a.admin, nil).want(t, http.StatusOK).obj(t)
		if got["cnameTarget"] != first["cnameTarget"] {
			t.Errorf("stored target %v", got["cnameTarget"])
		}
		other := b.createDomain(b.b.admin, "shop.example.com")
		if other["cnameTarget"] == first["cnameTarget"] {
			t.Error("another organization got the deleted domain's target")
		}
		// Deleted and re-added once more: still the same target.
		b.do(http.MethodDelete, "/api/domains/"+again["id"].(string), b.a.admin, nil).want(t, http.StatusNoContent)
		if third := b.createDomain(b.a.admin, "shop.example.com"); third["cnameTarget"] != first["cnameTarget"] {
			t.Errorf("third time: %v", third["cnameTarget"])
		}
	})
}
