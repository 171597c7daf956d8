// Package benchdoc writes benchmark results into docs/benchmarks.md, one
// "## " section per benchmark, so each benchmark can refresh its own
// numbers without touching the others'.
package benchdoc

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// ReplaceSection replaces the body under heading (up to the next "## ") in
// the markdown file, or appends the section.
func ReplaceSection(path, heading, body string) error {
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(raw)
	section := heading + "\n\n" + strings.TrimRight(body, "\n") + "\n"
	start := strings.Index(doc, heading+"\n")
	if start < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return os.WriteFile(path, []byte(doc+section), 0o644)
	}
	end := len(doc)
	if next := strings.Index(doc[start+len(heading):], "\n## "); next >= 0 {
		end = start + len(heading) + next + 1
	}
	if end < len(doc) {
		section += "\n" // one blank line before the next section, however body ends
	}
	return os.WriteFile(path, []byte(doc[:start]+section+doc[end:]), 0o644)
}

// Machine describes where a benchmark ran, for the line under its command:
// CPUs, platform and Go version, what else shares the machine (extra; may
// be empty), the date, and the load average at the start (where the
// system reports one).
func Machine(extra string) string {
	load := "not reported"
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf("Machine: %d CPUs (%s/%s), %s%s; %s; load average at the start: %s.",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), extra, time.Now().UTC().Format("2006-01-02"), load)
}
