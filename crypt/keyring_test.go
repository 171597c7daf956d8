package crypt

import (
	"errors"
	"strings"
	"testing"
)

func TestRotation(t *testing.T) {
	oldKey, newKey := key(1), key(2)
	before := newKeyring(t, oldKey)
	env, err := before.Encrypt([]byte("account key"), []byte("acct"))
	if err != nil {
		t.Fatal(err)
	}
	if before.NeedsRotation(env) {
		t.Error("NeedsRotation = true under the current key")
	}

	after := newKeyring(t, newKey, oldKey)
	if after.CurrentKeyID() != KeyID(newKey) {
		t.Errorf("CurrentKeyID = %s, want %s", after.CurrentKeyID(), KeyID(newKey))
	}
	got, err := after.Decrypt(env, []byte("acct"))
	if err != nil || string(got) != "account key" {
		t.Fatalf("Decrypt with old key after rotation = %q, %v", got, err)
	}
	if !after.NeedsRotation(env) {
		t.Error("NeedsRotation = false for a value under an old key")
	}
	resealed, err := after.Encrypt(got, []byte("acct"))
	if err != nil {
		t.Fatal(err)
	}
	if after.NeedsRotation(resealed) {
		t.Error("NeedsRotation = true after re-sealing")
	}
	// Once the old key is retired the old value no longer opens.
	retired := newKeyring(t, newKey)
	if _, err := retired.Decrypt(env, []byte("acct")); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("after retiring the old key: err = %v, want ErrUnknownKey", err)
	}
	if _, err := retired.Decrypt(resealed, []byte("acct")); err != nil {
		t.Errorf("re-sealed value: %v", err)
	}
}

func TestNeedsRotationMalformed(t *testing.T) {
	k := newKeyring(t, key(1))
	for _, env := range []string{"", "garbage", "v2." + k.CurrentKeyID() + ".AAAA", "v1.xyz.AAAA"} {
		if !k.NeedsRotation(env) {
			t.Errorf("NeedsRotation(%q) = false, want true", env)
		}
	}
}

func TestUnknownKeyID(t *testing.T) {
	other := newKeyring(t, key(9))
	env, err := other.Encrypt([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := newKeyring(t, key(1), key(2))
	_, err = k.Decrypt(env, nil)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), KeyID(key(9))) {
		t.Errorf("error %q does not name key id %s", err, KeyID(key(9)))
	}
}

func TestNewKeyring(t *testing.T) {
	tests := []struct {
		name    string
		current []byte
		old     [][]byte
		ok      bool
	}{
		{"one key", key(1), nil, true},
		{"with old keys", key(1), [][]byte{key(2), key(3)}, true},
		{"old key repeats current", key(1), [][]byte{key(1)}, true},
		{"nil current", nil, nil, false},
		{"AES-128 current", make([]byte, 16), nil, false},
		{"33-byte current", make([]byte, 33), nil, false},
		{"short old", key(1), [][]byte{make([]byte, 31)}, false},
	}
	for _, tt := range tests {
		k, err := NewKeyring(tt.current, tt.old...)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err == nil && k.CurrentKeyID() != KeyID(tt.current) {
			t.Errorf("%s: CurrentKeyID = %s, want %s", tt.name, k.CurrentKeyID(), KeyID(tt.current))
		}
	}
}

func TestKeyID(t *testing.T) {
	// SHA-256 of 32 zero bytes starts 66687aad.
	if got := KeyID(make([]byte, 32)); got != "66687aad" {
		t.Errorf("KeyID(zeros) = %s, want 66687aad", got)
	}
	if KeyID(key(1)) == KeyID(key(2)) {
		t.Error("different keys, same id")
	}
}

func TestParseHexKey(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{good, strings.ToUpper(good), good + "\n", "  " + good + " \n"} {
		k, err := ParseHexKey(s)
		if err != nil {
			t.Errorf("ParseHexKey(%q): %v", s, err)
			continue
		}
		if len(k) != KeySize || k[0] != 0x01 || k[7] != 0xef {
			t.Errorf("ParseHexKey(%q) = %x", s, k)
		}
	}
	secret := "s3cr3tZ"
	bad := []string{
		"",
		good[:62],
		good + "00",
		good[:63] + "g",
		good[:56] + secret + "x", // right length, not hex
		"0x" + good[:62],
		good[:32] + " " + good[33:],
		strings.Repeat("z", 64),
		secret,
	}
	for _, s := range bad {
		_, err := ParseHexKey(s)
		if err == nil {
			t.Errorf("ParseHexKey(%q) accepted", s)
			continue
		}
		if strings.Contains(err.Error(), secret) || (len(s) > 2 && strings.Contains(err.Error(), s)) ||
			strings.Contains(err.Error(), "'g'") || strings.Contains(err.Error(), "'z'") {
			t.Errorf("ParseHexKey(%q) error echoes input: %v", s, err)
		}
	}
}
