package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeJSON feeds request bodies to the API's decoder for the
// request types that carry roles, key types, names and nested settings.
// Whatever arrives, it does not panic, and a body it accepts spells every
// key of every object exactly as a field of the type it fills: a key that
// differs only in case never reaches a handler.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"name":"ci","role":"read"}`,
		`{"name":"ci","role":"read","Role":"admin"}`,
		`{"name":"ci","ROLE":"admin","expiresAt":"2027-01-01T00:00:00Z"}`,
		`{"name":"d","role":"delivery","scope":{"domainIds":["a"],"Names":["*.x.com"]}}`,
		`{"domainName":"a.example.com","keyType":"ec256","includeWildcard":true}`,
		`{"domainname":"a.example.com"}`,
		`{"name":"Org","settings":{"defaultKeyType":"rsa2048","DefaultKeyType":"dsa"}}`,
		`{"name":"Org","settings":null}`,
		`[]`, `null`, `"x"`, `{"name":`, `{"name":"a","name":"b"}`, `{"ｒole":"admin"}`, `{"roLe":1}`,
	} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return new(createTokenRequest) },
		func() any { return new(createOrganizationRequest) },
		func() any { return new(updateOrganizationRequest) },
		func() any { return new(createDomainRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newTarget := range targets {
			v := newTarget()
			if err := decodeJSON(body, v); err != nil {
				continue
			}
			if bad := inexactKey(json.RawMessage(body), reflect.TypeOf(v).Elem()); bad != "" {
				t.Fatalf("%T accepted key %q from %s", v, bad, body)
			}
		}
	})
}

// inexactKey returns a key of data (at any depth along t) that is not
// exactly a field's JSON name, or "".
func inexactKey(data json.RawMessage, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() == "time" {
			return ""
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return ""
		}
		fields := jsonFields(t)
		for k, v := range obj {
			ft, ok := fields[k]
			if !ok {
				return k
			}
			if bad := inexactKey(v, ft); bad != "" {
				return bad
			}
		}
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return ""
		}
		for _, it := range items {
			if bad := inexactKey(it, t.Elem()); bad != "" {
				return bad
			}
		}
	}
	return ""
}
