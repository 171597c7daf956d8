// Package apitoken defines the format of dcvaas API tokens.
//
// A token is "dcv_", 43 base62 characters of random data and a 6-character
// base62 CRC32 of those 43 characters, the scheme GitHub uses: the fixed
// prefix lets secret scanners recognize a leaked token, and the checksum lets
// them (and us) reject a mistyped or made-up one without a database lookup.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math/big"
	"strings"
)

const (
	// Prefix starts every token.
	Prefix = "dcv_"
	// Len is the length of every token: prefix, random part, checksum.
	Len = len(Prefix) + randomLen + checksumLen

	// 43 base62 digits hold any 256-bit number: 62^43 > 2^256.
	randomLen = 43
	// 6 base62 digits hold any CRC32: 62^6 > 2^32.
	checksumLen = 6
	// displayLen is long enough to tell a user's tokens apart in a list,
	// and leaves 35 random characters (over 200 bits) secret.
	displayLen = len(Prefix) + 8
)

// alphabet is the digit order big.Int.Text uses for base 62, so that the
// checksum and the random part are spelled the same way.
const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// Generate returns a new token with 256 bits from crypto/rand.
func Generate() (token string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	random := base62(new(big.Int).SetBytes(b[:]), randomLen)
	return Prefix + random + checksum(random), nil
}

// Valid reports whether token is well formed: prefix, length, alphabet and
// checksum. It says nothing about whether the token exists or is live.
func Valid(token string) bool {
	if len(token) != Len || !strings.HasPrefix(token, Prefix) {
		return false
	}
	body := token[len(Prefix):]
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return false
		}
	}
	random, sum := body[:randomLen], body[randomLen:]
	return checksum(random) == sum
}

// Hash is what the database stores instead of the token: hex SHA-256 of the
// whole token. A fast hash is enough because the token carries 256 random
// bits; there is nothing to brute-force as with a password.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// DisplayPrefix returns the first 12 characters of token ("dcv_" and 8
// more), which are stored in the clear so that users can tell their tokens
// apart. A shorter token is returned whole.
func DisplayPrefix(token string) string {
	if len(token) < displayLen {
		return token
	}
	return token[:displayLen]
}

func checksum(random string) string {
	sum := crc32.ChecksumIEEE([]byte(random))
	return base62(new(big.Int).SetUint64(uint64(sum)), checksumLen)
}

// base62 spells n in exactly width digits, left-padded with '0', so that
// every token has the same length whatever its random value.
func base62(n *big.Int, width int) string {
	s := n.Text(62)
	if len(s) > width {
		panic("apitoken: value does not fit its width") // impossible by the sizes above
	}
	return strings.Repeat("0", width-len(s)) + s
}
