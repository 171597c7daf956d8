package domainname

import (
	"regexp"
	"strings"
	"testing"
)

const zone = "dcvaas-verify.com"

func TestNormalizeAccepts(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"example.com", "example.com"},
		{"  Example.COM.  ", "example.com"},
		{"www.example.com", "www.example.com"},
		{"a.b.c.example.co.uk", "a.b.c.example.co.uk"},
		{"example.co.uk", "example.co.uk"},
		{"someone.github.io", "someone.github.io"},
		{"my-site.example", "my-site.example"},
		{"123.example.com", "123.example.com"},
		{"1example.org", "1example.org"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.Example.", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"ｅｘａｍｐｌｅ。com", "example.com"},     // full-width letters and ideographic stop
		{"straße.de", "xn--strae-oqa.de"},  // nontransitional: ß is kept
		{"unknowntld.zz", "unknowntld.zz"}, // not in the list: not a suffix by itself
		{"www.ck", "www.ck"},               // exception to the *.ck rule
		{"notdcvaas-verify.com", "notdcvaas-verify.com"},
		{"dcvaas-verify.com.evil.com", "dcvaas-verify.com.evil.com"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
		{longName(253), longName(253)},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in, zone)
		if err != nil {
			t.Errorf("Normalize(%q) error: %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error message
	}{
		{"", "must not be empty"},
		{"   ", "must not be empty"},
		{".", "must not be empty"},
		{"1.2.3.4", "IP address"},
		{"192.168.0.1.", "IP address"},
		{"::1", "IP address"},
		{"2001:db8::1", "IP address"},
		{"[2001:db8::1]", "IP address"},
		{"[::ffff:1.2.3.4]", "IP address"},
		{"https://example.com", "bare name"},
		{"example.com/path", "bare name"},
		{"example.com:443", "bare name"},
		{"user@example.com", "bare name"},
		{"*.example.com", "wildcard"},
		{"a*.example.com", "wildcard"},
		{"_acme-challenge.example.com", "underscore"},
		{"my_host.example.com", "underscore"},
		{"localhost", "at least two labels"},
		{"com", "at least two labels"},
		{"bücher", "at least two labels"},
		{"example..com", "1 to 63 characters"},
		{"..example.com", "1 to 63 characters"},
		{"example.com..", "1 to 63 characters"},
		{strings.Repeat("a", 64) + ".com", "1 to 63 characters"},
		{longName(255), "at most 253"},
		{"-example.com", "start or end with a hyphen"},
		{"example-.com", "start or end with a hyphen"},
		{"ex ample.com", "only letters, digits and hyphens"},
		{"ex!ample.com", "only letters, digits and hyphens"},
		{"example.123", "numeric top-level domain"},
		{"1.2.3", "numeric top-level domain"},
		{"ab--cd.example", "not allowed in a host name"}, // reserved R-LDH label
		{"xn--a.example", "not allowed in a host name"},  // decodes to a control character
		{"xn---.example", "start or end with a hyphen"},
		{"a\u200db.example", "not allowed in a host name"}, // joiner without context
		{"co.uk", "public suffix"},
		{"CO.UK.", "public suffix"},
		{"github.io", "public suffix"},
		{"example.ck", "public suffix"},                // *.ck rule
		{"example.kawasaki.jp", "public suffix"},       // *.kawasaki.jp rule
		{"foo.compute.amazonaws.com", "public suffix"}, // private section
		{"dcvaas-verify.com", "verification zone"},
		{"DCVAAS-Verify.com.", "verification zone"},
		{"abc.dcvaas-verify.com", "verification zone"},
		{"a.b.dcvaas-verify.com", "verification zone"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in, zone)
		if err == nil {
			t.Errorf("Normalize(%q) = %q, want error containing %q", tt.in, got, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Normalize(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestNormalizeVerifyZoneSpelling(t *testing.T) {
	for _, z := range []string{"DCVAAS-VERIFY.COM.", " dcvaas-verify.com ", "dcvaas-verify.com"} {
		if _, err := Normalize("x.dcvaas-verify.com", z); err == nil {
			t.Errorf("zone %q: name inside the zone accepted", z)
		}
	}
	if _, err := Normalize("x.bücher.example", "BÜCHER.example."); err == nil {
		t.Error("IDN zone: name inside the zone accepted")
	}
	if got, err := Normalize("dcvaas-verify.com", ""); err != nil || got != "dcvaas-verify.com" {
		t.Errorf("no zone configured: got %q, %v", got, err)
	}
}

// Normalize must be idempotent: the stored form is fed back in on updates
// and comparisons.
func TestNormalizeIdempotent(t *testing.T) {
	for _, in := range []string{"Example.COM.", "bücher.example", "例え.テスト", "ｅｘａｍｐｌｅ。com"} {
		once, err := Normalize(in, zone)
		if err != nil {
			t.Fatalf("Normalize(%q): %v", in, err)
		}
		twice, err := Normalize(once, zone)
		if err != nil || twice != once {
			t.Errorf("Normalize(%q) = %q, %v; want %q", once, twice, err, once)
		}
	}
}

func TestChallengeName(t *testing.T) {
	if got := ChallengeName("example.com"); got != "_acme-challenge.example.com" {
		t.Errorf("ChallengeName = %q", got)
	}
}

func TestNewLabel(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z2-7]{26}$`)
	seen := make(map[string]bool)
	for range 1000 {
		l := NewLabel()
		if !valid.MatchString(l) {
			t.Fatalf("NewLabel() = %q, want 26 characters of a-z2-7", l)
		}
		if seen[l] {
			t.Fatalf("NewLabel() repeated %q", l)
		}
		seen[l] = true
		// The label goes into a CNAME target under our zone, so it must
		// itself pass as a host name label.
		if _, err := Normalize(l+".example.com", zone); err != nil {
			t.Fatalf("label %q is not a valid host name label: %v", l, err)
		}
	}
}

// longName builds a valid name of exactly n characters from 63-character
// labels, ending in ".com".
func longName(n int) string {
	var b strings.Builder
	for b.Len()+len(".com") < n {
		left := n - len(".com") - b.Len()
		if b.Len() > 0 {
			b.WriteByte('.')
			left--
		}
		b.WriteString(strings.Repeat("a", min(left, 63)))
	}
	b.WriteString(".com")
	return b.String()
}
