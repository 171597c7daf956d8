package jobs

import (
	"fmt"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/riverqueue/river"
)

// ref is what every River job of ours carries: which product job (a row of
// our jobs table) it runs, nothing else of substance. The jobs row is the
// record; a River job is one scheduled attempt at it.
type ref struct {
	JobID string `json:"job_id"`
	// Since is when the current round of DNS checks began: the
	// DNSCheckWindow counts from here. A retry of a dead letter starts a new
	// round.
	Since time.Time `json:"since,omitzero"`
	// Checks counts the "not there yet" answers of this round, which pick
	// the next interval.
	Checks int `json:"checks,omitempty"`
	// AfterChange: the round began right after dcvaas changed the record
	// itself (one-click setup), so the first looks come seconds apart
	// (Config.AfterChangeIntervals) before the usual intervals.
	AfterChange bool `json:"afterChange,omitempty"`
}

func (r ref) get() ref { return r }

// One args type per job type, because River routes by kind.
type (
	dnsCheckArgs      struct{ ref }
	startIssuanceArgs struct{ ref }
	renewalArgs       struct{ ref }
	dnsSetupArgs      struct{ ref }
)

func (dnsCheckArgs) Kind() string      { return string(dcvaas.JobDNSCheck) }
func (startIssuanceArgs) Kind() string { return string(dcvaas.JobStartIssuance) }
func (renewalArgs) Kind() string       { return string(dcvaas.JobRenewal) }
func (dnsSetupArgs) Kind() string      { return string(dcvaas.JobDNSSetup) }

// args is the constraint of the generic worker: River args that carry a ref.
type args interface {
	river.JobArgs
	get() ref
}

// argsFor builds the River args for a job type.
func argsFor(jt dcvaas.JobType, r ref) (river.JobArgs, error) {
	switch jt {
	case dcvaas.JobDNSCheck:
		return dnsCheckArgs{r}, nil
	case dcvaas.JobStartIssuance:
		return startIssuanceArgs{r}, nil
	case dcvaas.JobRenewal:
		return renewalArgs{r}, nil
	case dcvaas.JobDNSSetup:
		return dnsSetupArgs{r}, nil
	}
	return nil, fmt.Errorf("unknown job type %q", jt)
}
