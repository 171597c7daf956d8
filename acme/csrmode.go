package acme

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/csr"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// Customer-held keys (key mode csr): the order is finalized with the
// customer's CSR as submitted, no key is generated, sealed or stored, and
// the certificate must carry the CSR's public key.

// CSRStore keeps the CSRs of csr-mode domains; *sqlstore.DB implements it.
type CSRStore interface {
	DomainCSR(ctx context.Context, domainID string) (*dcvaas.DomainCSR, error)
	SetPendingOrderCSR(ctx context.Context, domainID, orderURL, csrPEM string) error
}

// csrWait is how long a start_issuance that finds no CSR waits before it
// looks again (no attempt is used). Normally it never runs without one:
// the domain waits in issuing, and the CSR's arrival queues the job.
const csrWait = 5 * time.Minute

// domainCSR returns the CSR a csr-mode domain orders with now; a wait
// (cabudget.Wait, so the job engine defers without failing) when the
// customer has not submitted one yet.
func (is *Issuer) domainCSR(ctx context.Context, d *dcvaas.Domain) (*dcvaas.DomainCSR, error) {
	c, err := is.cfg.Store.DomainCSR(ctx, d.ID)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return nil, &cabudget.Wait{For: "the customer's CSR (PUT /api/domains/" + d.ID + "/csr)", Until: is.now().Add(csrWait)}
	}
	return c, err
}

// csrDER decodes a stored CSR PEM (checked when it was submitted).
func csrDER(p string) (*x509.CertificateRequest, []byte, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, nil, errors.New("stored CSR holds no PEM block")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("stored CSR: %w", err)
	}
	return req, block.Bytes, nil
}

// certMatchesCSR reports whether a certificate chain's leaf carries the
// public key of the CSR (by SubjectPublicKeyInfo).
func certMatchesCSR(chainPEM string, c *dcvaas.DomainCSR) bool {
	leaf, err := leafOf(chainPEM)
	return err == nil && csr.PublicKeySHA256(leaf.RawSubjectPublicKeyInfo) == c.PublicKeySHA256
}

// csrKeyHash is the public-key fingerprint of a stored CSR PEM, "" when
// it cannot be read.
func csrKeyHash(p string) string {
	req, _, err := csrDER(p)
	if err != nil {
		return ""
	}
	return csr.PublicKeySHA256(req.RawSubjectPublicKeyInfo)
}

// customerCSR returns the DER CSR to finalize the order with: the
// customer's newest (a key rotated since the order began is used at once;
// every CSR of a domain names the same identifiers), recorded on the
// pending order first so that a resumed order checks its certificate
// against the CSR it was finalized with.
func (s *session) customerCSR(ctx context.Context, d *dcvaas.Domain, order acmeapi.Order) ([]byte, error) {
	c, err := s.is.domainCSR(ctx, d)
	if err != nil {
		return nil, err
	}
	req, der, err := csrDER(c.PEM)
	if err != nil {
		return nil, err
	}
	// RFC 8555 §7.4: the CSR names exactly the order's identifiers. It was
	// checked against the domain when submitted; a mismatch here means the
	// domain changed since, and the CA would refuse it anyway.
	want := map[string]bool{}
	for _, id := range order.Identifiers {
		want[id.Value] = true
	}
	for _, n := range append(append([]string{}, req.DNSNames...), req.Subject.CommonName) {
		if n != "" && !want[strings.TrimSuffix(strings.ToLower(n), ".")] {
			return nil, dcvaas.Errorf(dcvaas.EINVALID, "the domain's CSR names %q, which the order does not; submit a new CSR", n)
		}
	}
	if s.orderCSR != c.PEM {
		if err := s.is.cfg.Store.SetPendingOrderCSR(ctx, d.ID, order.Location, c.PEM); err != nil {
			return nil, err
		}
	}
	s.csr, s.orderCSR = c, c.PEM
	return der, nil
}
