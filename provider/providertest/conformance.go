package providertest

import (
	"context"
	"slices"
	"testing"

	"github.com/dcvaas/dcvaas/provider"
)

// Conformance checks what every provider.DNS must do, against a fake whose
// zone zone exists and whose records at a name inspect returns: list the
// zone, create a CNAME, overwrite it, see it, delete it.
func Conformance(t *testing.T, d provider.DNS, zone string, inspect func(name string) []Record) {
	t.Helper()
	ctx := context.Background()
	zones, err := d.Zones(ctx)
	if err != nil {
		t.Fatalf("Zones: %v", err)
	}
	i := slices.IndexFunc(zones, func(z provider.Zone) bool { return z.Name == zone })
	if i < 0 {
		t.Fatalf("Zones = %v, want %s among them", zones, zone)
	}
	z := zones[i]
	name := "_acme-challenge.a.b." + zone

	recs, err := d.Records(ctx, z, name)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Records before = %v, %v", recs, err)
	}
	for _, target := range []string{"first.verify.test", "second.verify.test", "second.verify.test"} {
		if err := d.SetCNAME(ctx, z, name, target, 300); err != nil {
			t.Fatalf("SetCNAME %s: %v", target, err)
		}
		recs, err = d.Records(ctx, z, name)
		if err != nil || len(recs) != 1 || recs[0].Type != "CNAME" || !slices.Equal(recs[0].Values, []string{target}) || recs[0].Name != name {
			t.Fatalf("Records after SetCNAME %s = %+v, %v", target, recs, err)
		}
		if got := inspect(name); len(got) != 1 || canonical(got[0].Content) != target {
			t.Fatalf("provider holds %+v, want one CNAME to %s", got, target)
		}
	}
	// A record at a neighbouring name is not reported.
	if other, err := d.Records(ctx, z, "b."+zone); err != nil || len(other) != 0 {
		t.Fatalf("Records at another name = %+v, %v", other, err)
	}
	if err := d.Delete(ctx, z, recs[0]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := inspect(name); len(got) != 0 {
		t.Fatalf("after Delete the provider holds %+v", got)
	}
}

// WantKind fails the test unless err is a provider error of kind k.
func WantKind(t *testing.T, err error, k provider.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %d", k)
	}
	if got := provider.KindOf(err); got != k {
		t.Fatalf("error %v has kind %d, want %d", err, got, k)
	}
}
