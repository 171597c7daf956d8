package httpapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// faultyStore fails some calls the way a broken database would.
type faultyStore struct {
	dcvaas.Store
}

var errDB = errors.New(`pq: relation "domains" does not exist at 10.1.2.3`)

func (faultyStore) ListDomains(context.Context, string, dcvaas.DomainFilter) ([]*dcvaas.Domain, int, error) {
	return nil, 0, errDB
}

func (faultyStore) TouchToken(context.Context, string, time.Time) error { return errDB }

func (faultyStore) FindJob(context.Context, string, string) (*dcvaas.Job, error) {
	return nil, &dcvaas.Error{Code: dcvaas.ENOTIMPLEMENTED, Message: "jobs are elsewhere"}
}

// TestInternalErrors: a failure's cause is logged and never shown.
func TestInternalErrors(t *testing.T) {
	b := setup(t, sqlstore.SQLite, options{wrap: func(s dcvaas.Store) dcvaas.Store { return faultyStore{s} }})
	r := b.do("GET", "/api/domains", b.a.read, nil)
	p := r.wantProblem(t, 500)
	if p["detail"] != "internal error" || p["errors"] != nil || strings.Contains(string(r.body), "10.1.2.3") {
		t.Fatalf("internal error shown: %s", r.body)
	}
	if !strings.Contains(b.logs.String(), "10.1.2.3") {
		t.Fatalf("cause not logged: %s", b.logs.String())
	}
	// TouchToken failed on that request too, and nothing else noticed.
	b.do("GET", "/api/tokens", b.a.admin, nil).want(t, 200)
	if !strings.Contains(b.logs.String(), "record token use") {
		t.Errorf("touch failure not logged: %s", b.logs.String())
	}
	if p := b.do("GET", "/api/jobs/x", b.a.read, nil).wantProblem(t, 501); p["detail"] != "jobs are elsewhere" {
		t.Errorf("501 detail = %v", p["detail"])
	}
}
