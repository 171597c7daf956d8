package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// The DNS server answers from a copy of every published challenge value
// that it keeps in memory (dnsserver/zone.go), so that no query, however
// many and whatever the name, reads the database. This file keeps such a
// copy current, on every node:
//
//   - a write through this DB reloads the copy before it returns, so this
//     node serves a value as soon as PutChallengeTXT succeeds;
//   - PostgreSQL: a statement trigger (migration 00020) sends NOTIFY on
//     every change, from any node; a dedicated connection LISTENs and
//     reloads at once. It pings every feedHeartbeat, which proves no
//     notification was lost, and reloads everything every feedReconcile as
//     a safety net.
//   - SQLite: processes sharing the file see each other's commits through
//     PRAGMA data_version, polled every feedPoll on a connection of its own.
//
// A reload reads the whole table: it holds only values of orders in
// flight (minutes old, purged after an hour), so it is small.

const (
	feedPoll      = 20 * time.Millisecond
	feedHeartbeat = time.Second
	feedReconcile = 30 * time.Second
	// pgChannel is the NOTIFY channel of migration 00020; its payload is
	// the schema, so that schemas sharing one database (tests) skip each
	// other's changes.
	pgChannel = "dcvaas_challenge_records"
	// feedApplicationName names the feed's PostgreSQL connection.
	feedApplicationName = "dcvaas-dns-feed"
)

// FeedStats counts the work of the challenge feeds, for tests and
// benchmarks that check DNS traffic causes none.
type FeedStats struct {
	// Reloads: full reads of the challenge table after a change (or a
	// notification, or a write through this DB).
	Reloads uint64
	// Reconciles: the timed full reads of the safety net (feedReconcile).
	Reconciles uint64
	// Heartbeats: cheap checks that nothing changed (data_version, ping).
	Heartbeats uint64
}

type feedCounters struct{ reloads, reconciles, heartbeats atomic.Uint64 }

// ChallengeFeedStats returns the counts since Open.
func (db *DB) ChallengeFeedStats() FeedStats {
	return FeedStats{Reloads: db.feed.reloads.Load(), Reconciles: db.feed.reconciles.Load(), Heartbeats: db.feed.heartbeats.Load()}
}

// QueryCount is the number of statements run through the store's pools
// (everything but the challenge feeds' own connections) since Open.
func (db *DB) QueryCount() uint64 { return db.queries.Load() }

// follower is one FollowChallenges call. mu orders its reloads, so that an
// older copy never replaces a newer one.
type follower struct {
	mu      sync.Mutex
	set     func(map[string][]string)
	confirm func(time.Time)
	// id names the follower's row in dns_feed_nodes (PostgreSQL).
	id string
}

// FollowChallenges keeps a copy of every published challenge value current
// until ctx ends, and then returns nil. set receives the whole set (name →
// values, oldest first; names lowercase without the trailing dot) once the
// feed is watching for changes, and again after changes. confirm(t) says
// that the copy set last holds every change committed before t; while the
// database answers it is called at least every second. Both are called
// from one goroutine at a time.
func (db *DB) FollowChallenges(ctx context.Context, set func(map[string][]string), confirm func(time.Time)) error {
	f := &follower{set: set, confirm: confirm, id: newID()}
	db.followersMu.Lock()
	db.followers = append(db.followers, f)
	db.followersMu.Unlock()
	defer func() {
		if db.dialect == Postgres {
			// Stopped: publishers no longer wait for this copy.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			db.write.ExecContext(ctx, `DELETE FROM dns_feed_nodes WHERE id = $1`, f.id)
		}
		db.followersMu.Lock()
		for i, g := range db.followers {
			if g == f {
				db.followers = append(db.followers[:i], db.followers[i+1:]...)
				break
			}
		}
		db.followersMu.Unlock()
	}()
	if db.dialect == Postgres {
		db.followPostgres(ctx, f)
	} else {
		db.followSQLite(ctx, f)
	}
	return nil
}

// challengesChanged reloads every follower's copy after a write through
// this DB, so that the write is served on this node when it returns. A
// failed reload is left to the feed's own loop.
func (db *DB) challengesChanged(ctx context.Context) {
	db.followersMu.Lock()
	fs := append([]*follower(nil), db.followers...)
	db.followersMu.Unlock()
	for _, f := range fs {
		if err := db.reload(ctx, f, db.read.QueryContext, false); err != nil {
			db.log.Warn("challenge feed: reload after write", "err", err)
		}
	}
}

