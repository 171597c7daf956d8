package httpapi

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

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
	KeyMode         string `json:"keyMode,omitempty" enum:"managed,csr" doc:"Who holds the private keys. managed (default): dcvaas generates them and keeps them sealed. csr: the customer does, and submits a CSR with PUT /api/domains/{id}/csr; dcvaas never stores or serves a private key for the domain."`
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
	d, err := domainname.NewDomain(in.Body.DomainName, in.Body.IncludeWildcard, in.Body.KeyType, s.verifyZone, s.allowTLDs, orgSettingsFrom(ctx))
	if err != nil {
		return nil, bodyFields(err)
	}
	d.KeyMode = dcvaas.KeyModeManaged
	if in.Body.KeyMode != "" {
		d.KeyMode = in.Body.KeyMode
	}
	job, err := s.store.CreateDomain(ctx, actor, d)
	if err != nil {
		return nil, err
	}
	return &domainOutput{Location: "/api/domains/" + d.ID, Body: toDomain(d, job, s.now())}, nil
}

// bodyFields names an EINVALID error's fields as huma names the request
// body's ("body.domainName"), as the API's other validation errors do.
func bodyFields(err error) error {
	var e *dcvaas.Error
	if errors.As(err, &e) && e.Code == dcvaas.EINVALID && len(e.Fields) > 0 {
		fields := map[string]string{}
		for k, v := range e.Fields {
			fields["body."+k] = v
		}
		return invalid(fields)
	}
	return err
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
	actor := actorFrom(ctx)
	key := listKey{orgID: actor.OrgID, status: in.Status, limit: in.Limit, offset: in.Offset}
	gen, cacheable := s.changes()
	// A scoped token's page is its own; rare enough not to cache.
	cacheable = cacheable && actor.Scope == nil
	if cacheable {
		if b, ok := s.lists.Get(gen, key); ok {
			return &domainListOutput{Body: domainList{encoded: b}}, nil
		}
	}
	ds, total, err := s.store.ListDomains(ctx, key.orgID, dcvaas.DomainFilter{
		Status: dcvaas.DomainStatus(in.Status),
		Scope:  actor.Scope,
		Page:   page(in.Limit, in.Offset),
	})
	if err != nil {
		return nil, err
	}
	items := convert(ds, func(d *dcvaas.Domain) domain { return toDomain(d, nil, s.now()) })
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
	actor := actorFrom(ctx)
	orgID := actor.OrgID
	d, err := s.store.FindDomain(ctx, orgID, in.ID)
	if err != nil {
		return nil, err
	}
	if err := inScope(actor, d); err != nil {
		return nil, err
	}
	latest, err := s.store.LatestDomainJob(ctx, orgID, d.ID)
	if err != nil {
		return nil, err
	}
	out := toDomain(d, latest, s.now())
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

type certificateJSONInput struct {
	ID          string `path:"id" doc:"The domain's id."`
	Accept      string `header:"Accept" hidden:"true"`
	IfNoneMatch string `header:"If-None-Match" doc:"An ETag of an earlier answer: 304 while the certificate (and form) is the same."`
	IncludeKey  string `query:"includeKey" enum:"true,false" doc:"JSON form only: put the private key in privateKeyPem (audited as certificate.key_read). Default: true for delivery tokens (false for keyMode csr domains, whose key dcvaas never has: asking is 409), false for others; only admin and delivery tokens may ask (403)."`
	Part        string `query:"part" enum:"leaf,chain,fullchain" doc:"PEM download of one part: leaf (the certificate alone), chain (the intermediates alone) or fullchain (leaf then intermediates, the same as Accept: application/pem-certificate-chain). Without it, Accept picks JSON or the full PEM chain."`
}

type certificateOutput struct {
	Status       int
	ContentType  string `header:"Content-Type" hidden:"true"`
	ETag         string `header:"ETag" doc:"Names the certificate and the form of this answer; send it back in If-None-Match."`
	CacheControl string `header:"Cache-Control" hidden:"true"`
	// Body is a certificate, or the PEM chain as []byte (written as is).
	Body any
}

func (s *server) getCertificate(ctx context.Context, in *certificateJSONInput) (*certificateOutput, error) {
	actor := actorFrom(ctx)
	if err := s.checkScope(ctx, actor, in.ID); err != nil {
		return nil, err
	}
	c, err := s.store.CurrentCertificate(ctx, actor.OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	if in.Part != "" {
		if _, err := negotiate(in.Accept, pemChain); err != nil {
			return nil, err
		}
		body, err := dcvaas.ChainPart(c.ChainPEM, in.Part)
		if err != nil {
			return nil, err
		}
		return &certificateOutput{Status: http.StatusOK, ContentType: pemChain, Body: body, CacheControl: "private, no-cache"}, nil
	}
	// JSON wins ties and is the answer to */* and to no Accept at all.
	typ, err := negotiate(in.Accept, "application/json", pemChain)
	if err != nil {
		return nil, err
	}
	if typ == pemChain {
		out := &certificateOutput{ETag: certificateETag(c.ID, "pem"), CacheControl: "private, no-cache"}
		if etagMatches(in.IfNoneMatch, out.ETag) {
			out.Status = http.StatusNotModified
			return out, nil
		}
		out.Status, out.ContentType, out.Body = http.StatusOK, pemChain, []byte(c.ChainPEM)
		return out, nil
	}
	// A csr-mode domain's certificate has no key here (PrivateKeyEnc
	// empty): delivery tokens get it without one by default, and asking
	// for the key is 409 (readKey).
	withKey := actor.TokenRole == dcvaas.TokenDelivery && c.PrivateKeyEnc != ""
	if in.IncludeKey != "" {
		withKey = in.IncludeKey == "true"
	}
	if withKey && actor.TokenRole != dcvaas.TokenAdmin && actor.TokenRole != dcvaas.TokenDelivery {
		s.keyReadDenied(ctx, actor.OrgID)
		return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "private keys are only given to admin and delivery tokens")
	}
	form := "json"
	if withKey {
		form = "json+key"
	}
	out := &certificateOutput{Status: http.StatusOK, ETag: certificateETag(c.ID, form), CacheControl: "private, no-cache"}
	// Checked before the key is read: an unchanged certificate costs the
	// client nothing and the audit log no entry.
	if etagMatches(in.IfNoneMatch, out.ETag) {
		out.Status = http.StatusNotModified
		return out, nil
	}
	body := certificate{
		SerialNumber:   c.SerialNumber,
		NotBefore:      c.NotBefore.UTC(),
		NotAfter:       c.NotAfter.UTC(),
		Issuer:         c.Issuer,
		DNSNames:       append([]string{}, c.DNSNames...),
		CertificatePEM: c.ChainPEM,
		ChainPEM:       intermediates(c.ChainPEM),
		CAName:         c.CAName,
	}
	if withKey {
		kc, key, err := s.readKey(ctx, actor, in.ID)
		if err != nil {
			return nil, err
		}
		if kc.ID != c.ID {
			// A renewal landed between the two reads: answer the newer
			// certificate whole rather than a certificate with another's key.
			if c, err = s.store.CurrentCertificate(ctx, actor.OrgID, in.ID); err != nil {
				return nil, err
			}
			if c.ID != kc.ID {
				return nil, dcvaas.Errorf(dcvaas.ECONFLICT, "the certificate changed while it was read; try again")
			}
			body.SerialNumber, body.NotBefore, body.NotAfter, body.Issuer = c.SerialNumber, c.NotBefore.UTC(), c.NotAfter.UTC(), c.Issuer
			body.DNSNames, body.CertificatePEM, body.ChainPEM, body.CAName = append([]string{}, c.DNSNames...), c.ChainPEM, intermediates(c.ChainPEM), c.CAName
			out.ETag = certificateETag(c.ID, form)
		}
		body.PrivateKeyPEM = string(key)
		out.CacheControl = "no-store"
	}
	out.Body = body
	return out, nil
}

// certificateETag names one certificate in one form. A certificate never
// changes once issued (a renewal is a new one), so its id and the form
// are all an ETag needs.
func certificateETag(certID, form string) string {
	return `"` + certID + "." + form + `"`
}

// etagMatches implements If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatches(header, etag string) bool {
	header = strings.TrimSpace(header)
	if header == "" {
		return false
	}
	if header == "*" {
		return true
	}
	for _, t := range strings.Split(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == etag {
			return true
		}
	}
	return false
}

// intermediates is a PEM chain without its first (leaf) certificate.
func intermediates(chain string) string {
	rest := []byte(chain)
	var out []byte
	for first := true; ; first = false {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return string(out)
		}
		if !first {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
}

// negotiate picks the media type for Accept among offered (the first wins
// ties and answers a missing Accept or a wildcard); nothing acceptable is
// ENOTACCEPTABLE (406) rather than a representation the client refused.
func negotiate(accept string, offered ...string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return offered[0], nil
	}
	if t := negotiation.SelectQValue(accept, offered); t != "" {
		return t, nil
	}
	for _, r := range strings.Split(accept, ",") {
		name, _, _ := strings.Cut(r, ";")
		name = strings.TrimSpace(name)
		if name == "*/*" || name == "application/*" {
			return offered[0], nil
		}
	}
	return "", dcvaas.Errorf(dcvaas.ENOTACCEPTABLE, "this resource is available as %s; the Accept header allows none of them", strings.Join(offered, " or "))
}
