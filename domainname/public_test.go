package domainname_test

import (
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
)

func TestCheckPublic(t *testing.T) {
	for _, c := range []struct {
		name  string
		allow []string
		ok    bool
	}{
		{"example.com", nil, true},
		{"shop.example.co.uk", nil, true},
		{"xn--bcher-kva.de", nil, true},
		{"me.github.io", nil, true},  // a private-section suffix under an ICANN TLD
		{"shop.xn--p1ai", nil, true}, // .рф
		{"localhost.localhost", nil, false},
		{"printer.local", nil, false},
		{"db.internal", nil, false},
		{"x.invalid", nil, false},
		{"www.example", nil, false},
		{"shop.test", nil, false},
		{"facebookcorewwwi.onion", nil, false},
		{"x.alt", nil, false},
		{"router.home.arpa", nil, false},
		{"1.2.0.192.in-addr.arpa", nil, false},
		{"shop.zzzz", nil, false},     // no such TLD
		{"intranet.corp", nil, false}, // not delegated
		{"shop.test", []string{"test"}, true},
		{"a.b.shop.test", []string{" Test. "}, true},
		{"shop.test", []string{"example"}, false},
		{"router.home.arpa", []string{"home.arpa"}, true},
		{"x.arpa", []string{"home.arpa"}, false},
		{"shop.zzzz", []string{"zzzz"}, true},
	} {
		err := domainname.CheckPublic(c.name, c.allow)
		if (err == nil) != c.ok {
			t.Errorf("CheckPublic(%q, %q) = %v, want ok=%v", c.name, c.allow, err, c.ok)
		}
	}
	// NewDomain applies it and names the field.
	if _, err := domainname.NewDomain("shop.test", nil, "", "verify.example.com", nil, dcvaas.OrgSettings{}); err == nil {
		t.Error("NewDomain accepted shop.test")
	}
	if d, err := domainname.NewDomain("Shop.Test", nil, "", "verify.example.com", []string{"test"}, dcvaas.OrgSettings{}); err != nil || d.Name != "shop.test" {
		t.Errorf("NewDomain with test allowed: %v %v", d, err)
	}
}
