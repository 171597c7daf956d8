package httpapi

import (
	"encoding/json"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/domainname"
)

// The JSON the API speaks. Names are camelCase, timestamps RFC 3339 UTC,
// ids opaque strings; optional values are omitted rather than null. Type
// names become the schema names of the OpenAPI document.

// page turns the paging query parameters into a store Page. Each list
// input declares limit and offset itself: huma reads parameters only from
// exported embedded types, and this package exports none.
func page(limit, offset int) dcvaas.Page { return dcvaas.Page{Limit: limit, Offset: offset} }

type domain struct {
	ID              string         `json:"id"`
	DomainName      string         `json:"domainName" example:"shop.example.com" doc:"Normalized: lowercase ASCII (punycode), no trailing dot."`
	Status          string         `json:"status" enum:"pending_cname,issuing,active,failed"`
	CNAMETarget     string         `json:"cnameTarget" doc:"Where the customer's _acme-challenge CNAME must point."`
	CNAMERecord     cnameRecord    `json:"cnameRecord" doc:"The one DNS record the customer creates, once."`
	IncludeWildcard bool           `json:"includeWildcard" doc:"Certificates also cover *.domainName."`
	KeyType         string         `json:"keyType" enum:"ec256,ec384,rsa2048,rsa4096"`
	KeyMode         string         `json:"keyMode" enum:"managed,csr" doc:"managed: dcvaas holds the private keys; csr: the customer does and submits a CSR (PUT /api/domains/{id}/csr)."`
	CNAMEStatus     string         `json:"cnameStatus" enum:"ok,missing" doc:"Whether the delegation CNAME is in place: missing until it is first found, and when the daily check of an active domain does not find it (lastError says what DNS holds instead; the next renewal fails until it is fixed)."`
	LastError       string         `json:"lastError,omitempty"`
	CreatedAt       time.Time      `json:"createdAt"`
	UpdatedAt       time.Time      `json:"updatedAt"`
	LastIssuedAt    *time.Time     `json:"lastIssuedAt,omitempty"`
	ExpiresAt       *time.Time     `json:"expiresAt,omitempty" doc:"When the current certificate expires."`
	LatestJob       *job           `json:"latestJob,omitempty" doc:"The domain's newest job."`
	WaitingFor      string         `json:"waitingFor,omitempty" example:"letsencrypt orders budget" doc:"What the domain's issuance or renewal waits for: a CA's rate-limit budget that refills at until."`
	Until           *time.Time     `json:"until,omitempty" doc:"When the budget named by waitingFor refills and the job runs again."`
	ACMEAccount     map[string]int `json:"acmeAccount,omitempty" doc:"Which of dcvaas's accounts (1-based) each CA issues this domain's certificates through, assigned at its first order and kept for its renewals (GET /api/domains/{id} only)."`
}

type cnameRecord struct {
	Name  string `json:"name" example:"_acme-challenge.shop.example.com"`
	Type  string `json:"type" enum:"CNAME"`
	Value string `json:"value"`
}

func toDomain(d *dcvaas.Domain, latest *dcvaas.Job, now time.Time) domain {
	out := domain{
		ID:              d.ID,
		DomainName:      d.Name,
		Status:          string(d.Status),
		CNAMETarget:     d.CNAMETarget,
		CNAMERecord:     cnameRecord{Name: domainname.ChallengeName(d.Name), Type: "CNAME", Value: d.CNAMETarget},
		IncludeWildcard: d.IncludeWildcard,
		KeyType:         d.KeyType,
		KeyMode:         keyModeOr(d.KeyMode),
		CNAMEStatus:     string(d.Delegation()),
		LastError:       d.LastError,
		CreatedAt:       d.CreatedAt.UTC(),
		UpdatedAt:       d.UpdatedAt.UTC(),
		LastIssuedAt:    utc(d.LastIssuedAt),
		ExpiresAt:       utc(d.ExpiresAt),
		WaitingFor:      d.WaitingFor,
		Until:           utc(d.WaitUntil),
	}
	if latest != nil {
		j := toJob(latest, now)
		out.LatestJob = &j
	}
	return out
}

