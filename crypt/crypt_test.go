package crypt

import (
	"bytes"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newKeyring(t *testing.T, current []byte, old ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var envelopeFormat = regexp.MustCompile(`^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+$`)

func TestRoundTrip(t *testing.T) {
	k := newKeyring(t, key(1))
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", []byte{}, nil},
		{"nil", nil, nil},
		{"short", []byte("hello"), nil},
		{"with associated data", []byte("-----BEGIN EC PRIVATE KEY-----"), []byte("domain:01HZX")},
		{"binary", []byte{0, 1, 2, 255, 254}, []byte{0}},
		{"large", bytes.Repeat([]byte("x"), 1<<16), []byte("row")},
	}
	for _, tt := range tests {
		env, err := k.Encrypt(tt.plaintext, tt.ad)
		if err != nil {
			t.Fatalf("%s: Encrypt: %v", tt.name, err)
		}
		if !envelopeFormat.MatchString(env) {
			t.Fatalf("%s: envelope %q does not match %s", tt.name, env, envelopeFormat)
		}
		if !strings.HasPrefix(env, "v1."+k.CurrentKeyID()+".") {
			t.Errorf("%s: envelope %q not under current key %s", tt.name, env, k.CurrentKeyID())
		}
		if len(tt.plaintext) > 0 && strings.Contains(env, string(tt.plaintext)) {
			t.Errorf("%s: plaintext visible in envelope", tt.name)
		}
		got, err := k.Decrypt(env, tt.ad)
		if err != nil {
			t.Fatalf("%s: Decrypt: %v", tt.name, err)
		}
		if !bytes.Equal(got, tt.plaintext) {
			t.Errorf("%s: Decrypt = %q, want %q", tt.name, got, tt.plaintext)
		}
	}
}

func TestFreshNonces(t *testing.T) {
	k := newKeyring(t, key(1))
	seen := make(map[string]bool)
	nonces := make(map[string]bool)
	for range 100 {
		env, err := k.Encrypt([]byte("same plaintext"), []byte("same row"))
		if err != nil {
			t.Fatal(err)
		}
		if seen[env] {
			t.Fatalf("same plaintext sealed to the same envelope twice: %s", env)
		}
		seen[env] = true
		payload := mustPayload(t, env)
		nonce := string(payload[:12])
		if nonces[nonce] {
			t.Fatal("nonce reused")
		}
		nonces[nonce] = true
	}
}

func TestTamperingDetected(t *testing.T) {
	k := newKeyring(t, key(1))
	env, err := k.Encrypt([]byte("secret"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := env[:strings.LastIndexByte(env, '.')+1]
	payload := mustPayload(t, env)
	// Flip one bit in every byte: nonce, ciphertext and tag alike.
	for i := range payload {
		altered := bytes.Clone(payload)
		altered[i] ^= 0x01
		_, err := k.Decrypt(prefix+base64.RawURLEncoding.EncodeToString(altered), []byte("row-1"))
		if !errors.Is(err, ErrAuthentication) {
			t.Fatalf("byte %d altered: err = %v, want ErrAuthentication", i, err)
		}
	}
	// Cut off the end of the tag.
	short := prefix + base64.RawURLEncoding.EncodeToString(payload[:len(payload)-1])
	if _, err := k.Decrypt(short, []byte("row-1")); !errors.Is(err, ErrAuthentication) {
		t.Errorf("truncated: err = %v, want ErrAuthentication", err)
	}
}

func TestWrongAssociatedData(t *testing.T) {
	k := newKeyring(t, key(1))
	env, err := k.Encrypt([]byte("secret"), []byte("row-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{nil, []byte("row-2"), []byte("row-1 "), []byte("Row-1")} {
		_, err := k.Decrypt(env, ad)
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("AD %q: err = %v, want ErrAuthentication", ad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error reveals plaintext: %v", err)
		}
	}
}

func TestMalformed(t *testing.T) {
	k := newKeyring(t, key(1))
	id := k.CurrentKeyID()
	tests := []string{
		"",
		"v1",
		"v1." + id,
		"v2." + id + ".AAAA",
		"V1." + id + ".AAAA",
		"v1.." + "AAAA",
		"v1." + strings.ToUpper(id) + ".AAAA",
		"v1." + id + "0.AAAA",
		"v1.<script>.AAAA", // not echoed: the key id is checked first
		"v1." + id + ".not base64!",
		"v1." + id + ".AAAA=", // padding is not part of the format
		"v1." + id + ".AAAA.extra",
		"v1." + id + ".", // shorter than nonce and tag
		"v1." + id + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 27)),
	}
	for _, env := range tests {
		_, err := k.Decrypt(env, nil)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Decrypt(%q): err = %v, want ErrMalformed", env, err)
		}
		if err != nil && strings.Contains(err.Error(), "<script>") {
			t.Errorf("error echoes input: %v", err)
		}
	}
}

func mustPayload(t *testing.T, env string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(env[strings.LastIndexByte(env, '.')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return b
}
