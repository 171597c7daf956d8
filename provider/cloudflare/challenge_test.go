package cloudflare_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/propagate"
	"github.com/dcvaas/dcvaas/provider/cloudflare"
	"github.com/dcvaas/dcvaas/provider/providertest"
)

// The verify zone at Cloudflare: apex and wildcard values at one name,
// each published only once the zone's servers serve it, removed one by
// one or together, and records that are not dcvaas's left alone.
func TestChallengePublisher(t *testing.T) {
	ctx := context.Background()
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	zoneID := fake.AddZone("verify.example.net")
	fake.AddRecord("verify.example.net", providertest.Record{Type: "TXT", Name: "abc.verify.example.net", Content: "someone else's", TTL: 60})
	const delay = 300 * time.Millisecond
	ns := fake.StartDNS(t, delay)
	checker := &propagate.Checker{Zone: "verify.example.net", Servers: []string{ns}, Interval: 50 * time.Millisecond, Timeout: 10 * time.Second}
	p := &cloudflare.ChallengePublisher{Client: cloudflare.New(fake.URL(), "tok", nil), ZoneID: zoneID, Wait: checker.WaitTXT}

	values := func() []string {
		var out []string
		for _, r := range fake.Records("abc.verify.example.net") {
			out = append(out, strings.Trim(r.Content, `"`))
		}
		slices.Sort(out)
		return out
	}
	start := time.Now()
	if err := p.PublishTXT(ctx, "abc.verify.example.net", "https://ca/authz/1", "value-apex"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("published in %s, before the servers could serve it (%s)", took, delay)
	}
	if err := p.PublishTXT(ctx, "abc.verify.example.net", "https://ca/authz/2", "value-wild"); err != nil {
		t.Fatal(err)
	}
	// Again, as a resumed order does: nothing changes.
	if err := p.PublishTXT(ctx, "ABC.verify.example.net.", "https://ca/authz/1", "value-apex"); err != nil {
		t.Fatal(err)
	}
	if got := values(); !slices.Equal(got, []string{"someone else's", "value-apex", "value-wild"}) {
		t.Fatalf("records = %v", got)
	}
	// A new value for a key replaces its record.
	if err := p.PublishTXT(ctx, "abc.verify.example.net", "https://ca/authz/2", "value-wild-2"); err != nil {
		t.Fatal(err)
	}
	if got := values(); !slices.Equal(got, []string{"someone else's", "value-apex", "value-wild-2"}) {
		t.Fatalf("records after update = %v", got)
	}
	if err := p.UnpublishTXT(ctx, "abc.verify.example.net", "https://ca/authz/1"); err != nil {
		t.Fatal(err)
	}
	if got := values(); !slices.Equal(got, []string{"someone else's", "value-wild-2"}) {
		t.Fatalf("records after unpublish = %v", got)
	}
	if err := p.ClearTXT(ctx, "abc.verify.example.net"); err != nil {
		t.Fatal(err)
	}
	if got := values(); !slices.Equal(got, []string{"someone else's"}) {
		t.Fatalf("records after clear = %v", got)
	}
	// Unpublishing what is gone is no error.
	if err := p.UnpublishTXT(ctx, "abc.verify.example.net", "https://ca/authz/1"); err != nil {
		t.Fatal(err)
	}
}

func TestChallengePublisherFailures(t *testing.T) {
	ctx := context.Background()
	fake := providertest.NewCloudflare(t)
	fake.AddToken("tok")
	zoneID := fake.AddZone("verify.example.net")
	ns := fake.StartDNS(t, time.Hour) // never serves what is published

	checker := &propagate.Checker{Zone: "verify.example.net", Servers: []string{ns}, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond}
	p := &cloudflare.ChallengePublisher{Client: cloudflare.New(fake.URL(), "tok", nil), ZoneID: zoneID, Wait: checker.WaitTXT}
	err := p.PublishTXT(ctx, "x.verify.example.net", "k", "v")
	if err == nil || !strings.Contains(err.Error(), "not served by "+ns) {
		t.Fatalf("no propagation: %v", err)
	}

	bad := &cloudflare.ChallengePublisher{Client: cloudflare.New(fake.URL(), "wrong", nil), ZoneID: zoneID}
	if err := bad.PublishTXT(ctx, "x.verify.example.net", "k", "v"); err == nil || !strings.Contains(err.Error(), "Authentication error") {
		t.Fatalf("bad token: %v", err)
	}
	fake.FailNext(http.StatusServiceUnavailable)
	if err := p.ClearTXT(ctx, "x.verify.example.net"); err == nil {
		t.Fatal("outage not reported")
	}
}
