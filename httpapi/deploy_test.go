package httpapi_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// The External Secrets Operator YAML in deploy/kubernetes templates the
// Secret from fields of the JSON certificate; each must be in a real
// answer to a delivery token, non-empty.
func TestExternalSecretsYAMLMatchesTheAPI(t *testing.T) {
	yaml, err := os.ReadFile("../deploy/kubernetes/external-secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fields := regexp.MustCompile(`tls\.(?:crt|key): "\{\{ \.(\w+) \}\}"`).FindAllSubmatch(yaml, -1)
	if len(fields) != 2 {
		t.Fatalf("found %d templated tls.crt/tls.key fields, want 2", len(fields))
	}
	if !regexp.MustCompile(`url: ".*/api/domains/\{\{ \.remoteRef\.key \}\}/certificate"`).Match(yaml) ||
		!regexp.MustCompile(`Accept: application/json`).Match(yaml) {
		t.Fatal("the store must ask /api/domains/{id}/certificate for JSON")
	}
	b, ids := deliverySetup(t, sqlstore.SQLite, "shop.example.com")
	tok := b.deliveryToken(t, nil)
	c := b.do("GET", "/api/domains/"+ids[0]+"/certificate", tok, nil, "Accept", "application/json").want(t, 200).obj(t)
	for _, f := range fields {
		if v, _ := c[string(f[1])].(string); v == "" {
			t.Errorf("the YAML templates {{ .%s }}, absent or empty in the answer %v", f[1], c)
		}
	}
	if c["notAfter"] == nil {
		t.Error("notAfter missing")
	}
}
