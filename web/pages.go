package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/domainname"
	"github.com/dcvaas/dcvaas/orgname"
)

type overviewData struct {
	Counts     []statusCount
	Total      int
	FailedJobs int
	Failed     []*dcvaas.Job
	// Expiring are certificates expiring within expiringWithin.
	Expiring      []domainRow
	ExpiringTotal int
	// Missing are issued domains whose CNAME went missing.
	Missing      []domainRow
	MissingTotal int
	// Failovers are the CA failovers of the last failoverWindow.
	Failovers      []*dcvaas.AuditEntry
	FailoversTotal int
}

type statusCount struct {
	Status string
	Count  int
}

const (
	expiringWithin = 14 * 24 * time.Hour
	failoverWindow = 7 * 24 * time.Hour
	overviewRows   = 10
)

func (s *server) overview(w http.ResponseWriter, r *http.Request, c *call) {
	ctx, org := r.Context(), c.actor.OrgID
	d := &overviewData{}
	for _, st := range domainStatuses {
		_, n, err := s.Store.ListDomains(ctx, org, dcvaas.DomainFilter{Status: dcvaas.DomainStatus(st), Page: dcvaas.Page{Limit: 1}})
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		d.Counts = append(d.Counts, statusCount{st, n})
		d.Total += n
	}
	now := s.Clock()
	soon := now.Add(expiringWithin)
	since := now.Add(-failoverWindow)
	expiring, nExpiring, err := s.Store.ListDomains(ctx, org, dcvaas.DomainFilter{Status: dcvaas.DomainActive, ExpiresBefore: &soon, Page: dcvaas.Page{Limit: overviewRows}})
	if err == nil {
		var missing []*dcvaas.Domain
		missing, d.MissingTotal, err = s.Store.ListDomains(ctx, org, dcvaas.DomainFilter{CNAMEMissing: true, Page: dcvaas.Page{Limit: overviewRows}})
		for _, x := range missing {
			d.Missing = append(d.Missing, row(x))
		}
	}
	if err == nil {
		d.Failed, d.FailedJobs, err = s.Store.ListJobs(ctx, org, dcvaas.JobFilter{Status: dcvaas.JobFailed, Page: dcvaas.Page{Limit: overviewRows}})
	}
	if err == nil {
		d.Failovers, d.FailoversTotal, err = s.Store.ListAudit(ctx, org, dcvaas.AuditFilter{Action: "ca.failover", From: &since, Page: dcvaas.Page{Limit: overviewRows}})
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.ExpiringTotal = nExpiring
	for _, x := range expiring {
		d.Expiring = append(d.Expiring, row(x))
	}
	v := s.newView(r, c, "Overview", "overview")
	v.Data = d
	s.render(w, http.StatusOK, "overview.html", v)
}

type jobsData struct {
	Items      []*dcvaas.Job
	Total      int
	Status     string
	Type       string
	Statuses   []string
	Types      []string
	Prev, Next string
}

var (
	jobStatuses = strs(dcvaas.JobStatuses)
	jobTypes    = strs(dcvaas.JobTypes)
)

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func pager(base string, q url.Values, off, total int) (prev, next string) {
	link := func(o int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "offset" && k != "flash" && len(vs) > 0 && vs[0] != "" {
				v[k] = vs
			}
		}
		if o > 0 {
			v.Set("offset", strconv.Itoa(o))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if off > 0 {
		prev = link(max(0, off-pageSize))
	}
	if off+pageSize < total {
		next = link(off + pageSize)
	}
	return prev, next
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return v == ""
}

func (s *server) jobs(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	d := &jobsData{Status: q.Get("status"), Type: q.Get("type"), Statuses: jobStatuses, Types: jobTypes}
	if !oneOf(d.Status, jobStatuses) || !oneOf(d.Type, jobTypes) {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EINVALID, "unknown job status or type filter"))
		return
	}
	off := offsetOf(r)
	items, total, err := s.Store.ListJobs(r.Context(), c.actor.OrgID, dcvaas.JobFilter{
		Status: dcvaas.JobStatus(d.Status), Type: dcvaas.JobType(d.Type), Page: dcvaas.Page{Limit: pageSize, Offset: off}})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Items, d.Total = items, total
	d.Prev, d.Next = pager("/jobs", q, off, total)
	v := s.newView(r, c, "Jobs", "jobs")
	v.Data = d
	s.render(w, http.StatusOK, "jobs.html", v)
}

func (s *server) retryJob(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	if _, err := s.Store.RetryJob(r.Context(), c.actor, r.PathValue("id")); err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.ECONFLICT {
			back(w, r, "/jobs", dcvaas.ErrorMessage(err))
			return
		}
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/jobs", "Job queued again.")
}

