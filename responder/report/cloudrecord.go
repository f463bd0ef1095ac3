package report

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// CloudRecord is what the cloud itself recorded about the instance, read
// from the artifacts of steps cloudtrail-events and findings after their
// SHA-256 was checked against the record: the CloudTrail management events
// (oldest first) and the GuardDuty and Security Hub findings. JSON key
// "cloud_record", present only when the case holds one of those artifacts.
type CloudRecord struct {
	// Events are the CloudTrail events, oldest first; EventsArtifact is the
	// artifact they were read from, with its window.
	EventsArtifact string       `json:"events_artifact,omitempty"`
	WindowStart    *time.Time   `json:"window_start,omitempty"`
	WindowEnd      *time.Time   `json:"window_end,omitempty"`
	Events         []CloudEvent `json:"events"`
	// Findings are the findings of both services, most severe first.
	FindingsArtifact string         `json:"findings_artifact,omitempty"`
	Findings         []CloudFinding `json:"findings"`
	// Sources says what each findings service did (collected, or skipped
	// and why).
	Sources []string `json:"sources,omitempty"`
}

// CloudEvent is one CloudTrail management event.
type CloudEvent struct {
	At        time.Time `json:"at"`
	EventID   string    `json:"event_id"`
	Name      string    `json:"event_name"`
	Source    string    `json:"event_source"`
	Username  string    `json:"username,omitempty"`
	Resources []string  `json:"resources,omitempty"`
}

// CloudFinding is one GuardDuty or Security Hub finding.
type CloudFinding struct {
	Service   string  `json:"service"`
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Title     string  `json:"title"`
	Severity  float64 `json:"severity"`
	Label     string  `json:"severity_label,omitempty"`
	UpdatedAt string  `json:"updated_at,omitempty"`
}

// maxCloudRows bounds the rows each list shows in Markdown and HTML; the
// artifact holds all of them.
const maxCloudRows = 500

// Artifact names of the cloud's record.
const (
	cloudTrailSuffix = "/cloudtrail-events.json"
	findingsSuffix   = "/findings.json"
)

// cloudRecord reads the case's CloudTrail events and findings, each only
// after its SHA-256 matched the record; what it cannot read or trust
// becomes a note.
func cloudRecord(ctx context.Context, store evidence.Store, m *evidence.Manifest) (*CloudRecord, []string) {
	var cr *CloudRecord
	var notes []string
	for _, a := range m.Artifacts {
		if !strings.HasSuffix(a.Path, cloudTrailSuffix) && !strings.HasSuffix(a.Path, findingsSuffix) {
			continue
		}
		body, err := store.Get(ctx, m.CaseID, a.Path)
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("%s could not be read: %v", a.Path, err))
			continue
		case !strings.EqualFold(evidence.SHA256(body), a.SHA256):
			notes = append(notes, fmt.Sprintf("%s does NOT match its recorded SHA-256: its events and findings are not shown; run responder verify", a.Path))
			continue
		}
		if cr == nil {
			cr = &CloudRecord{Events: []CloudEvent{}, Findings: []CloudFinding{}}
		}
		if strings.HasSuffix(a.Path, cloudTrailSuffix) {
			err = cr.readEvents(a.Path, body)
		} else {
			err = cr.readFindings(a.Path, body)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", a.Path, err))
		}
	}
	return cr, notes
}

