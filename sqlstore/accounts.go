package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
