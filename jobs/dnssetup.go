package jobs

import (
	"context"
	"database/sql"

	"github.com/dcvaas/dcvaas"
)

// DNSSetup creates a domain's delegation CNAME through a DNS provider
// connection: the hook through which one-click setup (package connection,
// which this package does not import) plugs dns_setup into the engine.
// The API queues a dns_setup only when its own attempt met a provider
// outage; the job then retries that attempt with backoff.
//
// RunDNSSetup must be idempotent (a crash after the work and before the
// outcome is recorded runs it again): the right record already in place is
// success. It records the setup itself, as the API's attempt does (audit
// "domain.dns_setup", a dns_check while the domain awaits verification).
// The result is kept as the job's result. Errors decide what happens next:
// EUNAVAILABLE (the provider is down) and errors without a code are failed
// attempts, retried with backoff until the attempts run out; ECONFLICT
// (records in the way), EINVALID (no zone holds the domain, the provider
// refuses the credential) and ENOTFOUND (the connection was deleted)
// cannot get better by waiting and fail the job at once. The message
// becomes the job's and domain's lastError.
type DNSSetup interface {
	RunDNSSetup(ctx context.Context, job *dcvaas.Job, args dcvaas.DNSSetupArgs) (result any, err error)
}

// errNoDNSSetup is what a dns_setup reports on a process without the hook
// (there is nothing to retry for).
var errNoDNSSetup = dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "one-click DNS setup is not configured on this server")

// dnsSetupFailed prefixes the messages of dns_setup, which end up on the
// domain beside those of its checks and issuance.
const dnsSetupFailed = "one-click DNS setup: "

func (e *Engine) dnsSetup(ctx context.Context, r *run) outcome {
	if e.cfg.DNSSetup == nil {
		return outcome{kind: kindFail, msg: dnsSetupFailed + errNoDNSSetup.Message}
	}
	args, err := e.db.DNSSetupArgs(ctx, r.job.ID)
	if err != nil {
		return e.retryErr(ctx, r, err)
	}
	result, err := e.cfg.DNSSetup.RunDNSSetup(ctx, r.job, args)
	switch dcvaas.ErrorCode(err) {
	case "":
		return outcome{kind: kindSucceed, result: result, apply: e.setUp}
	case dcvaas.ECONFLICT, dcvaas.EINVALID, dcvaas.ENOTFOUND, dcvaas.EFORBIDDEN, dcvaas.ENOTIMPLEMENTED:
		// No retry: the customer has to change something first (remove
		// the records in the way, fix or reconnect the provider), then
		// ask again — or retry this job once they have.
		e.log.WarnContext(ctx, "dns setup failed for good", "jobId", r.job.ID, "domainId", r.job.DomainID, "err", err)
		return outcome{kind: kindFail, msg: dnsSetupFailed + dcvaas.ErrorMessage(err)}
	}
	out := e.retryErr(ctx, r, err)
	out.msg = dnsSetupFailed + out.msg
	return out
}

// setUp clears the domain's lastError when it is the outage this job has
// been retrying through: the record is in place now, and the dns_check the
// setup queued says what it finds.
func (e *Engine) setUp(ctx context.Context, tx *sql.Tx, r *run) error {
	d := r.domain
	if d.DeletedAt != nil || r.job.LastError == "" || d.LastError != r.job.LastError {
		return nil
	}
	d.LastError = ""
	return e.db.SaveDomainState(ctx, tx, d, "", nil)
}
