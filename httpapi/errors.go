package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/dcvaas/dcvaas"
)

// This file is the one place where dcvaas error codes become HTTP statuses
// and where every error becomes an RFC 9457 problem (application/problem+json,
// huma's ErrorModel). Handlers and middleware only ever pick a code.

// statusOf maps each error code to its status; anything else is a 500.
var statusOf = map[string]int{
	dcvaas.ENOTFOUND:       http.StatusNotFound,
	dcvaas.ECONFLICT:       http.StatusConflict,
	dcvaas.EINVALID:        http.StatusUnprocessableEntity,
	dcvaas.EUNAUTHORIZED:   http.StatusUnauthorized,
	dcvaas.EFORBIDDEN:      http.StatusForbidden,
	dcvaas.ERATELIMITED:    http.StatusTooManyRequests,
	dcvaas.EUNAVAILABLE:    http.StatusServiceUnavailable,
	dcvaas.ENOTIMPLEMENTED: http.StatusNotImplemented,
	dcvaas.ENOTACCEPTABLE:  http.StatusNotAcceptable,
}

// problem is an error on its way to the client.
type problem struct {
	status  int
	detail  string
	errs    []error // *huma.ErrorDetail, one per bad field
	headers http.Header
}

// toProblem maps err to what the client sees. Internal errors are logged
// with their cause and shown only as "internal error".
func (s *server) toProblem(ctx context.Context, err error) problem {
	code := dcvaas.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok && s.unavailable != nil && s.unavailable(err) {
		// The database did not answer in time (locked, overloaded): the
		// client may try again shortly (overload.go).
		s.quiet.WarnContext(ctx, "request failed: database unavailable", "err", err)
		return problem{status: http.StatusServiceUnavailable, detail: "the database is busy; try again shortly",
			headers: http.Header{"Retry-After": {retryAfterUnavailable}}}
	}
	if !ok {
		s.log.ErrorContext(ctx, "request failed", "err", err)
		return problem{status: http.StatusInternalServerError, detail: "internal error"}
	}
	p := problem{status: status, detail: dcvaas.ErrorMessage(err)}
	switch code {
	case dcvaas.EUNAUTHORIZED:
		// RFC 6750 §3: a 401 names the scheme the client should use.
		p.headers = http.Header{"WWW-Authenticate": {`Bearer realm="dcvaas"`}}
	case dcvaas.EUNAVAILABLE:
		p.headers = http.Header{"Retry-After": {retryAfterUnavailable}}
	case dcvaas.EINVALID:
		var e *dcvaas.Error
		if errors.As(err, &e) {
			p.errs = fieldErrors(e.Fields)
		}
	}
	return p
}

// fieldErrors lists per-field problems in a stable order. Fields named
// without a location ("domainName") are in the request body.
func fieldErrors(fields map[string]string) []error {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]error, 0, len(keys))
	for _, k := range keys {
		loc := k
		if !hasLocation(k) {
			loc = "body." + k
		}
		out = append(out, &huma.ErrorDetail{Location: loc, Message: fields[k]})
	}
	return out
}

func hasLocation(field string) bool {
	for _, p := range []string{"body", "query.", "path.", "header."} {
		if strings.HasPrefix(field, p) {
			return true
		}
	}
	return false
}

// invalid returns an EINVALID error for the given fields (location → reason).
func invalid(fields map[string]string) error {
	return &dcvaas.Error{Code: dcvaas.EINVALID, Message: "validation failed", Fields: fields}
}

// handle wraps a handler so that every error it returns goes through
// toProblem: a handler can never leak an internal error by forgetting to.
func handle[I, O any](s *server, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		out, err := h(ctx, in)
		if err != nil {
			p := s.toProblem(ctx, err)
			var se error = huma.NewError(p.status, p.detail, p.errs...)
			if p.headers != nil {
				se = huma.ErrorWithHeaders(se, p.headers)
			}
			return nil, se
		}
		return out, nil
	}
}

// writeProblem answers a request from a middleware with err as a problem.
func (s *server) writeProblem(hctx huma.Context, err error) {
	p := s.toProblem(hctx.Context(), err)
	for k, vs := range p.headers {
		for _, v := range vs {
			hctx.AppendHeader(k, v)
		}
	}
	huma.WriteErr(s.api, hctx, p.status, p.detail, p.errs...)
}

// fillProblem completes every problem huma writes, ours and its own
// (validation, malformed JSON, body too large): "type" is always present,
// a missing property is named in its location, the request body is never
// echoed back whole (it may be a megabyte), and a server error never
// carries details of its cause.
func fillProblem(hctx huma.Context, _ string, v any) (any, error) {
	m, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	if m.Type == "" {
		m.Type = problemType(m.Status) // problems.go
	}
	if m.Status == http.StatusUnsupportedMediaType {
		// huma says "validation failed" here; say what is wrong.
		m.Title, m.Detail = http.StatusText(m.Status), "the body must be JSON: send Content-Type: application/json"
	}
	if m.Status >= 500 {
		m.Errors = nil
	}
	for _, d := range m.Errors {
		if d == nil {
			continue
		}
		// A key the case-exact decoder refused (decode.go) names itself.
		if d.Location == "body" {
			if loc, msg, ok := splitCaseError(d.Message); ok {
				d.Location, d.Message, d.Value = loc, msg, nil
			}
		}
		// huma reports a missing property at its parent; name the field.
		if name, ok := missingProperty(d.Message); ok {
			d.Location += "." + name
		}
		d.Value = echoable(d.Location, d.Value)
	}
	return &problemWithID{m, RequestID(hctx.Context())}, nil
}

// problemWithID is a problem with the request's id as an extension member
// (RFC 9457 §3.2), so a client's report finds the server's log lines.
type problemWithID struct {
	*huma.ErrorModel
	RequestID string `json:"requestId,omitempty"`
}

// echoable returns the part of a bad value worth showing back: scalars,
// up to a point. Objects are dropped, since huma reports the parent object
// for unknown and missing properties, as is the whole body.
func echoable(loc string, v any) any {
	if loc == "body" {
		return nil
	}
	switch v := v.(type) {
	case map[string]any, []any:
		return nil
	case string:
		if len(v) > 256 {
			return nil
		}
	}
	return v
}

// missingPrefix and missingSuffix frame the property name in huma's
// message for a missing required property.
var missingPrefix, missingSuffix, _ = strings.Cut(validation.MsgExpectedRequiredProperty, "%s")

func missingProperty(msg string) (string, bool) {
	if !strings.HasPrefix(msg, missingPrefix) || !strings.HasSuffix(msg, missingSuffix) || len(msg) <= len(missingPrefix)+len(missingSuffix) {
		return "", false
	}
	return msg[len(missingPrefix) : len(msg)-len(missingSuffix)], true
}

// notFound answers requests that match no route: 405 with Allow when the
// path exists for other methods, else 404; both as problems, like every
// other error of the API.
func notFound(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" && pattern != "/api/" {
				allow = append(allow, m)
			}
		}
		status, detail := http.StatusNotFound, "no such resource"
		if len(allow) > 0 {
			status, detail = http.StatusMethodNotAllowed, "method not allowed for this resource"
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		writeRawProblem(w, r, status, detail)
	}
}

// writeRawProblem writes a problem outside huma (no operation matched).
func writeRawProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(&problemWithID{&huma.ErrorModel{Type: problemType(status), Title: http.StatusText(status), Status: status, Detail: detail}, RequestID(r.Context())})
}
