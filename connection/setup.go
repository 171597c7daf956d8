package connection

import (
	"context"
	"fmt"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
	"github.com/dcvaas/dcvaas/provider"
)

// SetupTTL is the delegation CNAME's TTL: short enough that a mistake is
// corrected within minutes, long enough not to load the customer's DNS.
const SetupTTL = 300

// Setup outcomes.
const (
	OutcomeCreated   = "created"   // there was nothing at the name
	OutcomeUnchanged = "unchanged" // the right CNAME was already there
	OutcomeReplaced  = "replaced"  // conflicting records gave way (replace: true)
	// OutcomeQueued: the provider was unavailable; a dns_setup job retries
	// the setup in the background.
	OutcomeQueued = "queued"
)

// SetupInput asks for one-click setup of a domain through a connection.
type SetupInput struct {
	ConnectionID string
	// Replace allows deleting records in the way (another CNAME, a TXT).
	Replace bool
}

// SetupResult says what one-click setup did.
type SetupResult struct {
	Domain     *dcvaas.Domain
	Connection *dcvaas.Connection
	// Zone is the zone that holds the domain; empty when the setup was
	// queued before the provider listed its zones.
	Zone string
	// Record is the delegation CNAME as it now stands (as it will stand,
	// when queued).
	Record   provider.Record
	Outcome  string
	Replaced []provider.Record
	// Job is the dns_check queued to verify the record; nil when the domain
	// is past verification (issuing or active) and needs none. With
	// OutcomeQueued, it is the dns_setup job that retries the setup.
	Job *dcvaas.Job
	// Reason says why the setup was queued: the provider's outage.
	Reason string
}

// SetupDNS creates _acme-challenge.<domain> CNAME <cnameTarget> in the zone
// of the connection that holds the domain (the longest matching suffix),
// then queues a dns_check; audit "domain.dns_setup". Running it again is
// harmless: the right record already there is success.
//
// When the provider is unavailable (5xx, timeout) the setup is not given
// up but queued: a dns_setup job (one per domain at a time: one already
// queued is returned) retries it with the job engine's backoff, and the
// result says OutcomeQueued with that job. Everything else fails at once:
// ENOTFOUND for the domain or the connection; EINVALID when no zone of the
// connection holds the domain (the message lists the zones seen) or the
// provider refuses; ECONFLICT naming the records in the way unless
// in.Replace.
func (s *Service) SetupDNS(ctx context.Context, actor dcvaas.Actor, domainID string, in SetupInput) (*SetupResult, error) {
	if in.ConnectionID == "" {
		return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: "connectionId is required", Fields: map[string]string{"connectionId": "required"}}
	}
	d, err := s.cfg.Store.FindDomain(ctx, actor.OrgID, domainID)
	if err != nil {
		return nil, err
	}
	conn, err := s.cfg.Store.FindConnection(ctx, actor.OrgID, in.ConnectionID)
	if err != nil {
		return nil, err
	}
	res, err := s.setup(ctx, actor, d, conn, in)
	switch {
	case err == nil:
		return res, nil
	case dcvaas.ErrorCode(err) != dcvaas.EUNAVAILABLE:
		return nil, err
	}
	job, qerr := s.cfg.Store.QueueDNSSetup(ctx, actor, d.ID, dcvaas.DNSSetupArgs{ConnectionID: conn.ID, Replace: in.Replace})
	if qerr != nil {
		return nil, qerr
	}
	// Records deleted before the outage struck stay deleted; the job's
	// attempt no longer finds them in the way.
	res.Outcome, res.Replaced, res.Job, res.Reason = OutcomeQueued, nil, job, dcvaas.ErrorMessage(err)
	s.log.WarnContext(ctx, "dns setup queued: provider unavailable", "domain", d.ID, "connection", conn.ID, "provider", conn.Provider,
		"job", job.ID, "err", err)
	return res, nil
}

