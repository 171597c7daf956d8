package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/dcvaas/dcvaas"
)

// QueueDNSSetup implements dcvaas.ConnectionStore. The domain's row lock
// serializes two requests for the same domain, so the second finds the
// first's job; jobs_one_open_dns_setup stands behind it.
func (db *DB) QueueDNSSetup(ctx context.Context, actor dcvaas.Actor, domainID string, args dcvaas.DNSSetupArgs) (*dcvaas.Job, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	var job *dcvaas.Job
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := db.findDomain(ctx, tx, actor.OrgID, domainID, true); err != nil {
			return err
		}
		var err error
		if job, err = db.openJob(ctx, tx, domainID, dcvaas.JobDNSSetup); job != nil || err != nil {
			return err
		}
		if job, err = db.insertJob(ctx, tx, actor, domainID, dcvaas.JobDNSSetup, EnqueueOpts{}, nil); err != nil {
			return err
		}
		// The queue entry inserted with the row runs only after the commit,
		// so it always finds its input.
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET args = $1 WHERE id = $2`, string(raw), job.ID)
		return err
	})
	return job, err
}

// DNSSetupArgs returns the input of a dns_setup job, for the job engine
// (not scoped to an organization, like the rest of jobstate.go). ENOTFOUND
// when the job is gone; EINTERNAL when it has no readable input.
func (db *DB) DNSSetupArgs(ctx context.Context, jobID string) (dcvaas.DNSSetupArgs, error) {
	var args dcvaas.DNSSetupArgs
	var raw sql.NullString
	err := db.read.QueryRowContext(ctx, `SELECT args FROM jobs WHERE id = $1`, jobID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return args, dcvaas.Errorf(dcvaas.ENOTFOUND, "job not found")
	} else if err != nil {
		return args, err
	}
	if !raw.Valid {
		return args, &dcvaas.Error{Code: dcvaas.EINTERNAL, Message: "the dns_setup job has no input", Err: errors.New("jobs.args is NULL")}
	}
	if err := json.Unmarshal([]byte(raw.String), &args); err != nil {
		return args, &dcvaas.Error{Code: dcvaas.EINTERNAL, Message: "the dns_setup job's input is damaged", Err: err}
	}
	return args, nil
}
