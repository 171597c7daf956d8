package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is one attempt to deliver an event.
type Request struct {
	URL string
	// ID is the event's id: webhook-id, the same on every attempt so that
	// receivers can drop duplicates.
	ID   string
	Body []byte
	// Secrets sign the attempt, current first.
	Secrets   []string
	UserAgent string
}

// Result is what the receiver made of one attempt.
type Result struct {
	At         time.Time
	StatusCode int // 0: no answer
	// Err says why there was no (acceptable) answer: a network error, a
	// refused address, a timeout. Never holds a secret.
	Err     string
	Latency time.Duration
	// Body is the first 1 KiB of the response body.
	Body string
	// RetryAfter is the receiver's Retry-After, when it sent one.
	RetryAfter time.Duration
}

// OK reports a 2xx answer.
func (r Result) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Gone reports 410: the receiver asks never to be sent to again.
func (r Result) Gone() bool { return r.StatusCode == http.StatusGone }

// KeptBody is how much of a response body an attempt's record keeps.
const KeptBody = 1 << 10

// Send makes one attempt with client (Policy.Client): a POST of the body
// with the Standard Webhooks headers, signed at now. It reads at most
// MaxResponseBody of the answer.
func Send(ctx context.Context, client *http.Client, r Request, now func() time.Time) Result {
	start := now()
	res := Result{At: start}
	sig, err := Sign(r.Secrets, r.ID, start, r.Body)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		res.Err = "bad URL"
		return res
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", r.UserAgent)
	h.Set("webhook-id", r.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	h.Set("webhook-signature", sig)
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		res.Latency = time.Since(began)
		res.Err = describe(err)
		return res
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	resp.Body.Close()
	res.Latency = time.Since(began)
	res.StatusCode = resp.StatusCode
	res.Body = keep(body)
	res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), start)
	if !res.OK() {
		res.Err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			res.Err += " (redirects are not followed)"
		}
	}
	return res
}

// keep returns the first KeptBody bytes of b, cut at a character boundary.
func keep(b []byte) string {
	if len(b) > KeptBody {
		b = b[:KeptBody]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// describe turns a client error into words without the URL (which is the
// customer's, and shown beside it anyway).
func describe(err error) string {
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		var msg string
		for e := err; e != nil; e = errors.Unwrap(e) {
			if strings.HasPrefix(e.Error(), ErrForbiddenAddress.Error()) {
				msg = e.Error()
			}
		}
		if msg == "" {
			msg = ErrForbiddenAddress.Error()
		}
		return "refused to connect: " + msg
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout: no answer in time"
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Duration(min(n, int64(7*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