type tokensData struct {
	// Created is a token just created: its plaintext, shown this once.
	Created    string
	Form       string
	Items      []*dcvaas.Token
	Total      int
	Current    string
	Prev, Next string
}

func (s *server) tokens(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderTokens(w, r, c, http.StatusOK, &tokensData{}, nil)
}

func (s *server) renderTokens(w http.ResponseWriter, r *http.Request, c *call, status int, d *tokensData, formErr error) {
	off := offsetOf(r)
	items, total, err := s.Store.ListTokens(r.Context(), c.actor.OrgID, dcvaas.Page{Limit: pageSize, Offset: off})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Items, d.Total, d.Current = items, total, c.actor.TokenID
	d.Prev, d.Next = pager("/tokens", r.URL.Query(), off, total)
	v := s.newView(r, c, "API tokens", "tokens")
	v.Data = d
	if formErr != nil {
		v.Error, v.Fields = dcvaas.ErrorMessage(formErr), fieldErrors(formErr)
	}
	s.render(w, status, "tokens.html", v)
}

// createToken creates a token of the signed-in user in this organization
// with the API's rules (apitoken.Mint, the store's audited CreateToken) and
// shows it once, on this response only (never in a URL).
func (s *server) createToken(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	// A token created here expires with the token this browser signed in
	// with, if that one expires: no token creates one that outlives it
	// (dcvaas.Token.Contains), and the form asks for no expiry.
	secret, t, err := apitoken.Mint(apitoken.Request{Name: r.PostFormValue("name"), Role: dcvaas.TokenRole(r.PostFormValue("role")),
		ExpiresAt: c.signed.Auth.Token.ExpiresAt}, c.actor.OrgID, c.actor.UserID, s.Clock())
	if err == nil {
		err = s.Store.CreateToken(r.Context(), c.actor, t)
	}
	if err != nil {
		if dcvaas.ErrorCode(err) != dcvaas.EINVALID {
			s.fail(w, r, c, err)
			return
		}
		s.renderTokens(w, r, c, http.StatusUnprocessableEntity, &tokensData{Form: r.PostFormValue("name")}, err)
		return
	}
	s.renderTokens(w, r, c, http.StatusCreated, &tokensData{Created: secret}, nil)
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	if err := s.Store.RevokeToken(r.Context(), c.actor, r.PathValue("id")); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/tokens", "Token revoked.")
}

type auditData struct {
	Items      []*dcvaas.AuditEntry
	Total      int
	Action     string
	Actions    []string
	User       string
	Members    []*dcvaas.Member
	From, To   string
	Prev, Next string
}

// auditEmails maps user ids to e-mails for the audit page.
func (d *auditData) Email(userID string) string {
	for _, m := range d.Members {
		if m.UserID == userID {
			return m.Email
		}
	}
	return userID
}

// audit lists the audit log filtered by action, actor (a member) and
// dates (whole UTC days), with the API's rules: an unknown action or a
// range that ends before it starts is a 422.
func (s *server) audit(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	off := offsetOf(r)
	d := &auditData{Action: q.Get("action"), Actions: dcvaas.AuditActions, User: q.Get("user"), From: q.Get("from"), To: q.Get("to")}
	f := dcvaas.AuditFilter{Action: d.Action, UserID: d.User, Page: dcvaas.Page{Limit: pageSize, Offset: off}}
	fields := map[string]string{}
	if d.Action != "" && !dcvaas.KnownAuditAction(d.Action) {
		fields["action"] = "unknown action"
	}
	day := func(name, v string, end bool) *time.Time {
		if v == "" {
			return nil
		}
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			fields[name] = "must be a date like 2026-12-01"
			return nil
		}
		if end {
			t = t.Add(24*time.Hour - time.Microsecond)
		}
		return &t
	}
	f.From, f.To = day("from", d.From, false), day("to", d.To, true)
	if f.From != nil && f.To != nil && f.From.After(*f.To) {
		fields["to"] = "must not be before from"
	}
	members, _, err := s.Store.ListMembers(r.Context(), c.actor, c.actor.OrgID, dcvaas.Page{Limit: 200})
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Members = members
	v := s.newView(r, c, "Audit log", "audit")
	v.Data = d
	if len(fields) > 0 {
		v.Error, v.Fields = "Check the filters.", fields
		s.render(w, http.StatusUnprocessableEntity, "audit.html", v)
		return
	}
	items, total, err := s.Store.ListAudit(r.Context(), c.actor.OrgID, f)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Items, d.Total = items, total
	d.Prev, d.Next = pager("/audit", q, off, total)
	s.render(w, http.StatusOK, "audit.html", v)
}

