// Package sqlstore implements dcvaas.Store on database/sql, for SQLite
// (modernc.org/sqlite, pure Go) and PostgreSQL (pgx). The SQL text is shared:
// $n placeholders, TEXT ids, BIGINT microsecond timestamps, RETURNING and
// ON CONFLICT run unchanged on both; real differences live in dialect.go.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/gencache"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"golang.org/x/sync/singleflight"

	_ "modernc.org/sqlite" // registers "sqlite"
)

//go:embed migrations
var migrations embed.FS

// Enqueuer hands a job to the queue inside the transaction that records it,
// so that a job row never exists without its queue entry or the reverse.
// The jobs package provides the River implementation.
//
// EnqueueTx runs before the store writes the job's row (it may set
// job.MaxAttempts) and returns the queue's id for the job, which the store
// writes with the row: one statement instead of an insert and an update.
type Enqueuer interface {
	EnqueueTx(ctx context.Context, tx *sql.Tx, job *dcvaas.Job, opts EnqueueOpts) (queueJobID int64, err error)
}

// EnqueueOpts say what the queue may skip.
type EnqueueOpts struct {
	// NewDomain: the job is the first of a domain created in the same
	// transaction, so it has no earlier jobs to supersede.
	NewDomain bool
	// AfterChange: dcvaas itself has just changed the record the job
	// checks (one-click setup created the CNAME), so it should look again
	// soon and often while the change spreads, not a minute later.
	AfterChange bool
}

// Options tune a DB; the zero value is usable.
type Options struct {
	Clock    dcvaas.Clock
	Logger   *slog.Logger
	Enqueuer Enqueuer
	// MaxConns bounds the PostgreSQL pool; 0: DefaultMaxConns.
	MaxConns int
	// Synchronous is SQLite's synchronous pragma: "full" (also "") or
	// "normal". With WAL, NORMAL does not sync the WAL at each commit, so
	// an OS crash or power loss can roll back commits that were
	// acknowledged; FULL syncs it before a commit returns
	// (docs/benchmarks.md measures the cost).
	Synchronous string
}

// SQLiteBusyTimeout is how long an SQLite statement waits for a lock that
// another connection (another process: dcvaas cron run, a sqlite3 shell)
// holds before it fails with SQLITE_BUSY, which the API answers with 503
// and Retry-After (IsUnavailable). The wait does not see the caller's
// context, so it is what bounds a request against a locked file: a few
// seconds, not the 20 s a request used to hang before its 500.
const SQLiteBusyTimeout = 4 * time.Second

// SQLiteSynchronous returns the pragma value of an Options.Synchronous.
func SQLiteSynchronous(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	}
	return "", fmt.Errorf("SQLite synchronous mode %q: want full or normal", v)
}

// DefaultMaxConns is the PostgreSQL pool size when Options does not say:
// 8 per CPU, at least 16. A database on the same few cores does the most
// work with few connections (each backend busy, none waiting for a core):
// on 2 CPUs, the POST /api/domains benchmark did 1.45× more with 8 than
// with 32. The job engine, whose statements wait on the database more
// than they use it, wants more: with 8 it did about a fifth fewer jobs/s
// than with 32; 16 sits between (docs/benchmarks.md).
// River needs at least two (its migrator holds one while it asks the pool
// for another).
func DefaultMaxConns() int { return max(16, 8*runtime.GOMAXPROCS(0)) }

// DB is the store. It implements dcvaas.Store and dcvaas.RateLimiter.
type DB struct {
	dialect Dialect
	// write takes every transaction. On SQLite it is a single connection:
	// SQLite has one writer at a time and a pool would only queue on locks.
	write *sql.DB
	// read serves plain queries; on SQLite (WAL) readers run beside the
	// writer. Both SQLite pools cache compiled statements (sqliteconn.go);
	// pgx caches prepared statements itself.
	read     *sql.DB
	now      dcvaas.Clock
	log      *slog.Logger
	enqueuer Enqueuer
	// deliveryEnqueuer queues webhook delivery attempts (webhookdelivery.go).
	deliveryEnqueuer DeliveryEnqueuer
	// committer groups SQLite transactions into shared commits (groupcommit.go).
	committer committer
	// cache answers hot reads on SQLite while nothing changed (readcache.go);
	// nil on PostgreSQL.
	cache *readCache
	// stopWatch ends watchDataVersion and waits for it.
	stopWatch func()
	// takes combines concurrent rate-limit counts of one key (ratelimit.go).
	takes takeCombiner
	// admitted keeps token answers on PostgreSQL, confirmed by each
	// request's rate-limit count (admit.go).
	admitted admittedTokens
	migrated bool
	// skipEvents leaves event rows out: set only by the benchmark that
	// measures what writing them costs (export_test.go).
	skipEvents bool

	// dsn opens the challenge feed's own connection (challengefeed.go) on
	// PostgreSQL. On SQLite, watchConnector opens the connections that poll
	// for changes (data_version), apart from the counted pools.
	dsn            string
	watchConnector *sqliteConnector
	followersMu    sync.Mutex
	followers      []*follower
	feed           feedCounters
	// queries counts statements run through write and read.
	queries atomic.Uint64
	// changes follows other nodes' changes on PostgreSQL (changes.go);
	// pgAuth keeps who tokens are under its identity generation, and
	// authReads joins concurrent reads of one token.
	changes   changeWatch
	pgAuth    *gencache.Cache[string, dcvaas.Authenticated]
	authReads singleflight.Group
}

