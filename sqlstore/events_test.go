package sqlstore_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
)

func eventTypes(es []*dcvaas.Event) []dcvaas.EventType {
	var out []dcvaas.EventType
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// settle waits until every committed event is readable: on PostgreSQL,
// readers hold back events while an older transaction anywhere on the
// server still runs (another package's tests, say).
func (b *bundle) settle(t *testing.T) {
	t.Helper()
	var n int
	if err := b.db.SQL().QueryRowContext(b.ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		es, err := b.db.EventsSince(b.ctx, dcvaas.Cursor{}, n+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events readable after 10s", len(es), n)
		}
	}
}

func (b *bundle) events(t *testing.T, orgID string, f dcvaas.EventFilter) []*dcvaas.Event {
	t.Helper()
	b.settle(t)
	if f.Limit == 0 {
		f.Limit = 100
	}
	es, err := b.db.ListEvents(b.ctx, orgID, f)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestEventOutbox: the store's changes write their events in the same
// transaction, readable in order after a cursor, per organization.
func TestEventOutbox(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "events.example.com")
		nb := b.clock.Now().Truncate(time.Second)
		cert := func(id, serial string) *dcvaas.Certificate {
			return &dcvaas.Certificate{ID: id, DomainID: d.ID, SerialNumber: serial, Issuer: "Test CA", CAName: "le",
				OrderURL: "https://ca/order/" + id, DNSNames: []string{d.Name, "*." + d.Name}, NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour),
				ChainPEM: "chain", PrivateKeyEnc: "sealed-secret"}
		}
		for _, c := range []*dcvaas.Certificate{cert("cert-1", "01aa"), cert("cert-2", "02bb")} {
			if err := b.db.SaveCertificate(b.ctx, dcvaas.SystemActor(b.org.ID), c, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.db.DeleteDomain(b.ctx, b.actor, d.ID, false); err != nil {
			t.Fatal(err)
		}
		// A change that fails writes no event.
		if _, err := b.db.CreateDomain(b.ctx, b.actor, &dcvaas.Domain{Name: "dup.example.com", CNAMETarget: "label1.verify.test", KeyType: "ec256"}); err == nil {
			t.Fatal("duplicate CNAME target accepted")
		}
		all := b.events(t, b.org.ID, dcvaas.EventFilter{})
		want := []dcvaas.EventType{dcvaas.EventDomainCreated, dcvaas.EventCertificateIssued, dcvaas.EventCertificateRenewed, dcvaas.EventDomainDeleted}
		if got := eventTypes(all); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		var data dcvaas.EventData
		if err := json.Unmarshal(all[2].Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.CertificateID != "cert-2" || data.SerialNumber != "02bb" || data.PreviousCertificateID != "cert-1" ||
			data.PreviousSerialNumber != "01aa" || data.Domain.DomainName != d.Name || data.Domain.Status != dcvaas.DomainActive ||
			len(data.SANs) != 2 || data.NotAfter == nil {
			t.Fatalf("renewed data = %s", all[2].Data)
		}
		for _, e := range all {
			if strings.Contains(string(e.Data), "sealed-secret") || strings.Contains(string(e.Data), "chain") {
				t.Fatalf("event %s carries the key or chain: %s", e.Type, e.Data)
			}
			if e.DomainID != d.ID || e.OrgID != b.org.ID {
				t.Fatalf("event %+v", e)
			}
		}
		// Cursors: read on after each event, one at a time, gets each once.
		var c dcvaas.Cursor
		for i := range all {
			page := b.events(t, b.org.ID, dcvaas.EventFilter{After: c, Limit: 1})
			if len(page) != 1 || page[0].ID != all[i].ID {
				t.Fatalf("page %d = %v", i, eventTypes(page))
			}
			c = page[0].Cursor
			back, err := dcvaas.ParseCursor(c.String())
			if err != nil || back != c {
				t.Fatalf("cursor %v round trip = %v, %v", c, back, err)
			}
		}
		if rest := b.events(t, b.org.ID, dcvaas.EventFilter{After: c}); len(rest) != 0 {
			t.Fatalf("after the last: %v", eventTypes(rest))
		}
		// Filters.
		certs := b.events(t, b.org.ID, dcvaas.EventFilter{Types: []string{"certificate.*"}})
		if got := eventTypes(certs); !slices.Equal(got, want[1:3]) {
			t.Fatalf("certificate.* = %v", got)
		}
		exact := b.events(t, b.org.ID, dcvaas.EventFilter{Types: []string{"domain.deleted", "domain.created"}})
		if got := eventTypes(exact); !slices.Equal(got, []dcvaas.EventType{want[0], want[3]}) {
			t.Fatalf("exact = %v", got)
		}
		if n := len(b.events(t, b.org.ID, dcvaas.EventFilter{DomainID: "other"})); n != 0 {
			t.Fatalf("domain filter: %d", n)
		}
		// Another organization sees none of them.
		tok := &dcvaas.Token{Name: "other", Hash: "h-other", Role: dcvaas.TokenAdmin}
		org2, _, err := b.db.Bootstrap(b.ctx, "Other", "other@other.example.com", tok)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b.events(t, org2.ID, dcvaas.EventFilter{})); n != 0 {
			t.Fatalf("org2 sees %d events", n)
		}
		b.settle(t)
		// The global feed has them all, and the last cursor is the last.
		feed, err := b.db.EventsSince(b.ctx, dcvaas.Cursor{}, 100)
		if err != nil || len(feed) != len(all) {
			t.Fatalf("feed = %d, %v", len(feed), err)
		}
		if last, err := b.db.LastEventCursor(b.ctx); err != nil || last != all[len(all)-1].Cursor {
			t.Fatalf("last cursor = %v, %v", last, err)
		}
	})
}

