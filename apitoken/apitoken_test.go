package apitoken

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

var format = regexp.MustCompile(`^dcv_[0-9a-zA-Z]{49}$`)

func TestGenerate(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		tok, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !format.MatchString(tok) {
			t.Fatalf("Generate() = %q, does not match %s", tok, format)
		}
		if !Valid(tok) {
			t.Fatalf("Valid(%q) = false for a generated token", tok)
		}
		if seen[tok] {
			t.Fatalf("Generate() repeated %q", tok)
		}
		seen[tok] = true
	}
}

// Every single-character change anywhere after the prefix must be caught: in
// the random part by the CRC, in the checksum because it no longer matches.
func TestValidCatchesSingleCharacterChanges(t *testing.T) {
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(Prefix); i < len(tok); i++ {
		for _, c := range []byte(alphabet) {
			if c == tok[i] {
				continue
			}
			changed := tok[:i] + string(c) + tok[i+1:]
			if Valid(changed) {
				t.Fatalf("Valid(%q) = true after changing position %d", changed, i)
			}
		}
	}
	// Swapping two neighbouring characters, the other common typo.
	for i := len(Prefix); i < len(tok)-1; i++ {
		if tok[i] == tok[i+1] {
			continue
		}
		swapped := tok[:i] + string(tok[i+1]) + string(tok[i]) + tok[i+2:]
		if Valid(swapped) {
			t.Fatalf("Valid(%q) = true after swapping positions %d and %d", swapped, i, i+1)
		}
	}
}

func TestValidRejects(t *testing.T) {
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	body := tok[len(Prefix):]
	random := body[:randomLen]
	// withSum gives a bad-alphabet or odd-length token a correct checksum,
	// so that only the property under test is wrong.
	withSum := func(prefix, random string) string { return prefix + random + checksum(random) }
	tests := []struct {
		name, token string
	}{
		{"empty", ""},
		{"prefix only", Prefix},
		{"no prefix", body},
		{"wrong prefix", "ghp_" + body},
		{"upper-case prefix", "DCV_" + body},
		{"prefix without underscore", "dcv" + body + "x"},
		{"one short", tok[:len(tok)-1]},
		{"one long", tok + "0"},
		{"short random part", withSum(Prefix, random[1:])},
		{"long random part", withSum(Prefix, random+"a")},
		{"dash in random part", withSum(Prefix, "-"+random[1:])},
		{"underscore in random part", withSum(Prefix, "_"+random[1:])},
		{"non-ASCII in random part", withSum(Prefix, "é"+random[2:])},
		{"space", withSum(Prefix, " "+random[1:])},
		{"trailing newline", tok[:len(tok)-1] + "\n"},
		{"leading space", " " + tok[:len(tok)-1]},
	}
	for _, tt := range tests {
		if Valid(tt.token) {
			t.Errorf("%s: Valid(%q) = true", tt.name, tt.token)
		}
	}
}

// Known values, computed independently (Python zlib.crc32), pin the format:
// if the encoding ever changed, tokens already handed out would stop
// validating.
func TestKnownValues(t *testing.T) {
	tok := Prefix + strings.Repeat("0", randomLen) + "2czCLJ" // CRC32 0x7849568f
	if !Valid(tok) {
		t.Errorf("Valid(%q) = false", tok)
	}
	tests := []struct {
		n     *big.Int
		width int
		want  string
	}{
		{big.NewInt(0), 3, "000"},
		{big.NewInt(61), 3, "00Z"},
		{big.NewInt(62), 3, "010"},
		{big.NewInt(0xffffffff), checksumLen, "4GFfc3"},
	}
	for _, tt := range tests {
		if got := base62(tt.n, tt.width); got != tt.want {
			t.Errorf("base62(%v, %d) = %q, want %q", tt.n, tt.width, got, tt.want)
		}
	}
	// The largest random value still fits the fixed width.
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	if got := base62(max, randomLen); len(got) != randomLen {
		t.Errorf("2^256-1 spelled in %d digits, want %d", len(got), randomLen)
	}
}

func TestHash(t *testing.T) {
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(tok))
	if got, want := Hash(tok), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Hash = %q, want %q", got, want)
	}
	if Hash(tok) == Hash(tok[:len(tok)-1]+"x") {
		t.Error("different tokens hash alike")
	}
	if len(Hash("")) != 64 {
		t.Errorf("Hash is %d characters, want 64", len(Hash("")))
	}
}

func TestDisplayPrefix(t *testing.T) {
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{tok, tok[:12]},
		{"dcv_abcdefghXYZ", "dcv_abcdefgh"},
		{"dcv_abc", "dcv_abc"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DisplayPrefix(tt.in); got != tt.want {
			t.Errorf("DisplayPrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if !strings.HasPrefix(DisplayPrefix(tok), Prefix) {
		t.Errorf("DisplayPrefix(%q) lacks the prefix", tok)
	}
}
