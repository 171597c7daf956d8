package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// The store treats secret_enc as opaque: the connection service seals and
// opens it, so plaintext credentials never reach this package.

const connectionColumns = `id, org_id, provider, kind, status, display_name, secret_enc, token_expires_at,
	last_error, created_by, created_at, updated_at`

func scanConnection(row interface{ Scan(...any) error }) (*dcvaas.Connection, error) {
	var c dcvaas.Connection
	var kind, status string
	var expires sql.NullInt64
	var created, updated int64
	if err := row.Scan(&c.ID, &c.OrgID, &c.Provider, &kind, &status, &c.DisplayName, &c.SecretEnc, &expires,
		&c.LastError, &c.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	c.Kind, c.Status = dcvaas.ConnectionKind(kind), dcvaas.ConnectionStatus(status)
	c.TokenExpiresAt = fromNullMicros(expires)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

// connectionDetails is what the audit log says about a connection: never
// anything sealed.
func connectionDetails(c *dcvaas.Connection) map[string]any {
	return map[string]any{"provider": c.Provider, "kind": c.Kind, "displayName": c.DisplayName}
}

// CreateConnection implements dcvaas.ConnectionStore.
func (db *DB) CreateConnection(ctx context.Context, actor dcvaas.Actor, c *dcvaas.Connection, seal func(id string) (string, error)) error {
	now := db.now().UTC()
	c.ID, c.OrgID, c.CreatedBy, c.CreatedAt, c.UpdatedAt = newID(), actor.OrgID, actor.UserID, now, now
	if c.Status == "" {
		c.Status = dcvaas.ConnectionActive
	}
	var err error
	if c.SecretEnc, err = seal(c.ID); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_connections (`+connectionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
			c.ID, c.OrgID, c.Provider, string(c.Kind), string(c.Status), c.DisplayName, c.SecretEnc,
			nullMicros(c.TokenExpiresAt), c.LastError, c.CreatedBy, micros(now)); err != nil {
			return err
		}
		return db.audit(ctx, tx, actor, "connection.created", "connection", c.ID, connectionDetails(c))
	})
}

func (db *DB) findConnection(ctx context.Context, q querier, orgID, id string, lock bool) (*dcvaas.Connection, error) {
	query := `SELECT ` + connectionColumns + ` FROM oauth_connections WHERE id = $1 AND org_id = $2`
	if lock {
		query += db.dialect.forUpdate()
	}
	c, err := scanConnection(q.QueryRowContext(ctx, query, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "connection not found")
	}
	return c, err
}

// FindConnection implements dcvaas.ConnectionStore. It reads from the
// writer: a token refresh must see the secret the last refresh wrote, and
// on SQLite the read pool may lag by a transaction.
func (db *DB) FindConnection(ctx context.Context, orgID, id string) (*dcvaas.Connection, error) {
	return db.findConnection(ctx, db.write, orgID, id, false)
}

// ListConnections implements dcvaas.ConnectionStore.
func (db *DB) ListConnections(ctx context.Context, orgID string, p dcvaas.Page) ([]*dcvaas.Connection, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_connections WHERE org_id = $1`, orgID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+connectionColumns+` FROM oauth_connections WHERE org_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`, orgID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []*dcvaas.Connection{}
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, c)
	}
	return out, total, rows.Err()
}

// UpdateConnectionSecret implements dcvaas.ConnectionStore. The compare on
// the old envelope makes concurrent refreshes safe: providers that rotate
// refresh tokens invalidate the old one, so the loser must adopt the
// winner's tokens instead of overwriting them with ones already dead.
func (db *DB) UpdateConnectionSecret(ctx context.Context, actor dcvaas.Actor, id, oldEnc, newEnc string, expiresAt *time.Time, action string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := db.findConnection(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		if c.SecretEnc != oldEnc {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "connection credentials changed concurrently")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_connections SET secret_enc = $1, token_expires_at = $2,
			status = $3, last_error = '', updated_at = $4 WHERE id = $5`,
			newEnc, nullMicros(expiresAt), string(dcvaas.ConnectionActive), micros(db.now()), id); err != nil {
			return err
		}
		if action == "" {
			return nil
		}
		details := connectionDetails(c)
		if expiresAt != nil {
			details["tokenExpiresAt"] = expiresAt.UTC().Format(time.RFC3339)
		}
		return db.audit(ctx, tx, actor, action, "connection", id, details)
	})
}

// SetConnectionStatus implements dcvaas.ConnectionStore.
func (db *DB) SetConnectionStatus(ctx context.Context, actor dcvaas.Actor, id string, status dcvaas.ConnectionStatus, lastError, action string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := db.findConnection(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		if c.Status == status && c.LastError == lastError {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_connections SET status = $1, last_error = $2, updated_at = $3 WHERE id = $4`,
			string(status), lastError, micros(db.now()), id); err != nil {
			return err
		}
		if action == "" || c.Status == status {
			return nil
		}
		details := connectionDetails(c)
		details["status"], details["reason"] = status, lastError
		return db.audit(ctx, tx, actor, action, "connection", id, details)
	})
}

// DeleteConnection implements dcvaas.ConnectionStore. The row goes for good:
// a soft delete would keep the secret.
func (db *DB) DeleteConnection(ctx context.Context, actor dcvaas.Actor, id string, details map[string]any) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := db.findConnection(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_connections WHERE id = $1`, id); err != nil {
			return err
		}
		all := connectionDetails(c)
		for k, v := range details {
			all[k] = v
		}
		return db.audit(ctx, tx, actor, "connection.deleted", "connection", id, all)
	})
}

// RecordDNSSetup implements dcvaas.ConnectionStore.
func (db *DB) RecordDNSSetup(ctx context.Context, actor dcvaas.Actor, domainID string, details map[string]any, queueCheck bool) (*dcvaas.Job, error) {
	var job *dcvaas.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.findDomain(ctx, tx, actor.OrgID, domainID, true); err != nil {
			return err
		}
		if err := db.audit(ctx, tx, actor, "domain.dns_setup", "domain", domainID, details); err != nil {
			return err
		}
		if !queueCheck {
			return nil
		}
		var err error
		job, err = db.insertJob(ctx, tx, actor, domainID, dcvaas.JobDNSCheck, EnqueueOpts{AfterChange: true}, nil)
		return err
	})
	return job, err
}
