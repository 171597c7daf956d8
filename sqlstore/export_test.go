package sqlstore

import "context"

// SetSkipEvents turns the event writes off, for BenchmarkCreateDomainEvent's
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
