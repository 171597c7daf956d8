package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"net/mail"
	"strings"

	"github.com/dcvaas/dcvaas"
)

// cleanEmail trims an e-mail address and checks it is one bare address.
func cleanEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
		return "", &dcvaas.Error{Code: dcvaas.EINVALID, Message: "invalid e-mail address",
			Fields: map[string]string{"email": "must be a plain e-mail address like ops@example.com"}}
	}
	return email, nil
}

func checkRole(role dcvaas.MemberRole) error {
	if !role.Valid() {
		return &dcvaas.Error{Code: dcvaas.EINVALID, Message: "invalid role",
			Fields: map[string]string{"role": "must be one of owner, admin, member, viewer"}}
	}
	return nil
}

// ListMembers implements dcvaas.OrgStore.
func (db *DB) ListMembers(ctx context.Context, actor dcvaas.Actor, orgID string, p dcvaas.Page) ([]*dcvaas.Member, int, error) {
	if _, err := db.findMembership(ctx, db.read, actor.UserID, orgID); err != nil {
		return nil, 0, err
	}
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM organization_members WHERE org_id = $1`, orgID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT u.id, u.email, m.role, m.created_at FROM organization_members m
		JOIN users u ON u.id = m.user_id WHERE m.org_id = $1
		ORDER BY m.created_at, u.id LIMIT $2 OFFSET $3`, orgID, p.Limit, p.Offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*dcvaas.Member
	for rows.Next() {
		var m dcvaas.Member
		var role string
		var created int64
		if err := rows.Scan(&m.UserID, &m.Email, &role, &created); err != nil {
			return nil, 0, err
		}
		m.Role, m.CreatedAt = dcvaas.MemberRole(role), fromMicros(created)
		out = append(out, &m)
	}
	return out, total, rows.Err()
}

// administer checks that actor may change orgID's members, inside tx.
func (db *DB) administer(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, orgID string) (dcvaas.MemberRole, error) {
	org, err := db.findMembership(ctx, tx, actor.UserID, orgID)
	if err != nil {
		return "", err
	}
	if !org.Role.CanAdminister() {
		return "", dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an owner or admin may change the organization's members")
	}
	return org.Role, nil
}

func memberRole(ctx context.Context, q querier, orgID, userID string) (dcvaas.MemberRole, error) {
	var role string
	err := q.QueryRowContext(ctx, `SELECT role FROM organization_members WHERE org_id = $1 AND user_id = $2`, orgID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return dcvaas.MemberRole(role), err
}

// lastOwner reports whether userID is orgID's only owner.
func lastOwner(ctx context.Context, tx *sql.Tx, orgID, userID string) (bool, error) {
	var others int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM organization_members WHERE org_id = $1 AND role = 'owner' AND user_id <> $2`,
		orgID, userID).Scan(&others)
	return others == 0, err
}

// AddMember implements dcvaas.OrgStore.
func (db *DB) AddMember(ctx context.Context, actor dcvaas.Actor, orgID, email string, role dcvaas.MemberRole) (*dcvaas.Member, error) {
	email, err := cleanEmail(email)
	if err != nil {
		return nil, err
	}
	if err := checkRole(role); err != nil {
		return nil, err
	}
	var m *dcvaas.Member
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		mine, err := db.administer(ctx, tx, actor, orgID)
		if err != nil {
			return err
		}
		user, err := db.findOrCreateUser(ctx, tx, email)
		if err != nil {
			return err
		}
		had, err := memberRole(ctx, tx, orgID, user.ID)
		if err != nil {
			return err
		}
		if (role == dcvaas.RoleOwner || had == dcvaas.RoleOwner) && mine != dcvaas.RoleOwner {
			return dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an owner may grant or take the owner role")
		}
		now := db.now().UTC()
		m = &dcvaas.Member{UserID: user.ID, Email: user.Email, Role: role, CreatedAt: now}
		actor.OrgID = orgID
		details := map[string]any{"email": user.Email, "role": string(role)}
		if had == "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)`,
				orgID, user.ID, string(role), micros(now)); err != nil {
				return err
			}
			return db.audit(ctx, tx, actor, "member.added", "user", user.ID, details)
		}
		if had == role {
			return nil // already so: nothing changes, nothing to audit
		}
		if had == dcvaas.RoleOwner {
			if last, err := lastOwner(ctx, tx, orgID, user.ID); err != nil {
				return err
			} else if last {
				return dcvaas.Errorf(dcvaas.ECONFLICT, "%s is the organization's last owner; make someone else owner first", user.Email)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE organization_members SET role = $1 WHERE org_id = $2 AND user_id = $3`,
			string(role), orgID, user.ID); err != nil {
			return err
		}
		details["previousRole"] = string(had)
		return db.audit(ctx, tx, actor, "member.updated", "user", user.ID, details)
	})
	return m, err
}

// RemoveMember implements dcvaas.OrgStore.
func (db *DB) RemoveMember(ctx context.Context, actor dcvaas.Actor, orgID, userID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		mine, err := db.administer(ctx, tx, actor, orgID)
		if err != nil {
			return err
		}
		var email, role string
		err = tx.QueryRowContext(ctx, `SELECT u.email, m.role FROM organization_members m JOIN users u ON u.id = m.user_id
			WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID).Scan(&email, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "member not found")
		} else if err != nil {
			return err
		}
		if dcvaas.MemberRole(role) == dcvaas.RoleOwner {
			if mine != dcvaas.RoleOwner {
				return dcvaas.Errorf(dcvaas.EFORBIDDEN, "only an owner may remove an owner")
			}
			if last, err := lastOwner(ctx, tx, orgID, userID); err != nil {
				return err
			} else if last {
				return dcvaas.Errorf(dcvaas.ECONFLICT, "%s is the organization's last owner; make someone else owner first", email)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM organization_members WHERE org_id = $1 AND user_id = $2`, orgID, userID); err != nil {
			return err
		}
		actor.OrgID = orgID
		return db.audit(ctx, tx, actor, "member.removed", "user", userID, map[string]any{"email": email, "role": role})
	})
}

// MembershipsByEmail implements dcvaas.OrgStore.
func (db *DB) MembershipsByEmail(ctx context.Context, email string) (*dcvaas.User, []*dcvaas.Organization, error) {
	u := &dcvaas.User{}
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT id, email, created_at FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)).
		Scan(&u.ID, &u.Email, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "no user with that e-mail")
	} else if err != nil {
		return nil, nil, err
	}
	u.CreatedAt = fromMicros(created)
	rows, err := db.read.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o
		JOIN organization_members m ON m.org_id = o.id WHERE m.user_id = $1
		ORDER BY m.created_at, o.id`, u.ID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var orgs []*dcvaas.Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, nil, err
		}
		orgs = append(orgs, o)
	}
	return u, orgs, rows.Err()
}

// JoinByEmail implements dcvaas.OrgStore.
func (db *DB) JoinByEmail(ctx context.Context, actor dcvaas.Actor, orgID, email string, role dcvaas.MemberRole) error {
	email, err := cleanEmail(email)
	if err != nil {
		return err
	}
	if err := checkRole(role); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM organizations WHERE id = $1`, orgID).Scan(&n); err != nil {
			return err
		} else if n == 0 {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "organization not found")
		}
		user, err := db.findOrCreateUser(ctx, tx, email)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id, user_id) DO NOTHING`, orgID, user.ID, string(role), micros(db.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		actor.OrgID, actor.UserID = orgID, user.ID
		return db.audit(ctx, tx, actor, "member.joined", "user", user.ID, map[string]any{"email": user.Email, "role": string(role)})
	})
}
