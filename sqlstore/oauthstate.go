package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// oauthStateRetention is how long a used or expired state is kept after it
// expires: long enough that a late replay is still told "already used"
// rather than "unknown", short enough that the table stays small.
const oauthStateRetention = 24 * time.Hour

// CreateOAuthState implements dcvaas.ConnectionStore. Sweeping here keeps
// the table bounded without a periodic job: every new authorization removes
// the long-dead ones.
func (db *DB) CreateOAuthState(ctx context.Context, st *dcvaas.OAuthState) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at < $1`,
			micros(db.now().Add(-oauthStateRetention))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_states
			(state_hash, org_id, user_id, provider, verifier_enc, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			st.Hash, st.OrgID, st.UserID, st.Provider, st.VerifierEnc, micros(st.CreatedAt), micros(st.ExpiresAt))
		return err
	})
}

// ConsumeOAuthState implements dcvaas.ConnectionStore. The row lock (and
// SQLite's single writer) makes "used exactly once" hold across nodes. An
// expired state is marked used too, so a second try is "already used" and
// never a success.
func (db *DB) ConsumeOAuthState(ctx context.Context, hash string, now time.Time) (*dcvaas.OAuthState, error) {
	var st dcvaas.OAuthState
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var created, expires int64
		var used sql.NullInt64
		var binding sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT state_hash, org_id, user_id, provider, verifier_enc, created_at, expires_at, used_at, binding_hash
			FROM oauth_states WHERE state_hash = $1`+db.dialect.forUpdate(), hash).
			Scan(&st.Hash, &st.OrgID, &st.UserID, &st.Provider, &st.VerifierEnc, &created, &expires, &used, &binding)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "unknown authorization state")
		} else if err != nil {
			return err
		}
		st.CreatedAt, st.ExpiresAt, st.BindingHash = fromMicros(created), fromMicros(expires), binding.String
		if used.Valid {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "authorization state already used")
		}
		_, err = tx.ExecContext(ctx, `UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2`, micros(now), hash)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !now.Before(st.ExpiresAt) {
		return nil, dcvaas.Errorf(dcvaas.EINVALID, "authorization state expired")
	}
	return &st, nil
}

// BindOAuthState implements dcvaas.ConnectionStore. The conditional update
// makes "started once" hold across nodes as ConsumeOAuthState's lock does.
func (db *DB) BindOAuthState(ctx context.Context, hash, orgID, bindingHash string, now time.Time) (*dcvaas.OAuthState, error) {
	var st dcvaas.OAuthState
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var created, expires int64
		var used sql.NullInt64
		var binding sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT state_hash, org_id, user_id, provider, verifier_enc, created_at, expires_at, used_at, binding_hash
			FROM oauth_states WHERE state_hash = $1 AND org_id = $2`+db.dialect.forUpdate(), hash, orgID).
			Scan(&st.Hash, &st.OrgID, &st.UserID, &st.Provider, &st.VerifierEnc, &created, &expires, &used, &binding)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "unknown authorization state")
		} else if err != nil {
			return err
		}
		st.CreatedAt, st.ExpiresAt = fromMicros(created), fromMicros(expires)
		if !now.Before(st.ExpiresAt) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "authorization state expired")
		}
		if used.Valid || binding.Valid {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "this authorization was already started; start a new one")
		}
		st.BindingHash = bindingHash
		_, err = tx.ExecContext(ctx, `UPDATE oauth_states SET binding_hash = $1 WHERE state_hash = $2`, bindingHash, hash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}
