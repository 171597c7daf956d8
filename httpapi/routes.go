package httpapi

import (
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
)

// addRoutes registers every route of the API: this file is the map.
func addRoutes(mux *http.ServeMux, api huma.API, s *server) {
	mux.HandleFunc("GET /openapi.json", s.serveOpenAPI)
	mux.HandleFunc("GET /problems/{kind}", serveProblemPage) // problems.go
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	mux.Handle("/", notFound(mux))
	if s.ui != nil {
		// The dashboard owns every path outside /api/ and the API's own;
		// unknown /api/ paths stay problem+json 404s.
		mux.Handle("/api/", notFound(mux))
		mux.Handle("/{$}", s.ui)
		for _, p := range []string{"/signin", "/signin/", "/signout", "/members", "/members/", "/switch", "/oauth/", "/settings", "/settings/", "/domains", "/domains/", "/jobs", "/jobs/", "/tokens", "/tokens/", "/webhooks", "/webhooks/", "/audit", "/static/"} {
			mux.Handle(p, s.ui)
		}
	}

	huma.Register(api, huma.Operation{
		OperationID: "getHealth", Method: http.MethodGet, Path: "/healthz", Tags: []string{"Health"},
		Summary: "Liveness", Description: "Answers as long as the process serves HTTP; touches nothing else.",
	}, handle(s, s.health))
	huma.Register(api, huma.Operation{
		OperationID: "getReadiness", Method: http.MethodGet, Path: "/readyz", Tags: []string{"Health"},
		Summary: "Readiness", Description: "200 when the database is reachable and migrated, else 503.",
		Errors: []int{http.StatusServiceUnavailable},
	}, handle(s, s.readiness))

	// Domains
	huma.Register(api, withBody(op(http.MethodPost, "/api/domains", "createDomain", "Add a domain", "Domains", http.StatusCreated,
		"Normalizes the name, assigns its CNAME target and queues the first DNS check. "+
			"The response's cnameRecord is the record the customer must create.", http.StatusConflict)),
		handle(s, s.createDomain))
	huma.Register(api, op(http.MethodGet, "/api/domains", "listDomains", "List domains", "Domains", http.StatusOK,
		"Newest first."), handle(s, s.listDomains))
	huma.Register(api, op(http.MethodGet, "/api/domains/{id}", "getDomain", "Get a domain", "Domains", http.StatusOK,
		"With its newest job as latestJob.", http.StatusNotFound), handle(s, s.getDomain))
	huma.Register(api, op(http.MethodPost, "/api/domains/{id}/verify", "verifyDomain", "Check the CNAME now", "Domains", http.StatusAccepted,
		"Queues a dns_check job.", http.StatusNotFound),
		handle(s, s.enqueue(dcvaas.ActionVerify.Job, dcvaas.ActionVerify.Allowed...)))
	huma.Register(api, op(http.MethodPost, "/api/domains/{id}/issue", "issueDomain", "Start issuance", "Domains", http.StatusAccepted,
		"Queues a start_issuance job; only while the domain is issuing (409 otherwise). An unfinished one is returned instead of a second.",
		http.StatusNotFound, http.StatusConflict),
		handle(s, s.enqueue(dcvaas.ActionIssue.Job, dcvaas.ActionIssue.Allowed...)))
	huma.Register(api, op(http.MethodPost, "/api/domains/{id}/renew", "renewDomain", "Renew now", "Domains", http.StatusAccepted,
		"Queues a renewal job; only while the domain is active (409 otherwise). An unfinished one is returned instead of a second.",
		http.StatusNotFound, http.StatusConflict),
		handle(s, s.enqueue(dcvaas.ActionRenew.Job, dcvaas.ActionRenew.Allowed...)))
	huma.Register(api, op(http.MethodDelete, "/api/domains/{id}", "deleteDomain", "Delete a domain", "Domains", http.StatusNoContent,
		"Its certificates are no longer renewed or served.", http.StatusNotFound), handle(s, s.deleteDomain))
	certOp := op(http.MethodGet, "/api/domains/{id}/certificate", "getCertificate", "Get the current certificate", "Domains", http.StatusOK,
		"JSON by default; the bare PEM chain when Accept prefers application/pem-certificate-chain; ?part=leaf, chain or fullchain for one part as PEM. "+
			"404 until one is issued; 406 when Accept allows none of these. "+
			"Every JSON and full-chain answer has an ETag; If-None-Match with it answers 304 while the certificate is unchanged. "+
			"The JSON form carries privateKeyPem for delivery tokens (and admin tokens asking with includeKey=true), "+
			"each reading audited as certificate.key_read.",
		http.StatusForbidden, http.StatusNotFound, http.StatusNotAcceptable, http.StatusConflict)
	certOp.Responses = map[string]*huma.Response{"304": {Description: "If-None-Match named the current certificate in this form."}, "200": {
		Description: "The newest certificate of the domain.",
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[certificate](), true, "Certificate")},
			pemChain:           {Schema: &huma.Schema{Type: huma.TypeString, Description: "The leaf certificate followed by its intermediates, PEM encoded."}},
		},
	}}
	huma.Register(api, certOp, handle(s, s.getCertificate))
	keyOp := op(http.MethodGet, "/api/domains/{id}/certificate/key", "getCertificateKey", "Get the current certificate's private key", "Domains", http.StatusOK,
		"Admin and delivery tokens only (403 for read-only tokens); every reading is audited as certificate.key_read "+
			"(a delivery token's readings of one certificate: one entry per hour, with their count in details.reads). "+
			"JSON by default; the bare PEM key when Accept prefers application/x-pem-file. 404 until a certificate is issued; 406 when Accept allows neither; "+
			"409 for a keyMode csr domain, whose private key the customer holds and dcvaas never had.",
		http.StatusForbidden, http.StatusNotFound, http.StatusNotAcceptable, http.StatusConflict)
	keyOp.Responses = map[string]*huma.Response{"200": {
		Description: "The private key of the domain's newest certificate.",
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[certificateKey](), true, "CertificateKey")},
			pemFile:            {Schema: &huma.Schema{Type: huma.TypeString, Description: "The private key, PKCS #8 PEM."}},
		},
	}}
	huma.Register(api, keyOp, handle(s, s.getCertificateKey))
	p12Op := op(http.MethodPost, "/api/domains/{id}/certificate/pkcs12", "getCertificatePKCS12", "Download the current certificate as PKCS #12", "Domains", http.StatusOK,
		"The leaf, its intermediates and its private key in one PKCS #12 file (.p12/.pfx, for Windows, Java key stores and appliances), "+
			"protected by the password in the body (a POST only so that the password appears in no URL; it changes nothing). "+
			"The key endpoint's rules: admin and delivery tokens only (403 for read-only tokens), every reading audited as certificate.key_read. "+
			"422 for a password shorter than 6 characters (the answer never repeats it); 404 until a certificate is issued; 406 when Accept does not allow application/x-pkcs12.",
		http.StatusForbidden, http.StatusNotFound, http.StatusNotAcceptable, http.StatusUnprocessableEntity)
	p12Op.Responses = map[string]*huma.Response{"200": {
		Description: "The PKCS #12 file, as an attachment named after the domain.",
		Content: map[string]*huma.MediaType{
			pkcs12Type: {Schema: &huma.Schema{Type: huma.TypeString, Format: "binary"}},
		},
	}}
	huma.Register(api, p12Op, handle(s, s.getCertificatePKCS12))

	// Customer-held keys (csr.go)
	huma.Register(api, withBody(op(http.MethodPut, "/api/domains/{id}/csr", "submitCSR", "Submit the domain's CSR (customer-held keys)", "Domains", http.StatusOK,
		"For a domain created with keyMode csr: its certificates are ordered with this CSR, and dcvaas never holds their private key. "+
			"The CSR must carry a valid signature, name exactly the domain (and *.domain when it includes its wildcard), and have a key the domain's keyType allows; "+
			"anything else is 422 with the reasons, and nothing changes. A new CSR may replace the old at any time (key rotation): an issuing domain starts issuance, "+
			"an active domain whose key changed is renewed now. Renewals reuse the stored CSR. Admin tokens, and delivery tokens within their scope "+
			"(dcvaas sync --own-keys); 409 for a domain of keyMode managed.",
		http.StatusNotFound, http.StatusConflict)), handle(s, s.submitCSR))
	huma.Register(api, op(http.MethodGet, "/api/domains/{id}/csr", "getCSR", "Get the domain's CSR", "Domains", http.StatusOK,
		"The CSR a keyMode csr domain's certificates are ordered with, and its public key's fingerprint. 404 until one is submitted.",
		http.StatusNotFound), handle(s, s.getCSR))

	// Certificates for Caddy's get_certificate http (tls.go)
	huma.Register(api, huma.Operation{
		OperationID: "getTLSCertificate", Method: http.MethodGet, Path: "/tls/{token}/certificate", Tags: []string{"Delivery"},
		Summary: "Certificate for a TLS server name (Caddy)",
		Description: "Caddy's `get_certificate http` contract: 200 with the PEM chain followed by the private key of the " +
			"certificate serving server_name (its domain's, or its parent's wildcard), 204 when no active certificate of the " +
			"token's organization (and scope) covers it. The token is a delivery token, in the path because Caddy sends no " +
			"headers. Answered from memory; each reading is audited as certificate.key_read (one entry per token and " +
			"certificate per hour, with a count). Cache-Control allows a minute.",
		Errors:      []int{http.StatusUnauthorized, http.StatusForbidden},
		Middlewares: huma.Middlewares{withPeer},
		Responses: map[string]*huma.Response{
			"200": {Description: "The chain and the key, PEM.", Content: map[string]*huma.MediaType{
				"application/x-pem-file": {Schema: &huma.Schema{Type: huma.TypeString}}}},
			"204": {Description: "Not a name of ours: the TLS server should look elsewhere."},
		},
	}, handle(s, s.tlsCertificate))

	// Jobs
	huma.Register(api, op(http.MethodGet, "/api/jobs", "listJobs", "List jobs", "Jobs", http.StatusOK,
		"Newest first."), handle(s, s.listJobs))
	huma.Register(api, op(http.MethodGet, "/api/jobs/{id}", "getJob", "Get a job", "Jobs", http.StatusOK,
		"", http.StatusNotFound), handle(s, s.getJob))
	huma.Register(api, op(http.MethodPost, "/api/jobs/{id}/retry", "retryJob", "Retry a failed job", "Jobs", http.StatusAccepted,
		"Re-queues a failed job with its attempts reset; 409 for a job that has not failed.", http.StatusNotFound, http.StatusConflict),
		handle(s, s.retryJob))

	// CA budgets
	huma.Register(api, op(http.MethodGet, "/api/ca-budgets", "listCABudgets", "CA rate-limit budgets", "CA budgets", http.StatusOK,
		"The new-order budget of every ACME account of every CA with an order limit, shared by the whole cluster: "+
			"capacity, remaining tokens and the next refill. Admin tokens only (403 for read-only tokens).", http.StatusForbidden),
		handle(s, s.listCABudgets))

	// Organizations
	huma.Register(api, op(http.MethodGet, "/api/organizations", "listOrganizations", "List organizations", "Organizations", http.StatusOK,
		"The organizations the token's user belongs to, with the user's role in each."), handle(s, s.listOrganizations))
	huma.Register(api, withBody(op(http.MethodPost, "/api/organizations", "createOrganization", "Create an organization", "Organizations", http.StatusCreated,
		"The token's user becomes its owner.", http.StatusConflict)), handle(s, s.createOrganization))
	huma.Register(api, withBody(op(http.MethodPatch, "/api/organizations/{id}", "updateOrganization", "Change an organization", "Organizations", http.StatusOK,
		"Owners and admins only (403 for members, 404 for non-members).", http.StatusNotFound, http.StatusConflict)),
		handle(s, s.updateOrganization))

	// Members (members.go)
	huma.Register(api, op(http.MethodGet, "/api/organizations/{id}/members", "listMembers", "List an organization's members", "Organizations", http.StatusOK,
		"Oldest first, with their e-mail and role; any organization the token's user belongs to (404 otherwise).", http.StatusNotFound),
		handle(s, s.listMembers))
	huma.Register(api, withBody(op(http.MethodPost, "/api/organizations/{id}/members", "addMember", "Add a member by e-mail", "Organizations", http.StatusOK,
		"Makes the person with that e-mail (single sign-on signs them in by it) a member with the role, or changes the role of a member. "+
			"Owners and admins only (403 for others); only owners grant or take the owner role; 409 when it would leave no owner.",
		http.StatusNotFound, http.StatusConflict)), handle(s, s.addMember))
	huma.Register(api, op(http.MethodDelete, "/api/organizations/{id}/members/{userId}", "removeMember", "Remove a member", "Organizations", http.StatusNoContent,
		"Their tokens and browser sessions lose access to the organization at their next request. Owners and admins only; "+
			"only owners remove owners; 409 for the last owner.", http.StatusNotFound, http.StatusConflict), handle(s, s.removeMember))

	// API tokens
	huma.Register(api, withBody(op(http.MethodPost, "/api/tokens", "createToken", "Create an API token", "Tokens", http.StatusCreated,
		"The response carries the token itself, once.", http.StatusNotFound)), handle(s, s.createToken))
	huma.Register(api, op(http.MethodGet, "/api/tokens", "listTokens", "List API tokens", "Tokens", http.StatusOK,
		"The organization's live tokens, newest first; metadata only."), handle(s, s.listTokens))
	huma.Register(api, op(http.MethodDelete, "/api/tokens/{id}", "revokeToken", "Revoke an API token", "Tokens", http.StatusNoContent,
		"Effective from the token's next request.", http.StatusNotFound), handle(s, s.revokeToken))

	// Audit
	huma.Register(api, op(http.MethodGet, "/api/audit", "listAudit", "Read the audit log", "Audit", http.StatusOK,
		"Every change in the organization, newest first."), handle(s, s.listAudit))

	// Events (events.go, eventschema.go)
	addEventSchemas(api)
	huma.Register(api, op(http.MethodGet, "/api/events", "listEvents", "List events", "Events", http.StatusOK,
		"The organization's events after a cursor, oldest first: read on with nextCursor to catch up after downtime "+
			"without gaps or duplicates. Events are kept for DCVAAS_EVENT_RETENTION (default 720h)."), handle(s, s.listEvents))
	streamOp := op(http.MethodGet, "/api/events/stream", "streamEvents", "Stream events (SSE)", "Events", http.StatusOK,
		"Server-Sent Events: each message has id (the cursor), event (the type) and data (the Event JSON). "+
			"Last-Event-ID resumes after that event; without it only new events are sent. A comment line is sent "+
			"at least every 15 s. Events committed on any node of a cluster arrive within a second. "+
			"Delivery tokens may follow it too (dcvaas sync does); a scoped one gets its domains' events only.")
	streamOp.Responses = map[string]*huma.Response{"200": {
		Description: "An endless text/event-stream.",
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: huma.TypeString,
			Description: "id: <cursor>\nevent: <type>\ndata: <Event JSON>\n\n, and : heartbeat comments."}}},
	}}
	huma.Register(api, streamOp, handle(s, s.streamEvents))

	// Webhooks (webhooks.go)
	huma.Register(api, withBody(op(http.MethodPost, "/api/webhooks", "createWebhook", "Add a webhook endpoint", "Webhooks", http.StatusCreated,
		"Events of the organization are POSTed to url, signed as Standard Webhooks v1 says. The answer carries the signing "+
			"secret, once (Cache-Control: no-store). 422 naming the rule for a URL that is not https (http only with "+
			"DCVAAS_WEBHOOK_ALLOW_HTTP=true) or is a literal loopback, private, link-local, CGNAT or multicast address "+
			"(allowed only with DCVAAS_WEBHOOK_ALLOW_PRIVATE=true). Admin tokens only.")), handle(s, s.createWebhook))
	huma.Register(api, op(http.MethodGet, "/api/webhooks", "listWebhooks", "List webhook endpoints", "Webhooks", http.StatusOK,
		"Newest first; never a secret."), handle(s, s.listWebhooks))
	huma.Register(api, op(http.MethodGet, "/api/webhooks/{id}", "getWebhook", "Get a webhook endpoint", "Webhooks", http.StatusOK,
		"Never a secret.", http.StatusNotFound), handle(s, s.getWebhook))
	huma.Register(api, withBody(op(http.MethodPatch, "/api/webhooks/{id}", "updateWebhook", "Change a webhook endpoint", "Webhooks", http.StatusOK,
		"Changes the fields given. enabled: true revives an endpoint dcvaas disabled.", http.StatusNotFound)), handle(s, s.updateWebhook))
	huma.Register(api, op(http.MethodDelete, "/api/webhooks/{id}", "deleteWebhook", "Delete a webhook endpoint", "Webhooks", http.StatusNoContent,
		"With its secrets and its deliveries; attempts still queued are dropped.", http.StatusNotFound), handle(s, s.deleteWebhook))
	huma.Register(api, op(http.MethodPost, "/api/webhooks/{id}/rotate-secret", "rotateWebhookSecret", "Rotate the signing secret", "Webhooks", http.StatusOK,
		"Returns a new secret, once (Cache-Control: no-store). For 24 h every delivery carries two signatures in webhook-signature, "+
			"space-separated: the new secret's and the old one's; then the old secret is dropped.", http.StatusNotFound),
		handle(s, s.rotateWebhookSecret))
	huma.Register(api, op(http.MethodPost, "/api/webhooks/{id}/test", "testWebhook", "Send a test event", "Webhooks", http.StatusAccepted,
		"Writes a webhook.test event and queues its delivery to this endpoint only (enabled or not, whatever its eventTypes).",
		http.StatusNotFound), handle(s, s.testWebhook))
	huma.Register(api, op(http.MethodGet, "/api/webhooks/{id}/deliveries", "listWebhookDeliveries", "List deliveries", "Webhooks", http.StatusOK,
		"The endpoint's deliveries newest first, each with every attempt: HTTP status or network error, latency, "+
			"the first 1 KiB of the response body; nextAttemptAt while one is queued.", http.StatusNotFound),
		handle(s, s.listWebhookDeliveries))
	huma.Register(api, op(http.MethodPost, "/api/webhooks/{id}/deliveries/{deliveryId}/retry", "retryWebhookDelivery", "Replay a delivery now",
		"Webhooks", http.StatusAccepted, "Queues one more attempt now, whatever the delivery's status; it replaces a scheduled retry.",
		http.StatusNotFound), handle(s, s.retryWebhookDelivery))

	// DNS provider connections and one-click setup (connections.go, oauth.go)
	authorizeOp := op(http.MethodGet, "/api/oauth/{provider}/authorize", "authorizeProvider", "Connect a provider with OAuth", "Connections", http.StatusOK,
		"302 to dcvaas's start page (/oauth/{provider}/start), which a browser signed in as an admin of this organization "+
			"must open to reach the provider's consent screen; or 200 with that URL when Accept prefers application/json. "+
			"422 for a provider without OAuth configured here, 403 for read-only tokens.", http.StatusForbidden)
	authorizeOp.Responses = map[string]*huma.Response{
		"200": {Description: "The consent URL, for a browser UI.", Content: map[string]*huma.MediaType{
			"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[authorizeURL](), true, "AuthorizeURL")}}},
		"302": {Description: "Redirect to the provider's consent screen.", Headers: map[string]*huma.Param{
			"Location": {Schema: &huma.Schema{Type: huma.TypeString}}}},
	}
	huma.Register(api, authorizeOp, handle(s, s.oauthAuthorize))
	huma.Register(api, huma.Operation{
		OperationID: "oauthCallback", Method: http.MethodGet, Path: "/api/oauth/{provider}/callback", Tags: []string{"Connections"},
		Summary: "OAuth callback", DefaultStatus: http.StatusFound,
		Description: "Where the provider sends the browser back; no bearer token: the single-use state, the binding cookie set by " +
			"/oauth/{provider}/start and the browser's session of an admin of the flow's organization authenticate it. " +
			"Always redirects to DCVAAS_PUBLIC_URL/settings?oauth=success&connectionId=… or ?oauth=error&reason=….",
		// Providers add parameters of their own (iss, scope); all are optional.
		SkipValidateParams: true,
		Middlewares:        huma.Middlewares{s.withBrowser},
	}, handle(s, s.oauthCallback))
	huma.Register(api, withBody(op(http.MethodPost, "/api/connections", "createConnection", "Connect a provider with a credential", "Connections", http.StatusCreated,
		"Tests the credential against the provider before saving it; 422 with the provider's reason when it fails.",
		http.StatusServiceUnavailable)), handle(s, s.createConnection))
	huma.Register(api, op(http.MethodGet, "/api/connections", "listConnections", "List connections", "Connections", http.StatusOK,
		"Newest first; never any secret."), handle(s, s.listConnections))
	huma.Register(api, op(http.MethodGet, "/api/connections/{id}", "getConnection", "Get a connection", "Connections", http.StatusOK,
		"Never any secret.", http.StatusNotFound), handle(s, s.getConnection))
	huma.Register(api, op(http.MethodPost, "/api/connections/{id}/test", "testConnection", "Test a connection", "Connections", http.StatusOK,
		"Lists the zones it can manage; 422 with the provider's reason when it refuses.", http.StatusNotFound, http.StatusServiceUnavailable),
		handle(s, s.testConnection))
	huma.Register(api, op(http.MethodDelete, "/api/connections/{id}", "deleteConnection", "Delete a connection", "Connections", http.StatusNoContent,
		"Revokes OAuth tokens at the provider where it can, then erases the secret.", http.StatusNotFound), handle(s, s.deleteConnection))
	setupOp := withBody(op(http.MethodPost, "/api/domains/{id}/dns-setup", "setupDomainDNS", "Create the CNAME through a connection", "Domains", http.StatusOK,
		"Creates _acme-challenge.<domain> CNAME <cnameTarget> in the zone that holds the domain and queues a dns_check. "+
			"Idempotent. 409 naming the records in the way unless replace is true; 422 listing the zones seen when none holds the domain, "+
			"or with the provider's reason when it refuses the connection. When the provider is down (5xx, timeout), 202 with outcome "+
			"queued: a dns_setup job (jobId) retries the setup with backoff; one already queued for the domain is returned instead of a second.",
		http.StatusNotFound, http.StatusConflict))
	setupOp.Responses = map[string]*huma.Response{"202": {
		Description: "The provider was unavailable: the setup is queued as a dns_setup job.",
		Content: map[string]*huma.MediaType{
			"application/json": {Schema: api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[dnsSetup](), true, "DnsSetup")},
		},
	}}
	huma.Register(api, setupOp, handle(s, s.dnsSetup))
}

// withBody adds the errors of reading a JSON request body.
func withBody(o huma.Operation) huma.Operation {
	o.Errors = append(o.Errors, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	return o
}

// op describes an authenticated /api operation, with the errors any such
// operation can answer besides its own (huma adds 422 and 500).
func op(method, path, id, summary, tag string, status int, description string, errs ...int) huma.Operation {
	common := []int{http.StatusUnauthorized, http.StatusTooManyRequests}
	if isMutation(method) {
		common = append(common, http.StatusForbidden)
	}
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          path,
		Summary:       summary,
		Description:   description,
		Tags:          []string{tag},
		DefaultStatus: status,
		Security:      bearer,
		// huma answers 413 once it has read MaxBodyBytes bytes, so one more
		// than the limit lets a body of exactly the limit through.
		MaxBodyBytes: maxBodyBytes + 1,
		Errors:       append(common, errs...),
	}
}
