package httpapi

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/csr"
)

// Customer-held keys: a csr-mode domain's certificates are ordered with
// the CSR submitted here; dcvaas never holds their private key.

// csrStore keeps csr-mode domains' CSRs (*sqlstore.DB).
type csrStore interface {
	SubmitCSR(ctx context.Context, actor dcvaas.Actor, c *dcvaas.DomainCSR) (*dcvaas.Job, error)
	FindDomainCSR(ctx context.Context, orgID, domainID string) (*dcvaas.DomainCSR, error)
}

type submitCSRRequest struct {
	CSR string `json:"csr" minLength:"1" maxLength:"16384" doc:"The certificate signing request, PEM (-----BEGIN CERTIFICATE REQUEST-----). It must name exactly the domain and, when the domain includes its wildcard, *.domain; its key must be one the domain's keyType allows (ec256: ECDSA P-256; ec384: P-384; rsa2048: RSA 2048, 3072 or 4096 bits; rsa4096: RSA 4096 bits)."`
}

type submitCSRInput struct {
	ID   string `path:"id" doc:"The domain's id."`
	Body submitCSRRequest
}

type domainCSR struct {
	DomainID        string    `json:"domainId"`
	CSR             string    `json:"csr" doc:"The CSR, PEM."`
	KeyType         string    `json:"keyType" enum:"ec256,ec384,rsa2048,rsa3072,rsa4096" doc:"The CSR's key."`
	PublicKeySHA256 string    `json:"publicKeySha256" doc:"Hex SHA-256 of the CSR's SubjectPublicKeyInfo: compare it with your key's to know which key the next certificate certifies."`
	SubmittedAt     time.Time `json:"submittedAt"`
	JobID           string    `json:"jobId,omitempty" doc:"The job the submission queued (or found open): start_issuance for an issuing domain, renewal when an active domain's key changed."`
}

type domainCSROutput struct {
	Body domainCSR
}

func toDomainCSR(c *dcvaas.DomainCSR, j *dcvaas.Job) domainCSR {
	out := domainCSR{DomainID: c.DomainID, CSR: c.PEM, KeyType: c.KeyType, PublicKeySHA256: c.PublicKeySHA256, SubmittedAt: c.SubmittedAt.UTC()}
	if j != nil {
		out.JobID = j.ID
	}
	return out
}

func (s *server) submitCSR(ctx context.Context, in *submitCSRInput) (*domainCSROutput, error) {
	actor := actorFrom(ctx)
	cs, ok := s.store.(csrStore)
	if !ok {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "customer-held keys are not supported by this server")
	}
	d, err := s.store.FindDomain(ctx, actor.OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	if err := inScope(actor, d); err != nil {
		return nil, err
	}
	if d.KeyMode != dcvaas.KeyModeCSR {
		return nil, dcvaas.Errorf(dcvaas.ECONFLICT, "domain %s has keyMode %s: dcvaas generates its keys, so it takes no CSR (create the domain with keyMode csr to hold the keys yourself)", d.Name, d.KeyMode)
	}
	req, err := csr.Check([]byte(in.Body.CSR), csr.Names(d.Name, d.IncludeWildcard), d.KeyType)
	if err != nil {
		var ce *csr.Error
		if errors.As(err, &ce) {
			return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: "the CSR was refused: " + strings.Join(ce.Reasons, "; "),
				Fields: map[string]string{"body.csr": strings.Join(ce.Reasons, "; ")}}
		}
		return nil, err
	}
	c := &dcvaas.DomainCSR{DomainID: d.ID, PEM: req.PEM, KeyType: req.KeyType, PublicKeySHA256: req.PublicKeySHA256}
	j, err := cs.SubmitCSR(ctx, actor, c)
	if err != nil {
		return nil, err
	}
	return &domainCSROutput{Body: toDomainCSR(c, j)}, nil
}

func (s *server) getCSR(ctx context.Context, in *domainIDInput) (*domainCSROutput, error) {
	actor := actorFrom(ctx)
	cs, ok := s.store.(csrStore)
	if !ok {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "customer-held keys are not supported by this server")
	}
	if err := s.checkScope(ctx, actor, in.ID); err != nil {
		return nil, err
	}
	c, err := cs.FindDomainCSR(ctx, actor.OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	return &domainCSROutput{Body: toDomainCSR(c, nil)}, nil
}
