package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks v1 (https://www.standardwebhooks.com/, "Signature
// scheme"): the secret is "whsec_" + base64 of its key bytes; a delivery
// carries webhook-id, webhook-timestamp (Unix seconds) and
// webhook-signature, a space-separated list of "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>", one per secret in use.

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: 32 random bytes (the
// specification asks for 24 to 64).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// secretKey decodes a secret to its key bytes.
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret is not whsec_<base64>")
	}
	return key, nil
}

// Sign returns the webhook-signature header value for one attempt: one
// "v1,<signature>" per secret, space-separated (during a rotation, the new
// secret's first).
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	var out []string
	unix := strconv.FormatInt(ts.Unix(), 10)
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(unix))
		m.Write([]byte{'.'})
		m.Write(body)
		out = append(out, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	if len(out) == 0 {
		return "", errors.New("no webhook secret to sign with")
	}
	return strings.Join(out, " "), nil
}
