package jobs

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// eventsOf returns the committed events of one domain in the order they
// were written. (ListEvents holds back, on PostgreSQL, events that a
// transaction still running anywhere on the server could precede; these
// tests want what their changes wrote, at once.)
func (b *bundle) eventsOf(domainID string) []*dcvaas.Event {
	b.t.Helper()
	rows, err := b.db.SQL().QueryContext(b.ctx, `SELECT type, data FROM events WHERE domain_id = $1 ORDER BY seq`, domainID)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []*dcvaas.Event
	for rows.Next() {
		var e dcvaas.Event
		var data string
		if err := rows.Scan(&e.Type, &data); err != nil {
			b.t.Fatal(err)
		}
		e.Data = json.RawMessage(data)
		out = append(out, &e)
	}
	return out
}

func typesOf(es []*dcvaas.Event) []dcvaas.EventType {
	var out []dcvaas.EventType
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// TestEventScan: the daily scan writes certificate.expiring once and
// deletes events past the retention.
func TestEventScan(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, func(c *Config) { c.EventRetention = 48 * time.Hour })
		now := b.clock.Now()
		d := b.activeDomain("soon", now.Add(-80*day), now.Add(5*day))
		for want := range []int{1, 0} {
			exp, _, err := b.e.EventScan(b.ctx)
			if err != nil || exp != 1-want {
				t.Fatalf("scan %d: %d expiring, %v", want, exp, err)
			}
		}
		cert, err := b.db.CurrentCertificate(b.ctx, b.org.ID, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		es := b.eventsOf(d.ID)
		last := es[len(es)-1]
		var data dcvaas.EventData
		if err := json.Unmarshal(last.Data, &data); err != nil || last.Type != dcvaas.EventCertificateExpiring || data.DaysLeft != 14 || data.SerialNumber != cert.SerialNumber {
			t.Fatalf("last event %s %s", last.Type, last.Data)
		}
		b.clock.Advance(3 * day)
		_, deleted, err := b.e.EventScan(b.ctx)
		if err != nil || deleted != len(es) {
			t.Fatalf("deleted %d of %d, %v", deleted, len(es), err)
		}
		// The 3-day threshold is now crossed: one more, newer than the retention.
		if got := typesOf(b.eventsOf(d.ID)); !slices.Equal(got, []dcvaas.EventType{dcvaas.EventCertificateExpiring}) {
			t.Fatalf("after retention: %v", got)
		}
	})
}
