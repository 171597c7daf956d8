package providertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// GoDaddy fakes the v1 Domains API: domains and their DNS records.
type GoDaddy struct {
	faults
	srv *httptest.Server

	mu      sync.Mutex
	keys    map[string]bool // "sso-key KEY:SECRET" and "Bearer TOKEN" values
	domains map[string][]gdRecord
}

type gdRecord struct {
	Type string `json:"type"`
	Name string `json:"name"` // relative: "@", "_acme-challenge.shop"
	Data string `json:"data"`
	TTL  int    `json:"ttl"`
}

// NewGoDaddy starts a fake, stopped when the test ends.
func NewGoDaddy(t testing.TB) *GoDaddy {
	f := &GoDaddy{keys: map[string]bool{}, domains: map[string][]gdRecord{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the API base, as DCVAAS_GODADDY_API_URL would hold it.
func (f *GoDaddy) URL() string { return f.srv.URL }

// AddKey makes an API key and secret valid.
func (f *GoDaddy) AddKey(key, secret string) {
	f.mu.Lock()
	f.keys["sso-key "+key+":"+secret] = true
	f.mu.Unlock()
}

// AddToken makes an OAuth access token valid.
func (f *GoDaddy) AddToken(token string) { f.mu.Lock(); f.keys["Bearer "+token] = true; f.mu.Unlock() }

// RevokeToken invalidates an OAuth access token.
func (f *GoDaddy) RevokeToken(token string) {
	f.mu.Lock()
	delete(f.keys, "Bearer "+token)
	f.mu.Unlock()
}

// AddDomain adds an active domain with DNS hosted at GoDaddy.
func (f *GoDaddy) AddDomain(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.domains[name] = []gdRecord{{Type: "A", Name: "@", Data: "192.0.2.1", TTL: 600}}
}

// AddRecord seeds a record; r.Name is the FQDN.
func (f *GoDaddy) AddRecord(domain string, r Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.domains[domain] = append(f.domains[domain], gdRecord{Type: r.Type, Name: relative(r.Name, domain), Data: r.Content, TTL: r.TTL})
}

// Records returns the records at the FQDN name.
func (f *GoDaddy) Records(name string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for d, rs := range f.domains {
		for _, r := range rs {
			if fq := fqdn(r.Name, d); fq == canonical(name) {
				out = append(out, Record{Type: r.Type, Name: fq, Content: r.Data, TTL: r.TTL})
			}
		}
	}
	return out
}

func relative(name, zone string) string {
	name = canonical(name)
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}

func fqdn(rel, zone string) string {
	if rel == "@" {
		return zone
	}
	return canonical(rel) + "." + zone
}

func (f *GoDaddy) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg})
}

func (f *GoDaddy) serve(w http.ResponseWriter, r *http.Request) {
	if s := f.take(); s != 0 {
		f.fail(w, s, "INTERNAL_SERVER_ERROR", "injected failure")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.keys[r.Header.Get("Authorization")] {
		f.fail(w, http.StatusUnauthorized, "UNABLE_TO_AUTHENTICATE", "Unable to authenticate your API Key and/or Secret.")
		return
	}
	// Names in the path are escaped by the client; split the raw path.
	parts := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i := range parts {
		parts[i], _ = url.PathUnescape(parts[i])
	}
	if len(parts) < 2 || parts[0] != "v1" || parts[1] != "domains" {
		f.fail(w, http.StatusNotFound, "NOT_FOUND", "Not found")
		return
	}
	if len(parts) == 2 && r.Method == http.MethodGet {
		f.listDomains(w, r)
		return
	}
	domain := parts[2]
	recs, ok := f.domains[domain]
	if !ok {
		f.fail(w, http.StatusNotFound, "UNKNOWN_DOMAIN", "The given domain is not registered, or does not have a zone file")
		return
	}
	switch {
	case len(parts) == 4 && parts[3] == "records" && r.Method == http.MethodGet:
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		offset, _ := strconv.Atoi(q.Get("offset"))
		if limit <= 0 {
			limit = len(recs)
		}
		from, to := min(offset, len(recs)), min(offset+limit, len(recs))
		f.json(w, recs[from:to])
	case len(parts) == 6 && parts[3] == "records" && r.Method == http.MethodPut:
		typ, name := parts[4], parts[5]
		var in []gdRecord
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in) == 0 {
			f.fail(w, http.StatusBadRequest, "INVALID_BODY", "Request body doesn't fulfill schema")
			return
		}
		for _, rec := range in {
			if rec.TTL < 600 {
				f.fail(w, http.StatusUnprocessableEntity, "INVALID_BODY", "Request body doesn't fulfill schema, see details in `fields`")
				return
			}
		}
		kept := recs[:0:0]
		for _, rec := range recs {
			if strings.EqualFold(rec.Name, name) {
				if rec.Type == typ {
					continue
				}
				if typ == "CNAME" || rec.Type == "CNAME" {
					f.fail(w, http.StatusUnprocessableEntity, "DUPLICATE_RECORD", "Another record with the same attributes already exists")
					return
				}
			}
			kept = append(kept, rec)
		}
		for _, rec := range in {
			kept = append(kept, gdRecord{Type: typ, Name: name, Data: rec.Data, TTL: rec.TTL})
		}
		f.domains[domain] = kept
		w.WriteHeader(http.StatusOK)
	case len(parts) == 6 && parts[3] == "records" && r.Method == http.MethodDelete:
		typ, name := parts[4], parts[5]
		kept := recs[:0:0]
		for _, rec := range recs {
			if !(rec.Type == typ && strings.EqualFold(rec.Name, name)) {
				kept = append(kept, rec)
			}
		}
		if len(kept) == len(recs) {
			f.fail(w, http.StatusNotFound, "NOT_FOUND", "The requested record was not found")
			return
		}
		f.domains[domain] = kept
		w.WriteHeader(http.StatusNoContent)
	default:
		f.fail(w, http.StatusNotFound, "NOT_FOUND", "Not found")
	}
}

func (f *GoDaddy) listDomains(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(f.domains))
	for d := range f.domains {
		names = append(names, d)
	}
	sort.Strings(names)
	marker := r.URL.Query().Get("marker")
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	out := []map[string]any{}
	for i, d := range names {
		if d <= marker || (limit > 0 && len(out) == limit) {
			continue
		}
		out = append(out, map[string]any{"domainId": 1000 + i, "domain": d, "status": "ACTIVE", "expires": "2030-01-01T00:00:00.000Z"})
	}
	f.json(w, out)
}

func (f *GoDaddy) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
