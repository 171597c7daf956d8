package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/riverqueue/river"
)

// Delegation monitoring. Every renewal needs the customer's CNAME
//
//	_acme-challenge.<domain>  CNAME  <domain's target>
//
// to be in place (CAs reuse authorizations for hours at most), so once a
// day every active domain's CNAME is looked up the way dns_check does. Gone
// or pointing elsewhere: the domain shows cnameStatus "missing", lastError
// says what DNS holds instead, audit "domain.cname_missing" — customers
// learn of a broken delegation weeks before it costs them a certificate.
// Back: "ok", the message cleared, audit "domain.cname_restored".
//
// A delegation_scan job (daily, on the leader) streams the active domains
// and queues delegation_check jobs of checkBatch domains each, spread over
// RenewalConfig.Spread so that the customers' DNS servers and our resolvers
// see an even trickle.

// missingSuffix ends every lastError this check writes, so that it clears
// its own message, and only its own, when the CNAME comes back.
const missingSuffix = " (found by the daily delegation check; the next renewal fails until it is fixed)"

type (
	delegationScanArgs  struct{}
	delegationCheckArgs struct {
		DomainIDs []string `json:"domain_ids"`
	}
)

func (delegationScanArgs) Kind() string  { return kindDelegationScan }
func (delegationCheckArgs) Kind() string { return kindDelegationCheck }

type delegationScanWorker struct {
	river.WorkerDefaults[delegationScanArgs]
	e *Engine
}

func (w *delegationScanWorker) Work(ctx context.Context, _ *river.Job[delegationScanArgs]) error {
	_, err := w.e.DelegationScan(ctx)
	return err
}

type delegationCheckWorker struct {
	river.WorkerDefaults[delegationCheckArgs]
	e *Engine
}

func (w *delegationCheckWorker) Work(ctx context.Context, job *river.Job[delegationCheckArgs]) error {
	_, err := w.e.CheckDelegations(ctx, job.Args.DomainIDs)
	return err
}

