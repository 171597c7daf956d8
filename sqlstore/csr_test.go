package sqlstore_test

import (
	"testing"

	"github.com/dcvaas/dcvaas"
)

// TestSubmitCSR: the CSR of a csr-mode domain is stored (replaced by the
// next), audited, and queues what the key needs: start_issuance while
// issuing, a renewal of an active domain only when the key changed.
func TestSubmitCSR(t *testing.T) {
	forEachDialect(t, func(t *testing.T, b *bundle) {
		managed, _ := b.newDomain(t, "managed.example.com")
		if managed.KeyMode != dcvaas.KeyModeManaged {
			t.Fatalf("default key mode %q", managed.KeyMode)
		}
		_, err := b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: managed.ID, PEM: "p", KeyType: "ec256", PublicKeySHA256: "k1"})
		wantCode(t, err, dcvaas.ECONFLICT)

		b.targets++
		d := &dcvaas.Domain{Name: "own.example.com", CNAMETarget: "csrlabel.verify.test", IncludeWildcard: true, KeyType: dcvaas.KeyEC256, KeyMode: dcvaas.KeyModeCSR}
		if _, err := b.db.CreateDomain(b.ctx, b.actor, d); err != nil {
			t.Fatal(err)
		}
		got, err := b.db.FindDomain(b.ctx, b.org.ID, d.ID)
		if err != nil || got.KeyMode != dcvaas.KeyModeCSR {
			t.Fatalf("stored key mode: %v %v", got, err)
		}
		_, err = b.db.FindDomainCSR(b.ctx, b.org.ID, d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)

		// pending_cname: stored, nothing queued.
		j, err := b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "p1", KeyType: "ec256", PublicKeySHA256: "k1"})
		if err != nil || j != nil {
			t.Fatalf("pending_cname: job %v, %v", j, err)
		}
		setStatus := func(st dcvaas.DomainStatus) {
			t.Helper()
			if _, err := b.db.SQL().Exec(`UPDATE domains SET status = $1, last_error = 'waiting for a CSR' WHERE id = $2`, string(st), d.ID); err != nil {
				t.Fatal(err)
			}
		}
		// issuing: start_issuance, and the domain no longer says it waits.
		setStatus(dcvaas.DomainIssuing)
		j, err = b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "p1", KeyType: "ec256", PublicKeySHA256: "k1"})
		if err != nil || j == nil || j.Type != dcvaas.JobStartIssuance {
			t.Fatalf("issuing: job %v, %v", j, err)
		}
		if got, _ := b.db.FindDomain(b.ctx, b.org.ID, d.ID); got.LastError != "" {
			t.Fatalf("lastError %q", got.LastError)
		}
		again, err := b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "p1", KeyType: "ec256", PublicKeySHA256: "k1"})
		if err != nil || again == nil || again.ID != j.ID {
			t.Fatalf("second submission while issuing: %v (want the open job %s), %v", again, j.ID, err)
		}
		// active: the same key queues nothing, a new key a renewal.
		setStatus(dcvaas.DomainActive)
		if j, err = b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "p1b", KeyType: "ec256", PublicKeySHA256: "k1"}); err != nil || j != nil {
			t.Fatalf("same key: %v %v", j, err)
		}
		j, err = b.db.SubmitCSR(b.ctx, b.actor, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "p2", KeyType: "ec384", PublicKeySHA256: "k2"})
		if err != nil || j == nil || j.Type != dcvaas.JobRenewal {
			t.Fatalf("rotation: %v %v", j, err)
		}
		c, err := b.db.FindDomainCSR(b.ctx, b.org.ID, d.ID)
		if err != nil || c.PEM != "p2" || c.KeyType != "ec384" || c.PublicKeySHA256 != "k2" {
			t.Fatalf("stored CSR %+v %v", c, err)
		}
		// Another organization's actor: not found, nothing changed.
		other := b.actor
		other.OrgID = "someone-else"
		_, err = b.db.SubmitCSR(b.ctx, other, &dcvaas.DomainCSR{DomainID: d.ID, PEM: "x", KeyType: "ec256", PublicKeySHA256: "kx"})
		wantCode(t, err, dcvaas.ENOTFOUND)
		_, err = b.db.FindDomainCSR(b.ctx, "someone-else", d.ID)
		wantCode(t, err, dcvaas.ENOTFOUND)
		entries, total, err := b.db.ListAudit(b.ctx, b.org.ID, dcvaas.AuditFilter{Action: "domain.csr_submitted", Page: dcvaas.Page{Limit: 10}})
		if err != nil || total != 5 {
			t.Fatalf("audit: %d entries (%v), want 5", total, err)
		}
		if entries[0].Details["keyRotated"] != true {
			t.Fatalf("newest entry %v", entries[0].Details)
		}
	})
}
