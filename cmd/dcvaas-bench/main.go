// Command dcvaas-bench measures dcvaas on this machine and writes the
// results into docs/benchmarks.md. Every number is reported beside a
// baseline measured in the same run (GET /healthz), because the machines
// here are noisy: ratios and medians travel, absolute numbers do not.
//
//	go run ./cmd/dcvaas-bench api [-duration 5s] [-clients 32] [-write docs/benchmarks.md]
//	go run ./cmd/dcvaas-bench dns [-duration 10s] [-clients 16] [-write docs/benchmarks.md]
//	go run ./cmd/dcvaas-bench ca-sim [-per-day 50000] [-days 200] [-write docs/benchmarks.md]
//
// PostgreSQL is measured too when DCVAAS_TEST_POSTGRES_URL is set.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dcvaas-bench api|dns|ca-sim [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "api":
		err = apiBench(context.Background(), os.Args[2:])
	case "dns":
		err = dnsBench(context.Background(), os.Args[2:])
	case "ca-sim":
		err = caSim(context.Background(), os.Args[2:]) // casim.go
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcvaas-bench:", err)
		os.Exit(1)
	}
}

// flagSet returns a FlagSet that exits on -h like a command should.
func flagSet(name string) *flag.FlagSet { return flag.NewFlagSet(name, flag.ExitOnError) }
