package sqlstore

// SetSkipEvents turns the event writes off, for BenchmarkCreateDomainEvent's
// baseline.
func (db *DB) SetSkipEvents(skip bool) { db.skipEvents = skip }
