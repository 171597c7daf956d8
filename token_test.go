package dcvaas_test

import (
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
)

func TestTokenContains(t *testing.T) {
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	later, earlier := exp.Add(time.Second), exp.Add(-time.Second)
	scoped := &dcvaas.TokenScope{DomainIDs: []string{"d1"}, Names: []string{"*.shop.example.com", "a.example.com"}}
	for _, c := range []struct {
		name          string
		parent, child dcvaas.Token
		code, field   string // "" and "": allowed
	}{
		{"admin any role", dcvaas.Token{Role: dcvaas.TokenAdmin}, dcvaas.Token{Role: dcvaas.TokenDelivery}, "", ""},
		{"read to admin", dcvaas.Token{Role: dcvaas.TokenRead}, dcvaas.Token{Role: dcvaas.TokenAdmin}, dcvaas.EINVALID, "role"},
		{"read to read", dcvaas.Token{Role: dcvaas.TokenRead}, dcvaas.Token{Role: dcvaas.TokenRead}, "", ""},
		{"delivery to read", dcvaas.Token{Role: dcvaas.TokenDelivery}, dcvaas.Token{Role: dcvaas.TokenRead}, dcvaas.EINVALID, "role"},
		{"other org", dcvaas.Token{Role: dcvaas.TokenAdmin, OrgID: "a"}, dcvaas.Token{Role: dcvaas.TokenRead, OrgID: "b"}, dcvaas.EFORBIDDEN, ""},
		{"expiring to forever", dcvaas.Token{Role: dcvaas.TokenAdmin, ExpiresAt: &exp}, dcvaas.Token{Role: dcvaas.TokenRead}, dcvaas.EINVALID, "expiresAt"},
		{"expiring to later", dcvaas.Token{Role: dcvaas.TokenAdmin, ExpiresAt: &exp}, dcvaas.Token{Role: dcvaas.TokenRead, ExpiresAt: &later}, dcvaas.EINVALID, "expiresAt"},
		{"expiring to same", dcvaas.Token{Role: dcvaas.TokenAdmin, ExpiresAt: &exp}, dcvaas.Token{Role: dcvaas.TokenRead, ExpiresAt: &exp}, "", ""},
		{"expiring to earlier", dcvaas.Token{Role: dcvaas.TokenAdmin, ExpiresAt: &exp}, dcvaas.Token{Role: dcvaas.TokenRead, ExpiresAt: &earlier}, "", ""},
		{"forever to expiring", dcvaas.Token{Role: dcvaas.TokenAdmin}, dcvaas.Token{Role: dcvaas.TokenRead, ExpiresAt: &earlier}, "", ""},
		{"scoped to unscoped", dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: scoped}, dcvaas.Token{Role: dcvaas.TokenDelivery}, dcvaas.EINVALID, "scope"},
		{"scoped inside", dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: scoped},
			dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: &dcvaas.TokenScope{DomainIDs: []string{"d1"}, Names: []string{"x.shop.example.com", "*.y.shop.example.com", "a.example.com"}}}, "", ""},
		{"scoped outside id", dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: scoped},
			dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: &dcvaas.TokenScope{DomainIDs: []string{"d2"}}}, dcvaas.EINVALID, "scope"},
		{"scoped outside name", dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: scoped},
			dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: &dcvaas.TokenScope{Names: []string{"shop.example.com"}}}, dcvaas.EINVALID, "scope"},
		{"scoped wider pattern", dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: scoped},
			dcvaas.Token{Role: dcvaas.TokenDelivery, Scope: &dcvaas.TokenScope{Names: []string{"*.example.com"}}}, dcvaas.EINVALID, "scope"},
	} {
		err := c.parent.Contains(&c.child)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if dcvaas.ErrorCode(err) != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
			continue
		}
		if c.field != "" {
			if e, ok := err.(*dcvaas.Error); !ok || e.Fields[c.field] == "" {
				t.Errorf("%s: %v does not name %s", c.name, err, c.field)
			}
		}
	}
}
