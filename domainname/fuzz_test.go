package domainname_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dcvaas/dcvaas/domainname"
)

// FuzzNormalize: whatever a customer types, Normalize neither panics nor
// returns a name that is not a plain lowercase ASCII host name of at most
// 253 characters, its answer is a fixed point (normalizing it again
// changes nothing), it never hands out a name in the verify zone, and
// CheckPublic copes with all of it.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"example.com", "Shop.Example.COM.", "Bücher.example", "ＥＸＡＭＰＬＥ．ｃｏｍ", "xn--bcher-kva.example",
		"*.example.com", "_acme-challenge.example.com", "192.0.2.1", "[::1]", "https://x.example.com/",
		"co.uk", "a.verify.example.com", "verify.example.com", "a..b", "-a.com", "a-.com", "1.2.3.4.5",
		strings.Repeat("a.", 130) + "com", "ß.de", "\u202eevil.com", "a\x00b.com", "localhost", "x.home.arpa",
	} {
		f.Add(s)
	}
	const zone = "verify.example.com"
	f.Fuzz(func(t *testing.T, in string) {
		out, err := domainname.Normalize(in, zone)
		_ = domainname.CheckPublic(out, []string{"test"})
		if err != nil {
			if out != "" {
				t.Fatalf("Normalize(%q) = %q with error %v", in, out, err)
			}
			return
		}
		if len(out) == 0 || len(out) > 253 || !utf8.ValidString(out) {
			t.Fatalf("Normalize(%q) = %q", in, out)
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("Normalize(%q) = %q: byte %q", in, out, c)
			}
		}
		if out == zone || strings.HasSuffix(out, "."+zone) {
			t.Fatalf("Normalize(%q) = %q, inside the verify zone", in, out)
		}
		if again, err := domainname.Normalize(out, zone); err != nil || again != out {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", in, out, out, again, err)
		}
	})
}
