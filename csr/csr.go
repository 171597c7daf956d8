// Package csr checks certificate signing requests (RFC 2986) that customers
// submit for domains whose private keys they hold themselves (key mode
// "csr"): dcvaas orders with the CSR as it is, so everything a CA would
// refuse, and everything the domain does not allow, is refused up front with
// a reason the customer can act on.
package csr

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
)

// MaxPEM bounds the PEM text accepted: a CSR with a 4096-bit RSA key and
// two names is under 2 KB.
const MaxPEM = 16 << 10

// Request is a checked CSR.
type Request struct {
	CSR *x509.CertificateRequest
	// PEM is the CSR re-encoded alone (no text around it).
	PEM string
	// KeyType describes the CSR's public key as dcvaas names key types:
	// ec256, ec384, rsa2048, rsa3072 or rsa4096.
	KeyType string
	// PublicKeySHA256 is the hex SHA-256 of the DER SubjectPublicKeyInfo:
	// it tells whether two CSRs (or a CSR and a certificate) share a key.
	PublicKeySHA256 string
}

// Error lists every reason a CSR was refused.
type Error struct{ Reasons []string }

func (e *Error) Error() string { return "CSR refused: " + strings.Join(e.Reasons, "; ") }

func refuse(format string, a ...any) *Error {
	return &Error{Reasons: []string{fmt.Sprintf(format, a...)}}
}

// Parse decodes exactly one PEM "CERTIFICATE REQUEST" block and checks its
// signature (proof that the submitter holds the key).
func Parse(p []byte) (*x509.CertificateRequest, string, error) {
	if len(p) > MaxPEM {
		return nil, "", refuse("the PEM text is longer than %d bytes", MaxPEM)
	}
	block, rest := pem.Decode(p)
	if block == nil {
		return nil, "", refuse("no PEM block found: send the CSR as PEM, beginning with -----BEGIN CERTIFICATE REQUEST-----")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, "", refuse("the PEM block is a private key; send only the CSR and keep the key to yourself")
		}
		return nil, "", refuse("the PEM block is a %q, not a CERTIFICATE REQUEST", block.Type)
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, "", refuse("more than one PEM block: send exactly one CERTIFICATE REQUEST")
	}
	if len(block.Headers) > 0 {
		return nil, "", refuse("the PEM block has headers; a CSR has none")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", refuse("the CSR cannot be parsed: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, "", refuse("the CSR's signature is not valid for its public key: %v", err)
	}
	return req, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: block.Bytes})), nil
}

// KeyTypeOf names a public key as dcvaas names key types, or says why no
// CA certificate for it would be issued.
func KeyTypeOf(pub any) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ec256", nil
		case elliptic.P384():
			return "ec384", nil
		}
		return "", fmt.Errorf("ECDSA curve %s is not accepted (use P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		switch {
		case bits < 2048:
			return "", fmt.Errorf("an RSA key of %d bits is too weak (at least 2048)", bits)
		case bits == 2048 || bits == 3072 || bits == 4096:
			return fmt.Sprintf("rsa%d", bits), nil
		}
		return "", fmt.Errorf("an RSA key of %d bits is not accepted (2048, 3072 or 4096)", bits)
	case ed25519.PublicKey:
		return "", fmt.Errorf("Ed25519 keys are not accepted by public CAs (use ECDSA P-256/P-384 or RSA)")
	}
	return "", fmt.Errorf("public key of type %T is not accepted", pub)
}

// Allows reports whether a domain of keyType may have a certificate for a
// key of csrKeyType (a KeyTypeOf result): ECDSA curves must match; rsa2048
// takes any accepted RSA size, rsa4096 only 4096 bits.
func Allows(keyType, csrKeyType string) bool {
	switch keyType {
	case "", "ec256":
		return csrKeyType == "ec256"
	case "ec384":
		return csrKeyType == "ec384"
	case "rsa2048":
		return strings.HasPrefix(csrKeyType, "rsa")
	case "rsa4096":
		return csrKeyType == "rsa4096"
	}
	return false
}

// Names are the names a domain's certificates carry, in order: the domain
// and, with includeWildcard, *.domain.
func Names(domain string, includeWildcard bool) []string {
	if includeWildcard {
		return []string{domain, "*." + domain}
	}
	return []string{domain}
}

// Check parses p and checks it for a domain whose certificates carry
// exactly want (see Names) with keys keyType allows. Every problem found is
// in the *Error.
func Check(p []byte, want []string, keyType string) (*Request, error) {
	req, clean, err := Parse(p)
	if err != nil {
		return nil, err
	}
	var reasons []string
	kt, kerr := KeyTypeOf(req.PublicKey)
	switch {
	case kerr != nil:
		reasons = append(reasons, kerr.Error())
	case !Allows(keyType, kt):
		reasons = append(reasons, fmt.Sprintf("the domain's keyType is %s, which does not allow a %s key", keyTypeOr(keyType), kt))
	}
	if len(req.IPAddresses) > 0 || len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		reasons = append(reasons, "the CSR may name DNS names only (no IP addresses, e-mail addresses or URIs)")
	}
	got := map[string]bool{}
	for _, n := range req.DNSNames {
		got[normalize(n)] = true
	}
	if cn := req.Subject.CommonName; cn != "" {
		got[normalize(cn)] = true
	}
	var missing, extra []string
	for _, n := range want {
		if !got[n] {
			missing = append(missing, n)
		}
	}
	for n := range got {
		if !slices.Contains(want, n) {
			extra = append(extra, n)
		}
	}
	slices.Sort(extra)
	if len(missing) > 0 {
		reasons = append(reasons, "the CSR lacks "+strings.Join(missing, ", ")+" (it must name exactly "+strings.Join(want, " and ")+")")
	}
	if len(extra) > 0 {
		reasons = append(reasons, "the CSR names "+quoteAll(extra)+", which this domain does not cover (it must name exactly "+strings.Join(want, " and ")+")")
	}
	if len(reasons) > 0 {
		return nil, &Error{Reasons: reasons}
	}
	return &Request{CSR: req, PEM: clean, KeyType: kt, PublicKeySHA256: PublicKeySHA256(req.RawSubjectPublicKeyInfo)}, nil
}

// PublicKeySHA256 is the hex SHA-256 of a DER SubjectPublicKeyInfo.
func PublicKeySHA256(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

func normalize(n string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
}

func keyTypeOr(kt string) string {
	if kt == "" {
		return "ec256"
	}
	return kt
}

// quoteAll quotes names (a CSR's names are the submitter's text).
func quoteAll(ns []string) string {
	q := make([]string, len(ns))
	for i, n := range ns {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
