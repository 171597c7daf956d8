package web

import (
	"html/template"
	"io/fs"
	"path"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas"
)

var funcs = template.FuncMap{
	"details":     details,
	"lastAttempt": lastAttempt,
	// ms is a latency in milliseconds, as the API reports it.
	"ms": func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	},
	// jobStatus is how a job reads now (scheduled, superseded), as the API
	// shows it.
	"jobStatus": func(j *dcvaas.Job) string { return string(j.View(time.Now())) },
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "—"
	},
}

// parsePages parses each page template together with the layout; a
// broken template is a programming error every test hits.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return pages
}
