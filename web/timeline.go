package web

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
)

// timelineItem is one line of a domain's timeline: a job or an audit entry.
type timelineItem struct {
	At     time.Time
	What   string
	Status string // a job's status, for its badge
	Detail string
}

// timeline merges a domain's jobs and audit entries, newest first; jobs
// read as the API shows them at now (scheduled, superseded).
func timeline(jobs []*dcvaas.Job, entries []*dcvaas.AuditEntry, now time.Time) []timelineItem {
	var out []timelineItem
	for _, j := range jobs {
		detail := fmt.Sprintf("attempt %d of %d", j.Attempts, j.MaxAttempts)
		if j.LastError != "" {
			detail += " · " + j.LastError
		}
		out = append(out, timelineItem{At: j.UpdatedAt, What: "job " + string(j.Type), Status: string(j.View(now)), Detail: detail})
	}
	for _, e := range entries {
		out = append(out, timelineItem{At: e.CreatedAt, What: e.Action, Detail: details(e.Details)})
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].At.After(out[k].At) })
	return out
}

// details shows an audit entry's details as key=value pairs, in key order.
func details(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	s := strings.Join(parts, " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