type settingsData struct {
	// Org is the organization; CanAdminister: this sign-in may change it.
	Org           *dcvaas.Organization
	CanAdminister bool
	KeyTypes      []string
	// Wildcard is the default of includeWildcard: "", "true" or "false".
	Wildcard    string
	OAuth       string
	Reason      string
	Connections []*dcvaas.Connection
	Providers   []providerView
	Enabled     bool
}

type providerView struct {
	Name, Title string
	OAuth       bool
}

func (s *server) settings(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderSettings(w, r, c, http.StatusOK, nil)
}

func (s *server) renderSettings(w http.ResponseWriter, r *http.Request, c *call, status int, formErr error) {
	q := r.URL.Query()
	d := &settingsData{OAuth: q.Get("oauth"), Reason: q.Get("reason"), Enabled: s.Connections != nil,
		CanAdminister: canAdminister(c), KeyTypes: domainname.KeyTypes}
	org, err := s.Store.FindMembership(r.Context(), c.actor.UserID, c.actor.OrgID)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d.Org = org
	if w := org.Settings.DefaultIncludeWildcard; w != nil {
		d.Wildcard = strconv.FormatBool(*w)
	}
	if s.Connections != nil {
		conns, _, err := s.Connections.List(r.Context(), c.actor.OrgID, dcvaas.Page{Limit: 200})
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		d.Connections = conns
		for _, p := range s.Connections.Providers() {
			d.Providers = append(d.Providers, providerView{p.Name, p.Title, p.OAuth})
		}
	}
	v := s.newView(r, c, "Settings", "settings")
	v.Data = d
	if e, ok := formErr.(*dcvaas.Error); ok {
		v.Error, v.Fields = e.Message, e.Fields
	}
	s.render(w, status, "settings.html", v)
}

// updateOrganization changes the organization's name and defaults with
// the API's rules (orgname.Normalize, dcvaas.CheckContactEmail, the key
// types of domainname, the store's UpdateOrganization: owners and admins
// only, audited as organization.updated).
func (s *server) updateOrganization(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	fields := map[string]string{}
	name, nameErr := orgname.Normalize(r.PostFormValue("name"))
	if nameErr != nil {
		fields["name"] = nameErr.Error()
	}
	settings := dcvaas.OrgSettings{ContactEmail: strings.TrimSpace(r.PostFormValue("contactEmail")), DefaultKeyType: r.PostFormValue("defaultKeyType")}
	if problem := dcvaas.CheckContactEmail(settings.ContactEmail); problem != "" {
		fields["contactEmail"] = problem
	}
	if settings.DefaultKeyType != "" && !oneOf(settings.DefaultKeyType, domainname.KeyTypes) {
		fields["defaultKeyType"] = "must be one of " + strings.Join(domainname.KeyTypes, ", ")
	}
	switch r.PostFormValue("defaultIncludeWildcard") {
	case "true":
		t := true
		settings.DefaultIncludeWildcard = &t
	case "false":
		f := false
		settings.DefaultIncludeWildcard = &f
	}
	var err error
	if len(fields) > 0 {
		err = &dcvaas.Error{Code: dcvaas.EINVALID, Message: "Check the organization's settings.", Fields: fields}
	} else {
		_, err = s.Store.UpdateOrganization(r.Context(), c.actor, c.actor.OrgID, dcvaas.OrgUpdate{Name: &name, Settings: &settings})
	}
	if err != nil {
		code := dcvaas.ErrorCode(err)
		if code != dcvaas.EINVALID && code != dcvaas.ECONFLICT {
			s.fail(w, r, c, err)
			return
		}
		if code == dcvaas.ECONFLICT {
			err = &dcvaas.Error{Code: code, Message: dcvaas.ErrorMessage(err), Fields: map[string]string{"name": dcvaas.ErrorMessage(err)}}
		}
		s.renderSettings(w, r, c, statusOf(code), err)
		return
	}
	back(w, r, "/settings", "Organization saved.")
}

// connect starts an OAuth authorization with the API's rules and goes to
// its start page, which binds it to this browser.
func (s *server) connect(w http.ResponseWriter, r *http.Request, c *call) {
	if s.Connections == nil {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "DNS provider connections are not set up on this server"))
		return
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	start, err := s.Connections.Authorize(r.Context(), c.actor, r.PathValue("provider"))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	// The start URL is absolute (the public URL); only its path and query
	// are ours to follow, on this same origin.
	if u, err := url.Parse(start); err == nil {
		start = u.RequestURI()
	}
	http.Redirect(w, r, start, http.StatusSeeOther)
}
