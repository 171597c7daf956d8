package dcvaas

import (
	"context"
	"encoding/json"
	"time"
)

// JobType names the work a job does.
type JobType string

const (
	JobDNSCheck      JobType = "dns_check"
	JobStartIssuance JobType = "start_issuance"
	JobRenewal       JobType = "renewal"
	// JobDNSSetup creates the delegation CNAME through a DNS provider
	// connection when one-click setup met a provider outage (its input is
	// a DNSSetupArgs).
	JobDNSSetup JobType = "dns_setup"
)

// JobTypes lists every job type, for validation.
var JobTypes = []JobType{JobDNSCheck, JobStartIssuance, JobRenewal, JobDNSSetup}

// JobStatus is the product's view of a job; the queue's own states map onto it.
type JobStatus string

const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobSucceeded JobStatus = "succeeded"
	JobFailed    JobStatus = "failed"
	// JobScheduled and JobSuperseded are how a job reads (Job.View), not
	// states of their own: a queued job whose next run is later
	// (rescheduled check, backoff, budget wait), and a job that ended
	// unrun because a newer one of its kind replaced it (its Result says
	// which). A JobFilter may ask for them.
	JobScheduled  JobStatus = "scheduled"
	JobSuperseded JobStatus = "superseded"
)

// JobStatuses lists every job status a listing shows and filters by, for
// validation.
var JobStatuses = []JobStatus{JobQueued, JobScheduled, JobRunning, JobSucceeded, JobSuperseded, JobFailed}

// DefaultMaxAttempts is how often a job runs before it becomes a dead letter.
const DefaultMaxAttempts = 3

// Job is the product's durable record of one piece of asynchronous work.
type Job struct {
	ID       string
	OrgID    string
	DomainID string
	Type     JobType
	Status   JobStatus
	// Attempts counts the runs that used an attempt (of MaxAttempts):
	// failed ones and the current or last one. Runs counts every start,
	// also the free ones (a check that found nothing yet, a budget wait, a
	// run cut short by shutdown).
	Attempts    int
	MaxAttempts int
	Runs        int
	Result      json.RawMessage // nil until the job produced one
	LastError   string
	RunAt       time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// WaitingFor names what a deferred job waits for ("letsencrypt orders
	// budget"), until WaitUntil, when it runs again; empty when it is not
	// waiting. Waiting uses no attempt.
	WaitingFor string
	WaitUntil  *time.Time
}

// View is the status the job reads as at now: JobScheduled for a queued
// job whose next run is after now, JobSuperseded for one that ended
// replaced by a newer job, else its Status.
func (j *Job) View(now time.Time) JobStatus {
	switch {
	case j.Status == JobQueued && j.RunAt.After(now):
		return JobScheduled
	case j.Status == JobSucceeded && j.Superseded():
		return JobSuperseded
	}
	return j.Status
}

// Superseded reports whether the job ended replaced by a newer one, as its
// result says ({"outcome": "superseded", "supersededBy": id}).
func (j *Job) Superseded() bool {
	if j.Status != JobSucceeded || len(j.Result) == 0 {
		return false
	}
	var r struct {
		Outcome string `json:"outcome"`
	}
	return json.Unmarshal(j.Result, &r) == nil && r.Outcome == "superseded"
}

// JobFilter narrows ListJobs.
type JobFilter struct {
	DomainID string
	Type     JobType
	Status   JobStatus
	Page
}

// JobStore persists jobs. All methods are scoped to the organization.
type JobStore interface {
	// FindJob returns one job. ENOTFOUND.
	FindJob(ctx context.Context, orgID, id string) (*Job, error)
	// ListJobs returns jobs newest first and the total count.
	ListJobs(ctx context.Context, orgID string, f JobFilter) ([]*Job, int, error)
	// LatestDomainJob returns the newest job of a domain, nil when none.
	LatestDomainJob(ctx context.Context, orgID, domainID string) (*Job, error)
	// RetryJob re-queues a failed job with its attempts reset; audit
	// "job.retried". ENOTFOUND, ECONFLICT when the job is not failed.
	RetryJob(ctx context.Context, actor Actor, id string) (*Job, error)
}
