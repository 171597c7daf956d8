package acmetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas/sandbox"
)

// FaultMode is how a CA misbehaves.
type FaultMode int

const (
	// FaultNone: the CA works.
	FaultNone FaultMode = iota
	// FaultRateLimited: newOrder answers 429 with the ACME rateLimited
	// problem (RFC 8555 §6.7) and Retry-After, as Let's Encrypt does when
	// an account or name is over a limit. Everything else works.
	FaultRateLimited
	// FaultUnavailable: every request answers 503 with a serverInternal
	// problem and Retry-After.
	FaultUnavailable
	// FaultDown: every connection is dropped without an answer.
	FaultDown
	// FaultRefuseReplaces: a newOrder naming the certificate it replaces
	// (RFC 9773 §5) answers 500 with a serverInternal problem, as Pebble
	// v2.10.1 does when it cannot match the ARI id to a certificate: it
	// looks the serial up without the 0x00 that DER puts before a serial
	// whose first byte is 0x80 or more (1 in 256 of its certificates).
	// Orders without replaces work.
	FaultRefuseReplaces
)

// Fault is a misbehaviour and the Retry-After it announces (none when 0).
type Fault struct {
	Mode       FaultMode
	RetryAfter time.Duration
}

// NewOrder is a newOrder request as the CA received it (RFC 8555 §7.4,
// RFC 9773 §5 for replaces).
type NewOrder struct {
	Identifiers []string
	Replaces    string
	Profile     string
	// Refused is set when a fault answered the request.
	Refused bool
}

// front sits before Pebble's handler: it injects faults and records the
// newOrder requests, so tests can see what a client asked for.
type front struct {
	next http.Handler

	mu        sync.Mutex
	fault     Fault
	n         int
	newOrders []NewOrder
}

func (f *front) set(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

func (f *front) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *front) orders() []NewOrder {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]NewOrder(nil), f.newOrders...)
}

// newOrderPath is Pebble's newOrder endpoint.
const newOrderPath = sandbox.NewOrderPath

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	fault := f.fault
	f.mu.Unlock()

	isNewOrder := r.Method == http.MethodPost && r.URL.Path == newOrderPath
	var order *NewOrder
	if isNewOrder {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		order = decodeNewOrder(body)
	}
	record := func(refused bool) {
		if order == nil {
			return
		}
		order.Refused = refused
		f.mu.Lock()
		f.newOrders = append(f.newOrders, *order)
		f.mu.Unlock()
	}

	switch {
	case fault.Mode == FaultDown:
		// Aborting the handler closes the connection without a response:
		// the client sees the connection fail, as with a dead server.
		panic(http.ErrAbortHandler)
	case fault.Mode == FaultUnavailable:
		record(true)
		problem(w, http.StatusServiceUnavailable, "urn:ietf:params:acme:error:serverInternal", "the CA is down for maintenance (test fault)", fault.RetryAfter)
		return
	case fault.Mode == FaultRateLimited && isNewOrder:
		record(true)
		problem(w, http.StatusTooManyRequests, "urn:ietf:params:acme:error:rateLimited", "too many new orders recently (test fault)", fault.RetryAfter)
		return
	case fault.Mode == FaultRefuseReplaces && isNewOrder && order.Replaces != "":
		record(true)
		problem(w, http.StatusInternalServerError, "urn:ietf:params:acme:error:serverInternal",
			"could not find an order for the given certificate (test fault)", fault.RetryAfter)
		return
	}
	record(false)
	f.next.ServeHTTP(w, r)
}

func problem(w http.ResponseWriter, status int, typ, detail string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":%q,"detail":%q,"status":%d}`, typ, detail, status)
}

// decodeNewOrder reads the payload of a flattened JWS (RFC 7515 §7.2.2).
func decodeNewOrder(body []byte) *NewOrder {
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil {
		return &NewOrder{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jws.Payload, "="))
	if err != nil {
		return &NewOrder{}
	}
	var p struct {
		Identifiers []struct {
			Value string `json:"value"`
		} `json:"identifiers"`
		Replaces string `json:"replaces"`
		Profile  string `json:"profile"`
	}
	json.Unmarshal(raw, &p)
	o := &NewOrder{Replaces: p.Replaces, Profile: p.Profile}
	for _, id := range p.Identifiers {
		o.Identifiers = append(o.Identifiers, id.Value)
	}
	return o
}
