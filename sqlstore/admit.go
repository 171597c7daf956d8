package sqlstore

import (
	"context"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Admit implements dcvaas.Admitter.
//
// On PostgreSQL, other nodes change tokens, memberships and organizations
// unseen, so an answer kept in memory needs confirming at every request.
// Every request already goes to the database once, for its rate-limit
// count (cluster-wide); that statement also returns the organization's
// identity_version, which triggers move on every change that could alter
// the answer (migration 00008). An answer cached at the version the count
// returns is exact; any other is asked again. So a request with a known
// token costs one statement (shared with concurrent requests of its
// organization, ratelimit.go) instead of two, and a revoked token is
// refused at its next request on every node.
//
// The user's count comes first (dcvaas.TakeRequest); when it refuses, the
// organization's is not taken and nothing confirmed a cached answer, so it
// is read again: a refused request costs a read more, an allowed one not.
//
// SQLite sees every change itself (readcache.go): there Admit is
// Authenticate and TakeRequest.
func (db *DB) Admit(ctx context.Context, hash string, orgLimit, userLimit int, now time.Time) (dcvaas.Admission, error) {
	if db.dialect != Postgres {
		a, err := db.Authenticate(ctx, hash, now)
		if err != nil {
			return dcvaas.Admission{}, err
		}
		d, err := dcvaas.TakeRequest(ctx, db, a.Token.UserID, userLimit, a.Token.OrgID, orgLimit, now)
		return dcvaas.Admission{Auth: a, Rate: d, RateErr: err}, nil
	}
	a, version, cached := db.admitted.get(hash, now)
	if !cached {
		var err error
		if a, version, err = db.authenticate(ctx, hash, now); err != nil {
			return dcvaas.Admission{}, err
		}
		db.admitted.put(hash, a, version)
	}
	d, current, rateErr := db.takeRequest(ctx, a.Token.UserID, userLimit, a.Token.OrgID, orgLimit, now)
	if cached && (rateErr != nil || current != version) {
		// Something about the organization's identities changed since the
		// answer was read (or the count, which confirms it, failed): read
		// it again.
		fresh, v, err := db.authenticate(ctx, hash, now)
		if err != nil {
			db.admitted.forget(hash)
			return dcvaas.Admission{}, err
		}
		db.admitted.put(hash, fresh, v)
		a = fresh
	}
	return dcvaas.Admission{Auth: a, Rate: d, RateErr: rateErr}, nil
}

// takeRequest is dcvaas.TakeRequest that also returns the organization's
// identity version read by its count (-1 when that count was not taken).
func (db *DB) takeRequest(ctx context.Context, userID string, userLimit int, orgID string, orgLimit int, now time.Time) (dcvaas.RateDecision, int64, error) {
	var ud dcvaas.RateDecision
	haveUser := userID != "" && userLimit > 0
	if haveUser {
		var err error
		if ud, _, err = db.take(ctx, dcvaas.UserRateKey(userID), userLimit, now); err != nil || !ud.Allowed {
			return ud, -1, err
		}
	}
	if orgLimit <= 0 {
		return ud, -1, nil
	}
	od, version, err := db.take(ctx, dcvaas.OrgRateKey(orgID), orgLimit, now)
	if err != nil {
		return od, -1, err
	}
	return dcvaas.Tighter(ud, od, haveUser), version, nil
}

// admittedTokens keeps PostgreSQL's token answers with the identity version
// each was read at.
type admittedTokens struct {
	mu sync.RWMutex
	m  map[string]admittedToken
}

type admittedToken struct {
	auth    dcvaas.Authenticated
	version int64
}

// get returns a copy of the answer kept for hash, unless there is none or
// the token has expired since.
func (c *admittedTokens) get(hash string, now time.Time) (*dcvaas.Authenticated, int64, bool) {
	c.mu.RLock()
	e, ok := c.m[hash]
	c.mu.RUnlock()
	if !ok || (e.auth.Token.ExpiresAt != nil && !e.auth.Token.ExpiresAt.After(now)) {
		return nil, 0, false
	}
	return copyAuth(e.auth), e.version, true
}

func (c *admittedTokens) put(hash string, a *dcvaas.Authenticated, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]admittedToken{} // bounded: start over
	}
	c.m[hash] = admittedToken{*copyAuth(*a), version}
}

func (c *admittedTokens) forget(hash string) {
	c.mu.Lock()
	delete(c.m, hash)
	c.mu.Unlock()
}