// TestExpiringEvents: once per threshold per certificate; retention deletes.
func TestExpiringEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		d, _ := b.newDomain(t, "expiring.example.com")
		now := b.clock.Now()
		c := &dcvaas.Certificate{DomainID: d.ID, SerialNumber: "0e", CAName: "le", DNSNames: []string{d.Name},
			NotBefore: now.Add(-80 * 24 * time.Hour), NotAfter: now.Add(10 * 24 * time.Hour), ChainPEM: "x", PrivateKeyEnc: "y"}
		if err := b.db.SaveCertificate(b.ctx, dcvaas.SystemActor(b.org.ID), c, nil); err != nil {
			t.Fatal(err)
		}
		for i, tc := range []struct {
			at   time.Time
			want int
		}{{now, 1}, {now.Add(time.Hour), 0}, {now.Add(8 * 24 * time.Hour), 1}, {now.Add(9 * 24 * time.Hour), 0}} {
			n, err := b.db.WriteExpiringEvents(b.ctx, tc.at, dcvaas.ExpiringThresholds)
			if err != nil || n != tc.want {
				t.Fatalf("scan %d: wrote %d, %v; want %d", i, n, err, tc.want)
			}
		}
		es := b.events(t, b.org.ID, dcvaas.EventFilter{Types: []string{"certificate.expiring"}})
		var days []int
		for _, e := range es {
			var data dcvaas.EventData
			json.Unmarshal(e.Data, &data)
			days = append(days, data.DaysLeft)
			if data.CertificateID != c.ID {
				t.Fatalf("expiring data = %s", e.Data)
			}
		}
		if !slices.Equal(days, []int{14, 3}) {
			t.Fatalf("expiring thresholds = %v", days)
		}
		n, err := b.db.DeleteEventsBefore(b.ctx, b.clock.Now().Add(time.Hour))
		if err != nil || n != 4 {
			t.Fatalf("deleted %d, %v", n, err)
		}
		if left := b.events(t, b.org.ID, dcvaas.EventFilter{}); len(left) != 0 {
			t.Fatalf("left: %v", eventTypes(left))
		}
	})
}
