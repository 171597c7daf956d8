package acme

import (
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/resolve"
)

func caaSet(records ...string) *resolve.CAASet {
	s := &resolve.CAASet{Name: "example.com"}
	for _, r := range records {
		f := strings.SplitN(r, " ", 3)
		flag := uint8(0)
		if f[0] == "128" {
			flag = 128
		}
		s.Records = append(s.Records, resolve.CAA{Flag: flag, Tag: f[1], Value: f[2]})
	}
	return s
}

// RFC 8659 §4 and RFC 8657, one rule per row.
func TestCAAPermits(t *testing.T) {
	ids := []string{"letsencrypt.org"}
	const acct = "https://acme.example/acct/1"
	for _, tc := range []struct {
		name     string
		records  []string
		wildcard bool
		want     bool
	}{
		{"no records", nil, true, true},
		{"issue names us", []string{"0 issue letsencrypt.org"}, true, true},
		{"issue names us, case and dot", []string{"0 issue LetsEncrypt.org."}, false, true},
		{"issue names another", []string{"0 issue sectigo.com"}, false, false},
		{"one of several", []string{"0 issue sectigo.com", "0 issue letsencrypt.org"}, false, true},
		{"empty issuer forbids all", []string{"0 issue ;"}, false, false},
		{"only iodef", []string{"0 iodef mailto:x@example.com"}, true, true},
		{"issuewild only restricts the wildcard", []string{"0 issuewild sectigo.com"}, false, true},
		{"issuewild forbids our wildcard", []string{"0 issue letsencrypt.org", "0 issuewild sectigo.com"}, true, false},
		{"issuewild overrides issue for the wildcard", []string{"0 issue sectigo.com", "0 issuewild letsencrypt.org"}, true, false},
		{"issue covers the wildcard without issuewild", []string{"0 issue letsencrypt.org"}, true, true},
		{"unknown critical tag", []string{"0 issue letsencrypt.org", "128 tbs unknown"}, false, false},
		{"unknown non-critical tag", []string{"0 issue letsencrypt.org", "0 tbs unknown"}, false, true},
		{"accounturi ours", []string{"0 issue letsencrypt.org; accounturi=" + acct}, false, true},
		{"accounturi another", []string{"0 issue letsencrypt.org; accounturi=https://acme.example/acct/2"}, false, false},
		{"validationmethods with dns-01", []string{"0 issue letsencrypt.org; validationmethods=http-01,dns-01"}, false, true},
		{"validationmethods without dns-01", []string{"0 issue letsencrypt.org; validationmethods=http-01"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := caaPermits(caaSet(tc.records...), ids, acct, tc.wildcard); got != tc.want {
				t.Fatalf("caaPermits = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCAAAdvice(t *testing.T) {
	msg := caaAdvice(caaSet("0 issue sectigo.com", "0 issuewild sectigo.com"),
		[]CA{{Name: "letsencrypt", CAAIdentities: []string{"letsencrypt.org"}}, {Name: "zerossl"}}, true)
	for _, want := range []string{`example.com. CAA 0 issue "sectigo.com"`, `add example.com. CAA 0 issue "letsencrypt.org" and example.com. CAA 0 issuewild "letsencrypt.org"`, "(letsencrypt, zerossl)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("advice %q lacks %q", msg, want)
		}
	}
}
