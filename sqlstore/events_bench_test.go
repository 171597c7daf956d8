package sqlstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// BenchmarkCreateDomainEvent measures what the domain.created event adds to
// the store's half of POST /api/domains: CreateDomain from 32 goroutines,
// with the event row and without (the same run, the same database).
//
//	DCVAAS_TEST_POSTGRES_URL=… go test ./sqlstore -run '^$' -bench CreateDomainEvent -benchtime 3000x -count 5
func BenchmarkCreateDomainEvent(b *testing.B) {
	for _, dialect := range storetest.Dialects(b) {
		db := storetest.NewDB(b, dialect, sqlstore.Options{})
		tok := &dcvaas.Token{Name: "bench", Hash: "bench-" + string(dialect), Role: dcvaas.TokenAdmin}
		org, _, err := db.Bootstrap(b.Context(), "Bench", "bench@bench.example.com", tok)
		if err != nil {
			b.Fatal(err)
		}
		var n atomic.Int64
		// ABBA order, so that neither side always runs on the smaller table.
		for _, events := range []bool{false, true, true, false} {
			b.Run(fmt.Sprintf("%s/events=%v", dialect, events), func(b *testing.B) {
				db.SetSkipEvents(!events)
				defer db.SetSkipEvents(false)
				b.SetParallelism(16) // 32 goroutines on 2 CPUs, as the API benchmark's clients
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						d := &dcvaas.Domain{Name: fmt.Sprintf("b%d.example.com", i), CNAMETarget: fmt.Sprintf("b%d.verify.example.net", i), KeyType: dcvaas.KeyEC256}
						if _, err := db.CreateDomain(b.Context(), dcvaas.Actor{OrgID: org.ID}, d); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
			})
		}
	}
}
