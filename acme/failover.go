package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	acmez "github.com/mholt/acmez/v3/acme"
)

// failure says whether an error at one CA should send the order to the
// next CA. The issue names rate limiting, 5xx, connection failures and
// timeouts; a CAA refusal by the CA itself (its view of CAA may differ from
// ours) is one more. Everything else — a failed validation above all — is
// about the domain, and another CA would only fail it again and spend the
// customer's failed-validation budget.
type failure int

const (
	failNone failure = iota
	failRateLimited
	failUnavailable
	failUnreachable
	failTimeout
	failCAA
)

func (f failure) String() string {
	return [...]string{"", "rate limited", "unavailable", "unreachable", "timed out", "refused by CAA"}[f]
}

// classify sorts err from an attempt at one CA. parent is the caller's
// context: when it has ended, the job is being stopped, which is nobody's
// fault and no reason to move on.
func classify(parent context.Context, err error, rec *recorder) failure {
	if parent.Err() != nil {
		return failNone
	}
	var p acmez.Problem
	if errors.As(err, &p) {
		switch {
		case p.Type == acmez.ProblemTypeRateLimited:
			return failRateLimited
		case p.Type == acmez.ProblemTypeCAA:
			return failCAA
		case p.Type == acmez.ProblemTypeServerInternal, p.Status >= 500:
			return failUnavailable
		}
		return failNone
	}
	if rec.lastStatus() >= 500 {
		// acmez reports a 5xx without a problem document as plain text.
		return failUnavailable
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failTimeout
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return failUnreachable
	}
	return failNone
}

// recorder wraps the transport of one attempt at one CA. acmez returns
// problems without their HTTP response, but a CA's Retry-After lives in a
// header (RFC 8555 §6.6 for rateLimited, RFC 9110 §10.2.3 for 503): the
// recorder keeps the last one seen, and the last status.
type recorder struct {
	base http.RoundTripper
	now  func() time.Time

	mu         sync.Mutex
	status     int
	retryAfter time.Time // from the last error response
	pollAfter  time.Time // from the last response of any kind
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ra := parseRetryAfter(resp.Header.Get("Retry-After"), r.now())
	r.mu.Lock()
	r.status, r.pollAfter = resp.StatusCode, ra
	if resp.StatusCode >= 400 {
		r.retryAfter = ra
	}
	r.mu.Unlock()
	return resp, nil
}

func (r *recorder) lastStatus() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// lastRetryAfter is the Retry-After of the last error response; zero when
// it had none.
func (r *recorder) lastRetryAfter() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retryAfter
}

func (r *recorder) lastPollAfter() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pollAfter
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Time {
	if v == "" {
		return time.Time{}
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return now.Add(time.Duration(s) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Time{}
}

// newTransport trusts the system's roots plus bundle, for the CAs' HTTPS.
func newTransport(bundle []byte) (*http.Transport, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(bundle) > 0 && !pool.AppendCertsFromPEM(bundle) {
		return nil, fmt.Errorf("acme: CA bundle holds no PEM certificate")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}
