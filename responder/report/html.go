package report

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

//go:embed report.html.tmpl
var htmlSource string

// htmlTemplate is the single-file HTML report: inline CSS, no script, no
// external URL. html/template escapes every value from the record.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":    ts,
	"tsp":   tsPtr,
	"upper": strings.ToUpper,
	"took":  func(e Event) string { return duration(e.EndedAt.Sub(e.At)) },
	"brk":   breakable,
	"tsw":   tsBreakable,
	"tspw": func(t *time.Time) template.HTML {
		if t == nil {
			return "-"
		}
		return tsBreakable(*t)
	},
	"camel":        camelBreakable,
	"dur":          func(ns int64) string { return duration(time.Duration(ns)) },
	"svg":          svgChart,
	"size":         sizeText,
	"after":        offset,
	"first":        upperFirst,
	"open":         openText,
	"evidenceText": evidenceText,
	"runEvents": func(r *Report, run int) []Event {
		var out []Event
		for _, e := range r.Timeline {
			if e.Kind == KindStep && e.Run == run {
				out = append(out, e)
			}
		}
		return out
	},
	"moments": caseMoments,
	"custody": func(r *Report) []Event {
		var out []Event
		for _, e := range r.Timeline {
			if e.Kind == KindCustody {
				out = append(out, e)
			}
		}
		return out
	},
	// The cloud's record (cloudrecord.go): capped lists, joined names.
	"cloudRows": func(v any) any { return capCloudRows(v) },
	"join":      func(s []string) string { return strings.Join(s, "; ") },
}).Parse(htmlSource))

// htmlCall is one AWS request row of the HTML report.
type htmlCall struct {
	Run       int
	Step      string
	Service   string
	Operation string
	RequestID string
	ErrorCode string
	Took      string
}

// htmlData is what the template sees.
type htmlData struct {
	R           *Report
	BannerClass string
	Calls       []htmlCall
	// Image is the verified screenshot as a data: URI; empty when there is
	// none to show.
	Image template.URL
}

// HTML writes the report as one self-contained HTML page. The console
// screenshot is embedded only when Build verified it against the record.
func HTML(w io.Writer, r *Report) error {
	d := htmlData{R: r, BannerClass: "other"}
	switch r.Case.Status {
	case evidence.CaseContained, evidence.CaseAcquired:
		d.BannerClass = "good"
	case evidence.CaseContainedIncomplete, evidence.CaseInterrupted:
		d.BannerClass = "warn"
	}
	for _, e := range r.Timeline {
		for _, c := range e.Calls {
			d.Calls = append(d.Calls, htmlCall{Run: e.Run, Step: e.Action, Service: c.Service, Operation: c.Operation,
				RequestID: c.RequestID, ErrorCode: c.ErrorCode, Took: duration(c.Duration)})
		}
	}
	if r.Screenshot.Status == ScreenshotShown && isJPEG(r.Screenshot.Image) {
		// Safe as a URL: the prefix is fixed and base64 has no quote or space.
		d.Image = template.URL("data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(r.Screenshot.Image))
	}
	if err := htmlTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