// ParseURL splits a DCVAAS_DATABASE_URL into dialect and driver DSN:
// postgres:// and postgresql:// select PostgreSQL; anything else is an
// SQLite file path, with an optional sqlite:// prefix.
func ParseURL(url string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return Postgres, url, nil
	case strings.TrimSpace(url) == "":
		return "", "", errors.New("database URL is empty")
	default:
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return "", "", errors.New("SQLite path is empty")
		}
		return SQLite, path, nil
	}
}

// Open connects to the database named by url. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	dialect, dsn, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	db := &DB{dialect: dialect, now: opts.Clock, log: opts.Logger, enqueuer: opts.Enqueuer, dsn: dsn}
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	switch dialect {
	case SQLite:
		if dir := filepath.Dir(dsn); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		if err := privateFiles(dsn); err != nil {
			return nil, err
		}
		// _txlock=immediate takes the write lock at BEGIN, so two writers
		// queue on busy_timeout instead of failing to upgrade mid-transaction.
		sync, err := SQLiteSynchronous(opts.Synchronous)
		if err != nil {
			return nil, err
		}
		pragmas := "_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(" + strconv.Itoa(int(SQLiteBusyTimeout.Milliseconds())) + ")&_pragma=synchronous(" + sync + ")&_pragma=temp_store(MEMORY)"
		db.cache = newReadCache()
		writer, err := newSQLiteConnector("file:"+dsn+"?"+pragmas+"&_txlock=immediate", &db.queries, db.cache.committed, watchedTables)
		if err != nil {
			return nil, err
		}
		reader, err := newSQLiteConnector("file:"+dsn+"?"+pragmas+"&_pragma=query_only(1)", &db.queries, nil, nil)
		if err != nil {
			return nil, err
		}
		if db.watchConnector, err = newSQLiteConnector("file:"+dsn+"?"+pragmas+"&_pragma=query_only(1)", nil, nil, nil); err != nil {
			return nil, err
		}
		db.write, db.read = sql.OpenDB(writer), sql.OpenDB(reader)
		db.write.SetMaxOpenConns(1)
		// Connections are never closed for idleness: each holds its
		// compiled statements.
		db.write.SetMaxIdleConns(1)
		db.read.SetMaxOpenConns(8)
		db.read.SetMaxIdleConns(8)
	case Postgres:
		if db.write, err = openPostgres(dsn, &db.queries, &db.changes.writes); err != nil {
			return nil, err
		}
		n := opts.MaxConns
		if n == 0 {
			n = DefaultMaxConns()
		}
		db.write.SetMaxOpenConns(n)
		db.write.SetMaxIdleConns(n)
		db.read = db.write
		db.pgAuth = gencache.New[string, dcvaas.Authenticated](maxCachedTokens)
	}
	if err := db.write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", dialect, err)
	}
	if db.cache != nil {
		// Only now: the writer's first connection has put the file in WAL
		// mode, which a reader opening alongside it would find locked.
		watch, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		// On a pool of its own, uncounted: polling is not work the store
		// was asked for (QueryCount).
		poll := sql.OpenDB(db.watchConnector)
		go func() { defer close(done); defer poll.Close(); db.watchDataVersion(watch, poll) }()
		db.stopWatch = func() { cancel(); <-done }
	}
	if dialect == Postgres {
		// Listening from the start, so that the first requests after a
		// start find kept answers current (changes.go).
		db.changes.once.Do(db.startChangeWatch)
	}
	return db, nil
}

// Dialect says which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the pool that takes transactions, for the job queue to share.
func (db *DB) SQL() *sql.DB { return db.write }

// SetEnqueuer installs the queue after Open (the queue needs the DB first).
func (db *DB) SetEnqueuer(e Enqueuer) { db.enqueuer = e }

// Close closes both pools.
func (db *DB) Close() error {
	if db.stopWatch != nil {
		db.stopWatch()
	}
	db.stopChangeWatch()
	err := db.write.Close()
	if db.dialect == SQLite {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

func (db *DB) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.dialect))
	if err != nil {
		return nil, err
	}
	var opts []goose.ProviderOption
	if db.dialect == Postgres {
		// Several nodes may start at once; one migrates, the others wait.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(db.dialect.gooseDialect(), db.write, sub, opts...)
}

// Migrate applies all pending migrations.
func (db *DB) Migrate(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db.migrated = true
	return nil
}

// Ping reports whether the database is reachable and fully migrated.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.PingContext(ctx); err != nil {
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "database unreachable", Err: err}
	}
	p, err := db.provider()
	if err != nil {
		return err
	}
	pending, err := p.HasPending(ctx)
	if err != nil {
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "cannot read migration state", Err: err}
	} else if pending {
		return dcvaas.Errorf(dcvaas.EUNAVAILABLE, "database migrations pending")
	}
	return nil
}

// micros and fromMicros convert between time.Time and the stored BIGINT.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// privateFiles creates the SQLite database file with mode 0600 before
// SQLite opens it, and takes group and other bits away from one that
// exists. SQLite creates its -wal and -shm files with the database file's
// mode, so all three stay private to the service's user whatever the
// umask or the directory: they hold tokens' hashes, sealed secrets and
// everyone's domains.
func privateFiles(dsn string) error {
	path, _, _ := strings.Cut(dsn, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("database file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("make database file private: %w", err)
			}
		}
	}
	return nil
}
