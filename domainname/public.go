package domainname

import (
	"errors"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// specialUse are the top-level labels reserved for special uses (RFC 6761
// §6: test, localhost, invalid, example; RFC 6762: local; RFC 7686:
// onion; RFC 9476: alt; ICANN's reservation of internal, 2024; arpa is
// the infrastructure TLD, home.arpa RFC 8375 among it). No CA can
// validate a name under them, and a name under them given to us could
// only ever resolve inside someone's network.
var specialUse = map[string]bool{
	"localhost": true, "local": true, "internal": true, "invalid": true, "example": true,
	"test": true, "onion": true, "alt": true, "arpa": true,
}

var (
	errSpecialUse = errors.New("domain name must be a public name: special-use names (localhost, local, internal, invalid, example, test, onion, alt, anything under arpa) cannot get a public certificate")
	errNotICANN   = errors.New("domain name must be under a public top-level domain (one in the ICANN section of the Public Suffix List)")
)

// CheckPublic refuses a normalized name (Normalize's result) that the
// public DNS cannot delegate: one under a special-use label, or one whose
// top-level domain is not in the ICANN section of the Public Suffix List.
// Names under a label or suffix of allow (DCVAAS_ALLOW_TLDS: "test",
// "example", "home.arpa", …) pass: tests and demos need such names.
func CheckPublic(name string, allow []string) error {
	for _, a := range allow {
		if a = strings.Trim(strings.ToLower(strings.TrimSpace(a)), "."); a != "" && (name == a || strings.HasSuffix(name, "."+a)) {
			return nil
		}
	}
	tld := name[strings.LastIndexByte(name, '.')+1:]
	if specialUse[tld] {
		return errSpecialUse
	}
	// publicsuffix answers for any name; only an ICANN rule that is the
	// top-level label itself says the TLD is delegated in the root zone.
	if suffix, icann := publicsuffix.PublicSuffix(tld); !icann || suffix != tld {
		return errNotICANN
	}
	return nil
}
