package httpapi

import (
	"context"

	"github.com/dcvaas/dcvaas"
)

type healthStatus struct {
	Status string `json:"status" enum:"ok"`
}

type healthOutput struct {
	Body healthStatus
}

// okBody is shared: /healthz is the benchmarks' baseline and does nothing.
var okBody = &healthOutput{Body: healthStatus{Status: "ok"}}

func (s *server) health(context.Context, *struct{}) (*healthOutput, error) {
	return okBody, nil
}

// readiness asks Deps.Ready (the database is reachable and migrated),
// answering within readyTimeout.
func (s *server) readiness(ctx context.Context, _ *struct{}) (*healthOutput, error) {
	if s.ready == nil {
		return okBody, nil
	}
	if err := readyWithin(ctx, s.ready); err != nil {
		s.quiet.WarnContext(ctx, "not ready", "err", err) // polled: sampled
		return nil, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "not ready", Err: err}
	}
	return okBody, nil
}
