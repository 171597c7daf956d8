// Package route53 manages DNS records in Amazon Route 53 through the AWS SDK.
//
// A customer grants access either with an IAM user's access key pair or,
// better, with an IAM role in their account that dcvaas assumes through STS
// with an external id (the cross-account pattern): then dcvaas holds no
// long-lived secret of theirs at all.
package route53

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/dcvaas/dcvaas/provider"
)

const name = "route53"

// Options configure a client. Exactly one of the key pair and RoleARN is set.
type Options struct {
	// Endpoint and STSEndpoint override the AWS endpoints (tests, sandboxes).
	Endpoint    string
	STSEndpoint string
	// Region signs the requests; Route 53 is global and answers in us-east-1.
	Region string

	AccessKeyID     string
	SecretAccessKey string

	RoleARN    string
	ExternalID string
	// BaseCredentials are dcvaas's own AWS identity, which assumes RoleARN.
	// nil: the SDK's default chain (environment, shared config, instance
	// or task role) — loaded only when a role is to be assumed.
	BaseCredentials aws.CredentialsProvider

	// PollInterval is how often SetCNAME asks whether its change reached
	// every Route 53 server (default 2s); WaitTimeout bounds the wait
	// (default 3 minutes; AWS documents "generally within 60 seconds").
	PollInterval time.Duration
	WaitTimeout  time.Duration
	// MaxAttempts caps the SDK's own retries (0: the SDK's default).
	MaxAttempts int
	HTTPClient  *http.Client
}

// Client is one AWS account's public hosted zones.
type Client struct {
	api  *r53.Client
	opts Options
}

var _ provider.DNS = (*Client)(nil)

// New builds a client; it does not contact AWS.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 3 * time.Minute
	}
	cfg := aws.Config{Region: o.Region, RetryMaxAttempts: o.MaxAttempts}
	if o.HTTPClient != nil {
		cfg.HTTPClient = o.HTTPClient
	}
	switch {
	case o.RoleARN != "":
		base := o.BaseCredentials
		if base == nil {
			var err error
			if base, err = defaultCredentials(); err != nil {
				return nil, fmt.Errorf("route53: load dcvaas's own AWS credentials: %w", err)
			}
		}
		stsCfg := cfg.Copy()
		stsCfg.Credentials = base
		stsClient := sts.NewFromConfig(stsCfg, func(so *sts.Options) {
			if o.STSEndpoint != "" {
				so.BaseEndpoint = aws.String(o.STSEndpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			ao.RoleSessionName = "dcvaas"
			if o.ExternalID != "" {
				ao.ExternalID = aws.String(o.ExternalID)
			}
		}))
	case o.AccessKeyID != "":
		cfg.Credentials = credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")
	default:
		return nil, errors.New("route53: neither an access key nor a role to assume")
	}
	api := r53.NewFromConfig(cfg, func(ro *r53.Options) {
		if o.Endpoint != "" {
			ro.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
	return &Client{api: api, opts: o}, nil
}

// defaultCredentials is dcvaas's own identity from the SDK's default chain,
// loaded once: its cache then serves every client, so an instance role is
// fetched once per expiry rather than once per request.
var defaultCredentials = sync.OnceValues(func() (aws.CredentialsProvider, error) {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		return nil, err
	}
	return cfg.Credentials, nil
})

// Zones implements provider.DNS. Private hosted zones are left out: the CA
// resolves the public DNS, so a record in a private zone would not help.
func (c *Client) Zones(ctx context.Context) ([]provider.Zone, error) {
	var out []provider.Zone
	p := r53.NewListHostedZonesPaginator(c.api, &r53.ListHostedZonesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError(err)
		}
		for _, z := range page.HostedZones {
			if z.Config != nil && z.Config.PrivateZone {
				continue
			}
			out = append(out, provider.Zone{ID: strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/"), Name: provider.Canonical(aws.ToString(z.Name))})
		}
	}
	return out, nil
}

// Records implements provider.DNS. Record sets are listed in name order
// starting at fqdn, so the listing stops at the first other name.
func (c *Client) Records(ctx context.Context, z provider.Zone, fqdn string) ([]provider.Record, error) {
	fqdn = provider.Canonical(fqdn)
	in := &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), StartRecordName: aws.String(fqdn + "."), MaxItems: aws.Int32(100)}
	var out []provider.Record
	for {
		page, err := c.api.ListResourceRecordSets(ctx, in)
		if err != nil {
			return nil, apiError(err)
		}
		for _, s := range page.ResourceRecordSets {
			if provider.Canonical(aws.ToString(s.Name)) != fqdn {
				return out, nil
			}
			r := provider.Record{Name: fqdn, Type: string(s.Type), TTL: int(aws.ToInt64(s.TTL)), Opaque: s}
			for _, v := range s.ResourceRecords {
				r.Values = append(r.Values, provider.Canonical(aws.ToString(v.Value)))
			}
			if s.AliasTarget != nil {
				r.Values = append(r.Values, "ALIAS "+provider.Canonical(aws.ToString(s.AliasTarget.DNSName)))
			}
			out = append(out, r)
		}
		if !page.IsTruncated {
			return out, nil
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = page.NextRecordName, page.NextRecordType, page.NextRecordIdentifier
	}
}

// SetCNAME implements provider.DNS. UPSERT replaces a CNAME in one atomic
// change; the call then waits until the change is INSYNC, i.e. served by
// every Route 53 name server, so that the dns_check that follows does not
// race the propagation.
func (c *Client) SetCNAME(ctx context.Context, z provider.Zone, fqdn, target string, ttl int) error {
	set := types.ResourceRecordSet{
		Name: aws.String(provider.Canonical(fqdn) + "."), Type: types.RRTypeCname, TTL: aws.Int64(int64(ttl)),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String(provider.Canonical(target) + ".")}},
	}
	id, err := c.change(ctx, z, types.ChangeActionUpsert, set)
	if err != nil {
		return err
	}
	return c.waitInSync(ctx, id)
}

