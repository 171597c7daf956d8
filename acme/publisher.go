package acme

import (
	"context"
	"time"
)

// TXTStore is the database side of the built-in DNS server's records;
// *sqlstore.DB implements it.
type TXTStore interface {
	PutChallengeTXT(ctx context.Context, name, key, value string) error
	DeleteChallengeTXT(ctx context.Context, name, key string) error
	ClearChallengeTXT(ctx context.Context, name string) error
	PurgeChallengeTXT(ctx context.Context, cutoff time.Time) (int64, error)
}

// DBPublisher publishes through the database that dcvaas's own DNS server
// (package dnsserver) answers from, on every node. The store's write
// returns once every live node serves the value (on PostgreSQL; SQLite
// processes share one file), so no propagation check is needed here.
type DBPublisher struct{ Store TXTStore }

// PublishTXT implements Publisher.
func (p DBPublisher) PublishTXT(ctx context.Context, name, key, value string) error {
	return p.Store.PutChallengeTXT(ctx, name, key, value)
}

// UnpublishTXT implements Publisher.
func (p DBPublisher) UnpublishTXT(ctx context.Context, name, key string) error {
	return p.Store.DeleteChallengeTXT(ctx, name, key)
}

// ClearTXT implements Publisher.
func (p DBPublisher) ClearTXT(ctx context.Context, name string) error {
	return p.Store.ClearChallengeTXT(ctx, name)
}

// PurgeTXT implements Purger.
func (p DBPublisher) PurgeTXT(ctx context.Context, cutoff time.Time) (int64, error) {
	return p.Store.PurgeChallengeTXT(ctx, cutoff)
}

// Purger is implemented by publishers that can drop values older than a
// cutoff. Values outlive their order only when the job publishing them
// died and never ran again (its domain was deleted meanwhile); the Issuer
// sweeps such litter now and then.
type Purger interface {
	PurgeTXT(ctx context.Context, cutoff time.Time) (int64, error)
}
