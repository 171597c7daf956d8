package providertest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const r53NS = "https://route53.amazonaws.com/doc/2013-04-01/"

// Route53 fakes Route 53's REST XML API (hosted zones, record sets, changes)
// and, on a second server, STS AssumeRole. Requests must carry a valid
// Signature Version 4 for a known key, or for temporary credentials that
// the fake STS issued.
type Route53 struct {
	faults
	srv, sts *httptest.Server

	mu          sync.Mutex
	keys        map[string]awsKey
	roles       map[string]string // role ARN → required external id
	zones       []*r53Zone
	changes     map[string]int // change id → GetChange calls left that say PENDING
	n           int
	inSyncAfter int
	assumed     int
	gets        int
}

// SetInSyncAfter sets how many GetChange calls answer PENDING before INSYNC
// (default 1, so that waiting is exercised).
func (f *Route53) SetInSyncAfter(n int) { f.mu.Lock(); f.inSyncAfter = n; f.mu.Unlock() }

// Assumed counts successful AssumeRole calls.
func (f *Route53) Assumed() int { f.mu.Lock(); defer f.mu.Unlock(); return f.assumed }

// ChangePolls counts GetChange calls: how often a client asked whether its
// change is in sync.
func (f *Route53) ChangePolls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.gets }

type r53Zone struct {
	id, name string
	private  bool
	sets     []*r53Set
}

type r53Set struct {
	Name            string       `xml:"Name"`
	Type            string       `xml:"Type"`
	SetIdentifier   string       `xml:"SetIdentifier,omitempty"`
	TTL             int64        `xml:"TTL,omitempty"`
	ResourceRecords []r53Value   `xml:"ResourceRecords>ResourceRecord"`
	AliasTarget     *r53AliasTgt `xml:"AliasTarget,omitempty"`
}

type r53Value struct {
	Value string `xml:"Value"`
}

type r53AliasTgt struct {
	HostedZoneId         string `xml:"HostedZoneId"`
	DNSName              string `xml:"DNSName"`
	EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
}

// NewRoute53 starts the fake Route 53 and STS servers, stopped when the test ends.
func NewRoute53(t testing.TB) *Route53 {
	f := &Route53{keys: map[string]awsKey{}, roles: map[string]string{}, changes: map[string]int{}, inSyncAfter: 1}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.sts = httptest.NewServer(http.HandlerFunc(f.serveSTS))
	t.Cleanup(f.srv.Close)
	t.Cleanup(f.sts.Close)
	return f
}

// URL is the Route 53 endpoint, as DCVAAS_ROUTE53_API_URL would hold it.
func (f *Route53) URL() string { return f.srv.URL }

// STSURL is the STS endpoint.
func (f *Route53) STSURL() string { return f.sts.URL }

// AddKey makes an IAM user's access key valid.
func (f *Route53) AddKey(id, secret string) {
	f.mu.Lock()
	f.keys[id] = awsKey{secret: secret, identity: "arn:aws:iam::111111111111:user/" + id}
	f.mu.Unlock()
}

// AddRole lets any known key assume roleARN with externalID.
func (f *Route53) AddRole(roleARN, externalID string) {
	f.mu.Lock()
	f.roles[roleARN] = externalID
	f.mu.Unlock()
}

