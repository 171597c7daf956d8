package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/provider"
)

// DNS provider connections and one-click setup. The handlers translate
// between JSON and the connection service, which owns every rule; what they
// return never holds a secret: credentials are write-only.

type providerConnection struct {
	ID             string     `json:"id"`
	Provider       string     `json:"provider" enum:"cloudflare,godaddy,route53"`
	Kind           string     `json:"kind" enum:"oauth,credential" doc:"oauth: authorized through the provider's consent screen; credential: a pasted API token, key pair or IAM role."`
	Status         string     `json:"status" enum:"active,needs_reauth" doc:"needs_reauth: the provider no longer accepts the tokens; authorize again."`
	DisplayName    string     `json:"displayName"`
	LastError      string     `json:"lastError,omitempty" doc:"Why the provider last refused the connection."`
	TokenExpiresAt *time.Time `json:"tokenExpiresAt,omitempty" doc:"When the OAuth access token expires; dcvaas refreshes it before."`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
}

func toConnection(c *dcvaas.Connection) providerConnection {
	return providerConnection{
		ID: c.ID, Provider: c.Provider, Kind: string(c.Kind), Status: string(c.Status), DisplayName: c.DisplayName,
		LastError: c.LastError, TokenExpiresAt: utc(c.TokenExpiresAt), CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

type connectionList struct {
	Items  []providerConnection `json:"items" nullable:"false"`
	Total  int                  `json:"total"`
	Limit  int                  `json:"limit"`
	Offset int                  `json:"offset"`
}

type connectionCredential struct {
	APIToken        string `json:"apiToken,omitempty" writeOnly:"true" maxLength:"1024" doc:"Cloudflare: an API token with Zone:Read and DNS:Edit."`
	APIKey          string `json:"apiKey,omitempty" writeOnly:"true" maxLength:"1024" doc:"GoDaddy: the API key."`
	APISecret       string `json:"apiSecret,omitempty" writeOnly:"true" maxLength:"1024" doc:"GoDaddy: the API secret."`
	RoleARN         string `json:"roleArn,omitempty" maxLength:"2048" doc:"Route 53 (recommended): an IAM role for dcvaas to assume."`
	ExternalID      string `json:"externalId,omitempty" maxLength:"1224" doc:"Route 53: the external id the role requires; dcvaas-<organizationId>, which is also the default."`
	AccessKeyID     string `json:"accessKeyId,omitempty" writeOnly:"true" maxLength:"128" doc:"Route 53: an IAM user's access key id (instead of a role)."`
	SecretAccessKey string `json:"secretAccessKey,omitempty" writeOnly:"true" maxLength:"1024" doc:"Route 53: that access key's secret."`
}

type createConnectionRequest struct {
	Provider    string               `json:"provider" enum:"cloudflare,godaddy,route53"`
	DisplayName string               `json:"displayName,omitempty" maxLength:"100"`
	Credential  connectionCredential `json:"credential" doc:"The fields of the provider; tested against it before anything is saved, and never shown again."`
}

type createConnectionInput struct {
	Body createConnectionRequest
}

type connectionOutput struct {
	Location string `header:"Location"`
	Body     providerConnection
}

// connectionsService returns the service, or ENOTIMPLEMENTED when the
// process runs without one.
func (s *server) connectionsService() (*connection.Service, error) {
	if s.connections == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "DNS provider connections are not configured on this server")
	}
	return s.connections, nil
}

func (s *server) createConnection(ctx context.Context, in *createConnectionInput) (*connectionOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	name := in.Body.DisplayName
	if name != "" {
		name = cleanName(fields, "body.displayName", name)
	}
	if len(fields) > 0 {
		return nil, invalid(fields)
	}
	c := in.Body.Credential
	conn, err := svc.Create(ctx, actorFrom(ctx), connection.CreateInput{Provider: in.Body.Provider, DisplayName: name,
		Credential: connection.Credential{APIToken: c.APIToken, APIKey: c.APIKey, APISecret: c.APISecret, RoleARN: c.RoleARN,
			ExternalID: c.ExternalID, AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}})
	if err != nil {
		return nil, err
	}
	return &connectionOutput{Location: "/api/connections/" + conn.ID, Body: toConnection(conn)}, nil
}

type listConnectionsInput struct {
	Limit  int `query:"limit" default:"50" minimum:"1" maximum:"200"`
	Offset int `query:"offset" default:"0" minimum:"0"`
}

type connectionListOutput struct {
	Body connectionList
}