// DelegationScan queues a CNAME check of every active domain, in batches
// spread over the spread window, and returns how many domains it covered.
func (e *Engine) DelegationScan(ctx context.Context) (int, error) {
	size := e.cfg.Renewal.PageSize
	after, n := "", 0
	for {
		ids, err := e.db.ActiveDomainIDs(ctx, after, size)
		if err != nil {
			return n, fmt.Errorf("delegation scan: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		if err := e.insertChecks(ctx, ids); err != nil {
			return n, fmt.Errorf("delegation scan: %w", err)
		}
		n += len(ids)
		if len(ids) < size {
			break
		}
	}
	e.log.InfoContext(ctx, "delegation checks queued", "domains", n, "spread", e.cfg.Renewal.Spread.String())
	return n, nil
}

func (e *Engine) insertChecks(ctx context.Context, ids []string) error {
	tx, err := e.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := e.insertBatches(ctx, tx, ids, checkBatch, func(b []string) river.JobArgs { return delegationCheckArgs{DomainIDs: b} }); err != nil {
		return err
	}
	return tx.Commit()
}

// DelegationCounts is what a batch of CNAME checks found.
type DelegationCounts struct {
	OK, Missing, Failed int
}

// CheckDelegations looks up the CNAME of each domain now and records what
// changed. A lookup that fails (SERVFAIL, timeout) changes nothing: it says
// nothing about the record. The error is the database's only.
func (e *Engine) CheckDelegations(ctx context.Context, ids []string) (DelegationCounts, error) {
	var mu sync.Mutex
	var c DelegationCounts
	var errs error
	fanOut(ids, checkFanout, func(id string) {
		result, err := e.checkDelegation(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			errs = errors.Join(errs, err)
		case result == "ok":
			c.OK++
		case result == "missing":
			c.Missing++
		case result == "error":
			c.Failed++
		}
		if result != "" {
			e.observer().DelegationChecked(result)
		}
	})
	return c, errs
}

// checkDelegation checks one domain: "ok", "missing", "error" (the lookup
// failed), or "" when the domain is no longer active.
func (e *Engine) checkDelegation(ctx context.Context, id string) (string, error) {
	d, err := e.db.DomainByID(ctx, id)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if d.Status != dcvaas.DomainActive || d.DeletedAt != nil {
		return "", nil
	}
	name := "_acme-challenge." + d.Name
	chain, err := e.resolver.FollowCNAME(ctx, name, d.CNAMETarget)
	if err != nil {
		var lerr *resolve.Error
		reason := "internal error"
		if errors.As(err, &lerr) {
			reason = lerr.Reason()
		}
		e.lookupLog.WarnContext(ctx, "delegation check lookup failed", "domainId", d.ID, "name", name, "reason", reason, "err", err)
		return "error", nil
	}
	found, msg := dcvaas.CNAMEOK, ""
	if !chain.Reaches(d.CNAMETarget) {
		found, msg = dcvaas.CNAMEMissing, describeChain(chain, d.CNAMETarget)+missingSuffix
	}
	if found == d.CNAMEStatus && (found == dcvaas.CNAMEOK || d.LastError == msg) {
		return string(found), nil // nothing new: no write
	}
	return string(found), e.recordDelegation(ctx, id, found, msg, chain)
}

// recordDelegation writes a changed finding under the domain's row lock,
// with its audit entry.
func (e *Engine) recordDelegation(ctx context.Context, id string, found dcvaas.CNAMEStatus, msg string, chain *resolve.Chain) error {
	tx, err := e.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	d, err := e.db.LockDomain(ctx, tx, id)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if d.Status != dcvaas.DomainActive || d.DeletedAt != nil {
		return nil
	}
	before := d.LastError
	action, details := changeDelegation(d, found, msg, chain)
	if action == "" && d.LastError == before {
		return nil
	}
	if err := e.db.SaveDelegation(ctx, tx, d, action, details); err != nil {
		return err
	}
	if typ, ok := delegationEvents[action]; ok {
		data := dcvaas.DomainData(d)
		if typ == dcvaas.EventDomainDelegationLost {
			data.Found = strings.TrimSuffix(msg, missingSuffix)
		}
		if err := e.db.WriteEventTx(ctx, tx, d.OrgID, d.ID, typ, data); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if action != "" {
		e.log.InfoContext(ctx, "delegation changed", "domainId", d.ID, "domain", d.Name, "cnameStatus", found, "action", action)
	}
	return nil
}

// delegationEvents are the events of delegation changes, by audit action.
var delegationEvents = map[string]dcvaas.EventType{
	"domain.cname_missing":  dcvaas.EventDomainDelegationLost,
	"domain.cname_restored": dcvaas.EventDomainDelegationRestored,
}

// changeDelegation applies a finding to d and returns the audit entry it
// calls for ("" when the status stays: only the message changes).
func changeDelegation(d *dcvaas.Domain, found dcvaas.CNAMEStatus, msg string, chain *resolve.Chain) (string, map[string]any) {
	details := map[string]any{"name": chain.Name, "expected": resolve.Normalize(d.CNAMETarget), "cnameChain": chain.Targets}
	if found == dcvaas.CNAMEMissing {
		action := ""
		if d.CNAMEStatus != dcvaas.CNAMEMissing {
			action = "domain.cname_missing"
		}
		details["found"] = strings.TrimSuffix(msg, missingSuffix)
		d.CNAMEStatus, d.LastError = dcvaas.CNAMEMissing, msg
		return action, details
	}
	if strings.HasSuffix(d.LastError, missingSuffix) {
		d.LastError = ""
	}
	if d.CNAMEStatus == dcvaas.CNAMEOK {
		return "", nil
	}
	d.CNAMEStatus = dcvaas.CNAMEOK
	return "domain.cname_restored", details
}
