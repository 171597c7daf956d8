package sqlstore_test

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/benchdoc"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestCreateDomainAsTableGrows measures the store's CreateDomain while one
// organization's domains pile up: the rate should stay flat (a lookup that
// reads the table makes it fall with every domain stored). It runs only
// when asked and writes docs/benchmarks.md:
//
//	DCVAAS_BENCH_CREATE=1 DCVAAS_TEST_POSTGRES_URL=… go test ./sqlstore -run TestCreateDomainAsTableGrows -v
func TestCreateDomainAsTableGrows(t *testing.T) {
	if os.Getenv("DCVAAS_BENCH_CREATE") == "" {
		t.Skip("set DCVAAS_BENCH_CREATE=1 to measure CreateDomain on a growing table and update docs/benchmarks.md")
	}
	const goroutines, block, blocks = 32, 2500, 8
	var doc strings.Builder
	fmt.Fprintf(&doc, "The store's `CreateDomain` from %d goroutines, one organization, %d blocks of %d creates on one\n"+
		"database: creates/s of each block, by the number of domains stored at its end. Flat is right: nothing a\n"+
		"create reads should grow with the table (`TestCreateDomainLookupsUseIndexes` checks the plans).\n\n", goroutines, blocks, block)
	doc.WriteString("Command: `DCVAAS_BENCH_CREATE=1 DCVAAS_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./sqlstore -run TestCreateDomainAsTableGrows -v`  \n")
	doc.WriteString(benchdoc.Machine("") + "\n\n")
	header := "| database |"
	rule := "|---|"
	for i := 1; i <= blocks; i++ {
		header += fmt.Sprintf(" %d |", i*block)
		rule += "---|"
	}
	doc.WriteString(header + "\n" + rule + "\n")
	for _, dialect := range storetest.Dialects(t) {
		db := storetest.NewDB(t, dialect, sqlstore.Options{})
		tok := &dcvaas.Token{Name: "bench", Hash: "bench-" + string(dialect), Role: dcvaas.TokenAdmin}
		org, _, err := db.Bootstrap(t.Context(), "Bench", "bench@bench.example.com", tok)
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		row := "| " + string(dialect) + " |"
		for range blocks {
			took, err := concurrently(goroutines, block, func() error {
				i := n.Add(1)
				d := &dcvaas.Domain{Name: fmt.Sprintf("b%d.example.com", i), CNAMETarget: fmt.Sprintf("b%d.verify.example.net", i), KeyType: dcvaas.KeyEC256}
				_, err := db.CreateDomain(t.Context(), dcvaas.Actor{OrgID: org.ID}, d)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			row += fmt.Sprintf(" %.0f |", block/took.Seconds())
		}
		doc.WriteString(row + "\n")
		t.Log(row)
	}
	doc.WriteString("\n")
	if err := benchdoc.ReplaceSection("../docs/benchmarks.md", "## CreateDomain as the table grows", doc.String()); err != nil {
		t.Fatal(err)
	}
}
