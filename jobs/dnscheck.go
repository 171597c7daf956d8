package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve"
)

// dnsCheck looks for the delegation record
//
//	_acme-challenge.<domain>  CNAME  <domain's target>
//
// through the configured resolvers, following CNAME chains as a CA's DNS-01
// validation does (RFC 8555 §8.4). Found: the domain moves to issuing and
// start_issuance is queued, in the transaction that records the success.
// Not there yet (NXDOMAIN, NODATA, another target) is no error: the check
// runs again after a growing interval until DNSCheckWindow has passed.
// SERVFAIL and timeouts say nothing about the record and are retried as
// failed attempts.
func (e *Engine) dnsCheck(ctx context.Context, r *run) outcome {
	d := r.domain
	if d.Status != dcvaas.DomainPendingCNAME {
		// Verified by an earlier check, or further along: nothing to do,
		// and nothing to undo.
		return succeed(map[string]any{"outcome": "already_verified", "domainStatus": d.Status})
	}
	name := "_acme-challenge." + d.Name
	chain, err := e.resolver.FollowCNAME(ctx, name, d.CNAMETarget)
	if err != nil {
		var lerr *resolve.Error
		if errors.As(err, &lerr) {
			e.lookupLog.WarnContext(ctx, "dns check lookup failed", "jobId", r.job.ID, "err", err)
			return outcome{kind: kindRetry, msg: fmt.Sprintf("DNS lookup of %s failed (%s); will retry", name, lerr.Reason())}
		}
		return e.retryErr(ctx, r, err)
	}
	if chain.Reaches(d.CNAMETarget) {
		return outcome{
			kind:   kindSucceed,
			result: map[string]any{"outcome": "verified", "name": name, "cnameChain": chain.Targets},
			apply:  e.verified,
		}
	}
	msg := describeChain(chain, d.CNAMETarget)
	now := e.now()
	deadline := r.ref.Since.Add(e.cfg.DNSCheckWindow)
	if !now.Before(deadline) {
		return outcome{kind: kindFail, free: true, msg: fmt.Sprintf("%s — gave up after checking for %s; fix the record, then verify again", msg, e.cfg.DNSCheckWindow)}
	}
	// The last check of the window happens at its end, not up to an hour
	// after it.
	after := min(e.nextCheck(r.ref), deadline.Sub(now))
	return outcome{kind: kindRecheck, msg: msg, after: after}
}

// verified moves the domain on once its CNAME is in place. The domain row
// is locked; a concurrent check that got there first leaves nothing to do.
func (e *Engine) verified(ctx context.Context, tx *sql.Tx, r *run) error {
	d := r.domain
	if d.Status != dcvaas.DomainPendingCNAME || d.DeletedAt != nil {
		return nil
	}
	d.Status, d.LastError = dcvaas.DomainIssuing, ""
	// A csr-mode domain orders with the customer's CSR: without one there
	// is nothing to order with yet, and PUT /api/domains/{id}/csr queues
	// start_issuance when it arrives.
	waitCSR := false
	if d.KeyMode == dcvaas.KeyModeCSR {
		has, err := e.db.HasDomainCSRTx(ctx, tx, d.ID)
		if err != nil {
			return err
		}
		if waitCSR = !has; waitCSR {
			d.LastError = csrWanted(d.ID)
		}
	}
	if err := e.db.SaveDomainState(ctx, tx, d, "domain.dns_verified", map[string]any{
		"cnameTarget": d.CNAMETarget, "jobId": r.job.ID,
	}); err != nil {
		return err
	}
	if err := e.db.WriteEventTx(ctx, tx, d.OrgID, d.ID, dcvaas.EventDomainVerified, dcvaas.DomainData(d)); err != nil {
		return err
	}
	if waitCSR {
		return nil
	}
	_, err := e.db.InsertJobTx(ctx, tx, dcvaas.SystemActor(d.OrgID), d.ID, dcvaas.JobStartIssuance)
	return err
}

// csrWanted is a csr-mode domain's lastError while it waits for its CSR.
func csrWanted(domainID string) string {
	return "the CNAME is in place; waiting for the customer's CSR: PUT /api/domains/" + domainID + "/csr (keyMode csr)"
}

// describeChain says, in words a customer can act on, what DNS holds
// instead of the expected CNAME.
func describeChain(c *resolve.Chain, target string) string {
	target = resolve.Normalize(target)
	switch {
	case len(c.Targets) > 0 && c.End == resolve.EndLoop:
		return fmt.Sprintf("%s has a CNAME loop (%s → %s), expected a CNAME to %s", c.Name, c.Name, strings.Join(c.Targets, " → "), target)
	case len(c.Targets) > 0 && c.End == resolve.EndTooLong:
		return fmt.Sprintf("%s has a CNAME chain of more than %d links (%s → %s …), expected a CNAME to %s",
			c.Name, len(c.Targets), c.Name, strings.Join(c.Targets[:3], " → "), target)
	case len(c.Targets) == 1:
		return fmt.Sprintf("%s points to %s, expected %s", c.Name, c.Targets[0], target)
	case len(c.Targets) > 1:
		return fmt.Sprintf("%s points to %s (via %s), expected %s", c.Name, c.Last(), strings.Join(c.Targets[:len(c.Targets)-1], " → "), target)
	case len(c.TXT) > 0:
		return fmt.Sprintf("%s has a TXT record (%s) instead of a CNAME; replace it with a CNAME to %s", c.Name, quoteFirst(c.TXT), target)
	case c.End == resolve.EndNXDOMAIN:
		return fmt.Sprintf("no CNAME at %s (the name does not exist); create a CNAME to %s", c.Name, target)
	default:
		return fmt.Sprintf("no CNAME at %s (the name exists without one); create a CNAME to %s", c.Name, target)
	}
}

func quoteFirst(txt []string) string {
	s := fmt.Sprintf("%q", txt[0])
	if len(txt) > 1 {
		s += fmt.Sprintf(" and %d more", len(txt)-1)
	}
	return s
}

// nextCheck is the wait after a "not there yet". After a change dcvaas
// made itself, the record is on its way: look again within seconds, a few
// times, before falling back to the intervals for a customer's hand edit.
func (e *Engine) nextCheck(r ref) time.Duration {
	n := r.Checks
	if fast := e.cfg.AfterChangeIntervals; r.AfterChange {
		if n < len(fast) {
			return fast[n]
		}
		n -= len(fast)
	}
	return checkInterval(e.cfg.DNSCheckIntervals, n)
}
