package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// A node killed with SIGKILL leaves its jobs in River's `running` state.
// River's rescuer re-queues them only after RescueAfter (default 2m), as it
// must: from another node, a job running that long is the only sign that
// its worker died. A node that restarts knows more. Its previous incarnation
// is certainly dead (no two live processes share a NodeID), so every job
// whose last attempt that incarnation made can run again at once.

// maxNodeIDLen keeps River's client id (NodeID + "_" + start time) within
// its 100-character limit.
const maxNodeIDLen = 64

// clientID is River's client id: River's own default (host and start time)
// without a NodeID, else the NodeID and the start time, so that the
// attempts recorded in river_job.attempted_by name the node.
func clientID(nodeID string, started time.Time) string {
	if nodeID == "" {
		return "" // River's default
	}
	return nodeIDPrefix(nodeID) + started.UTC().Format("20060102T150405_000000")
}

// nodeIDPrefix is what every client id of the node begins with.
func nodeIDPrefix(nodeID string) string {
	id := strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '_'
		}
		return r
	}, nodeID)
	if len(id) > maxNodeIDLen {
		id = id[:maxNodeIDLen]
	}
	return id + "_"
}

// reclaim makes the jobs that this node's previous incarnation left
// running available again before this incarnation starts fetching. Their
// attempt counts stay as River keeps them (the next fetch counts the new
// attempt), and the engine's own record notes the interrupted attempt when
// the job runs again, exactly as after a rescue. Jobs out of River attempts
// are left to the rescuer, which discards them.
func (e *Engine) reclaim(ctx context.Context) error {
	if e.cfg.NodeID == "" {
		return nil
	}
	prefix := nodeIDPrefix(e.cfg.NodeID)
	lastAttemptBy := "attempted_by[cardinality(attempted_by)]"
	if e.db.Dialect() == sqlstore.SQLite {
		lastAttemptBy = "json_extract(attempted_by, '$[#-1]')"
	}
	res, err := e.db.SQL().ExecContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state = 'running' AND attempt < max_attempts
		AND substr(`+lastAttemptBy+`, 1, $1) = $2`, len(prefix), prefix)
	if err != nil {
		return fmt.Errorf("jobs: take back this node's interrupted jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		e.log.Info("took back jobs interrupted by this node's previous run", "jobs", n, "nodeId", e.cfg.NodeID)
	}
	return nil
}
