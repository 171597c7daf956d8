// Package benchdoc writes benchmark results into docs/benchmarks.md, one
// "## " section per benchmark, so each benchmark can refresh its own
// numbers without touching the others'.
package benchdoc

import (
	"os"
	"strings"
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
