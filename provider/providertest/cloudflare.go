package providertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Cloudflare fakes the v4 API's zones and dns_records endpoints.
type Cloudflare struct {
	faults
	srv *httptest.Server

	mu      sync.Mutex
	tokens  map[string]bool
	zones   []cfZone
	records map[string][]*cfRecord // by zone id
	nextID  int
	perPage int

	// OnCNAME, when set, learns of every CNAME created or changed through
	// the API (its name and target, as sent), so that a test can publish it
	// in the customers' DNS its resolvers ask (e.g. acmetest.DNS.Delegate),
	// as Cloudflare's nameservers would. It runs before the API answers,
	// with the fake locked: it must not call the fake.
	OnCNAME func(name, target string)
}

// SetPerPage caps zone pages, to exercise paging (default 50).
func (f *Cloudflare) SetPerPage(n int) { f.mu.Lock(); f.perPage = n; f.mu.Unlock() }

type cfZone struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type cfRecord struct {
	ID       string `json:"id"`
	ZoneID   string `json:"zone_id"`
	ZoneName string `json:"zone_name"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Content  string `json:"content"`
	TTL      int    `json:"ttl"`
	Proxied  bool   `json:"proxied"`
	Comment  string `json:"comment,omitempty"`
}

// NewCloudflare starts a fake, stopped when the test ends.
func NewCloudflare(t testing.TB) *Cloudflare {
	f := &Cloudflare{tokens: map[string]bool{}, records: map[string][]*cfRecord{}, perPage: 50}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the API base, as DCVAAS_CLOUDFLARE_API_URL would hold it.
func (f *Cloudflare) URL() string { return f.srv.URL + "/client/v4" }

// AddToken makes token valid; RevokeToken makes it invalid again.
func (f *Cloudflare) AddToken(token string) { f.mu.Lock(); f.tokens[token] = true; f.mu.Unlock() }

// RevokeToken invalidates token.
func (f *Cloudflare) RevokeToken(token string) { f.mu.Lock(); delete(f.tokens, token); f.mu.Unlock() }

// AddZone adds a zone and returns its id.
func (f *Cloudflare) AddZone(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("%032x", f.nextID)
	f.zones = append(f.zones, cfZone{ID: id, Name: name, Status: "active"})
	return id
}

// AddRecord seeds a record into the zone named zone.
func (f *Cloudflare) AddRecord(zone string, r Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, z := range f.zones {
		if z.Name == zone {
			f.nextID++
			f.records[z.ID] = append(f.records[z.ID], &cfRecord{ID: fmt.Sprintf("%032x", f.nextID), ZoneID: z.ID, ZoneName: z.Name,
				Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Proxied: r.Proxied})
			return
		}
	}
	panic("providertest: no zone " + zone)
}

// Records returns the records at name, in any zone.
func (f *Cloudflare) Records(name string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, rs := range f.records {
		for _, r := range rs {
			if canonical(r.Name) == canonical(name) {
				out = append(out, Record{Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Proxied: r.Proxied})
			}
		}
	}
	return out
}

func (f *Cloudflare) reply(w http.ResponseWriter, status int, result any, info map[string]int, errs ...map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if errs == nil {
		errs = []map[string]any{}
	}
	body := map[string]any{"success": status < 300, "errors": errs, "messages": []any{}, "result": result}
	if info != nil {
		body["result_info"] = info
	}
	json.NewEncoder(w).Encode(body)
}

func (f *Cloudflare) fail(w http.ResponseWriter, status, code int, msg string) {
	f.reply(w, status, nil, nil, map[string]any{"code": code, "message": msg})
}

func (f *Cloudflare) serve(w http.ResponseWriter, r *http.Request) {
	if s := f.take(); s != 0 {
		f.fail(w, s, 1000, "injected failure")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.tokens[bearer(r)] {
		f.fail(w, http.StatusForbidden, 10000, "Authentication error")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && path == "/zones":
		f.listZones(w, r)
	case len(parts) >= 3 && parts[0] == "zones" && parts[2] == "dns_records":
		zoneIdx := -1
		for i, z := range f.zones {
			if z.ID == parts[1] {
				zoneIdx = i
			}
		}
		if zoneIdx < 0 {
			f.fail(w, http.StatusNotFound, 7003, "Could not route to /zones/"+parts[1]+"/dns_records, perhaps your object identifier is invalid?")
			return
		}
		f.dnsRecords(w, r, f.zones[zoneIdx], parts[3:])
	default:
		f.fail(w, http.StatusNotFound, 7000, "No route for that URI")
	}
}

func (f *Cloudflare) listZones(w http.ResponseWriter, r *http.Request) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	per = min(max(per, 5), f.perPage)
	total := len(f.zones)
	from, to := min((page-1)*per, total), min(page*per, total)
	f.reply(w, http.StatusOK, f.zones[from:to], map[string]int{"page": page, "per_page": per, "count": to - from,
		"total_count": total, "total_pages": (total + per - 1) / per})
}

func (f *Cloudflare) dnsRecords(w http.ResponseWriter, r *http.Request, z cfZone, rest []string) {
	recs := f.records[z.ID]
	switch {
	case r.Method == http.MethodGet && len(rest) == 0:
		name := r.URL.Query().Get("name")
		out := []*cfRecord{}
		for _, rec := range recs {
			if name == "" || canonical(rec.Name) == canonical(name) {
				out = append(out, rec)
			}
		}
		f.reply(w, http.StatusOK, out, map[string]int{"page": 1, "per_page": 100, "count": len(out), "total_count": len(out), "total_pages": 1})
	case (r.Method == http.MethodPost && len(rest) == 0) || (r.Method == http.MethodPut && len(rest) == 1):
		var in cfRecord
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Type == "" || in.Name == "" || in.Content == "" {
			f.fail(w, http.StatusBadRequest, 9000, "DNS record type, name and content are required")
			return
		}
		if in.TTL != 1 && (in.TTL < 60 || in.TTL > 86400) {
			f.fail(w, http.StatusBadRequest, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
			return
		}
		var target *cfRecord
		if len(rest) == 1 {
			for _, rec := range recs {
				if rec.ID == rest[0] {
					target = rec
				}
			}
			if target == nil {
				f.fail(w, http.StatusNotFound, 81044, "Record does not exist.")
				return
			}
		}
		// A CNAME shares its name with no other record (RFC 1034 §3.6.2).
		for _, rec := range recs {
			if rec != target && canonical(rec.Name) == canonical(in.Name) && (rec.Type == "CNAME" || in.Type == "CNAME") {
				f.fail(w, http.StatusBadRequest, 81053, "An A, AAAA, or CNAME record with that host already exists.")
				return
			}
		}
		if target == nil {
			f.nextID++
			target = &cfRecord{ID: fmt.Sprintf("%032x", f.nextID), ZoneID: z.ID, ZoneName: z.Name}
			f.records[z.ID] = append(f.records[z.ID], target)
		}
		target.Type, target.Name, target.Content, target.TTL, target.Proxied, target.Comment = in.Type, in.Name, in.Content, in.TTL, in.Proxied, in.Comment
		if in.Type == "CNAME" && f.OnCNAME != nil {
			f.OnCNAME(in.Name, in.Content)
		}
		f.reply(w, http.StatusOK, target, nil)
	case r.Method == http.MethodDelete && len(rest) == 1:
		for i, rec := range recs {
			if rec.ID == rest[0] {
				f.records[z.ID] = append(recs[:i:i], recs[i+1:]...)
				f.reply(w, http.StatusOK, map[string]string{"id": rec.ID}, nil)
				return
			}
		}
		f.fail(w, http.StatusNotFound, 81044, "Record does not exist.")
	default:
		f.fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}
