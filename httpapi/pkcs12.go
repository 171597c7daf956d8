package httpapi

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/dcvaas/dcvaas"
	"software.sslmate.com/src/go-pkcs12"
)

// pkcs12Type is the media type of a PKCS #12 file (.p12, .pfx), what
// Windows (IIS), Java key stores and many appliances import.
const pkcs12Type = "application/x-pkcs12"

// minPKCS12Password is the shortest password taken: Java's keytool refuses
// key stores with shorter ones.
const minPKCS12Password = 6

type pkcs12Input struct {
	ID     string `path:"id" doc:"The domain's id."`
	Accept string `header:"Accept" hidden:"true"`
	Body   struct {
		// No minLength tag: a validation error would echo the password.
		Password   string `json:"password" maxLength:"1024" doc:"The password that protects the file (at least 6 characters, as Java's keytool wants). Sent in the body, so that it appears in no URL or log."`
		Encryption string `json:"encryption,omitempty" enum:"modern,legacy" default:"modern" doc:"modern: AES-256 and PBKDF2 with SHA-256 (OpenSSL 1.1.1+, Windows Server 2019+, Java 12+). legacy: triple DES and SHA-1, for older Windows and macOS keychains."`
	}
}

type pkcs12Output struct {
	ContentType        string `header:"Content-Type" hidden:"true"`
	ContentDisposition string `header:"Content-Disposition" hidden:"true"`
	CacheControl       string `header:"Cache-Control" hidden:"true"`
	Body               []byte
}

// getCertificatePKCS12 hands out the domain's current certificate, its
// intermediates and its private key as one password-protected PKCS #12
// file. It reads the key by the key endpoint's rules (admin and delivery
// tokens; each reading audited as certificate.key_read before the key
// leaves), and is a POST only so that the password travels in the body.
func (s *server) getCertificatePKCS12(ctx context.Context, in *pkcs12Input) (*pkcs12Output, error) {
	if len(in.Body.Password) < minPKCS12Password {
		return nil, dcvaas.Errorf(dcvaas.EINVALID, "the password must be at least %d characters", minPKCS12Password)
	}
	if _, err := negotiate(in.Accept, pkcs12Type); err != nil { // domains.go
		return nil, err
	}
	actor := actorFrom(ctx)
	if err := s.checkScope(ctx, actor, in.ID); err != nil {
		return nil, err
	}
	c, keyPEM, err := s.readKey(ctx, actor, in.ID)
	if err != nil {
		return nil, err
	}
	file, name, err := encodePKCS12(c.ChainPEM, keyPEM, in.Body.Password, in.Body.Encryption)
	if err != nil {
		// The stored certificate or key did not parse: ours, not the client's.
		return nil, fmt.Errorf("PKCS #12 of certificate %s: %w", c.ID, err)
	}
	return &pkcs12Output{ContentType: pkcs12Type, CacheControl: "no-store",
		ContentDisposition: fmt.Sprintf(`attachment; filename="%s.p12"`, name), Body: file}, nil
}

// encodePKCS12 builds the file: the leaf with its key, the intermediates
// as CA certificates. It also returns the name to save it under.
func encodePKCS12(chainPEM string, keyPEM []byte, password, encryption string) ([]byte, string, error) {
	var certs []*x509.Certificate
	rest := []byte(chainPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
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
	}
	if len(certs) == 0 {
		return nil, "", fmt.Errorf("no certificate in the chain")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, "", fmt.Errorf("the private key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, "", err
	}
	enc := pkcs12.Modern2023
	if encryption == "legacy" {
		enc = pkcs12.LegacyDES
	}
	file, err := enc.Encode(key, certs[0], certs[1:], password)
	return file, fileName(certs[0].DNSNames), err
}

// fileName names the download after the certificate's first name that is
// no wildcard (names are letters, digits, hyphens and dots: safe in a
// quoted file name).
func fileName(names []string) string {
	for _, n := range names {
		if !strings.HasPrefix(n, "*.") && n != "" {
			return n
		}
	}
	return "certificate"
}
