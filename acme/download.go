package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/dcvaas/dcvaas"
	"github.com/google/uuid"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// download fetches the chain of a valid order (RFC 8555 §7.4.2), checks it
// is ours, and stores it: the domain becomes active in the same
// transaction. Dates, serial and names come from the certificate itself,
// never from assumptions about the CA.
func (s *session) download(ctx context.Context, d *dcvaas.Domain, order acmeapi.Order, key crypto.Signer) (*dcvaas.Certificate, error) {
	chains, err := s.client.GetCertificateChain(ctx, s.acct, order.Certificate)
	if err != nil {
		return nil, err
	}
	if len(chains) == 0 {
		return nil, fmt.Errorf("%s returned no certificate for order %s", s.ca.Name, order.Location)
	}
	// The first chain is the CA's default; alternates lead to other roots.
	certs, chainPEM, err := parseChain(chains[0].ChainPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate from %s: %w", s.ca.Name, err)
	}
	leaf := certs[0]
	if s.csr != nil {
		// The customer's key: the certificate must carry the public key
		// of the CSR the order was finalized with.
		if s.orderCSR == "" || !certMatchesCSR(chainPEM, &dcvaas.DomainCSR{PublicKeySHA256: csrKeyHash(s.orderCSR)}) {
			return nil, fmt.Errorf("certificate from %s does not carry the public key of the CSR of order %s", s.ca.Name, order.Location)
		}
	} else if !sameKey(leaf.PublicKey, key) {
		return nil, fmt.Errorf("certificate from %s does not carry the key of order %s", s.ca.Name, order.Location)
	}
	for _, id := range order.Identifiers {
		if !slices.Contains(leaf.DNSNames, id.Value) {
			return nil, fmt.Errorf("certificate from %s lacks %s", s.ca.Name, id.Value)
		}
	}
	c := &dcvaas.Certificate{
		ID:           uuid.Must(uuid.NewV7()).String(),
		DomainID:     d.ID,
		SerialNumber: leaf.SerialNumber.Text(16),
		Issuer:       leaf.Issuer.CommonName,
		CAName:       s.ca.Name,
		OrderURL:     order.Location,
		DNSNames:     leaf.DNSNames,
		NotBefore:    leaf.NotBefore.UTC(),
		NotAfter:     leaf.NotAfter.UTC(),
		ChainPEM:     chainPEM,
	}
	if c.Issuer == "" {
		c.Issuer = leaf.Issuer.String()
	}
	details := map[string]any{"orderUrl": order.Location, "replaces": order.Replaces, "keyType": keyTypeOr(d.KeyType)}
	if s.csr != nil {
		// No private key is stored: PrivateKeyEnc stays empty.
		details["keyMode"] = dcvaas.KeyModeCSR
		details["publicKeySha256"] = csrKeyHash(s.orderCSR)
	} else {
		pemKey, err := encodeKey(key)
		if err != nil {
			return nil, err
		}
		if c.PrivateKeyEnc, err = s.is.cfg.Keyring.Encrypt(pemKey, CertificateKeyAD(c.ID)); err != nil {
			return nil, err
		}
	}
	// The order is valid: its challenge values have done their work.
	s.cleanup(ctx, d, order)
	if err := s.is.cfg.Store.SaveCertificate(ctx, dcvaas.SystemActor(d.OrgID), c, details); err != nil {
		return nil, err
	}
	s.is.log.InfoContext(ctx, "certificate issued", "domain", d.Name, "ca", s.ca.Name, "serial", c.SerialNumber, "notAfter", c.NotAfter)
	return c, nil
}

func keyTypeOr(kt string) string {
	if kt == "" {
		return dcvaas.KeyEC256
	}
	return kt
}

// parseChain parses a PEM chain, leaf first, and re-encodes it cleanly
// (no stray text between blocks).
func parseChain(p []byte) ([]*x509.Certificate, string, error) {
	var certs []*x509.Certificate
	var out bytes.Buffer
	for {
		var block *pem.Block
		block, p = pem.Decode(p)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, "", err
		}
		certs = append(certs, c)
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})
	}
	if len(certs) == 0 {
		return nil, "", errors.New("no certificate in the chain")
	}
	return certs, out.String(), nil
}

// leafOf returns the first certificate of a stored chain.
func leafOf(chainPEM string) (*x509.Certificate, error) {
	certs, _, err := parseChain([]byte(chainPEM))
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
