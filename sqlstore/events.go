package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
)

// The event outbox (migrations 00010). Events are written by the changes
// themselves, inside their transactions: w.event for changes built as
// writes, db.event for the others. Nothing else writes event rows.

// eventRow is one event to insert.
type eventRow struct {
	orgID, domainID string
	typ             dcvaas.EventType
	data            *dcvaas.EventData
	// dedupe, when set, makes the insert a no-op if an event with the same
	// key exists (certificate.expiring once per threshold).
	dedupe string
}

func (db *DB) eventStmt(e eventRow) (stmt, error) {
	raw, err := json.Marshal(e.data)
	if err != nil {
		return stmt{}, fmt.Errorf("event data: %w", err)
	}
	var dedupe sql.NullString
	if e.dedupe != "" {
		dedupe = sql.NullString{String: e.dedupe, Valid: true}
	}
	q := `INSERT INTO events (id, org_id, type, domain_id, data, created_at, dedupe_key) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	if e.dedupe != "" {
		q += ` ON CONFLICT (dedupe_key) DO NOTHING`
	}
	return stmt{q, []any{newID(), e.orgID, string(e.typ), e.domainID, string(raw), micros(db.now()), dedupe}}, nil
}

// event adds an event to the change w describes.
func (w *writes) event(db *DB, e eventRow) error {
	if db.skipEvents {
		return nil
	}
	s, err := db.eventStmt(e)
	if err != nil {
		return err
	}
	w.add(s.query, s.args...)
	return nil
}

// event writes one event inside tx.
func (db *DB) event(ctx context.Context, tx *sql.Tx, e eventRow) error {
	if db.skipEvents {
		return nil
	}
	s, err := db.eventStmt(e)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.query, s.args...)
	return err
}

// domainEvent writes an event about d inside tx.
func (db *DB) domainEvent(ctx context.Context, tx *sql.Tx, typ dcvaas.EventType, d *dcvaas.Domain, data *dcvaas.EventData) error {
	if data == nil {
		data = dcvaas.DomainData(d)
	}
	return db.event(ctx, tx, eventRow{orgID: d.OrgID, domainID: d.ID, typ: typ, data: data})
}

// WriteEventTx writes an event inside the caller's transaction: for the job
// engine, whose state changes run in transactions it holds.
func (db *DB) WriteEventTx(ctx context.Context, tx *sql.Tx, orgID, domainID string, typ dcvaas.EventType, data *dcvaas.EventData) error {
	return db.event(ctx, tx, eventRow{orgID: orgID, domainID: domainID, typ: typ, data: data})
}

// visible is the condition that keeps a reader to events that no later
// commit can precede. PostgreSQL takes sequence values before commit, so
// a row with a smaller (txid, seq) may still be on its way; every such
// row belongs to a transaction at or above the oldest one running
// (pg_snapshot_xmin), and rows below it are final. SQLite has one writer:
// every committed row is final.
func (db *DB) visible() string {
	if db.dialect == Postgres {
		return " AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
	}
	return ""
}

const eventColumns = `txid, seq, id, org_id, type, domain_id, data, created_at`

func scanEvents(rows *sql.Rows) ([]*dcvaas.Event, error) {
	defer rows.Close()
	var out []*dcvaas.Event
	for rows.Next() {
		var e dcvaas.Event
		var typ, data string
		var created int64
		if err := rows.Scan(&e.Cursor.Tx, &e.Cursor.Seq, &e.ID, &e.OrgID, &typ, &e.DomainID, &data, &created); err != nil {
			return nil, err
		}
		e.Type, e.Data, e.Timestamp = dcvaas.EventType(typ), json.RawMessage(data), fromMicros(created)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// ListEvents implements dcvaas.EventStore.
func (db *DB) ListEvents(ctx context.Context, orgID string, f dcvaas.EventFilter) ([]*dcvaas.Event, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.add("(txid > ? OR (txid = ? AND seq > ?))", f.After.Tx, f.After.Tx, f.After.Seq)
	if f.DomainID != "" {
		w.add("domain_id = ?", f.DomainID)
	}
	if len(f.Types) > 0 {
		var ors []string
		var args []any
		for _, p := range f.Types {
			if prefix, ok := strings.CutSuffix(p, "*"); ok {
				if prefix == "" {
					ors = nil
					break
				}
				// Type names hold no LIKE wildcards (ValidEventPattern).
				ors, args = append(ors, "type LIKE ?"), append(args, prefix+"%")
			} else {
				ors, args = append(ors, "type = ?"), append(args, p)
			}
		}
		if len(ors) > 0 {
			w.add("("+strings.Join(ors, " OR ")+")", args...)
		}
	}
	w.args = append(w.args, max(f.Limit, 1))
	rows, err := db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events`+w.String()+db.visible()+
		fmt.Sprintf(` ORDER BY txid, seq LIMIT $%d`, len(w.args)), w.args...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// EventsSince implements dcvaas.EventStore.
func (db *DB) EventsSince(ctx context.Context, c dcvaas.Cursor, limit int) ([]*dcvaas.Event, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE (txid > $1 OR (txid = $1 AND seq > $2))`+db.visible()+` ORDER BY txid, seq LIMIT $3`, c.Tx, c.Seq, max(limit, 1))
	if err != nil {
		return nil, err
	}
	return scanEvents(rows)
}

// LastEventCursor implements dcvaas.EventStore.
func (db *DB) LastEventCursor(ctx context.Context) (dcvaas.Cursor, error) {
	var c dcvaas.Cursor
	err := db.read.QueryRowContext(ctx, `SELECT txid, seq FROM events WHERE 1 = 1`+db.visible()+
		` ORDER BY txid DESC, seq DESC LIMIT 1`).Scan(&c.Tx, &c.Seq)
	if err == sql.ErrNoRows {
		return dcvaas.Cursor{}, nil
	}
	return c, err
}

// DeleteEventsBefore deletes events older than t (retention) in batches,
// and returns how many it deleted.
func (db *DB) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN
				(SELECT seq FROM events WHERE created_at < $1 ORDER BY created_at LIMIT 1000)`, micros(t))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < 1000 {
			return total, err
		}
	}
}

