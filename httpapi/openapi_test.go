package httpapi_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// openAPIFile is the committed document, at the repository root.
var openAPIFile = filepath.Join("..", "OPENAPI.json")

// TestOpenAPIUpToDate keeps OPENAPI.json in step with the code.
// DCVAAS_UPDATE_OPENAPI=1 rewrites it.
func TestOpenAPIUpToDate(t *testing.T) {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("DCVAAS_UPDATE_OPENAPI") == "1" {
		if err := os.WriteFile(openAPIFile, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("%v; run `go run ./cmd/dcvaas openapi > OPENAPI.json`", err)
	}
	if !bytes.Equal(doc, committed) {
		t.Fatal("OPENAPI.json is out of date: run `go run ./cmd/dcvaas openapi > OPENAPI.json` (or DCVAAS_UPDATE_OPENAPI=1 go test ./httpapi/) and commit it")
	}
}

func TestOpenAPIDocument(t *testing.T) {
	doc, err := httpapi.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := httpapi.OpenAPI()
	if !bytes.Equal(doc, again) {
		t.Fatal("document is not deterministic")
	}
	var spec struct {
		OpenAPI    string
		Paths      map[string]map[string]struct{ Security []map[string][]string }
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string }
			Schemas         map[string]struct{ AdditionalProperties any }
		}
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.OpenAPI != "3.0.3" || spec.Components.SecuritySchemes["bearer"].Scheme != "bearer" {
		t.Fatalf("openapi %q, schemes %v", spec.OpenAPI, spec.Components.SecuritySchemes)
	}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			// The OAuth callback is reached by a browser, authenticated by its state.
			api := len(path) > 4 && path[:5] == "/api/" && path != "/api/oauth/{provider}/callback"
			if secured := len(op.Security) == 1 && op.Security[0]["bearer"] != nil; secured != api {
				t.Errorf("%s %s: security %v", method, path, op.Security)
			}
		}
	}
	for _, name := range []string{"CreateDomainRequest", "CreateOrganizationRequest", "UpdateOrganizationRequest", "CreateTokenRequest", "OrgSettings"} {
		if spec.Components.Schemas[name].AdditionalProperties != false {
			t.Errorf("%s accepts unknown fields", name)
		}
	}

	// The server serves the same document.
	b := setup(t, sqlstore.SQLite)
	r := b.do("GET", "/openapi.json", "", nil).want(t, 200)
	if !bytes.Equal(r.body, doc) || r.header.Get("Content-Type") != "application/json" {
		t.Fatal("served document differs from OpenAPI()")
	}
	for _, path := range []string{"/openapi", "/openapi.yaml", "/docs", "/schemas/Domain.json"} {
		b.do("GET", path, "", nil).wantProblem(t, 404)
	}
}
