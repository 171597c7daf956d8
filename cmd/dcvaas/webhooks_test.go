package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// hookReceiver is a webhook receiver for the end-to-end tests: it verifies
// every request with the Standard Webhooks library and keeps the events.
type hookReceiver struct {
	mu     sync.Mutex
	events []map[string]any
	bad    []string
	secret string
}

func newHookReceiver(t *testing.T) (*hookReceiver, string) {
	r := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var e map[string]any
		json.Unmarshal(body, &e)
		r.events = append(r.events, e)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hook"
}

// addWebhook creates a webhook on the running server for the receiver.
func (r *hookReceiver) add(t *testing.T, base, token, url string) {
	t.Helper()
	status, w := call(t, "POST", base+"/api/webhooks", token, map[string]any{"url": url})
	if status != http.StatusCreated {
		t.Fatalf("create webhook: %d %v", status, w)
	}
	r.mu.Lock()
	r.secret = w["secret"].(string)
	r.mu.Unlock()
}

// wantHookEvents waits for the domain's lifecycle events, signed and
// verified, with the certificates' serials.
func (r *hookReceiver) want(t *testing.T, domainID, oldSerial, newSerial string) {
	t.Helper()
	want := []string{"domain.created", "domain.verified", "certificate.issued", "certificate.renewed"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		var types []string
		serials := map[string]string{}
		for _, e := range r.events {
			data, _ := e["data"].(map[string]any)
			dom, _ := data["domain"].(map[string]any)
			if dom["id"] != domainID {
				continue
			}
			types = append(types, e["type"].(string))
			if s, ok := data["serialNumber"].(string); ok {
				serials[e["type"].(string)] = s
			}
		}
		bad := slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("deliveries that do not verify: %v", bad)
		}
		ok := true
		for _, w := range want {
			ok = ok && slices.Contains(types, w)
		}
		if ok {
			if serials["certificate.issued"] != oldSerial || serials["certificate.renewed"] != newSerial {
				t.Fatalf("serials in webhooks %v, want issued %s renewed %s", serials, oldSerial, newSerial)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook receiver got %v, want %v", types, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
