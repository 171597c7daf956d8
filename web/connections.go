package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
)

// testConnection lists the zones a connection manages, with the API's
// rules (connection.Service.Test), and shows them on the settings page.
func (s *server) testConnection(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.connectionsReady(w, r, c) {
		return
	}
	// A test records its outcome on the connection: a change, as in the API.
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	res, err := s.Connections.Test(r.Context(), c.actor, r.PathValue("id"))
	if err != nil {
		switch dcvaas.ErrorCode(err) {
		case dcvaas.EINVALID, dcvaas.EUNAVAILABLE:
			back(w, r, "/settings", "The test failed: "+dcvaas.ErrorMessage(err))
		default:
			s.fail(w, r, c, err)
		}
		return
	}
	msg := "The connection works; it manages no zone."
	if len(res.Zones) > 0 {
		msg = "The connection works; it manages " + strings.Join(res.Zones, ", ") + "."
	}
	back(w, r, "/settings", msg)
}

// deleteConnection revokes and erases a connection (connection.Service.Delete).
func (s *server) deleteConnection(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.connectionsReady(w, r, c) {
		return
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	if err := s.Connections.Delete(r.Context(), c.actor, r.PathValue("id")); err != nil {
		s.fail(w, r, c, err)
		return
	}
	back(w, r, "/settings", "Connection deleted.")
}

// createConnection connects a provider with a pasted credential, tested
// before it is saved (connection.Service.Create).
func (s *server) createConnection(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.connectionsReady(w, r, c) {
		return
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	in := connection.CreateInput{Provider: r.PathValue("provider"), DisplayName: f("displayName"),
		Credential: connection.Credential{APIToken: f("apiToken"), APIKey: f("apiKey"), APISecret: f("apiSecret"), RoleARN: f("roleArn")}}
	if _, err := s.Connections.Create(r.Context(), c.actor, in); err != nil {
		switch dcvaas.ErrorCode(err) {
		case dcvaas.EINVALID, dcvaas.EUNAVAILABLE, dcvaas.ENOTFOUND:
			back(w, r, "/settings", "Not connected: "+dcvaas.ErrorMessage(err))
		default:
			s.fail(w, r, c, err)
		}
		return
	}
	back(w, r, "/settings", "Connected.")
}

func (s *server) connectionsReady(w http.ResponseWriter, r *http.Request, c *call) bool {
	if s.Connections == nil {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "DNS provider connections are not set up on this server"))
		return false
	}
	return true
}

// dnsSetup is "Create it for me": the delegation CNAME created through a
// connection with the API's rules (connection.Service.SetupDNS), then
// back to the domain page, which shows the outcome and the live check.
func (s *server) dnsSetup(w http.ResponseWriter, r *http.Request, c *call) {
	if !s.connectionsReady(w, r, c) {
		return
	}
	if !c.actor.CanChange() {
		s.fail(w, r, c, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this sign-in is read-only"))
		return
	}
	id := r.PathValue("id")
	page := "/domains/" + url.PathEscape(id)
	res, err := s.Connections.SetupDNS(r.Context(), c.actor, id,
		connection.SetupInput{ConnectionID: r.PostFormValue("connectionId"), Replace: r.PostFormValue("replace") == "true"})
	if err != nil {
		switch dcvaas.ErrorCode(err) {
		case dcvaas.EINVALID:
			back(w, r, page, "Not created: "+dcvaas.ErrorMessage(err))
		case dcvaas.ECONFLICT:
			// The page offers to replace what is in the way.
			back(w, r, page+"?"+url.Values{"conflict": {r.PostFormValue("connectionId")}}.Encode(), "Not created: "+dcvaas.ErrorMessage(err))
		default:
			s.fail(w, r, c, err)
		}
		return
	}
	var msg string
	switch res.Outcome {
	case connection.OutcomeQueued:
		msg = "The DNS provider is unavailable; the record will be created as soon as it answers (" + res.Reason + ")."
	case connection.OutcomeUnchanged:
		msg = "The CNAME was already there, in " + res.Zone + "; checking it now."
	case connection.OutcomeReplaced:
		msg = "Created the CNAME in " + res.Zone + " in place of the records in the way; checking it now."
	default:
		msg = "Created the CNAME in " + res.Zone + "; checking it now."
	}
	back(w, r, page, msg)
}
