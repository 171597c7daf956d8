package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dcvaas/dcvaas"
)

// Bootstrap implements dcvaas.OrgStore.
func (db *DB) Bootstrap(ctx context.Context, orgName, ownerEmail string, tok *dcvaas.Token) (*dcvaas.Organization, *dcvaas.User, error) {
	var org *dcvaas.Organization
	var user *dcvaas.User
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if user, err = db.findOrCreateUser(ctx, tx, ownerEmail); err != nil {
			return err
		}
		actor := dcvaas.Actor{UserID: user.ID}
		if org, err = db.createOrg(ctx, tx, actor, orgName, dcvaas.OrgSettings{}); err != nil {
			return err
		}
		actor.OrgID = org.ID
		tok.OrgID, tok.UserID = org.ID, user.ID
		return db.createToken(ctx, tx, actor, tok)
	})
	if err != nil {
		return nil, nil, err
	}
	return org, user, nil
}

func (db *DB) findOrCreateUser(ctx context.Context, tx *sql.Tx, email string) (*dcvaas.User, error) {
	u := &dcvaas.User{}
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT id, email, created_at FROM users WHERE lower(email) = lower($1)`, email).
		Scan(&u.ID, &u.Email, &created)
	if err == nil {
		u.CreatedAt = fromMicros(created)
		return u, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	u.ID, u.Email, u.CreatedAt = newID(), email, db.now().UTC()
	_, err = tx.ExecContext(ctx, `INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)`, u.ID, u.Email, micros(u.CreatedAt))
	return u, err
}

// createOrg inserts an organization with actor.UserID as its owner.
func (db *DB) createOrg(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, name string, settings dcvaas.OrgSettings) (*dcvaas.Organization, error) {
	raw, err := json.Marshal(settings)
	if err != nil {
		return nil, err
	}
	now := db.now().UTC()
	org := &dcvaas.Organization{ID: newID(), Name: name, Settings: settings, CreatedAt: now, UpdatedAt: now, Role: dcvaas.RoleOwner}
	// Names are not unique (orgname): nobody can squat a future
	// customer's name or learn which names exist.
	if _, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		org.ID, org.Name, string(raw), micros(now), micros(now)); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
		org.ID, actor.UserID, string(dcvaas.RoleOwner), micros(now)); err != nil {
		return nil, err
	}
	actor.OrgID = org.ID
	return org, db.audit(ctx, tx, actor, "organization.created", "organization", org.ID, map[string]any{"name": name})
}

// CreateOrganization implements dcvaas.OrgStore.
func (db *DB) CreateOrganization(ctx context.Context, actor dcvaas.Actor, name string, settings dcvaas.OrgSettings) (*dcvaas.Organization, error) {
	var org *dcvaas.Organization
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		org, err = db.createOrg(ctx, tx, actor, name, settings)
		return err
	})
	return org, err
}

const orgColumns = `o.id, o.name, o.settings, o.created_at, o.updated_at, m.role`

func scanOrg(row interface{ Scan(...any) error }) (*dcvaas.Organization, error) {
	var o dcvaas.Organization
	var settings, role string
	var created, updated int64
	if err := row.Scan(&o.ID, &o.Name, &settings, &created, &updated, &role); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(settings), &o.Settings); err != nil {
		return nil, fmt.Errorf("organization %s settings: %w", o.ID, err)
	}
	o.CreatedAt, o.UpdatedAt, o.Role = fromMicros(created), fromMicros(updated), dcvaas.MemberRole(role)
	return &o, nil
}

// ListOrganizations implements dcvaas.OrgStore.
func (db *DB) ListOrganizations(ctx context.Context, userID string, p dcvaas.Page) ([]*dcvaas.Organization, int, error) {
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM organization_members WHERE user_id = $1`, userID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o
		JOIN organization_members m ON m.org_id = o.id WHERE m.user_id = $1
		ORDER BY o.created_at DESC, o.id DESC LIMIT $2 OFFSET $3`, userID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*dcvaas.Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, o)
	}
	return out, total, rows.Err()
}

func (db *DB) findMembership(ctx context.Context, q querier, userID, orgID string) (*dcvaas.Organization, error) {
	o, err := scanOrg(q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o
		JOIN organization_members m ON m.org_id = o.id WHERE m.user_id = $1 AND o.id = $2`, userID, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "organization not found")
	}
	return o, err
}

// FindMembership implements dcvaas.OrgStore.
func (db *DB) FindMembership(ctx context.Context, userID, orgID string) (*dcvaas.Organization, error) {
	return db.findMembership(ctx, db.read, userID, orgID)
}

// UpdateOrganization implements dcvaas.OrgStore.
func (db *DB) UpdateOrganization(ctx context.Context, actor dcvaas.Actor, orgID string, u dcvaas.OrgUpdate) (*dcvaas.Organization, error) {
	var org *dcvaas.Organization
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if org, err = db.findMembership(ctx, tx, actor.UserID, orgID); err != nil {
			return err
		}
		if !org.Role.CanAdminister() {
			return dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an owner or admin may change the organization")
		}
		details := map[string]any{}
		if u.Name != nil && *u.Name != org.Name {
			details["name"] = map[string]any{"from": org.Name, "to": *u.Name}
			org.Name = *u.Name
		}
		if u.Settings != nil {
			details["settings"] = *u.Settings
			org.Settings = *u.Settings
		}
		raw, err := json.Marshal(org.Settings)
		if err != nil {
			return err
		}
		org.UpdatedAt = db.now().UTC()
		if _, err := tx.ExecContext(ctx, `UPDATE organizations SET name = $1, settings = $2, updated_at = $3 WHERE id = $4`,
			org.Name, string(raw), micros(org.UpdatedAt), orgID); err != nil {
			return err
		}
		actor.OrgID = orgID
		return db.audit(ctx, tx, actor, "organization.updated", "organization", orgID, details)
	})
	return org, err
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
