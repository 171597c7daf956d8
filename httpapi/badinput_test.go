package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestBadInput sends each endpoint what it must refuse and checks the
// status, the problem document, the field it names, and that nothing in the
// database changed.
func TestBadInput(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		dom := b.createDomain(b.a.admin, "exists.example.com")
		domPath := "/api/domains/" + dom["id"].(string)
		jobID := dom["latestJob"].(map[string]any)["id"].(string)
		orgPath := "/api/organizations/" + b.a.org.ID
		big := `{"domainName": "` + strings.Repeat("a", 1<<20) + `.example.com"}`

		type tc struct {
			name, method, path string
			body               any
			status             int
			field              string // a location the problem must name
			contentType        string
		}
		cases := []tc{
			// POST /api/domains
			{"domain malformed json", "POST", "/api/domains", `{"domainName":`, 400, "body", ""},
			{"domain not an object", "POST", "/api/domains", `["x"]`, 422, "body", ""},
			{"domain unknown field", "POST", "/api/domains", `{"domainName":"a.example.com","extra":1}`, 422, "body.extra", ""},
			{"domain missing name", "POST", "/api/domains", `{}`, 422, "body.domainName", ""},
			{"domain empty name", "POST", "/api/domains", `{"domainName":""}`, 422, "body.domainName", ""},
			{"domain not a name", "POST", "/api/domains", `{"domainName":"not a domain"}`, 422, "body.domainName", ""},
			{"domain url", "POST", "/api/domains", `{"domainName":"https://shop.example.com/"}`, 422, "body.domainName", ""},
			{"domain ip", "POST", "/api/domains", `{"domainName":"192.0.2.1"}`, 422, "body.domainName", ""},
			{"domain wildcard", "POST", "/api/domains", `{"domainName":"*.example.com"}`, 422, "body.domainName", ""},
			{"domain public suffix", "POST", "/api/domains", `{"domainName":"co.uk"}`, 422, "body.domainName", ""},
			{"domain special-use local", "POST", "/api/domains", `{"domainName":"printer.local"}`, 422, "body.domainName", ""},
			{"domain special-use test", "POST", "/api/domains", `{"domainName":"shop.test"}`, 422, "body.domainName", ""},
			{"domain under arpa", "POST", "/api/domains", `{"domainName":"router.home.arpa"}`, 422, "body.domainName", ""},
			{"domain not an ICANN TLD", "POST", "/api/domains", `{"domainName":"shop.zzzz"}`, 422, "body.domainName", ""},
			{"domain in verify zone", "POST", "/api/domains", `{"domainName":"x.verify.test"}`, 422, "body.domainName", ""},
			{"domain bad key type", "POST", "/api/domains", `{"domainName":"a.example.com","keyType":"dsa"}`, 422, "body.keyType", ""},
			{"domain wildcard not bool", "POST", "/api/domains", `{"domainName":"a.example.com","includeWildcard":"yes"}`, 422, "body.includeWildcard", ""},
			{"domain too large", "POST", "/api/domains", big, 413, "", ""},
			{"domain wrong content type", "POST", "/api/domains", `domainName=a.example.com`, 415, "", "application/x-www-form-urlencoded"},
			{"domain duplicate", "POST", "/api/domains", `{"domainName":"Exists.Example.com"}`, 409, "", ""},
			// domain by id
			{"get unknown domain", "GET", "/api/domains/nope", nil, 404, "", ""},
			{"verify unknown domain", "POST", "/api/domains/nope/verify", nil, 404, "", ""},
			{"issue pending domain", "POST", domPath + "/issue", nil, 409, "", ""},
			{"renew pending domain", "POST", domPath + "/renew", nil, 409, "", ""},
			{"issue unknown domain", "POST", "/api/domains/nope/issue", nil, 404, "", ""},
			{"delete unknown domain", "DELETE", "/api/domains/nope", nil, 404, "", ""},
			{"certificate not issued", "GET", domPath + "/certificate", nil, 404, "", ""},
			{"list domains bad status", "GET", "/api/domains?status=done", nil, 422, "query.status", ""},
			{"list domains limit 0", "GET", "/api/domains?limit=0", nil, 422, "query.limit", ""},
			{"list domains limit 201", "GET", "/api/domains?limit=201", nil, 422, "query.limit", ""},
			{"list domains offset -1", "GET", "/api/domains?offset=-1", nil, 422, "query.offset", ""},
			// jobs
			{"list jobs bad type", "GET", "/api/jobs?type=cleanup", nil, 422, "query.type", ""},
			{"list jobs bad status", "GET", "/api/jobs?status=done", nil, 422, "query.status", ""},
			{"list jobs limit", "GET", "/api/jobs?limit=1000", nil, 422, "query.limit", ""},
			{"get unknown job", "GET", "/api/jobs/nope", nil, 404, "", ""},
			{"retry queued job", "POST", "/api/jobs/" + jobID + "/retry", nil, 409, "", ""},
			{"retry unknown job", "POST", "/api/jobs/nope/retry", nil, 404, "", ""},
			// organizations
			{"org empty name", "POST", "/api/organizations", `{"name":""}`, 422, "body.name", ""},
			{"org blank name", "POST", "/api/organizations", `{"name":"   "}`, 422, "body.name", ""},
			{"org control character", "POST", "/api/organizations", `{"name":"a\u0007b"}`, 422, "body.name", ""},
			{"org name too long", "POST", "/api/organizations", `{"name":"` + strings.Repeat("é", 101) + `"}`, 422, "body.name", ""},
			{"org missing name", "POST", "/api/organizations", `{"settings":{}}`, 422, "body.name", ""},
			{"org unknown setting", "POST", "/api/organizations", `{"name":"New","settings":{"colour":"red"}}`, 422, "body.settings.colour", ""},
			{"org bad key type", "POST", "/api/organizations", `{"name":"New","settings":{"defaultKeyType":"dsa"}}`, 422, "body.settings.defaultKeyType", ""},
			{"org bad email", "POST", "/api/organizations", `{"name":"New","settings":{"contactEmail":"nope"}}`, 422, "body.settings.contactEmail", ""},
			{"org named email", "POST", "/api/organizations", `{"name":"New","settings":{"contactEmail":"Ops <ops@x.test>"}}`, 422, "body.settings.contactEmail", ""},
			{"org malformed json", "POST", "/api/organizations", `{"name":"New"`, 400, "body", ""},
			{"org bidi override", "POST", "/api/organizations", `{"name":"evil\u202egnp.exe"}`, 422, "body.name", ""},
			{"org zero-width space", "POST", "/api/organizations", `{"name":"Ac\u200bme"}`, 422, "body.name", ""},
			{"patch nothing", "PATCH", orgPath, `{}`, 422, "body", ""},
			{"patch empty name", "PATCH", orgPath, `{"name":" "}`, 422, "body.name", ""},
			{"patch only null", "PATCH", orgPath, `{"name":null}`, 422, "body", ""},
			{"patch unknown field", "PATCH", orgPath, `{"name":"X","plan":"pro"}`, 422, "body.plan", ""},
			{"patch bad email", "PATCH", orgPath, `{"settings":{"contactEmail":"@"}}`, 422, "body.settings.contactEmail", ""},
			{"patch bidi isolate", "PATCH", orgPath, `{"name":"a\u2067b"}`, 422, "body.name", ""},
			{"patch unknown org", "PATCH", "/api/organizations/nope", `{"name":"X"}`, 404, "", ""},
			{"patch other org", "PATCH", "/api/organizations/" + b.b.org.ID, `{"name":"X"}`, 404, "", ""},
			{"list orgs limit", "GET", "/api/organizations?limit=0", nil, 422, "query.limit", ""},
			// tokens
			{"token missing name", "POST", "/api/tokens", `{"role":"read"}`, 422, "body.name", ""},
			{"token blank name", "POST", "/api/tokens", `{"name":" ","role":"read"}`, 422, "body.name", ""},
			{"token missing role", "POST", "/api/tokens", `{"name":"ci"}`, 422, "body.role", ""},
			{"token bad role", "POST", "/api/tokens", `{"name":"ci","role":"root"}`, 422, "body.role", ""},
			{"token expired", "POST", "/api/tokens", `{"name":"ci","role":"read","expiresAt":"2020-01-01T00:00:00Z"}`, 422, "body.expiresAt", ""},
			{"token bad time", "POST", "/api/tokens", `{"name":"ci","role":"read","expiresAt":"tomorrow"}`, 422, "body.expiresAt", ""},
			{"token unknown field", "POST", "/api/tokens", `{"name":"ci","role":"read","scopes":["all"]}`, 422, "body.scopes", ""},
			{"token unknown org", "POST", "/api/tokens", `{"name":"ci","role":"read","organizationId":"nope"}`, 404, "", ""},
			{"token other org", "POST", "/api/tokens", `{"name":"ci","role":"read","organizationId":"` + b.b.org.ID + `"}`, 404, "", ""},
			{"revoke unknown token", "DELETE", "/api/tokens/nope", nil, 404, "", ""},
			{"revoke other org's token", "DELETE", "/api/tokens/" + b.b.adminID, nil, 404, "", ""},
			{"list tokens offset", "GET", "/api/tokens?offset=x", nil, 422, "query.offset", ""},
			// keys are case-exact: a key that differs from its field only in
			// case is refused, alone or beside the real one, at any depth
			{"token role twice by case", "POST", "/api/tokens", `{"name":"ci","role":"read","Role":"admin"}`, 422, "body.Role", ""},
			{"token role by case", "POST", "/api/tokens", `{"name":"ci","ROLE":"read"}`, 422, "body.ROLE", ""},
			{"domain name by case", "POST", "/api/domains", `{"DomainName":"case.example.com"}`, 422, "body.DomainName", ""},
			{"org setting by case", "POST", "/api/organizations", `{"name":"New","settings":{"defaultKeyType":"ec256","DefaultKeyType":"dsa"}}`, 422, "body.settings.DefaultKeyType", ""},
			{"patch name by case", "PATCH", orgPath, `{"Name":"X"}`, 422, "body.Name", ""},
			// audit
			{"audit from after to", "GET", "/api/audit?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", nil, 422, "query.to", ""},
			{"audit bad from", "GET", "/api/audit?from=yesterday", nil, 422, "query.from", ""},
			{"audit bad to", "GET", "/api/audit?to=2026-13-01", nil, 422, "query.to", ""},
			{"audit limit", "GET", "/api/audit?limit=-5", nil, 422, "query.limit", ""},
			// routing
			{"unknown path", "GET", "/api/nothing", nil, 404, "", ""},
			{"wrong method", "PUT", "/api/domains", `{}`, 405, "", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := b.dump()
				var headers []string
				if c.contentType != "" {
					headers = []string{"Content-Type", c.contentType}
				}
				p := b.do(c.method, c.path, b.a.admin, c.body, headers...).wantProblem(t, c.status)
				if c.field != "" && !slices.Contains(fieldsOf(p), c.field) {
					t.Errorf("problem does not name %s: %v", c.field, p)
				}
				if c.status == 400 || c.status == 413 {
					errs, _ := p["errors"].([]any)
					for _, e := range errs {
						if _, echoed := e.(map[string]any)["value"]; echoed {
							t.Errorf("request body echoed back: %v", e)
						}
					}
				}
				if after := b.dump(); after != before {
					t.Errorf("database changed:\n%s\n---\n%s", before, after)
				}
			})
		}
	})
}
