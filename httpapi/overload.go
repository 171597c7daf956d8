package httpapi

import (
	"context"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas"
)

// DefaultStoreTimeout is how long a request may wait for the database
// when Deps does not say: a locked or overloaded database answers 503 with
// Retry-After after this, instead of holding the client (and a connection)
// for as long as the lock lasts.
const DefaultStoreTimeout = 5 * time.Second

// retryAfterUnavailable is the Retry-After of a 503: a lock or an overload
// usually passes within seconds.
const retryAfterUnavailable = "2"

// readyTimeout bounds GET /readyz: a load balancer's health check must get
// an answer, and a database that does not answer within it is not ready.
const readyTimeout = 900 * time.Millisecond

// unbounded are the operations that may run longer than StoreTimeout: the
// event stream, and those that call a DNS provider's API.
var unbounded = map[string]bool{
	"streamEvents": true, "oauthCallback": true, "authorizeProvider": true,
	"createConnection": true, "testConnection": true, "deleteConnection": true,
	"getReadiness": true, // bounded on its own (readyTimeout)
}

// bound gives the request's context its deadline (Deps.StoreTimeout), so
// that every store call it makes, from authentication on, gives up in
// time; the error then maps to 503 (toProblem).
func (s *server) bound(hctx huma.Context, next func(huma.Context)) {
	if unbounded[hctx.Operation().OperationID] {
		next(hctx)
		return
	}
	ctx, cancel := context.WithTimeout(hctx.Context(), s.storeTimeout)
	defer cancel()
	next(huma.WithContext(hctx, ctx))
}

// readyWithin runs the readiness check with a deadline, and stops waiting
// for it at the deadline even if it does not return (a call stuck in
// SQLite's busy handler does not see its context).
func readyWithin(ctx context.Context, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ready(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "not ready", Err: ctx.Err()}
	}
}
