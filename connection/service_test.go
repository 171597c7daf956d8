package connection_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
)

func TestCredentialConnections(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.cf.AddToken("cf-good-token")
		b.cf.AddZone("example.com")

		// The credential is tried before it is saved; the provider's reason comes back.
		_, err := b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "cloudflare", Credential: connection.Credential{APIToken: "cf-bad-token"}})
		wantCode(t, err, dcvaas.EINVALID)
		if msg := dcvaas.ErrorMessage(err); !strings.Contains(msg, "Authentication error") {
			t.Fatalf("message %q", msg)
		}
		_, err = b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "cloudflare"})
		wantCode(t, err, dcvaas.EINVALID)
		_, err = b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "bind9"})
		wantCode(t, err, dcvaas.EINVALID)

		conn, err := b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "cloudflare", DisplayName: "Main account",
			Credential: connection.Credential{APIToken: "cf-good-token", AccessToken: "smuggled"}})
		if err != nil {
			t.Fatal(err)
		}
		if conn.Kind != dcvaas.ConnectionCredential || conn.DisplayName != "Main account" || conn.SecretEnc != "" {
			t.Fatalf("connection %+v", conn)
		}
		res, err := b.svc.Test(b.ctx, b.actor, conn.ID)
		if err != nil || len(res.Zones) != 1 || res.Zones[0] != "example.com" {
			t.Fatalf("test %+v, %v", res, err)
		}

		// A token revoked at the provider fails the test, with the reason kept.
		b.cf.RevokeToken("cf-good-token")
		_, err = b.svc.Test(b.ctx, b.actor, conn.ID)
		wantCode(t, err, dcvaas.EINVALID)
		got, _ := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID)
		if !strings.Contains(got.LastError, "Authentication error") || got.SecretEnc != "" {
			t.Fatalf("connection %+v", got)
		}
		b.cf.AddToken("cf-good-token")
		if _, err := b.svc.Test(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.svc.Get(b.ctx, b.actor.OrgID, conn.ID); got.LastError != "" {
			t.Fatalf("last error kept after success: %q", got.LastError)
		}

		list, total, err := b.svc.List(b.ctx, b.actor.OrgID, dcvaas.Page{Limit: 10})
		if err != nil || total != 1 || list[0].SecretEnc != "" {
			t.Fatalf("list %+v %d %v", list, total, err)
		}
		if err := b.svc.Delete(b.ctx, b.actor, conn.ID); err != nil {
			t.Fatal(err)
		}
		b.assertNoLeak(t, "cf-good-token", "cf-bad-token", "smuggled")
	})
}

func TestRoute53Credentials(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		b.r53.AddZone("example.com", false)
		b.r53.AddKey("AKIACUSTOMER", "customer-secret")
		role := "arn:aws:iam::222222222222:role/dcvaas-dns"
		create := func(c connection.Credential) (*dcvaas.Connection, error) {
			return b.svc.Create(b.ctx, b.actor, connection.CreateInput{Provider: "route53", Credential: c})
		}

		// The role does not (yet) trust dcvaas with this org's external id.
		_, err := create(connection.Credential{RoleARN: role})
		wantCode(t, err, dcvaas.EINVALID)
		if msg := dcvaas.ErrorMessage(err); !strings.Contains(msg, "not authorized to perform: sts:AssumeRole") {
			t.Fatalf("message %q", msg)
		}
		// dcvaas chooses the external id; another one is refused outright.
		_, err = create(connection.Credential{RoleARN: role, ExternalID: "chosen-by-customer"})
		wantCode(t, err, dcvaas.EINVALID)
		if e := err.(*dcvaas.Error); !strings.Contains(e.Fields["credential.externalId"], connection.ExternalID(b.actor.OrgID)) {
			t.Fatalf("fields %v", e.Fields)
		}
		_, err = create(connection.Credential{RoleARN: "not-an-arn"})
		wantCode(t, err, dcvaas.EINVALID)
		_, err = create(connection.Credential{AccessKeyID: "AKIACUSTOMER"})
		wantCode(t, err, dcvaas.EINVALID)
		_, err = create(connection.Credential{})
		wantCode(t, err, dcvaas.EINVALID)

		b.r53.AddRole(role, connection.ExternalID(b.actor.OrgID))
		conn, err := create(connection.Credential{RoleARN: role, ExternalID: connection.ExternalID(b.actor.OrgID)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(conn.DisplayName, role) {
			t.Fatalf("display name %q", conn.DisplayName)
		}

		_, err = create(connection.Credential{AccessKeyID: "AKIACUSTOMER", SecretAccessKey: "wrong"})
		wantCode(t, err, dcvaas.EINVALID)
		keyConn, err := create(connection.Credential{AccessKeyID: "AKIACUSTOMER", SecretAccessKey: "customer-secret"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.Test(b.ctx, b.actor, keyConn.ID); err != nil {
			t.Fatal(err)
		}
		b.assertNoLeak(t, "customer-secret", "dcvaas-own-secret")
	})
}

func TestCredentialNeverPrints(t *testing.T) {
	c := connection.Credential{APIToken: "tok-123", SecretAccessKey: "sk-456", RefreshToken: "rt-789"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(s, "tok-123") || strings.Contains(s, "sk-456") || strings.Contains(s, "rt-789") {
			t.Fatalf("credential printed as %s", s)
		}
	}
}
