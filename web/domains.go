package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/domainname"
)

// pageSize is the rows of a list page: small enough that the domains page
// stays light with 10,000 domains.
const pageSize = 50

var connectionBindingTTL = connection.BindingTTL

var domainStatuses = strs(dcvaas.DomainStatuses)

// domainRow is a domain as the pages show it.
type domainRow struct {
	*dcvaas.Domain
	// CNAMEName is the record the customer creates (the API's cnameRecord).
	CNAMEName   string
	CNAMEStatus string
}

func row(d *dcvaas.Domain) domainRow {
	return domainRow{Domain: d, CNAMEName: domainname.ChallengeName(d.Name), CNAMEStatus: string(d.Delegation())}
}

type domainsData struct {
	Items    []domainRow
	Total    int
	Query    string
	Status   string
	Statuses []string
	Offset   int
	Prev     string
	Next     string
	Poll     string
	// Form is what the Add domain form was sent with, after an error.
	Form     string
	KeyTypes []string
}

func offsetOf(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("offset"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (s *server) listDomains(r *http.Request, c *call) (*domainsData, error) {
	q := r.URL.Query()
	d := &domainsData{Query: q.Get("q"), Status: q.Get("status"), Statuses: domainStatuses, Offset: offsetOf(r), KeyTypes: domainname.KeyTypes}
	valid := d.Status == ""
	for _, st := range domainStatuses {
		valid = valid || st == d.Status
	}
	if !valid {
		return nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: "unknown status filter", Fields: map[string]string{"status": "must be one of pending_cname, issuing, active, failed"}}
	}
	ds, total, err := s.Store.ListDomains(r.Context(), c.actor.OrgID, dcvaas.DomainFilter{
		Status: dcvaas.DomainStatus(d.Status), Search: d.Query, Page: dcvaas.Page{Limit: pageSize, Offset: d.Offset},
	})
	if err != nil {
		return nil, err
	}
	d.Total = total
	for _, x := range ds {
		d.Items = append(d.Items, row(x))
	}
	link := func(off int) string {
		v := url.Values{}
		if d.Query != "" {
			v.Set("q", d.Query)
		}
		if d.Status != "" {
			v.Set("status", d.Status)
		}
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		}
		if len(v) == 0 {
			return "/domains"
		}
		return "/domains?" + v.Encode()
	}
	if d.Offset > 0 {
		d.Prev = link(max(0, d.Offset-pageSize))
	}
	if d.Offset+pageSize < total {
		d.Next = link(d.Offset + pageSize)
	}
	v := url.Values{"fragment": {"rows"}}
	for k, vs := range r.URL.Query() {
		if k != "fragment" {
			v[k] = vs
		}
	}
	d.Poll = "/domains?" + v.Encode()
	return d, nil
}

