package httpapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
)

// deliveryOperations are all a delivery token may do: see which domains
// there are, and read their certificates and keys.
var deliveryOperations = map[string]bool{
	"listDomains":       true,
	"getDomain":         true,
	"getCertificate":    true,
	"getCertificateKey": true,
	// A POST that changes nothing (pkcs12.go).
	"getCertificatePKCS12": true,
}

// tokenScope checks a createToken scope: only delivery tokens have one,
// ids must be the organization's live domains, names are normalized.
// Problems go into fields.
func (s *server) tokenScope(ctx context.Context, fields map[string]string, role string, in *tokenScope) *dcvaas.TokenScope {
	if in == nil {
		return nil
	}
	if dcvaas.TokenRole(role) != dcvaas.TokenDelivery {
		fields["body.scope"] = "only delivery tokens have a scope"
		return nil
	}
	if len(in.DomainIDs)+len(in.Names) == 0 {
		fields["body.scope"] = "name at least one domain id or name; leave scope out for all domains"
		return nil
	}
	out := &dcvaas.TokenScope{}
	orgID := actorFrom(ctx).OrgID
	for i, id := range in.DomainIDs {
		if _, err := s.store.FindDomain(ctx, orgID, id); err != nil {
			fields[fmt.Sprintf("body.scope.domainIds[%d]", i)] = "no such domain in this organization"
			continue
		}
		out.DomainIDs = append(out.DomainIDs, id)
	}
	for i, n := range in.Names {
		wild := strings.HasPrefix(n, "*.")
		name, err := domainname.Normalize(strings.TrimPrefix(n, "*."), s.verifyZone)
		if err != nil {
			fields[fmt.Sprintf("body.scope.names[%d]", i)] = err.Error()
			continue
		}
		if wild {
			name = "*." + name
		}
		out.Names = append(out.Names, name)
	}
	return out
}

// inScope answers ENOTFOUND for a domain outside the actor's scope, as if
// it did not exist: a scoped token must not learn what else there is.
func inScope(actor dcvaas.Actor, d *dcvaas.Domain) error {
	if !actor.Scope.Allows(d.ID, d.Name) {
		return dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	}
	return nil
}

// checkScope is inScope for a domain known by id only; it costs a read,
// and only scoped tokens pay it.
func (s *server) checkScope(ctx context.Context, actor dcvaas.Actor, domainID string) error {
	if actor.Scope == nil {
		return nil
	}
	d, err := s.store.FindDomain(ctx, actor.OrgID, domainID)
	if err != nil {
		return err
	}
	return inScope(actor, d)
}