func (cr *CloudRecord) readEvents(path string, body []byte) error {
	var doc struct {
		WindowStart time.Time `json:"window_start"`
		WindowEnd   time.Time `json:"window_end"`
		Events      []struct {
			EventID     string    `json:"event_id"`
			EventTime   time.Time `json:"event_time"`
			EventName   string    `json:"event_name"`
			EventSource string    `json:"event_source"`
			Username    string    `json:"username"`
			Resources   []struct {
				Name string `json:"name"`
			} `json:"resources"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("not a CloudTrail events document: %w", err)
	}
	start, end := doc.WindowStart.UTC(), doc.WindowEnd.UTC()
	cr.EventsArtifact, cr.WindowStart, cr.WindowEnd = path, &start, &end
	for _, e := range doc.Events {
		ce := CloudEvent{At: e.EventTime.UTC(), EventID: e.EventID, Name: e.EventName, Source: e.EventSource, Username: e.Username}
		for _, r := range e.Resources {
			ce.Resources = append(ce.Resources, r.Name)
		}
		cr.Events = append(cr.Events, ce)
	}
	sort.SliceStable(cr.Events, func(i, j int) bool { return cr.Events[i].At.Before(cr.Events[j].At) })
	return nil
}

func (cr *CloudRecord) readFindings(path string, body []byte) error {
	type source struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	var doc struct {
		GuardDuty struct {
			source
			Findings []struct {
				ID        string  `json:"Id"`
				Type      string  `json:"Type"`
				Title     string  `json:"Title"`
				Severity  float64 `json:"Severity"`
				UpdatedAt string  `json:"UpdatedAt"`
			} `json:"findings"`
		} `json:"guardduty"`
		SecurityHub struct {
			source
			Findings []struct {
				ID        string   `json:"Id"`
				Types     []string `json:"Types"`
				Title     string   `json:"Title"`
				UpdatedAt string   `json:"UpdatedAt"`
				Severity  *struct {
					Label      string  `json:"Label"`
					Normalized *int32  `json:"Normalized"`
					Product    float64 `json:"Product"`
				} `json:"Severity"`
			} `json:"findings"`
		} `json:"security_hub"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("not a findings document: %w", err)
	}
	cr.FindingsArtifact = path
	for _, s := range []struct {
		name string
		src  source
		n    int
	}{{"GuardDuty", doc.GuardDuty.source, len(doc.GuardDuty.Findings)}, {"Security Hub", doc.SecurityHub.source, len(doc.SecurityHub.Findings)}} {
		if s.src.Status == "collected" {
			cr.Sources = append(cr.Sources, fmt.Sprintf("%s collected %d finding(s)", s.name, s.n))
		} else {
			cr.Sources = append(cr.Sources, fmt.Sprintf("%s %s: %s", s.name, s.src.Status, s.src.Reason))
		}
	}
	for _, f := range doc.GuardDuty.Findings {
		cr.Findings = append(cr.Findings, CloudFinding{Service: "GuardDuty", ID: f.ID, Type: f.Type, Title: f.Title, Severity: f.Severity, UpdatedAt: f.UpdatedAt})
	}
	for _, f := range doc.SecurityHub.Findings {
		cf := CloudFinding{Service: "Security Hub", ID: f.ID, Type: strings.Join(f.Types, ", "), Title: f.Title, UpdatedAt: f.UpdatedAt}
		if f.Severity != nil {
			cf.Label, cf.Severity = f.Severity.Label, f.Severity.Product
		}
		cr.Findings = append(cr.Findings, cf)
	}
	sort.SliceStable(cr.Findings, func(i, j int) bool { return cr.Findings[i].Severity > cr.Findings[j].Severity })
	return nil
}

// cloudRecord writes the section "The cloud's record of the instance".
func (m *mdWriter) cloudRecord(cr *CloudRecord) {
	if cr == nil {
		return
	}
	m.line("## The cloud's record of the instance")
	m.line("")
	if cr.EventsArtifact != "" {
		m.line("CloudTrail management events about the instance, its interfaces and volumes, and its role's sessions, "+
			"from %s to %s (%s), oldest first.", ts(*cr.WindowStart), ts(*cr.WindowEnd), code(cr.EventsArtifact))
		m.line("")
		var rows [][]string
		for _, e := range capRows(cr.Events) {
			rows = append(rows, []string{ts(e.At), text(e.Name), text(e.Source), code(e.Username), text(strings.Join(e.Resources, ", ")), code(e.EventID)})
		}
		m.table([]string{"When", "Event", "Source", "User", "Resources", "Event ID"}, rows, "No CloudTrail event in the window.")
		if len(cr.Events) > maxCloudRows {
			m.line("%d more event(s) are in the artifact.", len(cr.Events)-maxCloudRows)
			m.line("")
		}
	}
	if cr.FindingsArtifact != "" {
		m.line("GuardDuty and Security Hub findings about the instance (%s), most severe first. %s.", code(cr.FindingsArtifact), text(strings.Join(cr.Sources, "; ")))
		m.line("")
		var rows [][]string
		for _, f := range capRows(cr.Findings) {
			sev := fmt.Sprint(f.Severity)
			if f.Label != "" {
				sev = f.Label + " (" + sev + ")"
			}
			rows = append(rows, []string{text(f.Service), text(sev), text(f.Type), text(f.Title), text(f.UpdatedAt), code(f.ID)})
		}
		m.table([]string{"Service", "Severity", "Type", "Title", "Updated", "Finding ID"}, rows, "No finding about the instance.")
	}
}

// capRows is at most maxCloudRows of a list.
func capRows[T any](rows []T) []T { return rows[:min(len(rows), maxCloudRows)] }

// capCloudRows caps the events or findings the HTML report lists.
func capCloudRows(v any) any {
	switch rows := v.(type) {
	case []CloudEvent:
		return capRows(rows)
	case []CloudFinding:
		return capRows(rows)
	}
	return v
}
