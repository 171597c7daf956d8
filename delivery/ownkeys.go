package delivery

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/dcvaas/dcvaas/csr"
)

// Customer-held keys (`dcvaas sync --own-keys`): for a domain of keyMode
// csr the agent generates the private key on this machine, keeps it in
// DIR/<domain>/.own-key/privkey.pem (0600), submits a CSR for it, and
// installs each certificate dcvaas issues with that key. The key never
// leaves the machine: only the CSR (its public half) is sent.
//
// Key rotation: delete .own-key/privkey.pem; the next pass makes a new key
// and submits its CSR, dcvaas renews with it at once, and the files switch
// to the new certificate and key together. Until then the old pair stays.

const ownKeyDir = ".own-key"

// errWaiting: the domain's current certificate is for another key than
// this machine's (its CSR has just been submitted, and the renewal it
// queued has not finished). Not a failure; the files stay as they are.
var errWaiting = errors.New("waiting for a certificate for this machine's key")

// ownKey loads the domain's local key, or makes one of the domain's key
// type when there is none (or the one there is no longer allowed).
func (a *Agent) ownKey(d apiDomain) (crypto.Signer, []byte, error) {
	dir := filepath.Join(a.cfg.Dir, d.DomainName, ownKeyDir)
	path := filepath.Join(dir, "privkey.pem")
	if p, err := os.ReadFile(path); err == nil {
		if k, err := parseKey(p); err == nil {
			if kt, err := csr.KeyTypeOf(k.Public()); err == nil && csr.Allows(d.KeyType, kt) {
				return k, p, nil
			}
		}
		a.cfg.Logger.Warn("the local key does not suit the domain's keyType; making a new one", "domain", d.DomainName, "keyType", d.KeyType)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	k, err := newKey(d.KeyType)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeSynced(tmp, p, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, nil, err
	}
	syncDir(dir)
	a.cfg.Logger.Info("made a private key on this machine", "domain", d.DomainName, "keyType", d.KeyType, "path", path)
	return k, p, nil
}

func newKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", "ec256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("unknown key type %q", keyType)
}

func parseKey(p []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

// ensureCSR makes sure dcvaas orders the domain's certificates with the
// local key: it submits a CSR unless dcvaas already has one for this key.
func (a *Agent) ensureCSR(ctx context.Context, d apiDomain, key crypto.Signer) error {
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	fp := csr.PublicKeySHA256(spki)
	if a.submitted[d.ID] == fp {
		return nil
	}
	var have struct {
		PublicKeySHA256 string `json:"publicKeySha256"`
	}
	path := "/api/domains/" + url.PathEscape(d.ID) + "/csr"
	_, _, err = a.get(ctx, path, "", &have)
	if err == nil && have.PublicKeySHA256 == fp {
		a.submitted[d.ID] = fp
		return nil
	}
	if err != nil && !errors.Is(err, errNotFound) {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: csr.Names(d.DomainName, d.IncludeWildcard)}, key)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	if err := a.put(ctx, path, body); err != nil {
		return fmt.Errorf("submit the CSR: %w", err)
	}
	a.cfg.Logger.Info("submitted the CSR of this machine's key", "domain", d.DomainName, "publicKeySha256", fp)
	a.submitted[d.ID] = fp
	return nil
}

// put sends a JSON body; any answer but 2xx is an error with the
// problem's detail.
func (a *Agent) put(ctx context.Context, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.cfg.APIURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dcvaas-sync")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var p struct{ Detail string }
	json.Unmarshal(raw, &p)
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: %s %s", errUnavailable, path, resp.Status)
	}
	return fmt.Errorf("%s: %s %s", path, resp.Status, strings.TrimSpace(p.Detail))
}

// ownKeyCSR loads (or makes) the local key and makes sure dcvaas has its
// CSR; it returns the key's PEM.
func (a *Agent) ownKeyCSR(ctx context.Context, d apiDomain) ([]byte, error) {
	key, keyPEM, err := a.ownKey(d)
	if err != nil {
		return nil, err
	}
	return keyPEM, a.ensureCSR(ctx, d, key)
}

// syncOwnKey installs the domain's certificate with the local key, once
// dcvaas has issued one for it.
func (a *Agent) syncOwnKey(ctx context.Context, d apiDomain) (bool, error) {
	keyPEM, err := a.ownKeyCSR(ctx, d)
	if err != nil {
		return false, err
	}
	dir := filepath.Join(a.cfg.Dir, d.DomainName)
	etag := ""
	if b, err := os.ReadFile(filepath.Join(dir, "current", ".etag")); err == nil {
		etag = strings.TrimSpace(string(b))
	}
	if installed, _ := os.ReadFile(filepath.Join(dir, "current", "privkey.pem")); string(installed) != ensureNewline(string(keyPEM)) {
		// A new local key (rotation): the installed certificate is not
		// for it, whatever its ETag says.
		etag = ""
	}
	var c apiCertificate
	notModified, newETag, err := a.get(ctx, "/api/domains/"+url.PathEscape(d.ID)+"/certificate?includeKey=false", etag, &c)
	if err != nil || notModified {
		return false, err
	}
	// Never install a certificate with a key that is not its own: one
	// for another key is from before this machine's CSR took effect.
	if _, err := tls.X509KeyPair([]byte(c.CertificatePEM), keyPEM); err != nil {
		delete(a.submitted, d.ID) // look again whether dcvaas has our CSR
		return false, errWaiting
	}
	c.PrivateKeyPEM = string(keyPEM)
	return true, writeSet(dir, newETag, c)
}
