package acme

import (
	"context"
	"fmt"

	"github.com/dcvaas/dcvaas"
)

// KeyStore reads a certificate's private key and records the reading in
// one transaction; *sqlstore.DB implements it.
type KeyStore interface {
	ReadCertificateKey(ctx context.Context, actor dcvaas.Actor, domainID string, open func(*dcvaas.Certificate) ([]byte, error)) (*dcvaas.Certificate, []byte, error)
}

// KeyOpener opens sealed keys; *crypt.Keyring is one.
type KeyOpener interface {
	Decrypt(envelope string, associatedData []byte) ([]byte, error)
}

// ReadKey hands out the private key of the domain's current certificate,
// for the API's key endpoint and the dashboard's key download alike. A key
// is the one secret whose leak matters most, so only admins get it, and
// each reading is audited ("certificate.key_read") before the key leaves:
// a reading that cannot be recorded does not happen. EFORBIDDEN for
// read-only actors, ENOTFOUND, ENOTIMPLEMENTED without a store or keys.
func ReadKey(ctx context.Context, store any, keys KeyOpener, actor dcvaas.Actor, domainID string) (*dcvaas.Certificate, []byte, error) {
	// Admins, and delivery tokens, which exist to carry keys to servers.
	if !actor.CanChange() && actor.TokenRole != dcvaas.TokenDelivery {
		return nil, nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "private keys are only given to admin and delivery tokens")
	}
	ks, ok := store.(KeyStore)
	if !ok || keys == nil {
		return nil, nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "private keys cannot be read on this server")
	}
	return ks.ReadCertificateKey(ctx, actor, domainID, func(c *dcvaas.Certificate) ([]byte, error) {
		k, err := keys.Decrypt(c.PrivateKeyEnc, CertificateKeyAD(c.ID))
		if err != nil {
			// Not the client's business which key or why: a 500.
			return nil, fmt.Errorf("open private key of certificate %s: %w", c.ID, err)
		}
		return k, nil
	})
}
