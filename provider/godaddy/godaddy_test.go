package godaddy_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/dcvaas/dcvaas/provider"
	"github.com/dcvaas/dcvaas/provider/godaddy"
	"github.com/dcvaas/dcvaas/provider/providertest"
)

func TestConformance(t *testing.T) {
	fake := providertest.NewGoDaddy(t)
	fake.AddKey("key", "secret")
	fake.AddDomain("example.co.uk")
	fake.AddDomain("other.com")
	providertest.Conformance(t, godaddy.New(fake.URL(), godaddy.SSOKey("key", "secret"), nil), "example.co.uk", fake.Records)
}

func TestBearerAndMinimumTTL(t *testing.T) {
	fake := providertest.NewGoDaddy(t)
	fake.AddToken("access")
	fake.AddDomain("example.com")
	c := godaddy.New(fake.URL(), godaddy.Bearer("access"), nil)
	ctx := context.Background()
	zones, err := c.Zones(ctx)
	if err != nil || len(zones) != 1 {
		t.Fatalf("zones = %v, %v", zones, err)
	}
	if err := c.SetCNAME(ctx, zones[0], "_acme-challenge.example.com", "x.verify.test", 300); err != nil {
		t.Fatal(err)
	}
	if got := fake.Records("_acme-challenge.example.com"); len(got) != 1 || got[0].TTL != godaddy.MinTTL {
		t.Fatalf("records = %+v", got)
	}
	// The apex is "@" on GoDaddy.
	apex, err := c.Records(ctx, zones[0], "example.com")
	if err != nil || len(apex) != 1 || apex[0].Type != "A" {
		t.Fatalf("apex = %+v, %v", apex, err)
	}
}

func TestErrors(t *testing.T) {
	fake := providertest.NewGoDaddy(t)
	fake.AddKey("key", "secret")
	ctx := context.Background()
	_, err := godaddy.New(fake.URL(), godaddy.SSOKey("key", "wrong"), nil).Zones(ctx)
	providertest.WantKind(t, err, provider.KindAuth)
	if pe := err.(*provider.Error); pe.Code != "UNABLE_TO_AUTHENTICATE" {
		t.Fatalf("error = %+v", pe)
	}
	fake.FailNext(http.StatusInternalServerError)
	_, err = godaddy.New(fake.URL(), godaddy.SSOKey("key", "secret"), nil).Zones(ctx)
	providertest.WantKind(t, err, provider.KindUnavailable)
	_, err = godaddy.New(fake.URL(), godaddy.SSOKey("key", "secret"), nil).Records(ctx, provider.Zone{ID: "nope.com", Name: "nope.com"}, "x.nope.com")
	providertest.WantKind(t, err, provider.KindNotFound)
}
