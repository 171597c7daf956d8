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
)

// JobStatuses lists every job status, for validation.
var JobStatuses = []JobStatus{JobQueued, JobRunning, JobSucceeded, JobFailed}

// DefaultMaxAttempts is how often a job runs before it becomes a dead letter.
const DefaultMaxAttempts = 3

// Job is the product's durable record of one piece of asynchronous work.
type Job struct {
	ID          string
	OrgID       string
	DomainID    string
	Type        JobType
	Status      JobStatus
	Attempts    int
	MaxAttempts int
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