type domainList struct {
	Items  []domain `json:"items" nullable:"false"`
	Total  int      `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
	// encoded, when set, is this page's JSON, sent instead (listcache.go).
	encoded []byte
}

type job struct {
	ID           string          `json:"id"`
	Type         string          `json:"type" enum:"dns_check,start_issuance,renewal,dns_setup"`
	Status       string          `json:"status" enum:"queued,scheduled,running,succeeded,superseded,failed" doc:"scheduled: queued to run again at runAt (a check that found nothing yet, a backoff after a failed attempt, a budget wait). superseded: ended without running (again) because a newer job of the same kind replaced it; result.supersededBy names it."`
	DomainID     string          `json:"domainId"`
	Attempts     int             `json:"attempts" doc:"How often the job ran (started), also the runs that used no attempt: checks that found nothing yet, budget waits, runs cut short by shutdown."`
	AttemptsUsed int             `json:"attemptsUsed" doc:"The runs that counted against maxAttempts: failed ones, and the current or last one."`
	MaxAttempts  int             `json:"maxAttempts" doc:"Counted attempts (attemptsUsed) before the job becomes a dead letter (failed)."`
	LastError    string          `json:"lastError,omitempty"`
	Result       json.RawMessage `json:"result,omitempty" doc:"What the job found or did; its shape depends on the type."`
	RunAt        time.Time       `json:"runAt"`
	CreatedAt    time.Time       `json:"createdAt"`
	UpdatedAt    time.Time       `json:"updatedAt"`
	WaitingFor   string          `json:"waitingFor,omitempty" example:"letsencrypt orders budget" doc:"A queued job deferred until a CA's rate-limit budget refills: which budget. Waiting uses no attempt."`
	Until        *time.Time      `json:"until,omitempty" doc:"When the budget named by waitingFor refills; the job runs then."`
}

func toJob(j *dcvaas.Job, now time.Time) job {
	return job{
		ID:           j.ID,
		Type:         string(j.Type),
		Status:       string(j.View(now)),
		DomainID:     j.DomainID,
		Attempts:     j.Runs,
		AttemptsUsed: j.Attempts,
		MaxAttempts:  j.MaxAttempts,
		LastError:    j.LastError,
		Result:       j.Result,
		RunAt:        j.RunAt.UTC(),
		CreatedAt:    j.CreatedAt.UTC(),
		UpdatedAt:    j.UpdatedAt.UTC(),
		WaitingFor:   j.WaitingFor,
		Until:        utc(j.WaitUntil),
	}
}

type jobList struct {
	Items  []job `json:"items" nullable:"false"`
	Total  int   `json:"total"`
	Limit  int   `json:"limit"`
	Offset int   `json:"offset"`
}

// queuedJob answers the actions that queue work.
type queuedJob struct {
	JobID string `json:"jobId" doc:"Follow it at /api/jobs/{jobId}."`
}

type certificate struct {
	SerialNumber   string    `json:"serialNumber"`
	NotBefore      time.Time `json:"notBefore"`
	NotAfter       time.Time `json:"notAfter"`
	Issuer         string    `json:"issuer"`
	DNSNames       []string  `json:"dnsNames" nullable:"false"`
	CertificatePEM string    `json:"certificatePem" doc:"The leaf certificate followed by its intermediates (what servers and kubernetes.io/tls's tls.crt want)."`
	ChainPEM       string    `json:"chainPem" doc:"The intermediates alone, without the leaf."`
	PrivateKeyPEM  string    `json:"privateKeyPem,omitempty" doc:"The private key, PKCS #8 PEM; only with includeKey (the default for delivery tokens)."`
	CAName         string    `json:"caName" doc:"The ACME CA that issued it."`
}

type organization struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Settings  orgSettings `json:"settings"`
	Role      string      `json:"role" enum:"owner,admin,member,viewer" doc:"The caller's role in the organization."`
	CreatedAt time.Time   `json:"createdAt"`
	UpdatedAt time.Time   `json:"updatedAt"`
}

// orgSettings is both read and written; unknown fields are refused.
type orgSettings struct {
	DefaultIncludeWildcard *bool  `json:"defaultIncludeWildcard,omitempty" nullable:"false" doc:"For new domains that do not say; true when unset."`
	DefaultKeyType         string `json:"defaultKeyType,omitempty" enum:"ec256,ec384,rsa2048,rsa4096" doc:"For new domains that do not say; ec256 when unset."`
	ContactEmail           string `json:"contactEmail,omitempty" format:"email" maxLength:"254"`
}

func toOrganization(o *dcvaas.Organization) organization {
	return organization{
		ID:   o.ID,
		Name: o.Name,
		Settings: orgSettings{
			DefaultIncludeWildcard: o.Settings.DefaultIncludeWildcard,
			DefaultKeyType:         o.Settings.DefaultKeyType,
			ContactEmail:           o.Settings.ContactEmail,
		},
		Role:      string(o.Role),
		CreatedAt: o.CreatedAt.UTC(),
		UpdatedAt: o.UpdatedAt.UTC(),
	}
}

func (s orgSettings) toDomain() dcvaas.OrgSettings {
	return dcvaas.OrgSettings{DefaultIncludeWildcard: s.DefaultIncludeWildcard, DefaultKeyType: s.DefaultKeyType, ContactEmail: s.ContactEmail}
}

type organizationList struct {
	Items  []organization `json:"items" nullable:"false"`
	Total  int            `json:"total"`
	Limit  int            `json:"limit"`
	Offset int            `json:"offset"`
}

// token is an API token's metadata; the secret is never shown again.
type token struct {
	ID             string      `json:"id"`
	OrganizationID string      `json:"organizationId"`
	Name           string      `json:"name"`
	Prefix         string      `json:"prefix" doc:"The token's first characters, to recognize it."`
	Role           string      `json:"role" enum:"admin,read,delivery"`
	Scope          *tokenScope `json:"scope,omitempty" doc:"Delivery tokens only: the domains it sees; absent, all of the organization's."`
	CreatedAt      time.Time   `json:"createdAt"`
	LastUsedAt     *time.Time  `json:"lastUsedAt,omitempty" doc:"Recorded at most once a minute."`
	ExpiresAt      *time.Time  `json:"expiresAt,omitempty"`
	ParentID       string      `json:"parentId,omitempty" doc:"The token that created this one; revoking it revokes this one."`
}

func toToken(t *dcvaas.Token) token {
	return token{
		ID:             t.ID,
		OrganizationID: t.OrgID,
		Name:           t.Name,
		Prefix:         t.Prefix,
		Role:           string(t.Role),
		Scope:          toTokenScope(t.Scope),
		CreatedAt:      t.CreatedAt.UTC(),
		LastUsedAt:     utc(t.LastUsedAt),
		ExpiresAt:      utc(t.ExpiresAt),
		ParentID:       t.ParentID,
	}
}

// createdToken is the one response that carries the token itself.
type createdToken struct {
	ID             string      `json:"id"`
	OrganizationID string      `json:"organizationId"`
	Name           string      `json:"name"`
	Prefix         string      `json:"prefix"`
	Role           string      `json:"role" enum:"admin,read,delivery"`
	Scope          *tokenScope `json:"scope,omitempty"`
	CreatedAt      time.Time   `json:"createdAt"`
	ExpiresAt      *time.Time  `json:"expiresAt,omitempty"`
	ParentID       string      `json:"parentId,omitempty" doc:"The token that created this one (the calling token); revoking it revokes this one."`
	Token          string      `json:"token" doc:"The secret. Shown in this response only; store it now."`
}

type tokenList struct {
	Items  []token `json:"items" nullable:"false"`
	Total  int     `json:"total"`
	Limit  int     `json:"limit"`
	Offset int     `json:"offset"`
}

type auditEntry struct {
	ID         string         `json:"id"`
	Action     string         `json:"action" example:"domain.created"`
	EntityType string         `json:"entityType" example:"domain"`
	EntityID   string         `json:"entityId"`
	UserID     string         `json:"userId,omitempty" doc:"Empty for changes the service made itself."`
	TokenID    string         `json:"tokenId,omitempty"`
	Details    map[string]any `json:"details"`
	IP         string         `json:"ip,omitempty"`
	UserAgent  string         `json:"userAgent,omitempty"`
	CreatedAt  time.Time      `json:"createdAt"`
}

func toAuditEntry(e *dcvaas.AuditEntry) auditEntry {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	return auditEntry{
		ID: e.ID, Action: e.Action, EntityType: e.EntityType, EntityID: e.EntityID,
		UserID: e.UserID, TokenID: e.TokenID, Details: details, IP: e.IP, UserAgent: e.UserAgent,
		CreatedAt: e.CreatedAt.UTC(),
	}
}

type auditList struct {
	Items  []auditEntry `json:"items" nullable:"false"`
	Total  int          `json:"total"`
	Limit  int          `json:"limit"`
	Offset int          `json:"offset"`
}

// convert maps a store list onto its JSON items; never null.
func convert[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// tokenScope limits a delivery token to some domains (dcvaas.TokenScope).
type tokenScope struct {
	DomainIDs []string `json:"domainIds,omitempty" maxItems:"1000" doc:"Domain ids of the organization."`
	Names     []string `json:"names,omitempty" maxItems:"1000" example:"[\"*.shop.example.com\"]" doc:"Exact domain names, or *.suffix for every name under suffix (not suffix itself)."`
}

func toTokenScope(s *dcvaas.TokenScope) *tokenScope {
	if s == nil {
		return nil
	}
	return &tokenScope{DomainIDs: s.DomainIDs, Names: s.Names}
}

func keyModeOr(m string) string {
	if m == "" {
		return dcvaas.KeyModeManaged
	}
	return m
}
