// Package provider is what dcvaas needs from a customer's DNS provider to
// create the delegation CNAME itself: the zones a credential can manage, the
// records at one name, and setting or deleting them. Each vendor has its own
// package (cloudflare, godaddy, route53); providertest holds fakes of all of
// them that speak the vendors' wire formats.
package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Zone is a DNS zone a credential can manage.
type Zone struct {
	ID   string // the provider's id (Route53 hosted zone id, Cloudflare zone id; the name on GoDaddy)
	Name string // lowercase, no trailing dot
}

// Record is one record set at a name: all values of one type.
type Record struct {
	// ID is the provider's record id where records have one (Cloudflare);
	// the others address record sets by name and type.
	ID     string
	Name   string // lowercase FQDN, no trailing dot
	Type   string // upper case: CNAME, TXT, …
	Values []string
	TTL    int
	// Opaque is what the provider needs to delete exactly this record set
	// (Route53: the whole set with its routing policy).
	Opaque any
}

// String names the record for a customer, e.g. in a conflict message.
func (r Record) String() string {
	return fmt.Sprintf("%s %s %s", r.Type, r.Name, strings.Join(r.Values, ", "))
}

// DNS is a connection to one account at a DNS provider.
type DNS interface {
	// Zones lists the zones the credential can manage. It doubles as the
	// credential test: it needs exactly the read permission dcvaas asks for.
	Zones(ctx context.Context) ([]Zone, error)
	// Records returns the record sets whose name is exactly name.
	Records(ctx context.Context, zone Zone, name string) ([]Record, error)
	// SetCNAME makes name a CNAME to target, replacing a CNAME already
	// there (other types at name must be deleted first), and returns once
	// the provider has applied the change.
	SetCNAME(ctx context.Context, zone Zone, name, target string, ttl int) error
	// Delete removes a record set that Records returned.
	Delete(ctx context.Context, zone Zone, r Record) error
}

// Kind classifies provider failures by what the caller should do.
type Kind int

const (
	// KindInvalid: the provider refused the request as such; retrying it
	// unchanged will fail again.
	KindInvalid Kind = iota
	// KindAuth: the credential is invalid, expired or revoked. An OAuth
	// connection refreshes its token once and tries again.
	KindAuth
	// KindForbidden: the credential is valid but lacks a permission.
	KindForbidden
	// KindNotFound: the zone or record does not exist (any more).
	KindNotFound
	// KindUnavailable: 5xx, rate limited or unreachable; try again later.
	KindUnavailable
)

// Error is a provider's refusal or failure. Message is the provider's own
// reason, which is safe to show the customer: it never holds the credential.
type Error struct {
	Provider string
	Kind     Kind
	Status   int    // HTTP status; 0 when there was no response
	Code     string // the provider's error code, when it gives one
	Message  string
	Err      error // the transport error when there was no response
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a provider error; errors that are not
// *Error (a cancelled context, a bug) are KindUnavailable, since nothing
// says the provider refused.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindUnavailable
}

// KindForStatus classifies an HTTP status the way most REST APIs mean it.
func KindForStatus(status int) Kind {
	switch {
	case status == 401:
		return KindAuth
	case status == 403:
		return KindForbidden
	case status == 404:
		return KindNotFound
	case status == 408, status == 429, status >= 500:
		return KindUnavailable
	default:
		return KindInvalid
	}
}

// Canonical brings a DNS name to the form Zone and Record use: lower case
// without the trailing dot.
func Canonical(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// Relative returns name relative to zone ("@" for the apex), as GoDaddy
// and zone files write it. name must be in zone.
func Relative(name, zone string) string {
	name, zone = Canonical(name), Canonical(zone)
	if name == zone {
		return "@"
	}
	return strings.TrimSuffix(name, "."+zone)
}
