package orgname_test

import (
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas/orgname"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"Acme", "Acme", ""},
		{"  Acme   Corp  ", "Acme Corp", ""},
		{"Ａｃｍｅ", "Acme", ""},                // full width folded
		{"Acme\u00a0Corp", "Acme Corp", ""}, // no-break space
		{"Müller & Söhne GmbH", "Müller & Söhne GmbH", ""},
		{"ﬁnance", "finance", ""}, // compatibility ligature
		{"", "", "must not be empty"},
		{"   ", "", "must not be empty"},
		{"a\u0007b", "", "control"},
		{"a\tb", "", "control"},
		{"evil\u202egnp.exe", "", "bidirectional"}, // right-to-left override
		{"a\u2066b", "", "bidirectional"},          // left-to-right isolate
		{"a\u200bb", "", "format"},                 // zero-width space
		{"a\u00adb", "", "format"},                 // soft hyphen
		{"a\ufeffb", "", "format"},                 // byte-order mark
		{"a\xffb", "", "not allowed"},
		{strings.Repeat("é", 100), strings.Repeat("é", 100), ""},
		{strings.Repeat("é", 101), "", "at most 100"},
	} {
		got, err := orgname.Normalize(c.in)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("Normalize(%q) = %q, %v; want an error saying %q", c.in, got, err, c.err)
		}
	}
}