// AddZone adds a hosted zone with its SOA and NS sets and returns its id.
func (f *Route53) AddZone(name string, private bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	z := &r53Zone{id: fmt.Sprintf("Z%08dFAKE", f.n), name: name + ".", private: private}
	z.sets = []*r53Set{
		{Name: z.name, Type: "NS", TTL: 172800, ResourceRecords: []r53Value{{"ns-1.awsdns-01.org."}}},
		{Name: z.name, Type: "SOA", TTL: 900, ResourceRecords: []r53Value{{"ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}}},
	}
	f.zones = append(f.zones, z)
	return z.id
}

// AddRecord seeds a record set into the zone named zone.
func (f *Route53) AddRecord(zone string, r Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, z := range f.zones {
		if z.name == zone+"." {
			z.sets = append(z.sets, &r53Set{Name: canonical(r.Name) + ".", Type: r.Type, TTL: int64(r.TTL), ResourceRecords: []r53Value{{r.Content}}})
			return
		}
	}
	panic("providertest: no zone " + zone)
}

// Records returns the record sets at name, one Record per value.
func (f *Route53) Records(name string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, z := range f.zones {
		for _, s := range z.sets {
			if canonical(s.Name) == canonical(name) {
				for _, v := range s.ResourceRecords {
					out = append(out, Record{Type: s.Type, Name: canonical(s.Name), Content: v.Value, TTL: int(s.TTL)})
				}
			}
		}
	}
	return out
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(v)
}

type awsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func awsError(w http.ResponseWriter, ns string, status int, code, msg string) {
	e := awsErrorResponse{Xmlns: ns, RequestID: "fake-request-id"}
	e.Error.Type, e.Error.Code, e.Error.Message = "Sender", code, msg
	if status >= 500 {
		e.Error.Type = "Receiver"
	}
	writeXML(w, status, e)
}

func (f *Route53) serve(w http.ResponseWriter, r *http.Request) {
	if s := f.take(); s != 0 {
		awsError(w, r53NS, s, "ServiceUnavailable", "injected failure")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, code := checkSigV4(r, f.keys, "route53"); code != "" {
		awsError(w, r53NS, http.StatusForbidden, code, "The security token included in the request is invalid.")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[1] == "hostedzone" && r.Method == http.MethodGet:
		f.listZones(w)
	case len(parts) == 4 && parts[1] == "hostedzone" && parts[3] == "rrset":
		z := f.zone(parts[2])
		if z == nil {
			awsError(w, r53NS, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+parts[2])
		} else if r.Method == http.MethodGet {
			f.listSets(w, r, z)
		} else if r.Method == http.MethodPost {
			f.changeSets(w, r, z)
		}
	case len(parts) == 3 && parts[1] == "change" && r.Method == http.MethodGet:
		f.gets++
		left, ok := f.changes[parts[2]]
		if !ok {
			awsError(w, r53NS, http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist.")
			return
		}
		status := "INSYNC"
		if left > 0 {
			status = "PENDING"
			f.changes[parts[2]] = left - 1
		}
		writeXML(w, http.StatusOK, changeResponse("GetChangeResponse", parts[2], status))
	default:
		awsError(w, r53NS, http.StatusNotFound, "UnknownOperationException", "unknown operation")
	}
}

func (f *Route53) zone(id string) *r53Zone {
	for _, z := range f.zones {
		if z.id == id {
			return z
		}
	}
	return nil
}

func (f *Route53) listZones(w http.ResponseWriter) {
	type hz struct {
		ID        string `xml:"Id"`
		Name      string `xml:"Name"`
		CallerRef string `xml:"CallerReference"`
		Private   bool   `xml:"Config>PrivateZone"`
		Count     int    `xml:"ResourceRecordSetCount"`
	}
	out := struct {
		XMLName     xml.Name `xml:"ListHostedZonesResponse"`
		Xmlns       string   `xml:"xmlns,attr"`
		Zones       []hz     `xml:"HostedZones>HostedZone"`
		IsTruncated bool     `xml:"IsTruncated"`
		MaxItems    int      `xml:"MaxItems"`
	}{Xmlns: r53NS, MaxItems: 100}
	for _, z := range f.zones {
		out.Zones = append(out.Zones, hz{ID: "/hostedzone/" + z.id, Name: z.name, CallerRef: "ref-" + z.id, Private: z.private, Count: len(z.sets)})
	}
	writeXML(w, http.StatusOK, out)
}

// sortKey orders record sets as Route 53 lists them: by name with the
// labels reversed (com.example.www), then by type.
func sortKey(name, typ string) string {
	labels := strings.Split(canonical(name), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + " " + typ
}

func (f *Route53) listSets(w http.ResponseWriter, r *http.Request, z *r53Zone) {
	q := r.URL.Query()
	maxItems, _ := strconv.Atoi(q.Get("maxitems"))
	if maxItems <= 0 {
		maxItems = 300
	}
	sets := slices.Clone(z.sets)
	slices.SortFunc(sets, func(a, b *r53Set) int { return strings.Compare(sortKey(a.Name, a.Type), sortKey(b.Name, b.Type)) })
	start := ""
	if q.Get("name") != "" {
		start = sortKey(q.Get("name"), q.Get("type"))
	}
	out := struct {
		XMLName        xml.Name  `xml:"ListResourceRecordSetsResponse"`
		Xmlns          string    `xml:"xmlns,attr"`
		Sets           []*r53Set `xml:"ResourceRecordSets>ResourceRecordSet"`
		IsTruncated    bool      `xml:"IsTruncated"`
		NextRecordName string    `xml:"NextRecordName,omitempty"`
		NextRecordType string    `xml:"NextRecordType,omitempty"`
		MaxItems       int       `xml:"MaxItems"`
	}{Xmlns: r53NS, MaxItems: maxItems, Sets: []*r53Set{}}
	for _, s := range sets {
		if sortKey(s.Name, s.Type) < start {
			continue
		}
		if len(out.Sets) == maxItems {
			out.IsTruncated, out.NextRecordName, out.NextRecordType = true, s.Name, s.Type
			break
		}
		out.Sets = append(out.Sets, s)
	}
	writeXML(w, http.StatusOK, out)
}

func changeResponse(root, id, status string) any {
	return struct {
		XMLName xml.Name
		Xmlns   string `xml:"xmlns,attr"`
		ID      string `xml:"ChangeInfo>Id"`
		Status  string `xml:"ChangeInfo>Status"`
		At      string `xml:"ChangeInfo>SubmittedAt"`
	}{XMLName: xml.Name{Local: root}, Xmlns: r53NS, ID: "/change/" + id, Status: status, At: "2026-11-01T12:00:00.000Z"}
}

// changeSets applies a change batch all or nothing, with Route 53's rules:
// DELETE must match the set exactly, CREATE must not find one, and a CNAME
// shares its name with no other set.
func (f *Route53) changeSets(w http.ResponseWriter, r *http.Request, z *r53Zone) {
	var req struct {
		Changes []struct {
			Action string `xml:"Action"`
			Set    r53Set `xml:"ResourceRecordSet"`
		} `xml:"ChangeBatch>Changes>Change"`
	}
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Changes) == 0 {
		awsError(w, r53NS, http.StatusBadRequest, "InvalidInput", "Invalid XML")
		return
	}
	sets := slices.Clone(z.sets)
	for _, c := range req.Changes {
		s := c.Set
		s.Name = canonical(s.Name) + "."
		idx := slices.IndexFunc(sets, func(o *r53Set) bool {
			return o.Name == s.Name && o.Type == s.Type && o.SetIdentifier == s.SetIdentifier
		})
		bad := func(msg string) {
			awsError(w, r53NS, http.StatusBadRequest, "InvalidChangeBatch", "["+msg+"]")
		}
		switch c.Action {
		case "DELETE":
			if idx < 0 {
				bad(fmt.Sprintf("Tried to delete resource record set [name='%s', type='%s'] but it was not found", s.Name, s.Type))
				return
			}
			if fmt.Sprint(*sets[idx]) != fmt.Sprint(s) {
				bad(fmt.Sprintf("Tried to delete resource record set [name='%s', type='%s'] but the values provided do not match the current values", s.Name, s.Type))
				return
			}
			sets = slices.Delete(sets, idx, idx+1)
		case "CREATE", "UPSERT":
			for _, o := range sets {
				if o.Name == s.Name && o.Type != s.Type && (o.Type == "CNAME" || s.Type == "CNAME") {
					bad(fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted as it conflicts with other records with the same DNS name in zone %s", s.Type, s.Name, z.name))
					return
				}
			}
			if idx >= 0 && c.Action == "CREATE" {
				bad(fmt.Sprintf("Tried to create resource record set [name='%s', type='%s'] but it already exists", s.Name, s.Type))
				return
			}
			if idx >= 0 {
				sets[idx] = &s
			} else {
				sets = append(sets, &s)
			}
		default:
			awsError(w, r53NS, http.StatusBadRequest, "InvalidInput", "Invalid action "+c.Action)
			return
		}
	}
	z.sets = sets
	f.n++
	id := fmt.Sprintf("C%08dFAKE", f.n)
	f.changes[id] = f.inSyncAfter
	writeXML(w, http.StatusOK, changeResponse("ChangeResourceRecordSetsResponse", id, "PENDING"))
}