// ExpiringCertificate is a domain's newest certificate whose notAfter is
// near: the daily scan's finding.
type ExpiringCertificate struct {
	Domain      *dcvaas.Domain
	Certificate *dcvaas.Certificate
}

// WriteExpiringEvents writes certificate.expiring for every live domain
// whose newest certificate ends within the largest threshold, once per
// threshold per certificate (the events' dedupe keys), and returns how
// many it wrote.
func (db *DB) WriteExpiringEvents(ctx context.Context, now time.Time, thresholds []int) (int, error) {
	if len(thresholds) == 0 {
		return 0, nil
	}
	horizon := 0
	for _, t := range thresholds {
		horizon = max(horizon, t)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+qualify("d", domainColumns)+`,
		c.id, c.serial_number, c.ca_name, c.dns_names, c.not_before, c.not_after
		FROM domains d JOIN certificates c ON c.domain_id = d.id
		WHERE d.deleted_at IS NULL AND d.expires_at IS NOT NULL AND d.expires_at <= $1 AND c.not_after = d.expires_at
		AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.domain_id = d.id AND n.created_at > c.created_at)`,
		micros(now.Add(time.Duration(horizon)*24*time.Hour)))
	if err != nil {
		return 0, err
	}
	var found []ExpiringCertificate
	for rows.Next() {
		var c dcvaas.Certificate
		var names string
		var nb, na int64
		d, err := scanDomain(scanFunc(func(dest ...any) error {
			return rows.Scan(append(dest, &c.ID, &c.SerialNumber, &c.CAName, &names, &nb, &na)...)
		}))
		if err != nil {
			rows.Close()
			return 0, err
		}
		if err := json.Unmarshal([]byte(names), &c.DNSNames); err != nil {
			rows.Close()
			return 0, err
		}
		c.NotBefore, c.NotAfter, c.DomainID, c.OrgID = fromMicros(nb), fromMicros(na), d.ID, d.OrgID
		found = append(found, ExpiringCertificate{d, &c})
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	written := 0
	for _, f := range found {
		left := f.Certificate.NotAfter.Sub(now)
		// The smallest threshold crossed: a certificate found at 2 days
		// left gets the 3-day event, not also a late 14-day one.
		crossed := 0
		for _, t := range thresholds {
			if left <= time.Duration(t)*24*time.Hour && (crossed == 0 || t < crossed) {
				crossed = t
			}
		}
		if crossed == 0 {
			continue
		}
		data := dcvaas.DomainData(f.Domain).WithCertificate(f.Certificate)
		data.DaysLeft = crossed
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			s, err := db.eventStmt(eventRow{orgID: f.Domain.OrgID, domainID: f.Domain.ID, typ: dcvaas.EventCertificateExpiring,
				data: data, dedupe: fmt.Sprintf("certificate.expiring:%s:%d", f.Certificate.ID, crossed)})
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, s.query, s.args...)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				written++
			}
			return nil
		})
		if err != nil {
			return written, err
		}
	}
	return written, nil
}
