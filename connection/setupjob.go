package connection

import (
	"context"

	"github.com/dcvaas/dcvaas"
)

// RunDNSSetup is one attempt of a dns_setup job (it implements
// jobs.DNSSetup): the setup SetupDNS tried when the provider was down,
// repeated as the system on the job's organization. It queues nothing
// itself: an outage is returned as EUNAVAILABLE for the engine to retry
// with its backoff, and every refusal as the error SetupDNS would have
// answered, which ends the job. A rerun after a crash finds the record in
// place ("unchanged") and records the setup again, queuing a dns_check only
// while the domain still awaits verification.
//
// The result, kept as the job's, says what was done and which dns_check
// verifies it.
func (s *Service) RunDNSSetup(ctx context.Context, job *dcvaas.Job, args dcvaas.DNSSetupArgs) (any, error) {
	d, err := s.cfg.Store.FindDomain(ctx, job.OrgID, job.DomainID)
	if err != nil {
		return nil, err
	}
	conn, err := s.cfg.Store.FindConnection(ctx, job.OrgID, args.ConnectionID)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return nil, &dcvaas.Error{Code: dcvaas.ENOTFOUND, Err: err,
			Message: "the DNS provider connection " + args.ConnectionID + " was deleted; connect the provider again and repeat the setup"}
	} else if err != nil {
		return nil, err
	}
	res, err := s.setup(ctx, dcvaas.SystemActor(job.OrgID), d, conn, SetupInput{ConnectionID: conn.ID, Replace: args.Replace})
	if err != nil {
		return nil, err
	}
	result := map[string]any{"outcome": res.Outcome, "connectionId": conn.ID, "provider": conn.Provider, "zone": res.Zone,
		"record": res.Record.Name, "cnameTarget": res.Record.Values[0]}
	if len(res.Replaced) > 0 {
		var replaced []string
		for _, r := range res.Replaced {
			replaced = append(replaced, r.String())
		}
		result["replaced"] = replaced
	}
	if res.Job != nil {
		result["dnsCheckJobId"] = res.Job.ID
	}
	return result, nil
}
