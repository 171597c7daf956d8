package route53_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/dcvaas/dcvaas/provider"
	"github.com/dcvaas/dcvaas/provider/providertest"
	"github.com/dcvaas/dcvaas/provider/route53"
)

func opts(fake *providertest.Route53) route53.Options {
	return route53.Options{Endpoint: fake.URL(), STSEndpoint: fake.STSURL(), PollInterval: time.Millisecond, MaxAttempts: 1}
}

func TestConformanceWithKeyPair(t *testing.T) {
	fake := providertest.NewRoute53(t)
	fake.AddKey("AKIAFAKE", "s3cret")
	fake.AddZone("example.co.uk", false)
	o := opts(fake)
	o.AccessKeyID, o.SecretAccessKey = "AKIAFAKE", "s3cret"
	c, err := route53.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	providertest.Conformance(t, c, "example.co.uk", fake.Records)
}

func TestAssumeRole(t *testing.T) {
	fake := providertest.NewRoute53(t)
	fake.AddKey("AKIADCVAAS", "dcvaas-own")
	fake.AddRole("arn:aws:iam::222222222222:role/dcvaas", "org-123")
	fake.AddZone("example.com", false)
	fake.AddZone("internal.example.com", true)
	fake.SetInSyncAfter(3)
	o := opts(fake)
	o.RoleARN, o.ExternalID = "arn:aws:iam::222222222222:role/dcvaas", "org-123"
	o.BaseCredentials = credentials.NewStaticCredentialsProvider("AKIADCVAAS", "dcvaas-own", "")
	c, err := route53.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	zones, err := c.Zones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 1 || zones[0].Name != "example.com" {
		t.Fatalf("zones = %+v (private zones must be left out)", zones)
	}
	if err := c.SetCNAME(ctx, zones[0], "_acme-challenge.example.com", "x.verify.test", 300); err != nil {
		t.Fatal(err)
	}
	if got := fake.Records("_acme-challenge.example.com"); len(got) != 1 || got[0].Content != "x.verify.test." {
		t.Fatalf("records = %+v", got)
	}
	if fake.Assumed() != 1 {
		t.Fatalf("AssumeRole called %d times; the credentials must be cached", fake.Assumed())
	}

	// Another organization's external id does not open the role.
	o.ExternalID = "org-456"
	c, _ = route53.New(ctx, o)
	_, err = c.Zones(ctx)
	if err == nil {
		t.Fatal("assumed a role with the wrong external id")
	}
	if provider.KindOf(err) == provider.KindUnavailable {
		t.Fatalf("wrong external id reported as unavailable: %v", err)
	}
}

func TestInSyncTimeout(t *testing.T) {
	fake := providertest.NewRoute53(t)
	fake.AddKey("AKIAFAKE", "s3cret")
	fake.AddZone("example.com", false)
	fake.SetInSyncAfter(1 << 30)
	o := opts(fake)
	o.AccessKeyID, o.SecretAccessKey, o.WaitTimeout = "AKIAFAKE", "s3cret", 50*time.Millisecond
	c, _ := route53.New(context.Background(), o)
	zones, _ := c.Zones(context.Background())
	err := c.SetCNAME(context.Background(), zones[0], "_acme-challenge.example.com", "x.verify.test", 300)
	providertest.WantKind(t, err, provider.KindUnavailable)
}

func TestErrors(t *testing.T) {
	fake := providertest.NewRoute53(t)
	fake.AddKey("AKIAFAKE", "s3cret")
	ctx := context.Background()

	o := opts(fake)
	o.AccessKeyID, o.SecretAccessKey = "AKIAFAKE", "wrong"
	c, _ := route53.New(ctx, o)
	_, err := c.Zones(ctx)
	providertest.WantKind(t, err, provider.KindAuth)
	if pe := err.(*provider.Error); pe.Code != "SignatureDoesNotMatch" {
		t.Fatalf("error = %+v", pe)
	}

	o.SecretAccessKey = "s3cret"
	c, _ = route53.New(ctx, o)
	fake.FailNext(http.StatusServiceUnavailable)
	_, err = c.Zones(ctx)
	providertest.WantKind(t, err, provider.KindUnavailable)

	_, err = c.Records(ctx, provider.Zone{ID: "ZNOPE", Name: "nope.com"}, "x.nope.com")
	providertest.WantKind(t, err, provider.KindNotFound)
}
