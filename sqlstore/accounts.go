package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas"
)

// ACMEAccount is dcvaas's account at one CA: one per CA name and directory,
// shared by every node and kept across restarts.
type ACMEAccount struct {
	CAName       string
	DirectoryURL string
	// KeyEnc is the account's private key (PEM) sealed by crypt.Keyring.
	KeyEnc string
	// AccountURL is the account's location at the CA; empty until the
	// account is registered.
	AccountURL string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

func scanAccount(row *sql.Row) (*ACMEAccount, error) {
	var a ACMEAccount
	var created, updated int64
	err := row.Scan(&a.CAName, &a.DirectoryURL, &a.KeyEnc, &a.AccountURL, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "no ACME account for this CA")
	} else if err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &a, nil
}

// FindACMEAccount returns the account for the CA and directory. ENOTFOUND.
func (db *DB) FindACMEAccount(ctx context.Context, caName, directoryURL string) (*ACMEAccount, error) {
	return scanAccount(db.write.QueryRowContext(ctx, `SELECT ca_name, directory_url, key_enc, account_url, created_at, updated_at
		FROM acme_accounts WHERE ca_name = $1 AND directory_url = $2`, caName, directoryURL))
}

// CreateACMEAccount stores a new account key for the CA unless another node
// stored one first, and returns the row that won. Writing the key before
// registering it means racing nodes all register the same key, which the CA
// answers with the same account (RFC 8555 §7.3.1), so no account is orphaned.
func (db *DB) CreateACMEAccount(ctx context.Context, caName, directoryURL, keyEnc string) (*ACMEAccount, error) {
	now := micros(db.now())
	if _, err := db.write.ExecContext(ctx, `INSERT INTO acme_accounts (ca_name, directory_url, key_enc, account_url, created_at, updated_at)
		VALUES ($1, $2, $3, '', $4, $4) ON CONFLICT (ca_name, directory_url) DO NOTHING`,
		caName, directoryURL, keyEnc, now); err != nil {
		return nil, err
	}
	return db.FindACMEAccount(ctx, caName, directoryURL)
}

// SetACMEAccountURL records where the CA registered the account.
// ENOTFOUND when the account row is gone.
func (db *DB) SetACMEAccountURL(ctx context.Context, caName, directoryURL, accountURL string) error {
	res, err := db.write.ExecContext(ctx, `UPDATE acme_accounts SET account_url = $1, updated_at = $2
		WHERE ca_name = $3 AND directory_url = $4`, accountURL, micros(db.now()), caName, directoryURL)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return dcvaas.Errorf(dcvaas.ENOTFOUND, "no ACME account for this CA")
	}
	return nil
}

// RetireACMEAccount moves the account at accountURL out of its place
// (caName, directoryURL) when the CA deactivated it, keeping its row under
// directoryURL + "#deactivated=<microseconds>" for the record, so that the
// next use of the place creates and registers a new account. It reports
// false when the place holds another account already (another node
// replaced it first): that one stays.
func (db *DB) RetireACMEAccount(ctx context.Context, caName, directoryURL, accountURL string) (bool, error) {
	now := micros(db.now())
	res, err := db.write.ExecContext(ctx, `UPDATE acme_accounts SET directory_url = $1, updated_at = $2
		WHERE ca_name = $3 AND directory_url = $4 AND account_url = $5`,
		directoryURL+"#deactivated="+strconv.FormatInt(now, 10), now, caName, directoryURL, accountURL)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DomainACMEAccount returns the account (1-based, at most accounts) of
// the CA that the domain uses. A domain without one is dealt the next
// account in turn, so that accounts fill evenly; the first assignment
// stays, whichever node makes it.
func (db *DB) DomainACMEAccount(ctx context.Context, domainID, caName string, accounts int) (int, error) {
	var n int
	err := db.write.QueryRowContext(ctx, `SELECT account FROM domain_acme_accounts WHERE domain_id = $1 AND ca_name = $2`, domainID, caName).Scan(&n)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return n, err
	}
	var next int64
	if err := db.write.QueryRowContext(ctx, `INSERT INTO acme_account_cursor (ca_name, next) VALUES ($1, 0)
		ON CONFLICT (ca_name) DO UPDATE SET next = acme_account_cursor.next + 1 RETURNING next`, caName).Scan(&next); err != nil {
		return 0, err
	}
	want := 1 + int(next%int64(max(accounts, 1)))
	if _, err := db.write.ExecContext(ctx, `INSERT INTO domain_acme_accounts (domain_id, ca_name, account, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (domain_id, ca_name) DO NOTHING`, domainID, caName, want, micros(db.now())); err != nil {
		return 0, err
	}
	err = db.write.QueryRowContext(ctx, `SELECT account FROM domain_acme_accounts WHERE domain_id = $1 AND ca_name = $2`, domainID, caName).Scan(&n)
	return n, err
}

// ReassignDomainACMEAccount deals the domain another account of the CA,
// for when its own was deactivated.
func (db *DB) ReassignDomainACMEAccount(ctx context.Context, domainID, caName string, accounts int) (int, error) {
	if _, err := db.write.ExecContext(ctx, `DELETE FROM domain_acme_accounts WHERE domain_id = $1 AND ca_name = $2`, domainID, caName); err != nil {
		return 0, err
	}
	return db.DomainACMEAccount(ctx, domainID, caName, accounts)
}

// DomainACMEAccounts returns the domain's account per CA name.
func (db *DB) DomainACMEAccounts(ctx context.Context, domainID string) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT ca_name, account FROM domain_acme_accounts WHERE domain_id = $1`, domainID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ca string
		var n int
		if err := rows.Scan(&ca, &n); err != nil {
			return nil, err
		}
		out[ca] = n
	}
	return out, rows.Err()
}
