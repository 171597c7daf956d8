package dcvaas

import (
	"context"
	"time"
)

// DomainStatus is where a domain stands in its life:
// pending_cname → issuing → active, or failed when issuance gives up.
type DomainStatus string

const (
	DomainPendingCNAME DomainStatus = "pending_cname"
	DomainIssuing      DomainStatus = "issuing"
	DomainActive       DomainStatus = "active"
	DomainFailed       DomainStatus = "failed"
)

// DomainStatuses lists every status, for validation.
var DomainStatuses = []DomainStatus{DomainPendingCNAME, DomainIssuing, DomainActive, DomainFailed}

// Key types a certificate's private key can have.
const (
	KeyEC256   = "ec256"
	KeyEC384   = "ec384"
	KeyRSA2048 = "rsa2048"
	KeyRSA4096 = "rsa4096"
)

// Key modes: who holds a domain's private keys.
const (
	KeyModeManaged = "managed"
	KeyModeCSR     = "csr"
)

// Domain is a customer's name that dcvaas obtains certificates for.
type Domain struct {
	ID    string
	OrgID string
	// Name is normalized: lowercase ASCII (punycode), no trailing dot.
	Name string
	// CNAMETarget is <label>.<verify zone>: the customer points
	// _acme-challenge.<Name> at it once.
	CNAMETarget     string
	Status          DomainStatus
	LastError       string
	IncludeWildcard bool
	KeyType         string
	// KeyMode is who holds the private keys: KeyModeManaged (dcvaas
	// generates and keeps them, sealed) or KeyModeCSR (the customer does,
	// and submits a CSR; dcvaas never sees a key).
	KeyMode      string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastIssuedAt *time.Time
	ExpiresAt    *time.Time
	DeletedAt    *time.Time
	// CNAMEStatus is what the daily delegation check last found for the
	// domain (see Delegation).
	CNAMEStatus CNAMEStatus
	// WaitingFor and WaitUntil: what the domain's issuance or renewal
	// waits for (a CA's rate-limit budget), and until when.
	WaitingFor string
	WaitUntil  *time.Time
}

// CNAMEStatus says whether the customer's delegation CNAME is in place.
type CNAMEStatus string

const (
	CNAMEOK      CNAMEStatus = "ok"
	CNAMEMissing CNAMEStatus = "missing"
)

// Delegation is the domain's delegation as customers see it: a domain
// still pending_cname has none yet; any other shows what the daily check of
// its CNAME last found (every renewal needs it in place).
func (d *Domain) Delegation() CNAMEStatus {
	if d.Status == DomainPendingCNAME {
		return CNAMEMissing
	}
	if d.CNAMEStatus == CNAMEMissing {
		return CNAMEMissing
	}
	return CNAMEOK
}

// DomainFilter narrows ListDomains.
type DomainFilter struct {
	Status DomainStatus // empty: any
	// Scope, when set, keeps only the domains it allows.
	Scope *TokenScope
	// Search keeps names containing it (case-insensitive); empty: any.
	Search string
	// ExpiresBefore, when set, keeps domains whose certificate expires
	// before it (soonest first).
	ExpiresBefore *time.Time
	// CNAMEMissing keeps issued domains whose CNAME went missing.
	CNAMEMissing bool
	Page
}

// Certificate is an issued certificate chain and its encrypted private key.
type Certificate struct {
	ID           string
	OrgID        string
	DomainID     string
	SerialNumber string
	Issuer       string
	CAName       string
	OrderURL     string
	DNSNames     []string
	NotBefore    time.Time
	NotAfter     time.Time
	// ChainPEM is the leaf followed by its intermediates.
	ChainPEM string
	// PrivateKeyEnc is the PEM private key sealed by crypt.Keyring.
	PrivateKeyEnc string
	CreatedAt     time.Time
}

// DomainStore persists domains and their certificates. All methods are
// scoped to actor.OrgID; another organization's domain is ENOTFOUND.
type DomainStore interface {
	// CreateDomain inserts d (ID, CNAMETarget, timestamps filled in), writes
	// audit "domain.created" and queues a dns_check job, atomically.
	// ECONFLICT when the org already has the name.
	CreateDomain(ctx context.Context, actor Actor, d *Domain) (*Job, error)
	// FindDomain returns a live (not deleted) domain. ENOTFOUND.
	FindDomain(ctx context.Context, orgID, id string) (*Domain, error)
	// ListDomains returns live domains, newest first, and the total count.
	ListDomains(ctx context.Context, orgID string, f DomainFilter) ([]*Domain, int, error)
	// DeleteDomain soft-deletes (or hard-deletes) the domain; audit
	// "domain.deleted". ENOTFOUND.
	DeleteDomain(ctx context.Context, actor Actor, id string, hard bool) error
	// EnqueueDomainJob queues a job of type jt for the domain when its status
	// is one of allowed (any when empty); audit "job.queued". ENOTFOUND,
	// ECONFLICT when the status does not allow it.
	EnqueueDomainJob(ctx context.Context, actor Actor, domainID string, jt JobType, allowed ...DomainStatus) (*Job, error)
	// CurrentCertificate returns the newest certificate of the domain. ENOTFOUND.
	CurrentCertificate(ctx context.Context, orgID, domainID string) (*Certificate, error)
}

// DomainAction is a job a user may queue for a domain by hand, with the
// statuses that allow it. The API and the dashboard both take these.
type DomainAction struct {
	Job     JobType
	Allowed []DomainStatus
}

// The domain actions: check the CNAME now, start issuance, renew now.
var (
	ActionVerify = DomainAction{JobDNSCheck, []DomainStatus{DomainPendingCNAME, DomainIssuing, DomainFailed, DomainActive}}
	ActionIssue  = DomainAction{JobStartIssuance, []DomainStatus{DomainIssuing}}
	ActionRenew  = DomainAction{JobRenewal, []DomainStatus{DomainActive}}
)

// Allows reports whether a domain in status st may take the action.
func (a DomainAction) Allows(st DomainStatus) bool {
	for _, s := range a.Allowed {
		if s == st {
			return true
		}
	}
	return false
}

// DomainCSR is the certificate signing request a csr-mode domain's
// certificates are ordered with, until the customer submits another.
type DomainCSR struct {
	DomainID string
	// PEM is the CSR alone, PEM encoded.
	PEM string
	// KeyType names the CSR's public key (ec256, ec384, rsa2048, rsa3072,
	// rsa4096).
	KeyType string
	// PublicKeySHA256 is the hex SHA-256 of the CSR's SubjectPublicKeyInfo.
	PublicKeySHA256 string
	SubmittedAt     time.Time
}
