package cloudflare_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/dcvaas/dcvaas/provider"
	"github.com/dcvaas/dcvaas/provider/cloudflare"
	"github.com/dcvaas/dcvaas/provider/providertest"
)

func TestConformance(t *testing.T) {
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	fake.AddZone("example.co.uk")
	providertest.Conformance(t, cloudflare.New(fake.URL(), "tok", nil), "example.co.uk", fake.Records)
}

func TestNeverProxied(t *testing.T) {
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	fake.AddZone("example.com")
	c := cloudflare.New(fake.URL(), "tok", nil)
	zones, _ := c.Zones(context.Background())
	if err := c.SetCNAME(context.Background(), zones[0], "_acme-challenge.example.com", "x.verify.test", 300); err != nil {
		t.Fatal(err)
	}
	got := fake.Records("_acme-challenge.example.com")
	if len(got) != 1 || got[0].Proxied || got[0].TTL != 300 {
		t.Fatalf("record = %+v", got)
	}
}

func TestZonePaging(t *testing.T) {
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	fake.SetPerPage(5)
	for i := range 12 {
		fake.AddZone(fmt.Sprintf("z%d.example", i))
	}
	zones, err := cloudflare.New(fake.URL(), "tok", nil).Zones(context.Background())
	if err != nil || len(zones) != 12 {
		t.Fatalf("zones = %d, %v", len(zones), err)
	}
}

func TestErrors(t *testing.T) {
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	ctx := context.Background()

	_, err := cloudflare.New(fake.URL(), "wrong", nil).Zones(ctx)
	providertest.WantKind(t, err, provider.KindAuth)
	if pe := err.(*provider.Error); pe.Message != "Authentication error" || pe.Code != "10000" {
		t.Fatalf("error = %+v", pe)
	}

	fake.FailNext(http.StatusBadGateway)
	_, err = cloudflare.New(fake.URL(), "tok", nil).Zones(ctx)
	providertest.WantKind(t, err, provider.KindUnavailable)

	_, err = cloudflare.New("http://127.0.0.1:1", "tok", nil).Zones(ctx)
	providertest.WantKind(t, err, provider.KindUnavailable)

	// A CNAME cannot join another record at its name.
	fake.AddZone("example.com")
	fake.AddRecord("example.com", providertest.Record{Type: "TXT", Name: "_acme-challenge.example.com", Content: "x", TTL: 120})
	c := cloudflare.New(fake.URL(), "tok", nil)
	zones, _ := c.Zones(ctx)
	err = c.SetCNAME(ctx, zones[0], "_acme-challenge.example.com", "x.verify.test", 300)
	providertest.WantKind(t, err, provider.KindInvalid)
}
