package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// RequestIDHeader carries a request's id: taken from the client (or a proxy
// in front) when it sent a usable one, generated otherwise, and echoed in
// the response, every log line of the request and its problem details.
const RequestIDHeader = "X-Request-Id"

// requestInfo is what the access log learns while a request runs.
type requestInfo struct {
	id    string
	orgID string // set by authenticate
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// usableID reports whether a client's id can be logged and echoed as it
// is: short, printable, no spaces or quotes.
func usableID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming responses streaming. It goes through
// ResponseController, which unwraps writers (like the metrics' recorder)
// that implement Unwrap but not Flush themselves.
func (w *statusRecorder) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog gives every request its id and writes one info line when it
// ends: method, route pattern (never the raw path, which holds ids),
// status, duration, organization and request id.
//
// Refused requests (401, 429) need no credentials to make, so their lines
// go through quiet, which writes at most a few per route and minute and
// then a count of the rest (logsample).
func accessLog(log, quiet *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !usableID(id) {
			id = newRequestID()
		}
		ri := &requestInfo{id: id}
		w.Header().Set(RequestIDHeader, id)
		orig := r
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, ri))
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		// The mux names the route on the request it saw; handlers around
		// this one (metrics) read it from theirs.
		orig.Pattern = r.Pattern
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		attrs := []any{"method", r.Method, "route", route, "status", rec.status,
			"durationMs", float64(time.Since(start).Microseconds()) / 1000}
		if ri.orgID != "" {
			attrs = append(attrs, "organizationId", ri.orgID)
		}
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusTooManyRequests {
			quiet.InfoContext(r.Context(), "http request", attrs...)
			return
		}
		log.InfoContext(r.Context(), "http request", attrs...)
	})
}

// requestIDHandler adds the request id to every log line written with a
// request's context.
type requestIDHandler struct{ slog.Handler }

// WithRequestID returns a logger whose lines written with a request's
// context (InfoContext, …) carry its requestId.
func WithRequestID(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(requestIDHandler); ok {
		return log
	}
	return slog.New(requestIDHandler{log.Handler()})
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("requestId", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
