package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/dcvaas/dcvaas"
)

// newKey makes a fresh private key of a domain's key type; "" is the
// default, ECDSA P-256: small, fast, and accepted by every CA and client.
func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", dcvaas.KeyEC256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case dcvaas.KeyEC384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case dcvaas.KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case dcvaas.KeyRSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, dcvaas.Errorf(dcvaas.EINVALID, "unknown key type %q (want ec256, ec384, rsa2048 or rsa4096)", keyType)
}

// encodeKey renders a key as PKCS #8 PEM ("PRIVATE KEY"), which every TLS
// server and library reads whatever the algorithm.
func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func decodeKey(p []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, errors.New("no PEM block in stored key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("stored key of type %T cannot sign", k)
	}
	return s, nil
}

// sameKey reports whether a certificate carries the public half of k.
func sameKey(pub crypto.PublicKey, k crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := k.Public().(equaler)
	return ok && e.Equal(pub)
}

// Associated data for sealed values (crypt.Keyring): each binds a sealed
// value to the row that holds it, so it cannot be copied into another.

// CertificateKeyAD is the associated data of a certificate's sealed private
// key (dcvaas.Certificate.PrivateKeyEnc): the certificate's id. Whoever
// opens the key (the API's key endpoint) passes the same.
func CertificateKeyAD(certID string) []byte { return []byte("certificate:" + certID) }

func accountKeyAD(caName, directory string) []byte {
	return []byte("acme-account:" + caName + ":" + directory)
}

func orderKeyAD(domainID, orderURL string) []byte {
	return []byte("acme-order:" + domainID + ":" + orderURL)
}