// Delete implements provider.DNS. Route 53 deletes a set only when given
// exactly as it is, which is why Records keeps it in Opaque.
func (c *Client) Delete(ctx context.Context, z provider.Zone, r provider.Record) error {
	set, ok := r.Opaque.(types.ResourceRecordSet)
	if !ok {
		return &provider.Error{Provider: name, Kind: provider.KindInvalid, Message: "record set was not listed by this client"}
	}
	_, err := c.change(ctx, z, types.ChangeActionDelete, set)
	return err
}

func (c *Client) change(ctx context.Context, z provider.Zone, action types.ChangeAction, set types.ResourceRecordSet) (string, error) {
	out, err := c.api.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(z.ID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String("dcvaas: ACME DNS-01 delegation"),
			Changes: []types.Change{{Action: action, ResourceRecordSet: &set}},
		},
	})
	if err != nil {
		return "", apiError(err)
	}
	return aws.ToString(out.ChangeInfo.Id), nil
}

func (c *Client) waitInSync(ctx context.Context, changeID string) error {
	wctx, cancel := context.WithTimeout(ctx, c.opts.WaitTimeout)
	defer cancel()
	t := time.NewTicker(c.opts.PollInterval)
	defer t.Stop()
	for wctx.Err() == nil {
		out, err := c.api.GetChange(wctx, &r53.GetChangeInput{Id: aws.String(changeID)})
		if err == nil && out.ChangeInfo.Status == types.ChangeStatusInsync {
			return nil
		} else if err != nil && wctx.Err() == nil {
			return apiError(err)
		}
		select {
		case <-wctx.Done():
		case <-t.C:
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The change is accepted and will apply; only the wait gave up. A
	// re-run finds the record in place and goes on.
	return &provider.Error{Provider: name, Kind: provider.KindUnavailable,
		Message: fmt.Sprintf("change %s not yet in sync after %s", changeID, c.opts.WaitTimeout)}
}

// authCodes are AWS error codes for credentials that are invalid or expired.
var authCodes = map[string]bool{
	"InvalidClientTokenId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
	"InvalidAccessKeyId": true, "UnrecognizedClientException": true, "IncompleteSignature": true,
	"MissingAuthenticationToken": true,
}

// apiError turns an SDK error into a provider.Error, keeping AWS's code
// and message (which name the failing permission, useful to the customer).
func apiError(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	e := &provider.Error{Provider: name, Kind: provider.KindUnavailable}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.Kind = provider.KindForStatus(e.Status)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code, e.Message = ae.ErrorCode(), ae.ErrorMessage()
		switch {
		case authCodes[e.Code]:
			e.Kind = provider.KindAuth
		case e.Code == "AccessDenied" || e.Code == "AccessDeniedException":
			e.Kind = provider.KindForbidden
		case e.Code == "NoSuchHostedZone" || e.Code == "NoSuchChange":
			e.Kind = provider.KindNotFound
		case e.Code == "Throttling" || e.Code == "PriorRequestNotComplete":
			e.Kind = provider.KindUnavailable
		}
		return e
	}
	if e.Status == 0 {
		// No response at all (DNS, TCP, TLS): keep the transport error for
		// the logs; it carries no credential.
		e.Message, e.Err = "unreachable", err
	} else {
		e.Message = fmt.Sprintf("request failed with HTTP %d", e.Status)
	}
	return e
}
