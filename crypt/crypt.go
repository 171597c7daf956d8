// Package crypt seals secrets at rest (certificate private keys, provider
// tokens, ACME account keys) with AES-256-GCM under a keyring.
//
// A sealed value is the string
//
//	v1.<key id>.<base64url, no padding, of nonce || ciphertext || tag>
//
// The key id names the key that sealed it, so that keys can be rotated: new
// values go under the current key, old values still open under the old keys
// until they are sealed again.
package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of every key: AES-256.
const KeySize = 32

const version = "v1"

// Errors from Decrypt, wrapped with detail; test with errors.Is. None of
// them ever carries plaintext or key material.
var (
	ErrMalformed      = errors.New("crypt: malformed envelope")
	ErrUnknownKey     = errors.New("crypt: unknown key id")
	ErrAuthentication = errors.New("crypt: envelope failed authentication (wrong key or associated data, or altered)")
)

// Keyring holds the current key, which seals, and old keys, which only open.
// It is safe for concurrent use.
type Keyring struct {
	current string // key id
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring that seals under current and opens values
// sealed under current or any of old. Every key must be KeySize bytes.
func NewKeyring(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{current: KeyID(current), aeads: make(map[string]cipher.AEAD)}
	seen := make(map[string][]byte)
	for i, key := range append([][]byte{current}, old...) {
		if len(key) != KeySize {
			return nil, fmt.Errorf("crypt: key %d is %d bytes, want %d", i, len(key), KeySize)
		}
		id := KeyID(key)
		if prev, ok := seen[id]; ok {
			if string(prev) == string(key) {
				continue // the same key listed twice does no harm
			}
			// 32-bit ids collide only by bad luck; refusing beats
			// opening values with the wrong key.
			return nil, fmt.Errorf("crypt: two different keys share key id %s; replace one", id)
		}
		seen[id] = key
		// NewGCMWithRandomNonce draws a fresh 96-bit nonce for every Seal
		// and prepends it, which is exactly our payload layout.
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, err
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// KeyID names a key by the first 8 hex characters of its SHA-256. It is
// safe to store and log: it tells which key sealed a value, not the key.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// ParseHexKey decodes a key given as 64 hex characters; surrounding white
// space (a trailing newline in a file or secret) is ignored. Errors never
// repeat the input, which is a secret.
func ParseHexKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 2*KeySize {
		return nil, fmt.Errorf("crypt: key must be %d hex characters, got %d characters", 2*KeySize, len(s))
	}
	key, err := hex.DecodeString(s)
	if err != nil {
		// hex's error quotes the offending character; do not pass it on.
		return nil, errors.New("crypt: key must contain only hex characters (0-9, a-f)")
	}
	return key, nil
}

// CurrentKeyID is the id of the key that Encrypt uses.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Encrypt seals plaintext under the current key. associatedData is not
// stored but must be given again to Decrypt: passing the owning row's id
// stops a sealed value from being copied into another row. It may be nil.
func (k *Keyring) Encrypt(plaintext, associatedData []byte) (string, error) {
	sealed := k.aeads[k.current].Seal(nil, nil, plaintext, associatedData)
	return version + "." + k.current + "." + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Decrypt opens an envelope made by Encrypt under any key of the keyring,
// given the same associated data.
func (k *Keyring) Decrypt(envelope string, associatedData []byte) ([]byte, error) {
	id, payload, err := parse(envelope)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %s: add the key that sealed this value to the keyring", ErrUnknownKey, id)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	if len(sealed) < aead.Overhead() {
		return nil, fmt.Errorf("%w: payload too short", ErrMalformed)
	}
	plaintext, err := aead.Open(nil, nil, sealed, associatedData)
	if err != nil {
		return nil, ErrAuthentication
	}
	return plaintext, nil
}

// NeedsRotation reports whether envelope is not sealed under the current key
// and so should be opened and sealed again. A malformed envelope also
// reports true: the attempt to re-seal it then surfaces the damage instead
// of passing over it.
func (k *Keyring) NeedsRotation(envelope string) bool {
	id, _, err := parse(envelope)
	return err != nil || id != k.current
}

// parse splits an envelope into key id and payload. The key id is checked
// to be 8 hex characters before it can appear in any error message.
func parse(envelope string) (id, payload string, err error) {
	v, rest, ok1 := strings.Cut(envelope, ".")
	id, payload, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", "", fmt.Errorf("%w: want %s.<key id>.<payload>", ErrMalformed, version)
	}
	if v != version {
		return "", "", fmt.Errorf("%w: unsupported version", ErrMalformed)
	}
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", "", fmt.Errorf("%w: key id is not 8 hex characters", ErrMalformed)
	}
	return id, payload, nil
}
