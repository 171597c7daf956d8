package httpapi

import (
	"context"

	"github.com/dcvaas/dcvaas"
)

type listJobsInput struct {
	DomainID string `query:"domain_id" doc:"Only jobs of this domain."`
	Type     string `query:"type" enum:"dns_check,start_issuance,renewal,dns_setup"`
	Status   string `query:"status" enum:"queued,scheduled,running,succeeded,superseded,failed" doc:"queued: due now; scheduled: queued for a later runAt; superseded: ended replaced by a newer job (not among succeeded)."`
	Limit    int    `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset   int    `query:"offset" default:"0" minimum:"0"`
}

type jobListOutput struct {
	Body jobList
}

func (s *server) listJobs(ctx context.Context, in *listJobsInput) (*jobListOutput, error) {
	js, total, err := s.store.ListJobs(ctx, actorFrom(ctx).OrgID, dcvaas.JobFilter{
		DomainID: in.DomainID,
		Type:     dcvaas.JobType(in.Type),
		Status:   dcvaas.JobStatus(in.Status),
		Page:     page(in.Limit, in.Offset),
	})
	if err != nil {
		return nil, err
	}
	now := s.now()
	items := convert(js, func(j *dcvaas.Job) job { return toJob(j, now) })
	return &jobListOutput{Body: jobList{Items: items, Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type jobIDInput struct {
	ID string `path:"id" doc:"The job's id."`
}

type jobOutput struct {
	Body job
}

func (s *server) getJob(ctx context.Context, in *jobIDInput) (*jobOutput, error) {
	j, err := s.store.FindJob(ctx, actorFrom(ctx).OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	return &jobOutput{Body: toJob(j, s.now())}, nil
}

func (s *server) retryJob(ctx context.Context, in *jobIDInput) (*queuedJobOutput, error) {
	j, err := s.store.RetryJob(ctx, actorFrom(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return queued(j), nil
}