func (s *server) listConnections(ctx context.Context, in *listConnectionsInput) (*connectionListOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	cs, total, err := svc.List(ctx, actorFrom(ctx).OrgID, page(in.Limit, in.Offset))
	if err != nil {
		return nil, err
	}
	return &connectionListOutput{Body: connectionList{Items: convert(cs, toConnection), Total: total, Limit: in.Limit, Offset: in.Offset}}, nil
}

type connectionIDInput struct {
	ID string `path:"id" doc:"The connection's id."`
}

type connectionGetOutput struct {
	Body providerConnection
}

func (s *server) getConnection(ctx context.Context, in *connectionIDInput) (*connectionGetOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	c, err := svc.Get(ctx, actorFrom(ctx).OrgID, in.ID)
	if err != nil {
		return nil, err
	}
	return &connectionGetOutput{Body: toConnection(c)}, nil
}

func (s *server) deleteConnection(ctx context.Context, in *connectionIDInput) (*struct{}, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	return nil, svc.Delete(ctx, actorFrom(ctx), in.ID)
}

type connectionTest struct {
	OK    bool     `json:"ok" doc:"Always true: a failed test is answered with a problem carrying the provider's reason."`
	Zones []string `json:"zones" nullable:"false" doc:"The zones the connection can manage."`
}

type connectionTestOutput struct {
	Body connectionTest
}

func (s *server) testConnection(ctx context.Context, in *connectionIDInput) (*connectionTestOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	res, err := svc.Test(ctx, actorFrom(ctx), in.ID)
	if err != nil {
		return nil, err
	}
	return &connectionTestOutput{Body: connectionTest{OK: true, Zones: res.Zones}}, nil
}

type dnsSetupRequest struct {
	ConnectionID string `json:"connectionId" minLength:"1" doc:"The connection to the provider that hosts the domain's zone."`
	Replace      bool   `json:"replace,omitempty" doc:"Replace records in the way (another CNAME, a TXT) instead of answering 409."`
}

type dnsSetupInput struct {
	ID   string `path:"id" doc:"The domain's id."`
	Body dnsSetupRequest
}

type dnsRecord struct {
	Name   string   `json:"name" example:"_acme-challenge.shop.example.com"`
	Type   string   `json:"type" example:"CNAME"`
	Values []string `json:"values" nullable:"false"`
	TTL    int      `json:"ttl"`
}

type dnsSetup struct {
	DomainID     string      `json:"domainId"`
	ConnectionID string      `json:"connectionId"`
	Zone         string      `json:"zone" doc:"The zone that holds the domain (longest matching suffix); empty when queued before the provider listed its zones."`
	Record       dnsRecord   `json:"record" doc:"The delegation CNAME as it now stands (queued: as it will stand)."`
	Outcome      string      `json:"outcome" enum:"created,unchanged,replaced,queued" doc:"queued: the provider was unavailable; a dns_setup job (jobId) retries the setup with backoff and then queues the dns_check."`
	Replaced     []dnsRecord `json:"replaced,omitempty" doc:"The records that gave way (replace: true)."`
	JobID        string      `json:"jobId,omitempty" doc:"The dns_check queued to verify the record, none for a domain already past verification; with outcome queued, the dns_setup job."`
	Reason       string      `json:"reason,omitempty" doc:"With outcome queued: what the provider answered."`
}

type dnsSetupOutput struct {
	// Status is 200 when the record was set up, 202 when the setup was
	// queued.
	Status int
	Body   dnsSetup
}

func toRecord(r provider.Record) dnsRecord {
	return dnsRecord{Name: r.Name, Type: r.Type, Values: append([]string{}, r.Values...), TTL: r.TTL}
}

func (s *server) dnsSetup(ctx context.Context, in *dnsSetupInput) (*dnsSetupOutput, error) {
	svc, err := s.connectionsService()
	if err != nil {
		return nil, err
	}
	res, err := svc.SetupDNS(ctx, actorFrom(ctx), in.ID, connection.SetupInput{ConnectionID: in.Body.ConnectionID, Replace: in.Body.Replace})
	if err != nil {
		return nil, err
	}
	out := dnsSetup{DomainID: res.Domain.ID, ConnectionID: res.Connection.ID, Zone: res.Zone, Record: toRecord(res.Record),
		Outcome: res.Outcome, Replaced: convert(res.Replaced, toRecord), Reason: res.Reason}
	if len(out.Replaced) == 0 {
		out.Replaced = nil
	}
	if res.Job != nil {
		out.JobID = res.Job.ID
	}
	status := http.StatusOK
	if res.Outcome == connection.OutcomeQueued {
		status = http.StatusAccepted
	}
	return &dnsSetupOutput{Status: status, Body: out}, nil
}
