package httpapi

import (
	"context"

	"github.com/danielgtaylor/huma/v2/negotiation"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
)

// pemChain is the media type of a PEM certificate chain (RFC 8555 §9.1).
const pemChain = "application/pem-certificate-chain"

type createDomainRequest struct {
	DomainName      string `json:"domainName" minLength:"1" maxLength:"1024" example:"shop.example.com" doc:"The bare domain; Unicode names are converted to punycode. The certificate covers it and, with includeWildcard, *.domainName."`
	IncludeWildcard *bool  `json:"includeWildcard,omitempty" nullable:"false" doc:"Default: the organization's defaultIncludeWildcard, else true."`
	KeyType         string `json:"keyType,omitempty" enum:"ec256,ec384,rsa2048,rsa4096" doc:"Default: the organization's defaultKeyType, else ec256."`
}

type createDomainInput struct {
	Body createDomainRequest
}

type domainOutput struct {
	Location string `header:"Location"`
	Body     domain
}

func (s *server) createDomain(ctx context.Context, in *createDomainInput) (*domainOutput, error) {
	actor := actorFrom(ctx)
	name, err := domainname.Normalize(in.Body.DomainName, s.verifyZone)
	if err != nil {
		return nil, invalid(map[string]string{"body.domainName": err.Error()})
	}
	settings := orgSettingsFrom(ctx)
	d := &dcvaas.Domain{
		Name:            name,
		CNAMETarget:     domainname.NewLabel() + "." + s.verifyZone,
		IncludeWildcard: true,
		KeyType:         dcvaas.KeyEC256,
	}
	switch {
	case in.Body.IncludeWildcard != nil:
		d.IncludeWildcard = *in.Body.IncludeWildcard
	case settings.DefaultIncludeWildcard != nil:
		d.IncludeWildcard = *settings.DefaultIncludeWildcard
	}
	switch {
	case in.Body.KeyType != "":
		d.KeyType = in.Body.KeyType
	case settings.DefaultKeyType != "":
		d.KeyType = settings.DefaultKeyType
	}
	job, err := s.store.CreateDomain(ctx, actor, d)
	if err != nil {
		return nil, err
	}
	return &domainOutput{Location: "/api/domains/" + d.ID, Body: toDomain(d, job)}, nil
}

type listDomainsInput struct {
	Status string `query:"status" enum:"pending_cname,issuing,active,failed" doc:"Only domains in this status."`
	Limit  int    `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int    `query:"offset" default:"0" minimum:"0"`
}

type domainListOutput struct {
	Body domainList
}

func (s *server) listDomains(ctx context.Context, in *listDomainsInput) (*domainListOutput, error) {
	key := listKey{orgID: actorFrom(ctx).OrgID, status: in.Status, limit: in.Limit, offset: in.Offset}
	gen, cacheable := s.changes()
	if cacheable {
		if b, ok := s.lists.Get(gen, key); ok {
			return &domainListOutput{Body: domainList{encoded: b}}, nil
		}
	}
	ds, total, err := s.store.ListDomains(ctx, key.orgID, dcvaas.DomainFilter{
		Status: dcvaas.DomainStatus(in.Status),
		Page:   page(in.Limit, in.Offset),
	})
	if err != nil {
		return nil, err
	}
	items := convert(ds, func(d *dcvaas.Domain) domain { return toDomain(d, nil) })
	body := domainList{Items: items, Total: total, Limit: in.Limit, Offset: in.Offset}
	if cacheable {
		if body.encoded, err = encode(body); err != nil {
			return nil, err
		}
		s.lists.Put(gen, key, body.encoded)
	}
	return &domainListOutput{Body: body}, nil
}

type domainIDInput struct {
	ID string `path:"id" doc:"The domain's id."`
}

type domainGetOutput struct {
	Body domain
}

func (s *server) getDomain(ctx context.Context, in *domainIDInput) (*domainGetOutput, error) {
	orgID := actorFrom(ctx).OrgID
	d, err := s.store.FindDomain(ctx, orgID, in.ID)
	if err != nil {
		return nil, err
	}
	latest, err := s.store.LatestDomainJob(ctx, orgID, d.ID)
	if err != nil {
		return nil, err
	}
	out := toDomain(d, latest)
	if as, ok := s.store.(domainAccountStore); ok {
		// The domain was found in the caller's organization above.
		if out.ACMEAccount, err = as.DomainACMEAccounts(ctx, d.ID); err != nil {
			return nil, err
		}
		if len(out.ACMEAccount) == 0 {
			out.ACMEAccount = nil
		}
	}
	return &domainGetOutput{Body: out}, nil
}

// domainAccountStore tells which ACME account per CA a domain uses
// (*sqlstore.DB).
type domainAccountStore interface {
	DomainACMEAccounts(ctx context.Context, domainID string) (map[string]int, error)
}

type queuedJobOutput struct {
	Location string `header:"Location"`
	Body     queuedJob
}

func queued(j *dcvaas.Job) *queuedJobOutput {
	return &queuedJobOutput{Location: "/api/jobs/" + j.ID, Body: queuedJob{JobID: j.ID}}
}

// enqueue returns the handler of an action that queues a job of type jt,
// allowed only while the domain is in one of statuses.
func (s *server) enqueue(jt dcvaas.JobType, statuses ...dcvaas.DomainStatus) func(context.Context, *domainIDInput) (*queuedJobOutput, error) {
	return func(ctx context.Context, in *domainIDInput) (*queuedJobOutput, error) {
		j, err := s.store.EnqueueDomainJob(ctx, actorFrom(ctx), in.ID, jt, statuses...)
		if err != nil {
			return nil, err
		}
		return queued(j), nil
	}
}

func (s *server) deleteDomain(ctx context.Context, in *domainIDInput) (*struct{}, error) {
	if err := s.store.DeleteDomain(ctx, actorFrom(ctx), in.ID, s.hardDelete); err != nil {
		return nil, err
	}
	return nil, nil
}

type certificateInput struct {
	ID string `path:"id" doc:"The domain's id."`
	// Accept is documented by the response's two media types (OpenAPI
	// ignores a parameter named Accept).
	Accept string `header:"Accept" hidden:"true"`
}

type certificateOutput struct {
	ContentType string `header:"Content-Type" hidden:"true"`
	// Body is a certificate, or the PEM chain as []byte (written as is).
	Body any
}

func (s *server) getCertificate(ctx context.Context, in *certificateInput) (*certificateOutput, error) {
	c, err := s.store.CurrentCertificate(ctx, actorFrom(ctx).OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	// JSON wins ties and is the answer to */* and to no Accept at all.
	if negotiation.SelectQValue(in.Accept, []string{"application/json", pemChain}) == pemChain {
		return &certificateOutput{ContentType: pemChain, Body: []byte(c.ChainPEM)}, nil
	}
	return &certificateOutput{Body: certificate{
		SerialNumber:   c.SerialNumber,
		NotBefore:      c.NotBefore.UTC(),
		NotAfter:       c.NotAfter.UTC(),
		Issuer:         c.Issuer,
		DNSNames:       append([]string{}, c.DNSNames...),
		CertificatePEM: c.ChainPEM,
		CAName:         c.CAName,
	}}, nil
}
