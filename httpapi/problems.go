package httpapi

import (
	"fmt"
	"html"
	"net/http"
	"strings"
)

// problemKind is one kind of error a client can get: its problem type URI
// is /problems/<slug> (RFC 9457 §3.1.1; a relative reference, resolved
// against the API's URL), served as a short page saying what it means and
// what to do.
type problemKind struct {
	slug, title, help string
}

// problemKinds are the API's problem types by HTTP status: each status the
// API answers with has one meaning here (the codes of error.go map onto
// them one to one in statusOf).
var problemKinds = map[int]problemKind{
	http.StatusBadRequest:            {"bad-request", "Bad request", "The request could not be read: malformed JSON, a bad header or query. Fix the request; sending it again unchanged fails again."},
	http.StatusUnauthorized:          {"unauthorized", "Unauthorized", "No valid API token: send `Authorization: Bearer dcv_…` with a token that is not revoked or expired."},
	http.StatusForbidden:             {"forbidden", "Forbidden", "The token is valid but its role may not do this (read tokens cannot change anything; keys need an admin token)."},
	http.StatusNotFound:              {"not-found", "Not found", "No such resource in your organization (another organization's resources are not found either)."},
	http.StatusMethodNotAllowed:      {"method-not-allowed", "Method not allowed", "The resource exists but not with this method; the Allow header lists the methods it takes."},
	http.StatusNotAcceptable:         {"not-acceptable", "Not acceptable", "The Accept header names no representation this resource has; see the operation in /openapi.json for the media types it offers."},
	http.StatusConflict:              {"conflict", "Conflict", "The change conflicts with the current state, such as a domain that already exists, or an action the resource's status does not allow yet. The detail says what to do instead."},
	http.StatusRequestEntityTooLarge: {"body-too-large", "Request body too large", "The request body is larger than the API accepts."},
	http.StatusUnsupportedMediaType:  {"unsupported-media-type", "Unsupported media type", "The body's Content-Type is not one the operation takes: send JSON with `Content-Type: application/json`."},
	http.StatusUnprocessableEntity:   {"validation", "Validation failed", "A value in the request is not acceptable; `errors` lists each one with its location (body.domainName, query.limit, …)."},
	http.StatusTooManyRequests:       {"rate-limited", "Too many requests", "The organization used its per-minute request budget; wait for the seconds in Retry-After (RateLimit-Reset)."},
	http.StatusInternalServerError:   {"internal", "Internal error", "dcvaas failed unexpectedly; it was logged with the request id. Retry later, and quote the requestId when reporting it."},
	http.StatusNotImplemented:        {"not-implemented", "Not implemented", "This server does not offer the function asked for (for example a provider without OAuth configured)."},
	http.StatusServiceUnavailable:    {"unavailable", "Service unavailable", "A service dcvaas depends on (database, DNS provider, CA) is unavailable; retry later."},
}

// problemType returns the type URI of a problem with status: a
// /problems/ page for the kinds listed, about:blank (RFC 9457 §4.2.1)
// for any other.
func problemType(status int) string {
	if k, ok := problemKinds[status]; ok {
		return "/problems/" + k.slug
	}
	return "about:blank"
}

// serveProblemPage is GET /problems/{kind}: a short page for people who
// follow a problem's type.
func serveProblemPage(w http.ResponseWriter, r *http.Request) {
	slug := r.PathValue("kind")
	for status, k := range problemKinds {
		if k.slug != slug {
			continue
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html>\n<title>%s — dcvaas problem</title>\n<h1>%s</h1>\n<p>HTTP status %d. %s</p>\n<p>Every dcvaas error is an RFC 9457 problem (application/problem+json) whose <code>type</code> is this page; its <code>detail</code> says what went wrong in this request, <code>requestId</code> finds it in the server's log.</p>\n",
			html.EscapeString(k.title), html.EscapeString(k.title), status, html.EscapeString(strings.ReplaceAll(k.help, "`", "")))
		return
	}
	writeRawProblem(w, r, http.StatusNotFound, "no such problem type")
}