func (s *server) domains(w http.ResponseWriter, r *http.Request, c *call) {
	d, err := s.listDomains(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if r.URL.Query().Get("fragment") == "rows" {
		s.renderTemplate(w, http.StatusOK, "domains.html", "rows", d)
		return
	}
	v := s.newView(r, c, "Domains", "domains")
	v.Data = d
	s.render(w, http.StatusOK, "domains.html", v)
}

// addDomain adds a domain with the API's rules (domainname.NewDomain and
// the store's CreateDomain, which audits it and queues its DNS check).
func (s *server) addDomain(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	var wildcard *bool
	switch r.PostFormValue("includeWildcard") {
	case "true":
		t := true
		wildcard = &t
	case "false":
		f := false
		wildcard = &f
	}
	dom, err := domainname.NewDomain(r.PostFormValue("domainName"), wildcard, r.PostFormValue("keyType"), s.VerifyZone, s.AllowTLDs, c.signed.Auth.OrgSettings)
	if err == nil {
		_, err = s.Store.CreateDomain(r.Context(), c.actor, dom)
	}
	if err != nil {
		code := dcvaas.ErrorCode(err)
		if code != dcvaas.EINVALID && code != dcvaas.ECONFLICT {
			s.fail(w, r, c, err)
			return
		}
		d, lerr := s.listDomains(r, c)
		if lerr != nil {
			s.fail(w, r, c, lerr)
			return
		}
		d.Form = r.PostFormValue("domainName")
		v := s.newView(r, c, "Domains", "domains")
		v.Data, v.Error, v.Fields = d, dcvaas.ErrorMessage(err), fieldErrors(err)
		if code == dcvaas.ECONFLICT {
			v.Fields = map[string]string{"domainName": dcvaas.ErrorMessage(err)}
		}
		s.render(w, statusOf(code), "domains.html", v)
		return
	}
	back(w, r, "/domains/"+dom.ID, "Domain added. Create the CNAME record below.")
}

type domainData struct {
	domainRow
	Latest *dcvaas.Job
	Cert   *dcvaas.Certificate
	Jobs   []*dcvaas.Job
	// Timeline is the domain's jobs and audit entries, newest first.
	Timeline []timelineItem
	// Connections are the organization's usable DNS connections, for
	// "Create it for me" while the CNAME is missing; Conflict is the one
	// whose setup found records in the way (offered to replace them).
	Connections []*dcvaas.Connection
	Conflict    string
	// KeyDownload: a private key can be read here (keys configured).
	KeyDownload bool
	// Can* say which actions the domain's status allows (the API's rules).
	CanVerify, CanIssue, CanRenew bool
}

func (s *server) loadDomain(r *http.Request, c *call) (*domainData, error) {
	ctx, org := r.Context(), c.actor.OrgID
	d, err := s.Store.FindDomain(ctx, org, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := &domainData{domainRow: row(d), KeyDownload: s.Keys != nil}
	if out.Latest, err = s.Store.LatestDomainJob(ctx, org, d.ID); err != nil {
		return nil, err
	}
	if out.Cert, err = s.Store.CurrentCertificate(ctx, org, d.ID); err != nil && dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
		return nil, err
	}
	if out.Jobs, _, err = s.Store.ListJobs(ctx, org, dcvaas.JobFilter{DomainID: d.ID, Page: dcvaas.Page{Limit: 20}}); err != nil {
		return nil, err
	}
	entries, _, err := s.Store.ListAudit(ctx, org, dcvaas.AuditFilter{EntityType: "domain", EntityID: d.ID, Page: dcvaas.Page{Limit: 20}})
	if err != nil {
		return nil, err
	}
	out.Timeline = timeline(out.Jobs, entries, s.Clock())
	if s.Connections != nil && c.actor.CanChange() && d.Delegation() == dcvaas.CNAMEMissing {
		conns, _, err := s.Connections.List(ctx, org, dcvaas.Page{Limit: 50})
		if err != nil {
			return nil, err
		}
		for _, cn := range conns {
			if cn.Status == dcvaas.ConnectionActive {
				out.Connections = append(out.Connections, cn)
			}
		}
		out.Conflict = r.URL.Query().Get("conflict")
	}
	out.CanVerify = dcvaas.ActionVerify.Allows(d.Status)
	out.CanIssue = dcvaas.ActionIssue.Allows(d.Status)
	out.CanRenew = dcvaas.ActionRenew.Allows(d.Status)
	return out, nil
}

func (s *server) domain(w http.ResponseWriter, r *http.Request, c *call) {
	d, err := s.loadDomain(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	v := s.newView(r, c, d.Name, "domains")
	v.Data = d
	s.render(w, http.StatusOK, "domain.html", v)
}

// domainStatus is the fragment the domain page polls for live updates.
func (s *server) domainStatus(w http.ResponseWriter, r *http.Request, c *call) {
	d, err := s.loadDomain(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	v := s.newView(r, c, d.Name, "domains")
	v.Data = d
	s.renderTemplate(w, http.StatusOK, "domain.html", "status", v)
}

// downloadPart serves a part of the current certificate ("fullchain" or
// "chain", the intermediates), cut as the API's ?part= cuts it.
func (s *server) downloadPart(part string) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		cert, err := s.Store.CurrentCertificate(r.Context(), c.actor.OrgID, r.PathValue("id"))
		if err == nil {
			var body []byte
			if body, err = dcvaas.ChainPart(cert.ChainPEM, part); err == nil {
				w.Header().Set("Content-Type", "application/pem-certificate-chain")
				w.Header().Set("Content-Disposition", `attachment; filename="`+part+`.pem"`)
				w.Write(body)
				return
			}
		}
		s.fail(w, r, c, err)
	}
}

// downloadKey hands an admin the private key with the API's rules
// (acme.ReadKey: admins only, audited as certificate.key_read). It is a
// POST with the CSRF token: reading a key leaves an audit entry, which no
// other site may cause.
func (s *server) downloadKey(w http.ResponseWriter, r *http.Request, c *call) {
	_, key, err := acme.ReadKey(r.Context(), s.Store, s.Keys, c.actor, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="privkey.pem"`)
	w.Write(key)
}

// domainAction queues a job with the API's rules (dcvaas.ActionVerify…).
func (s *server) domainAction(w http.ResponseWriter, r *http.Request, c *call) {
	var a dcvaas.DomainAction
	switch r.PathValue("action") {
	case "verify":
		a = dcvaas.ActionVerify
	case "issue":
		a = dcvaas.ActionIssue
	case "renew":
		a = dcvaas.ActionRenew
	default:
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTFOUND, "there is no such action"))
		return
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	id := r.PathValue("id")
	if _, err := s.Store.EnqueueDomainJob(r.Context(), c.actor, id, a.Job, a.Allowed...); err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.ECONFLICT {
			back(w, r, "/domains/"+url.PathEscape(id), dcvaas.ErrorMessage(err))
			return
		}
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/domains/"+url.PathEscape(id), "Queued: "+string(a.Job)+".")
}

func (s *server) confirmDelete(w http.ResponseWriter, r *http.Request, c *call) {
	d, err := s.loadDomain(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	v := s.newView(r, c, "Delete "+d.Name, "domains")
	v.Data = d
	s.render(w, http.StatusOK, "delete.html", v)
}

func (s *server) deleteDomain(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	if err := s.Store.DeleteDomain(r.Context(), c.actor, r.PathValue("id"), s.HardDelete); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/domains", "Domain deleted.")
}