// setup is one attempt at one-click setup, for the API and for dns_setup
// jobs alike: the record at the provider, then the audit entry and the
// dns_check. The result is filled in as far as the attempt got, also when
// it fails.
func (s *Service) setup(ctx context.Context, actor dcvaas.Actor, d *dcvaas.Domain, conn *dcvaas.Connection, in SetupInput) (*SetupResult, error) {
	name := domainname.ChallengeName(d.Name)
	target := provider.Canonical(d.CNAMETarget)
	res := &SetupResult{Domain: d, Connection: redact(conn),
		Record: provider.Record{Name: name, Type: "CNAME", Values: []string{target}, TTL: SetupTTL}}

	err := s.withDNS(ctx, conn, func(dns provider.DNS) error {
		zones, err := dns.Zones(ctx)
		if err != nil {
			return err
		}
		zone, ok := MatchZone(zones, d.Name)
		if !ok {
			return noZone(conn.Provider, d.Name, zones)
		}
		res.Zone = zone.Name
		recs, err := dns.Records(ctx, zone, name)
		if err != nil {
			return err
		}
		same := false
		var conflicts []provider.Record
		for _, r := range recs {
			if r.Type == "CNAME" && len(r.Values) == 1 && provider.Canonical(r.Values[0]) == target {
				same = true
				continue
			}
			conflicts = append(conflicts, r)
		}
		switch {
		case same && len(conflicts) == 0:
			res.Outcome = OutcomeUnchanged
			return nil
		case len(conflicts) > 0 && !in.Replace:
			return conflict(name, conflicts)
		}
		// A CNAME excludes every other record at its name (RFC 1034
		// §3.6.2), so the others go first; a CNAME in the way is
		// overwritten by SetCNAME in one step.
		for _, r := range conflicts {
			if r.Type == "CNAME" {
				continue
			}
			if err := dns.Delete(ctx, zone, r); err != nil {
				return err
			}
		}
		res.Replaced = conflicts
		res.Outcome = OutcomeCreated
		if len(conflicts) > 0 {
			res.Outcome = OutcomeReplaced
		}
		return dns.SetCNAME(ctx, zone, name, target, SetupTTL)
	})
	if err != nil {
		return res, err
	}

	details := map[string]any{"connectionId": conn.ID, "provider": conn.Provider, "zone": res.Zone,
		"record": name, "cnameTarget": target, "outcome": res.Outcome}
	if len(res.Replaced) > 0 {
		var replaced []string
		for _, r := range res.Replaced {
			replaced = append(replaced, r.String())
		}
		details["replaced"] = replaced
	}
	// A domain already issuing or active was verified: a new check would
	// only start its issuance again.
	queue := d.Status == dcvaas.DomainPendingCNAME || d.Status == dcvaas.DomainFailed
	if res.Job, err = s.cfg.Store.RecordDNSSetup(ctx, actor, d.ID, details, queue); err != nil {
		return res, err
	}
	s.log.InfoContext(ctx, "dns setup", "domain", d.ID, "connection", conn.ID, "provider", conn.Provider, "zone", res.Zone, "outcome", res.Outcome)
	return res, nil
}

// MatchZone returns the zone that holds name: the longest zone name that
// is name itself or a suffix of it at a label boundary, so that
// a.b.example.co.uk lands in b.example.co.uk when both it and
// example.co.uk are zones.
func MatchZone(zones []provider.Zone, name string) (provider.Zone, bool) {
	name = provider.Canonical(name)
	var best provider.Zone
	found := false
	for _, z := range zones {
		zn := provider.Canonical(z.Name)
		if (name == zn || strings.HasSuffix(name, "."+zn)) && (!found || len(zn) > len(best.Name)) {
			best, found = provider.Zone{ID: z.ID, Name: zn}, true
		}
	}
	return best, found
}

// maxListed bounds the zones named in an error message.
const maxListed = 20

func noZone(prov, domain string, zones []provider.Zone) error {
	names := make([]string, 0, len(zones))
	for _, z := range zones {
		names = append(names, z.Name)
	}
	seen := "none"
	if len(names) > maxListed {
		seen = strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListed)
	} else if len(names) > 0 {
		seen = strings.Join(names, ", ")
	}
	return &dcvaas.Error{Code: dcvaas.EINVALID,
		Message: fmt.Sprintf("no zone of this %s connection holds %s; zones seen: %s", prov, domain, seen),
		Fields:  map[string]string{"connectionId": "has no zone for " + domain}}
}

func conflict(name string, recs []provider.Record) error {
	var what []string
	for _, r := range recs {
		what = append(what, fmt.Sprintf("%s %s", r.Type, strings.Join(r.Values, ", ")))
	}
	return dcvaas.Errorf(dcvaas.ECONFLICT, "%s already has %s; set \"replace\": true to replace it with the delegation CNAME",
		name, strings.Join(what, " and "))
}
