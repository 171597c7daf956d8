package httpapi

import (
	"context"
	"fmt"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
)

// pemFile is the media type of the bare private key, as servers and
// browsers know PEM files.
const pemFile = "application/x-pem-file"

// certificateKeyStore reads a certificate's private key and records the
// reading in one transaction; *sqlstore.DB implements it.
type certificateKeyStore interface {
	ReadCertificateKey(ctx context.Context, actor dcvaas.Actor, domainID string, open func(*dcvaas.Certificate) ([]byte, error)) (*dcvaas.Certificate, []byte, error)
}

type certificateKey struct {
	CertificateID string `json:"certificateId" doc:"The certificate the key belongs to."`
	SerialNumber  string `json:"serialNumber" doc:"That certificate's serial number, hexadecimal."`
	PrivateKeyPEM string `json:"privateKeyPem" doc:"The private key, PKCS #8 PEM."`
}

type certificateKeyOutput struct {
	ContentType  string `header:"Content-Type" hidden:"true"`
	CacheControl string `header:"Cache-Control" hidden:"true"`
	// Body is a certificateKey, or the PEM key as []byte (written as is).
	Body any
}

// getCertificateKey hands out the private key of the domain's current
// certificate. A key is the one secret whose leak matters most, so only
// admin tokens get it, and each reading is audited ("certificate.key_read")
// before the key leaves: a reading that cannot be recorded does not happen.
func (s *server) getCertificateKey(ctx context.Context, in *certificateInput) (*certificateKeyOutput, error) {
	actor := actorFrom(ctx)
	if actor.TokenRole != dcvaas.TokenAdmin {
		return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "private keys are only given to admin tokens")
	}
	ks, ok := s.store.(certificateKeyStore)
	if !ok || s.keyring == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "private keys cannot be read on this server")
	}
	c, key, err := ks.ReadCertificateKey(ctx, actor, in.ID, func(c *dcvaas.Certificate) ([]byte, error) {
		k, err := s.keyring.Decrypt(c.PrivateKeyEnc, acme.CertificateKeyAD(c.ID))
		if err != nil {
			// Not the client's business which key or why: a 500.
			return nil, fmt.Errorf("open private key of certificate %s: %w", c.ID, err)
		}
		return k, nil
	})
	if err != nil {
		return nil, err
	}
	out := &certificateKeyOutput{CacheControl: "no-store"}
	// JSON wins ties and is the answer to */* and to no Accept at all.
	typ, err := negotiate(in.Accept, "application/json", pemFile) // domains.go
	if err != nil {
		return nil, err
	}
	if typ == pemFile {
		out.ContentType, out.Body = pemFile, key
		return out, nil
	}
	out.Body = certificateKey{CertificateID: c.ID, SerialNumber: c.SerialNumber, PrivateKeyPEM: string(key)}
	return out, nil
}
