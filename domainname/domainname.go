// Package domainname decides which customer domain names dcvaas accepts and
// names the DNS records that delegate their validation to us.
package domainname

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// profile maps what people type (upper case, full-width letters, the
// ideographic full stop) to the form a resolver would look up, and rejects
// labels that IDNA 2008 / UTS #46 does not allow. Lengths are checked by
// Normalize itself so that the user gets a specific message.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false), // ß and ς stay distinct, as browsers resolve them
)

// Errors are plain values, told apart by message only: every one of them
// means "fix your input" (HTTP 422), and the message is written for the user.
var (
	errEmpty       = errors.New("domain name must not be empty")
	errNotBare     = errors.New("domain name must be a bare name like example.com, without scheme, port or path")
	errIP          = errors.New("domain name must not be an IP address")
	errWildcard    = errors.New("domain name must not contain a wildcard (*); add the bare domain, its certificate also covers the wildcard")
	errUnderscore  = errors.New("domain name must not contain an underscore")
	errInvalid     = errors.New("domain name contains characters or labels that are not allowed in a host name")
	errTooLong     = errors.New("domain name must be at most 253 characters long")
	errOneLabel    = errors.New("domain name must have at least two labels, like example.com")
	errLabelLength = errors.New("each label of a domain name must be 1 to 63 characters long")
	errLabelChars  = errors.New("domain name labels may contain only letters, digits and hyphens")
	errLabelHyphen = errors.New("domain name labels must not start or end with a hyphen")
	errNumericTLD  = errors.New("domain name must not end in a numeric top-level domain")
	errSuffix      = errors.New("domain name must not be a public suffix (like com, co.uk or github.io); use a name registered under it")
	errVerifyZone  = errors.New("domain name must not be inside the verification zone")
)

// Normalize returns the canonical ASCII (punycode) form of a customer's
// domain name, or an error whose message can be shown to the user as is.
//
// verifyZone is our own delegation zone: a customer must not be able to claim
// it or a name under it, since the TXT records we publish there are how we
// prove control of everyone else's domains.
func Normalize(name, verifyZone string) (string, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", errEmpty
	}
	// IP before everything else: "::1" or "[::1]" would otherwise be
	// reported as a URL, and "1.2.3.4" as a numeric TLD.
	if isIP(name) {
		return "", errIP
	}
	if strings.ContainsAny(name, "/:@?#") {
		return "", errNotBare
	}
	// Checked before IDNA, which rejects both with a generic error.
	if strings.Contains(name, "*") {
		return "", errWildcard
	}
	if strings.Contains(name, "_") {
		return "", errUnderscore
	}

	ascii, err := profile.ToASCII(name)
	if err != nil {
		// IDNA's errors are technical; for plain ASCII input our own
		// host name rules usually say more precisely what is wrong.
		if isASCII(name) {
			if herr := checkHostname(name); herr != nil {
				return "", herr
			}
		}
		return "", errInvalid
	}
	if err := checkHostname(ascii); err != nil {
		return "", err
	}
	if isIP(ascii) { // full-width digits map to an address only after IDNA
		return "", errIP
	}

	if suffix, _ := publicsuffix.PublicSuffix(ascii); suffix == ascii {
		return "", errSuffix
	}
	if zone := canonicalZone(verifyZone); zone != "" &&
		(ascii == zone || strings.HasSuffix(ascii, "."+zone)) {
		return "", errVerifyZone
	}
	return ascii, nil
}

// checkHostname applies RFC 1123 §2.1 to an ASCII name without trailing dot,
// plus the rules a name needs to be worth a public certificate: two labels or
// more and a top-level domain that is not a number.
func checkHostname(name string) error {
	if len(name) > 253 {
		return errTooLong
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return errOneLabel
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return errLabelLength
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return errLabelChars
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errLabelHyphen
		}
	}
	// A numeric TLD makes the name look like (part of) an IPv4 address to
	// many parsers, and no such TLD exists (RFC 3696 §2).
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errNumericTLD
	}
	return nil
}

func isIP(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// canonicalZone brings the configured zone to the form Normalize produces,
// so that the comparison ignores case, trailing dots and IDN spelling.
func canonicalZone(zone string) string {
	zone = strings.ToLower(strings.TrimSpace(zone))
	zone = strings.TrimSuffix(zone, ".")
	if ascii, err := profile.ToASCII(zone); err == nil {
		return ascii
	}
	return zone
}

// ChallengeName is the name whose CNAME delegates DNS-01 validation of
// domain to us (RFC 8555 §8.4).
func ChallengeName(domain string) string {
	return "_acme-challenge." + domain
}

// labelEncoding is lower case because DNS names are case-insensitive and we
// compare CNAME targets as strings; no padding because '=' is not allowed in
// a host name.
var labelEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewLabel returns a fresh 26-character label for a domain's CNAME target.
// It carries 128 random bits so that nobody can guess another customer's
// target and race them to it.
func NewLabel() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return labelEncoding.EncodeToString(b[:])
}