type queryFunc func(ctx context.Context, query string, args ...any) (*sql.Rows, error)

// reload reads the whole table through query and hands it to f.
// timed: the safety net's periodic reload, counted apart.
func (db *DB) reload(ctx context.Context, f *follower, query queryFunc, timed bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := time.Now()
	q := `SELECT '', name, value FROM challenge_records ORDER BY name, created_at, key`
	if db.dialect == Postgres {
		q = feedSelectPostgres
	}
	rows, err := query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	records := map[string][]string{}
	var snapshot string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&snapshot, &name, &value); err != nil {
			return err
		}
		if name != "" {
			records[name] = append(records[name], value)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	db.countReload(timed)
	f.set(records)
	f.confirm(start)
	if db.dialect == Postgres {
		_, err = db.write.ExecContext(ctx, feedUpsert, f.id, snapshot)
	}
	return err
}

// feedSelectPostgres reads every record together with the snapshot the
// statement reads them from (one row of empty strings when there are
// none), so that the node can say which writes its copy holds.
const feedSelectPostgres = `WITH s AS (SELECT pg_current_snapshot()::text AS snapshot)
	SELECT s.snapshot, COALESCE(r.name, ''), COALESCE(r.value, '')
	FROM s LEFT JOIN challenge_records r ON true ORDER BY r.name, r.created_at, r.key`

// feedUpsert records a follower's latest copy as served. Two reloads of
// one follower are ordered by its lock, so the newer snapshot wins.
const feedUpsert = `INSERT INTO dns_feed_nodes (id, snapshot, seen_at) VALUES ($1, $2::pg_snapshot, now())
	ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, seen_at = now()`

// Publishers wait for the copies of the nodes that showed a sign of life
// within feedLive (three heartbeats): a node killed a moment ago holds
// them up that long at most. feedWaitMax bounds the wait for a live node
// that lags: issuance then goes ahead (and says so in the log).
const (
	feedLive    = 3 * feedHeartbeat
	feedWaitMax = 10 * time.Second
	feedWaitGap = 10 * time.Millisecond
)

