package httpapi

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeJSONCaseExact checks the decoder itself, whatever validation
// ran before it: encoding/json would fill Role from "ROLE" or "Role".
func TestDecodeJSONCaseExact(t *testing.T) {
	type inner struct {
		Kind string `json:"kind"`
	}
	type body struct {
		Role    string            `json:"role"`
		When    *time.Time        `json:"when,omitempty"`
		Inner   *inner            `json:"inner,omitempty"`
		List    []inner           `json:"list,omitempty"`
		Labels  map[string]string `json:"labels,omitempty"`
		Ignored string            `json:"-"`
	}
	for _, c := range []struct {
		in, loc string // loc "": accepted
	}{
		{`{"role":"read"}`, ""},
		{`{"role":"read","when":"2026-01-01T00:00:00Z","inner":{"kind":"a"},"list":[{"kind":"b"}],"labels":{"Any":"x"}}`, ""},
		{`{"role":null,"inner":null}`, ""},
		{`{"Role":"admin"}`, "body.Role"},
		{`{"role":"read","Role":"admin"}`, "body.Role"},
		{`{"role":"read","inner":{"KIND":"x"}}`, "body.inner.KIND"},
		{`{"role":"read","list":[{"kind":"a"},{"Kind":"b"}]}`, "body.list[1].Kind"},
		{`{"role":"read","extra":1}`, "body.extra"},
		{`{"role":"read","Ignored":"x"}`, "body.Ignored"},
	} {
		var b body
		err := decodeJSON([]byte(c.in), &b)
		if c.loc == "" {
			if err != nil {
				t.Errorf("%s: %v", c.in, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted as %+v", c.in, b)
			continue
		}
		loc, msg, ok := splitCaseError(err.Error())
		if !ok || loc != c.loc || !strings.HasPrefix(msg, "unexpected property") {
			t.Errorf("%s: error %q, want one at %s", c.in, err, c.loc)
		}
	}
	// Decoding into an untyped value (huma's validation pass) is plain.
	var v any
	if err := decodeJSON([]byte(`{"Role":1}`), &v); err != nil {
		t.Errorf("untyped: %v", err)
	}
}
