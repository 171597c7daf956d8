package dcvaas

import "time"

// RenewalRun is one renewal check: a pass over every active domain that
// queues a renewal for each whose certificate is due.
type RenewalRun struct {
	ID string
	// Cause says what started it: "schedule" (the daily cron), "startup"
	// (the last successful check was too long ago) or "cli".
	Cause      string
	Status     RenewalRunStatus
	StartedAt  time.Time
	FinishedAt *time.Time
	// Scanned counts the active domains the check looked at; Due those
	// whose certificate is due; Queued the renewals it queued; Skipped the
	// due ones that already had a renewal queued or running; ARIChecks the
	// certificates whose renewal window is to be asked of their CA.
	Scanned, Due, Queued, Skipped, ARIChecks int
	// Errors counts the domains the check could not decide (e.g. a failed
	// ARI request); Error is why the run itself failed.
	Errors int
	Error  string
}

// RenewalRunStatus is where a renewal check stands.
type RenewalRunStatus string

const (
	RenewalRunning   RenewalRunStatus = "running"
	RenewalSucceeded RenewalRunStatus = "succeeded"
	RenewalFailed    RenewalRunStatus = "failed"
)

// FleetStats is the state of the whole service at one moment, as an
// operator's dashboard shows it. Counts are cluster-wide (read from the
// database), never per organization.
type FleetStats struct {
	At time.Time
	// Jobs counts the jobs that are queued, running or failed (dead
	// letters), by type and status.
	Jobs map[JobType]map[JobStatus]int
	// Queue counts the job queue's entries by state ("available",
	// "scheduled", "retryable", "running"); nil when unknown.
	Queue map[string]int
	// Domains counts live domains by status; CNAMEMissing those whose
	// delegation the last check did not find.
	Domains      map[DomainStatus]int
	CNAMEMissing int
	// Expiring counts live domains whose certificate expires before At
	// plus the key (expired ones included).
	Expiring map[time.Duration]int
	// LastRenewal is the last successful renewal check; nil when none.
	LastRenewal *RenewalRun
	// CABackoffs are the CAs that asked to be left alone, with until when.
	CABackoffs map[string]time.Time
}
