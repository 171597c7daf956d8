package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// Resealer is what key rotation needs from crypt.Keyring, named here so that
// the store does not depend on the crypt package.
type Resealer interface {
	CurrentKeyID() string
	Decrypt(envelope string, associatedData []byte) ([]byte, error)
	Encrypt(plaintext, associatedData []byte) (string, error)
}

// sealedColumn is a column that holds crypt envelopes.
type sealedColumn struct {
	Table, Column string
	// Key is an SQL expression that identifies a row and orders the table,
	// so that a run can page through it.
	Key string
	// AD is an SQL expression that yields the associated data the value
	// was sealed with: the owner's convention, repeated here.
	AD string
}

// sealedColumns lists every secret at rest. A table added later that seals
// values belongs here, or `dcvaas keys rotate` would leave it behind and
// retiring the old key would lose it. The AD expressions must match the
// sealing code: connection.SecretAD and connection.VerifierAD, dcvaas.WebhookSecretAD, and the acme
// package's CertificateKeyAD, accountKeyAD and orderKeyAD, and dnssec.KeyAD. (A mismatch
// cannot corrupt anything: the run stops at the first value that does not
// open.)
var sealedColumns = []sealedColumn{
	{"oauth_connections", "secret_enc", "id", "'connection:' || id"},
	{"oauth_states", "verifier_enc", "state_hash", "'oauth-state:' || state_hash"},
	{"certificates", "private_key_enc", "id", "'certificate:' || id"},
	{"acme_accounts", "key_enc", "ca_name || ' ' || directory_url", "'acme-account:' || ca_name || ':' || directory_url"},
	{"acme_orders", "key_enc", "domain_id", "'acme-order:' || domain_id || ':' || order_url"},
	{"dnssec_keys", "private_key_enc", "id", "'dnssec-key:' || id"},
	// dcvaas.WebhookSecretAD: both secrets of a webhook, one AD.
	{"webhooks", "secret_enc", "id", "'webhook:' || id"},
	{"webhooks", "prev_secret_enc", "id", "'webhook:' || id"},
}

// Rotated counts the values re-sealed in one column.
type Rotated struct {
	Table, Column string
	Resealed      int
}

// DefaultRotateBatch is how many rows one rotation transaction re-seals.
const DefaultRotateBatch = 100

// RotateSecrets re-seals every secret that is not under kr's current key.
// Each batch of rows commits on its own, and a row already under the current
// key is never selected, so an interrupted run loses nothing and the next
// run resumes where it stopped. An envelope that cannot be opened (a key
// missing from the keyring, damage) stops the run with its table and row id;
// the error never contains the value.
func (db *DB) RotateSecrets(ctx context.Context, kr Resealer, batch int) ([]Rotated, error) {
	if batch <= 0 {
		batch = DefaultRotateBatch
	}
	// Envelopes are "v1.<key id>.<payload>"; key ids are hex, so the
	// pattern has no LIKE wildcards in it.
	current := "v1." + kr.CurrentKeyID() + ".%"
	var out []Rotated
	for _, col := range sealedColumns {
		r := Rotated{Table: col.Table, Column: col.Column}
		cursor := ""
		for {
			n, last, err := db.rotateBatch(ctx, kr, col, current, cursor, batch)
			r.Resealed += n
			if err != nil {
				return append(out, r), err
			}
			if last == "" {
				break
			}
			cursor = last
		}
		out = append(out, r)
	}
	return out, nil
}

// rotateBatch re-seals up to batch rows after cursor and returns how many it
// changed and the last key it looked at ("" when there were none left).
func (db *DB) rotateBatch(ctx context.Context, kr Resealer, col sealedColumn, current, cursor string, batch int) (int, string, error) {
	changed, last := 0, ""
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT %[1]s, %[2]s, %[3]s FROM %[4]s
			WHERE %[2]s <> '' AND %[2]s NOT LIKE $1 AND %[1]s > $2 ORDER BY %[1]s LIMIT $3`+db.dialect.forUpdate(),
			col.Key, col.Column, col.AD, col.Table), current, cursor, batch)
		if err != nil {
			return err
		}
		type row struct{ key, env, ad string }
		var todo []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.key, &r.env, &r.ad); err != nil {
				rows.Close()
				return err
			}
			todo = append(todo, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range todo {
			plain, err := kr.Decrypt(r.env, []byte(r.ad))
			if err != nil {
				return fmt.Errorf("%s row %q: %w", col.Table, r.key, err)
			}
			env, err := kr.Encrypt(plain, []byte(r.ad))
			clear(plain)
			if err != nil {
				return err
			}
			// The compare keeps a value that changed since the select
			// (a token refresh) instead of writing the old one back.
			res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %[1]s SET %[2]s = $1 WHERE %[3]s = $2 AND %[2]s = $3`,
				col.Table, col.Column, col.Key), env, r.key, r.env)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				changed++
			}
			last = r.key
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return changed, last, nil
}
