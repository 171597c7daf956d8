package sqlstore

import "context"

// SetSkipEvents turns the event writes off, for TestEventWriteCost's
// baseline.
func (db *DB) SetSkipEvents(skip bool) { db.skipEvents = skip }

// MigrateDownTo rolls the schema back to version v, for migration tests.
func (db *DB) MigrateDownTo(ctx context.Context, v int64) error {
	p, err := db.provider()
	if err != nil {
		return err
	}
	_, err = p.DownTo(ctx, v)
	return err
}

// ChangeListenerPID is the PostgreSQL backend of the change listener
// (changes.go); 0 before it first connected.
func (db *DB) ChangeListenerPID() uint32 { return db.changes.pid.Load() }

// MayWrite is mayWrite, for its table test.
var MayWrite = mayWrite

// DeletedTargetQuery is deletedTargetQuery, for its query plan test.
const DeletedTargetQuery = deletedTargetQuery
