package sqlstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// On PostgreSQL, answers kept in memory must follow the changes every node
// makes. Two of them sit on the TLS handshake path of every Caddy that
// asks the certificate endpoint, where a database round trip per answer
// is what the endpoint cannot afford: who a token is (identity) and what
// the endpoint serves (delivery). This file keeps one generation number
// per kind, in memory, that moves whenever a row such an answer was read
// from changes, so that a cache (gencache) keyed by it needs no read at
// all while nothing changed:
//
//   - Other nodes: the triggers that move the organizations' identity
//     versions and the delivery version (migrations 00008, 00050) also send
//     NOTIFY (migration 00160); a connection of our own LISTENs and moves
//     the generation when one arrives, within a round trip of the commit.
//   - This node: its own writes must be seen at once (a revoked token is
//     refused at its next request, a new certificate served). The pool
//     counts statements that may write as they end (pgconn.go). A
//     generation is current only while that count equals the one the
//     listener read before its last ping: the answer to a ping means that
//     every notification committed before it has arrived. Until then the
//     caller reads afresh and nudges the listener, which pings at once.
//   - The listener pings every changesHeartbeat; without an answer for
//     changesLive, or while it reconnects, nothing is current and callers
//     read the database as before. A reconnection moves every generation,
//     since notifications sent meanwhile are lost.
//
// SQLite has one writing process and watches its own commits (readcache.go).

type changeKind int

const (
	changeIdentity changeKind = iota
	changeDelivery
	changeKinds
)

var changeKindNames = [changeKinds]string{"identity", "delivery"}

const (
	// changesChannel is migration 00160's NOTIFY channel; its payload is
	// "<schema>:<kind>", so that schemas sharing one database (tests) skip
	// each other's changes.
	changesChannel         = "dcvaas_changes"
	changesApplicationName = "dcvaas-changes"
	changesHeartbeat       = time.Second
	changesLive            = 3 * changesHeartbeat
)

// changeState is what the listener last established; replaced whole.
type changeState struct {
	gens [changeKinds]uint64
	// synced is the count of this node's writes read before the ping
	// that last confirmed every notification had arrived.
	synced uint64
	// liveUntil (Unix ns) is when that confirmation grows too old;
	// zero while not listening.
	liveUntil int64
}

type changeWatch struct {
	// writes counts the pool's statements that may have written, as they
	// end (pgconn.go).
	writes atomic.Uint64
	state  atomic.Pointer[changeState]
	nudge  chan struct{}
	once   sync.Once
	stop   func()
	// pid is the listener's backend process (tests end it).
	pid atomic.Uint32
}

// generation returns the current generation of kind and, when answers
// kept under it may predate one of this node's writes, a non-zero stale:
// then read afresh (and file the answer under gen, read before). Reads
// started after a call that returned some stale see every write that
// preceded any call returning the same stale, so callers given the same
// value may share one. Open starts the listener.
func (db *DB) generation(kind changeKind) (gen, stale uint64) {
	w := &db.changes
	st := w.state.Load()
	if st == nil { // closed before it started
		return 0, 1
	}
	writes := w.writes.Load()
	if st.liveUntil != 0 && writes == st.synced && time.Now().UnixNano() < st.liveUntil {
		return st.gens[kind], 0
	}
	select {
	case w.nudge <- struct{}{}:
	default:
	}
	return st.gens[kind], writes + 1
}

func (db *DB) startChangeWatch() {
	w := &db.changes
	w.state.Store(&changeState{gens: [changeKinds]uint64{1, 1}})
	w.nudge = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			err := db.watchChanges(ctx)
			db.setChanges(allChanges, notListening)
			if ctx.Err() != nil {
				return
			}
			db.log.Warn("change listener: PostgreSQL; cached answers are read afresh until it is back", "err", err)
			if !sleep(ctx, changesHeartbeat) {
				return
			}
		}
	}()
	w.stop = func() { cancel(); <-done }
}

// stopChangeWatch ends the listener, if it was started, and waits for it.
func (db *DB) stopChangeWatch() {
	w := &db.changes
	w.once.Do(func() {}) // no start after Close
	if w.stop != nil {
		w.stop()
	}
}

var allChanges = [changeKinds]bool{true, true}

// setChanges moves the generations of the kinds in bump and sets the
// listener's standing with set. Only the listener's goroutine calls it.
func (db *DB) setChanges(bump [changeKinds]bool, set func(*changeState)) {
	st := *db.changes.state.Load()
	for k, b := range bump {
		if b {
			st.gens[k]++
		}
	}
	if set != nil {
		set(&st)
	}
	db.changes.state.Store(&st)
}

// confirmed: every notification committed before t0 has arrived, and
// writes had counted synced by then.
func confirmed(synced uint64, t0 time.Time) func(*changeState) {
	return func(st *changeState) { st.synced, st.liveUntil = synced, t0.Add(changesLive).UnixNano() }
}

func notListening(st *changeState) { st.liveUntil = 0 }

func (db *DB) watchChanges(ctx context.Context) error {
	conn, schema, err := db.listenConn(ctx, changesApplicationName, changesChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	db.changes.pid.Store(conn.PgConn().PID())
	// Whatever was kept before now may have missed a notification.
	bumped := allChanges
	confirm := func() error {
		w := db.changes.writes.Load()
		t0 := time.Now()
		if _, err := conn.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
		got := drainChanges(conn, schema)
		for k := range got {
			bumped[k] = bumped[k] || got[k]
		}
		db.setChanges(bumped, confirmed(w, t0))
		bumped = [changeKinds]bool{}
		return nil
	}
	if err := confirm(); err != nil {
		return err
	}
	last := time.Now()
	for {
		wait, cancel := context.WithTimeout(ctx, max(changesHeartbeat-time.Since(last), time.Millisecond))
		go func() {
			select {
			case <-db.changes.nudge:
				cancel()
			case <-wait.Done():
			}
		}()
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			var got [changeKinds]bool
			addChange(&got, n, schema)
			more := drainChanges(conn, schema)
			for k := range got {
				got[k] = got[k] || more[k]
			}
			db.setChanges(got, nil)
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || pgconn.Timeout(err):
			// A nudge (this node wrote) or the heartbeat.
			if err := confirm(); err != nil {
				return err
			}
			last = time.Now()
		default:
			return err
		}
	}
}

// drainChanges takes the notifications conn has already received and
// returns the kinds they name.
func drainChanges(conn *pgx.Conn, schema string) [changeKinds]bool {
	var got [changeKinds]bool
	for _, n := range drainNotifications(conn) {
		addChange(&got, n, schema)
	}
	return got
}

func addChange(got *[changeKinds]bool, n *pgconn.Notification, schema string) {
	s, kind, ok := cutLast(n.Payload, ":")
	if !ok || s != schema {
		return
	}
	for k, name := range changeKindNames {
		if name == kind {
			got[k] = true
		}
	}
}

func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