// waitServed returns once every live node's DNS server answers from a copy
// that holds the write of transaction xid (PostgreSQL): CAs validate from
// several network perspectives, each asking any of the zone's nameservers,
// and all must find the value the moment the CA is told it is there.
func (db *DB) waitServed(ctx context.Context, xid string) error {
	deadline := time.Now().Add(feedWaitMax)
	for {
		var behind int
		var lagging sql.NullString
		err := db.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(id) FROM dns_feed_nodes
			WHERE seen_at > now() - make_interval(secs => $2) AND NOT pg_visible_in_snapshot($1::xid8, snapshot)`,
			xid, feedLive.Seconds()).Scan(&behind, &lagging)
		if err != nil {
			return err
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			db.log.Warn("challenge value not yet served by every node; going ahead", "nodesBehind", behind, "feed", lagging.String, "waited", feedWaitMax.String())
			return nil
		}
		if !sleep(ctx, feedWaitGap) {
			return ctx.Err()
		}
	}
}

// followSQLite polls data_version, which moves whenever another connection
// (this process's writer or another process) commits.
func (db *DB) followSQLite(ctx context.Context, f *follower) {
	// A pool of its own, so that the DNS feed neither waits for the store's
	// readers nor counts among their queries.
	pool := sql.OpenDB(db.watchConnector)
	defer pool.Close()
	pool.SetMaxOpenConns(1)
	conn, err := pool.Conn(ctx)
	for err != nil {
		if ctx.Err() != nil {
			return
		}
		db.log.Warn("challenge feed: open SQLite", "err", err)
		if !sleep(ctx, feedHeartbeat) {
			return
		}
		conn, err = pool.Conn(ctx)
	}
	defer conn.Close()
	var last int64
	var loaded time.Time
	failing := false
	for {
		t0 := time.Now()
		var v int64
		err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v)
		if err == nil {
			db.feed.heartbeats.Add(1)
			if changed := v != last || loaded.IsZero(); changed || t0.Sub(loaded) > feedReconcile {
				if err = db.reload(ctx, f, conn.QueryContext, !changed); err == nil {
					last, loaded = v, t0
				}
			} else {
				f.mu.Lock()
				f.confirm(t0)
				f.mu.Unlock()
			}
		}
		if err != nil && ctx.Err() == nil && !failing {
			db.log.Warn("challenge feed: SQLite", "err", err)
		}
		failing = err != nil
		if !sleep(ctx, feedPoll) {
			return
		}
	}
}

// followPostgres listens on a connection of its own, reconnecting after
// failures.
func (db *DB) followPostgres(ctx context.Context, f *follower) {
	for ctx.Err() == nil {
		err := db.listen(ctx, f)
		if ctx.Err() != nil {
			return
		}
		db.log.Warn("challenge feed: PostgreSQL", "err", err)
		if !sleep(ctx, feedHeartbeat) {
			return
		}
	}
}

func (db *DB) listen(ctx context.Context, f *follower) error {
	// LISTEN before the first load: a change between the two is then
	// notified, not lost.
	conn, schema, err := db.listenConn(ctx, feedApplicationName, pgChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	load := func() error { return db.reloadPgx(ctx, f, conn, false) }
	if err := load(); err != nil {
		return err
	}
	loaded := time.Now()
	for {
		wait, cancel := context.WithTimeout(ctx, feedHeartbeat)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if n.Payload != schema {
				continue
			}
			// Several changes in a row are one reload: take the
			// notifications already received.
			drainNotifications(conn)
			if err := load(); err != nil {
				return err
			}
			loaded = time.Now()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			if time.Since(loaded) > feedReconcile {
				if err := db.reloadPgx(ctx, f, conn, true); err != nil {
					return err
				}
				// Rows of processes long gone (killed: none deleted its own).
				if _, err := conn.Exec(ctx, `DELETE FROM dns_feed_nodes WHERE seen_at < now() - interval '1 hour'`); err != nil {
					return err
				}
				loaded = time.Now()
				continue
			}
			// A ping answered means the server has sent every notification
			// committed before it (it sends them before ReadyForQuery).
			// The heartbeat's statement is the ping; it also tells the
			// publishers this copy is alive (dns_feed_nodes).
			t0 := time.Now()
			if _, err := conn.Exec(ctx, `UPDATE dns_feed_nodes SET seen_at = now() WHERE id = $1`, f.id); err != nil {
				return err
			}
			db.feed.heartbeats.Add(1)
			if len(drainNotifications(conn)) > 0 {
				if err := load(); err != nil {
					return err
				}
				loaded = time.Now()
				continue
			}
			f.mu.Lock()
			f.confirm(t0)
			f.mu.Unlock()
		default:
			return err
		}
	}
}

// listenConn opens a connection of its own (named appName, so that an
// operator sees it in pg_stat_activity) that LISTENs on channel, and
// returns it with its schema, which notifications name.
func (db *DB) listenConn(ctx context.Context, appName, channel string) (*pgx.Conn, string, error) {
	cfg, err := pgx.ParseConfig(db.dsn)
	if err != nil {
		return nil, "", err
	}
	cfg.ConnectTimeout = 5 * time.Second
	cfg.RuntimeParams["application_name"] = appName
	// A timed-out wait for a notification only sets a deadline; the
	// default handler would also send a cancel request over a new
	// connection, every heartbeat.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT COALESCE(current_schema(), '')`).Scan(&schema); err != nil {
		conn.Close(context.Background())
		return nil, "", err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, "", err
	}
	return conn, schema, nil
}

// drainNotifications takes the notifications conn has already received
// (a ping's answer comes after every one committed before it).
func drainNotifications(conn *pgx.Conn) []*pgconn.Notification {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var got []*pgconn.Notification
	for {
		n, err := conn.WaitForNotification(done)
		if err != nil {
			return got
		}
		got = append(got, n)
	}
}

// reloadPgx is reload through the feed's own PostgreSQL connection.
func (db *DB) reloadPgx(ctx context.Context, f *follower, conn *pgx.Conn, timed bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := time.Now()
	rows, err := conn.Query(ctx, feedSelectPostgres)
	if err != nil {
		return err
	}
	records := map[string][]string{}
	var snapshot, name, value string
	_, err = pgx.ForEachRow(rows, []any{&snapshot, &name, &value}, func() error {
		if name != "" {
			records[name] = append(records[name], value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.countReload(timed)
	f.set(records)
	f.confirm(start)
	_, err = conn.Exec(ctx, feedUpsert, f.id, snapshot)
	return err
}

func (db *DB) countReload(timed bool) {
	if timed {
		db.feed.reconciles.Add(1)
	} else {
		db.feed.reloads.Add(1)
	}
}

// sleep waits d or until ctx ends, reporting whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
