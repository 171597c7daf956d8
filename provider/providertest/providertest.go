// Package providertest runs fakes of the DNS providers' APIs and of an OAuth
// authorization server on loopback, speaking the vendors' documented wire
// formats: Cloudflare's v4 JSON envelopes, GoDaddy's v1 JSON, Route 53's
// REST XML and STS's query API. Tests of the provider clients, of the
// connection service and of the HTTP API all use them; nothing here ever
// talks to the internet.
package providertest

import (
	"net/http"
	"strings"
	"sync"
)

// Record is a DNS record as a fake holds it, for tests to seed and inspect.
type Record struct {
	Type    string
	Name    string // FQDN, no trailing dot
	Content string
	TTL     int
	Proxied bool // Cloudflare only
}

// faults makes the next requests fail with given statuses, to test how
// callers deal with a provider's outage.
type faults struct {
	mu    sync.Mutex
	queue []int
}

// FailNext makes the next len(statuses) requests answer with these
// statuses; a 0 lets its request through, to fail a later step of a sequence.
func (f *faults) FailNext(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, statuses...)
}

func (f *faults) take() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		return 0
	}
	s := f.queue[0]
	f.queue = f.queue[1:]
	return s
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return h[7:]
	}
	return ""
}

func canonical(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }
