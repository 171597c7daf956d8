package httpapi

import (
	"context"

	"github.com/dcvaas/dcvaas"

	"github.com/dcvaas/dcvaas/acme"
)

// pemFile is the media type of the bare private key, as servers and
// browsers know PEM files.
const pemFile = "application/x-pem-file"

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
type certificateKeyInput struct {
	ID     string `path:"id" doc:"The domain's id."`
	Accept string `header:"Accept" hidden:"true"`
}

func (s *server) getCertificateKey(ctx context.Context, in *certificateKeyInput) (*certificateKeyOutput, error) {
	actor := actorFrom(ctx)
	if err := s.checkScope(ctx, actor, in.ID); err != nil {
		return nil, err
	}
	c, key, err := s.readKey(ctx, actor, in.ID)
	if dcvaas.ErrorCode(err) == dcvaas.EFORBIDDEN {
		s.keyReadDenied(ctx, actor.OrgID)
	}
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

// readKey reads the private key of the domain's current certificate with
// acme.ReadKey's rules (admin and delivery tokens; audited by the store
// before it is returned), shared with the dashboard.
func (s *server) readKey(ctx context.Context, actor dcvaas.Actor, domainID string) (*dcvaas.Certificate, []byte, error) {
	var keys acme.KeyOpener
	if s.keyring != nil {
		keys = s.keyring
	}
	return acme.ReadKey(ctx, s.store, keys, actor, domainID)
}
