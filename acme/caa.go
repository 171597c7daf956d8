package acme

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// candidates returns the CAs to try, in order: the configured order, less
// the CAs backing off (their Retry-After, stored for all nodes) and those
// CAA forbids (RFC 8659), with the CA of a pending order first, so that a
// restarted job resumes its order rather than starting one elsewhere.
func (is *Issuer) candidates(ctx context.Context, d *dcvaas.Domain, pending *sqlstore.PendingOrder, now time.Time) ([]CA, []Skip, error) {
	set, err := is.cfg.Resolver.LookupCAA(ctx, d.Name)
	if err != nil {
		var re *resolve.Error
		msg := "CAA lookup failed"
		if errors.As(err, &re) {
			msg = fmt.Sprintf("CAA lookup of %s failed (%s)", re.Name, re.Reason())
		}
		return nil, nil, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: msg + "; CAs must not issue without it, so it will be tried again", Err: err}
	}
	backoffs, err := is.cfg.Store.CABackoffs(ctx, now)
	if err != nil {
		return nil, nil, err
	}
	var out []CA
	var skipped []Skip
	caaAllowsAny := false
	for _, ca := range is.cfg.CAs {
		accountURI := ""
		if a, err := is.cfg.Store.FindACMEAccount(ctx, ca.Name, ca.Directory); err == nil {
			accountURI = a.AccountURL
		}
		if !caaPermits(set, ca.CAAIdentities, accountURI, d.IncludeWildcard) {
			skipped = append(skipped, Skip{CA: ca.Name, Reason: "caa", Error: "CAA records at " + set.Name + " do not allow it"})
			continue
		}
		caaAllowsAny = true
		if until, ok := backoffs[ca.Name]; ok {
			skipped = append(skipped, Skip{CA: ca.Name, Reason: "backoff", Error: "asked to be left alone until " + until.UTC().Format(time.RFC3339), Until: until})
			continue
		}
		out = append(out, ca)
	}
	if !caaAllowsAny {
		return nil, nil, dcvaas.Errorf(dcvaas.EINVALID, "%s", caaAdvice(set, is.cfg.CAs, d.IncludeWildcard))
	}
	if len(out) == 0 {
		e := &Error{RetryAt: earliest(skipped), Err: errors.New("every allowed CA is backing off")}
		return nil, nil, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Err: e,
			Message: "every certificate authority allowed for this domain asked to be left alone for now; it will be tried again after " + e.RetryAt.UTC().Format(time.RFC3339)}
	}
	if pending != nil {
		if i := slices.IndexFunc(out, func(ca CA) bool { return ca.Name == pending.CAName }); i > 0 {
			first := out[i]
			out = append([]CA{first}, slices.Delete(out, i, i+1)...)
		}
	}
	return out, skipped, nil
}

// caaPermits applies RFC 8659 §4 to the Relevant RRset for a CA known in
// CAA by ids: the apex needs an "issue" property naming the CA (or none at
// all); the wildcard needs an "issuewild" one, or, without any issuewild,
// what the apex needs (§4.3). An unknown tag flagged critical forbids
// everyone (§4.1). RFC 8657 parameters narrow a property: accounturi must
// be our account, validationmethods must include dns-01.
func caaPermits(set *resolve.CAASet, ids []string, accountURI string, wildcard bool) bool {
	var issue, issuewild []resolve.CAA
	for _, r := range set.Records {
		switch r.Tag {
		case "issue":
			issue = append(issue, r)
		case "issuewild":
			issuewild = append(issuewild, r)
		case "iodef", "issuemail", "issuevmc", "contactemail", "contactphone":
		default:
			if r.Critical() {
				return false
			}
		}
	}
	if !anyPermits(issue, ids, accountURI) {
		return false
	}
	if wildcard && len(issuewild) > 0 {
		return anyPermits(issuewild, ids, accountURI)
	}
	return true
}

// anyPermits: no property at all permits; otherwise one must.
func anyPermits(props []resolve.CAA, ids []string, accountURI string) bool {
	if len(props) == 0 {
		return true
	}
	for _, p := range props {
		if propertyPermits(p.Value, ids, accountURI) {
			return true
		}
	}
	return false
}

// propertyPermits parses issuer-domain-name *(";" parameter) (RFC 8659
// §4.2). An empty issuer name (";") permits nobody.
func propertyPermits(value string, ids []string, accountURI string) bool {
	parts := strings.Split(value, ";")
	issuer := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(parts[0]), "."))
	if issuer == "" || !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, issuer) }) {
		return false
	}
	for _, param := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "accounturi": // RFC 8657 §3
			if accountURI == "" || v != accountURI {
				return false
			}
		case "validationmethods": // RFC 8657 §4
			if !slices.Contains(strings.Split(v, ","), "dns-01") {
				return false
			}
		}
	}
	return true
}

// caaAdvice says what forbids issuance and which record to add, for the
// first configured CA (the one dcvaas prefers).
func caaAdvice(set *resolve.CAASet, cas []CA, wildcard bool) string {
	var found []string
	hasIssuewild := false
	for _, r := range set.Records {
		found = append(found, set.Name+". CAA "+r.String())
		hasIssuewild = hasIssuewild || r.Tag == "issuewild"
	}
	want := cas[0]
	id := want.Name
	if len(want.CAAIdentities) > 0 {
		id = want.CAAIdentities[0]
	}
	add := fmt.Sprintf("%s. CAA 0 issue %q", set.Name, id)
	if wildcard && hasIssuewild {
		add += fmt.Sprintf(" and %s. CAA 0 issuewild %q", set.Name, id)
	}
	var names []string
	for _, ca := range cas {
		names = append(names, ca.Name)
	}
	return fmt.Sprintf("CAA records forbid every certificate authority dcvaas uses (%s): found %s; to allow %s, add %s",
		strings.Join(names, ", "), strings.Join(found, ", "), want.Name, add)
}
