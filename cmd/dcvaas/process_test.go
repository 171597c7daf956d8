package main

import (
	"os"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// asDcvaasEnv, set to 1 in a child's environment, makes the test binary
// stand in for the dcvaas binary (TestMain): tests that need real
// processes start os.Args[0] with it instead of running `go build`.
const asDcvaasEnv = "DCVAAS_TEST_AS_DCVAAS"

func TestMain(m *testing.M) {
	if os.Getenv(asDcvaasEnv) == "1" {
		main() // exits by itself on failure
		os.Exit(0)
	}
	storetest.Main(m) // reports the PostgreSQL halves skipped
}

// selfBinary is the test binary as the dcvaas binary, and the variable
// that makes it one; both go to startBinary (crash_test.go).
func selfBinary(vars []string) (string, []string) {
	return os.Args[0], append(vars, asDcvaasEnv+"=1")
}
