package dcvaas

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// EventType names something that happened, Stripe- and Cloudflare-style:
// noun.verb in the past tense.
type EventType string

const (
	EventDomainCreated            EventType = "domain.created"
	EventDomainDeleted            EventType = "domain.deleted"
	EventDomainVerified           EventType = "domain.verified"
	EventDomainDelegationLost     EventType = "domain.delegation_lost"
	EventDomainDelegationRestored EventType = "domain.delegation_restored"
	EventCertificateIssued        EventType = "certificate.issued"
	EventCertificateRenewed       EventType = "certificate.renewed"
	EventCertificateFailed        EventType = "certificate.failed"
	EventCertificateExpiring      EventType = "certificate.expiring"
	EventWebhookTest              EventType = "webhook.test"
	EventWebhookDisabled          EventType = "webhook.disabled"
)

// EventTypes lists every event type, for validation and documentation.
var EventTypes = []EventType{
	EventDomainCreated, EventDomainDeleted, EventDomainVerified, EventDomainDelegationLost, EventDomainDelegationRestored,
	EventCertificateIssued, EventCertificateRenewed, EventCertificateFailed, EventCertificateExpiring,
	EventWebhookTest, EventWebhookDisabled,
}

// ExpiringThresholds are the days before notAfter at which
// certificate.expiring is sent, once each per certificate.
var ExpiringThresholds = []int{14, 3}

// Event is one row of the outbox: a change, written in the transaction that
// made it.
type Event struct {
	// Cursor orders events; a consumer passes the last one it saw to read
	// on without gaps or duplicates. Opaque to clients.
	Cursor    Cursor
	ID        string
	Type      EventType
	OrgID     string
	DomainID  string
	Timestamp time.Time
	// Data is the JSON object of the event's data: never a secret.
	Data json.RawMessage
}

// Envelope is the JSON form of an event, the body of every webhook
// delivery and SSE message.
type Envelope struct {
	ID             string          `json:"id"`
	Type           EventType       `json:"type"`
	Timestamp      time.Time       `json:"timestamp"`
	OrganizationID string          `json:"organizationId"`
	Data           json.RawMessage `json:"data"`
}

// Envelope returns e as its JSON envelope.
func (e *Event) Envelope() Envelope {
	return Envelope{ID: e.ID, Type: e.Type, Timestamp: e.Timestamp.UTC(), OrganizationID: e.OrgID, Data: e.Data}
}

// EventData is the data of domain and certificate events. Fields that do
// not apply to a type are left out.
type EventData struct {
	Domain *EventDomain `json:"domain,omitempty"`
	// Certificate events.
	CertificateID string     `json:"certificateId,omitempty"`
	SerialNumber  string     `json:"serialNumber,omitempty"`
	NotBefore     *time.Time `json:"notBefore,omitempty"`
	NotAfter      *time.Time `json:"notAfter,omitempty"`
	CAName        string     `json:"caName,omitempty"`
	SANs          []string   `json:"sans,omitempty"`
	// certificate.renewed: the certificate this one replaces.
	PreviousCertificateID string `json:"previousCertificateId,omitempty"`
	PreviousSerialNumber  string `json:"previousSerialNumber,omitempty"`
	// certificate.failed: why, and the dead-lettered job.
	Reason  string  `json:"reason,omitempty"`
	JobID   string  `json:"jobId,omitempty"`
	JobType JobType `json:"jobType,omitempty"`
	// certificate.expiring: the threshold crossed (14 or 3 days).
	DaysLeft int `json:"daysLeft,omitempty"`
	// domain.delegation_lost: what DNS holds instead.
	Found string `json:"found,omitempty"`
	// webhook.test and webhook.disabled.
	WebhookID string `json:"webhookId,omitempty"`
	URL       string `json:"url,omitempty"`
}

// EventDomain is the domain as events carry it.
type EventDomain struct {
	ID          string       `json:"id"`
	DomainName  string       `json:"domainName"`
	Status      DomainStatus `json:"status"`
	CNAMEStatus CNAMEStatus  `json:"cnameStatus"`
}

// DomainData is the data of an event about d.
func DomainData(d *Domain) *EventData {
	return &EventData{Domain: &EventDomain{ID: d.ID, DomainName: d.Name, Status: d.Status, CNAMEStatus: d.Delegation()}}
}

// WithCertificate adds c's public facts (never its key).
func (e *EventData) WithCertificate(c *Certificate) *EventData {
	nb, na := c.NotBefore.UTC(), c.NotAfter.UTC()
	e.CertificateID, e.SerialNumber, e.NotBefore, e.NotAfter, e.CAName, e.SANs = c.ID, c.SerialNumber, &nb, &na, c.CAName, c.DNSNames
	return e
}

// Cursor is a position in an organization's event list: the transaction
// and the sequence number of the last event read. (SQLite has one writer,
// so its transaction part is always 0.)
type Cursor struct {
	Tx, Seq int64
}

// After reports whether c comes after o.
func (c Cursor) After(o Cursor) bool { return c.Tx > o.Tx || (c.Tx == o.Tx && c.Seq > o.Seq) }

// EventTypeMatch reports whether typ is selected by patterns: exact names
// or prefixes ending in ".*" ("certificate.*"); none selects every type.
func EventTypeMatch(patterns []string, typ EventType) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(string(typ), prefix) {
				return true
			}
		} else if p == string(typ) {
			return true
		}
	}
	return false
}

// ValidEventPattern reports whether p is an event type or a prefix of some
// ("certificate.*", "*").
func ValidEventPattern(p string) bool {
	prefix, wild := strings.CutSuffix(p, "*")
	for _, t := range EventTypes {
		if wild && strings.HasPrefix(string(t), prefix) && (prefix == "" || strings.HasSuffix(prefix, ".")) {
			return true
		}
		if !wild && p == string(t) {
			return true
		}
	}
	return false
}

// EventFilter narrows ListEvents.
type EventFilter struct {
	// Types are patterns as EventTypeMatch takes them.
	Types    []string
	DomainID string
	After    Cursor
	Limit    int
}

// EventStore reads the outbox; events are written inside the changes.
type EventStore interface {
	// ListEvents returns the organization's events after f.After, oldest
	// first, at most f.Limit. Only events that can no longer be preceded
	// by a later commit are returned, so reading on from the last cursor
	// never skips one.
	ListEvents(ctx context.Context, orgID string, f EventFilter) ([]*Event, error)
	// EventsSince returns every organization's events after c, oldest
	// first: the feed of the SSE fan-out and of webhook dispatch.
	EventsSince(ctx context.Context, c Cursor, limit int) ([]*Event, error)
	// LastEventCursor is the cursor of the newest readable event (zero when none).
	LastEventCursor(ctx context.Context) (Cursor, error)
}

// String encodes c for clients: "<tx>-<seq>".
func (c Cursor) String() string {
	return strconv.FormatInt(c.Tx, 10) + "-" + strconv.FormatInt(c.Seq, 10)
}

// ParseCursor reads a Cursor.String; "" is the zero cursor (the start).
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	tx, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || tx < 0 || seq < 0 {
		return Cursor{}, Errorf(EINVALID, "cursor %q is not one this service gave out", s)
	}
	return Cursor{tx, seq}, nil
}
