package sqlstore

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/gencache"
)

// readCache counts the changes of an SQLite database, for answers kept
// while nothing they depend on changed. Two counts:
//
//   - gen: every commit. The store's write pool reports each one
//     (sqliteconn.go), whoever made it in this process: the store, River or
//     the job engine. SQLite has no other node, so "unchanged" is known
//     exactly; Changes hands it to the API's cache of domain list pages.
//   - identity: commits that changed a row of the identity tables, which
//     decide who a token is (the API's hottest read, with its
//     organization's defaults). The write pool's pre-update hook sees every
//     row change, whatever statement made it. Counted apart from gen so
//     that a busy stream of other writes (domains, jobs) leaves these
//     answers cached.
//   - delivery: commits that moved delivery_version, whose triggers
//     (migration 00050) fire when what the Caddy endpoint serves changes
//     (delivery.Source); the hook sees rows changed by triggers too.
//
// Another process writing the same file (dcvaas bootstrap, cron run, keys
// rotate) moves both, noticed by polling SQLite's data_version within
// dataVersionPoll.
//
// PostgreSQL has no such cache: other nodes write the same database.
type readCache struct {
	gen      atomic.Uint64
	identity atomic.Uint64
	delivery atomic.Uint64
	auth     *gencache.Cache[string, dcvaas.Authenticated]
}

// maxCachedTokens bounds the tokens remembered between two changes.
const maxCachedTokens = 10000

// dataVersionPoll is how often another process's commits are looked for.
const dataVersionPoll = 250 * time.Millisecond

func newReadCache() *readCache {
	return &readCache{
		auth: gencache.New[string, dcvaas.Authenticated](maxCachedTokens),
	}
}

// The sets of tables the counts other than gen watch.
const (
	identityTables tableSets = 1 << iota
	deliveryTables
	allTables tableSets = identityTables | deliveryTables
)

var watchedTables = map[string]tableSets{
	"api_tokens": identityTables, "organization_members": identityTables, "organizations": identityTables, "users": identityTables,
	"delivery_version": deliveryTables,
}

// committed is the write pool's onCommit.
func (c *readCache) committed(touched tableSets) {
	if touched&identityTables != 0 {
		c.identity.Add(1)
	}
	if touched&deliveryTables != 0 {
		c.delivery.Add(1)
	}
	c.gen.Add(1)
}

// Changes returns a number that grows with every change to the database,
// for callers that keep answers of their own (gencache); ok is false on
// PostgreSQL, whose changes another node can make unseen.
func (db *DB) Changes() (gen uint64, ok bool) {
	if db.cache == nil {
		return 0, false
	}
	return db.cache.gen.Load(), true
}

// cachedAuth returns the cached authentication of a token hash, if it is
// current and the token has not expired since, and the generation to file
// a fresh answer under.
func (db *DB) cachedAuth(hash string, now time.Time) (*dcvaas.Authenticated, uint64, bool) {
	if db.cache == nil {
		return nil, 0, false
	}
	gen := db.cache.identity.Load()
	a, ok := db.cache.auth.Get(gen, hash)
	if !ok || (a.Token.ExpiresAt != nil && !a.Token.ExpiresAt.After(now)) {
		return nil, gen, false
	}
	return copyAuth(a), gen, true
}

func (db *DB) cacheAuth(gen uint64, hash string, a *dcvaas.Authenticated) {
	if db.cache != nil {
		db.cache.auth.Put(gen, hash, *copyAuth(*a))
	}
}

// copyAuth copies a deeply enough that neither copy's changes reach the
// other: the caller owns what it gets.
func copyAuth(a dcvaas.Authenticated) *dcvaas.Authenticated {
	t := *a.Token
	a.Token = &t
	a.OrgSettings = copySettings(a.OrgSettings)
	return &a
}

func copySettings(s dcvaas.OrgSettings) dcvaas.OrgSettings {
	if w := s.DefaultIncludeWildcard; w != nil {
		v := *w
		s.DefaultIncludeWildcard = &v
	}
	return s
}

// watchDataVersion bumps the change counts when another process commits to
// the database file, until ctx ends. It holds one read connection: SQLite's
// data_version is per connection. Our own commits move it too; counting
// them twice only costs a cache miss.
func (db *DB) watchDataVersion(ctx context.Context, read *sql.DB) {
	conn, err := read.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var last int64
	t := time.NewTicker(dataVersionPoll)
	defer t.Stop()
	for {
		var v int64
		if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			if ctx.Err() != nil {
				return
			}
			db.log.Warn("cannot read SQLite data_version", "err", err)
			db.cache.committed(allTables)
		} else if v != last {
			last = v
			db.cache.committed(allTables)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
