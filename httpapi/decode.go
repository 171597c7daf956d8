package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// encoding/json matches object keys to struct fields ignoring case, and
// takes the last of several keys that match one field. huma validates the
// body as a map first, so {"role":"read","Role":"owner"} could pass the
// schema on one key and store the other. Every request body is therefore
// decoded case-exactly: a key must spell its field's JSON name exactly,
// at every depth, or the body is refused naming the key. (huma's own
// validation is made case-sensitive too, in newAPI; this is the backstop
// that holds whatever validation looked at.)

// decodeJSON is the API's JSON decoder (jsonFormat).
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	return checkKeys(json.RawMessage(data), t.Elem(), "body")
}

// caseError is a key that does not spell a field's name exactly. Its
// message starts with the key's location, which fillProblem moves into
// the problem's error location.
type caseError struct {
	loc, want string
}

func (e *caseError) Error() string {
	if e.want == "" {
		return e.loc + ": unexpected property"
	}
	return fmt.Sprintf("%s: unexpected property; property names are case-sensitive (the field is %q)", e.loc, e.want)
}

// splitCaseError turns a caseError's message back into location and
// message.
func splitCaseError(msg string) (loc, rest string, ok bool) {
	loc, rest, ok = strings.Cut(msg, ": unexpected property")
	if !ok || !strings.HasPrefix(loc, "body.") && !strings.HasPrefix(loc, "body[") {
		return "", "", false
	}
	return loc, "unexpected property" + rest, true
}

// fieldNames maps a struct type to the JSON names of its fields.
var fieldNames sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON names of t's fields with their types, as
// encoding/json sees them (embedded structs flattened, "-" skipped).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldNames.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	collectFields(t, m, 0)
	fieldNames.Store(t, m)
	return m
}

func collectFields(t reflect.Type, m map[string]reflect.Type, depth int) {
	if depth > 10 {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, m, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := m[name]; !ok {
			m[name] = f.Type
		}
	}
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// checkKeys walks data along t and returns a caseError for the first key
// that matches a struct field only when case is ignored, or that no field
// has at all (encoding/json would drop it silently).
func checkKeys(data json.RawMessage, t reflect.Type, loc string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) || t == rawMessageType {
		return nil
	}
	// Types that decode themselves (time.Time, …) read their own JSON.
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if data[0] != '{' {
			return nil // json.Unmarshal has already refused it
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, k) {
						return &caseError{loc: loc + "." + k, want: name}
					}
				}
				return &caseError{loc: loc + "." + k}
			}
			if err := checkKeys(obj[k], ft, loc+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if data[0] != '[' {
			return nil
		}
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil
		}
		for i, it := range items {
			if err := checkKeys(it, t.Elem(), fmt.Sprintf("%s[%d]", loc, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if data[0] != '{' {
			return nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(data, &obj); err != nil {
			return nil
		}
		for _, k := range sortedKeys(obj) {
			if err := checkKeys(obj[k], t.Elem(), loc+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]json.RawMessage) []string {
	// Deterministic: the first offending key in byte order is reported.
	return slices.Sorted(maps.Keys(m))
}
