package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// printResult shows the outcome of one respond run: this run's steps, the
// evidence of the case, and where it is.
func printResult(w io.Writer, format string, res *responder.Result) error {
	if format == "json" {
		return writeJSON(w, res.Manifest)
	}
	m := res.Manifest
	header(w, m, res.DryRun)
	if err := stepsTable(w, res.Steps, false); err != nil {
		return err
	}
	return evidenceTables(w, m, res.DryRun)
}

// printManifest shows a case record: every run's steps.
func printManifest(w io.Writer, format string, m *evidence.Manifest, _ int) error {
	if format == "json" {
		return writeJSON(w, m)
	}
	header(w, m, false)
	fmt.Fprintf(w, "Runs      %d (first %s, last %s)\n\n", len(m.Runs), m.StartedAt.Format(time.RFC3339), m.EndedAt.Format(time.RFC3339))
	if err := stepsTable(w, m.Steps, len(m.Runs) > 1); err != nil {
		return err
	}
	return evidenceTables(w, m, false)
}

func header(w io.Writer, m *evidence.Manifest, dryRun bool) {
	status := statusText(m.Status)
	fmt.Fprintf(w, "Case      %s\n", m.CaseID)
	fmt.Fprintf(w, "Instance  %s (account %s, %s)\n", m.InstanceID, m.AccountID, m.Region)
	fmt.Fprintf(w, "Actor     %s\n", m.Actor)
	fmt.Fprintf(w, "Status    %s\n", status)
	if !dryRun {
		fmt.Fprintf(w, "Evidence  %s\n", m.Location)
	}
	fmt.Fprintln(w)
}

// statusText is a case status for the table's header: the word as a
// headline and, unless the word says it all, what it claims.
func statusText(s string) string {
	if s == evidence.CaseContained {
		return evidence.StatusHeadline(s)
	}
	return evidence.StatusHeadline(s) + ": " + evidence.StatusMeaning(s)
}

func newTable(w io.Writer, headers ...string) *tablewriter.Table {
	t := tablewriter.NewTable(w,
		tablewriter.WithRowAutoWrap(tw.WrapNormal),
		tablewriter.WithRowMaxWidth(72),
		tablewriter.WithHeaderAutoFormat(tw.Off),
	)
	t.Header(headers)
	return t
}

func stepsTable(w io.Writer, steps []evidence.StepRecord, withRun bool) error {
	headers := []string{"STEP", "PHASE", "STATUS", "TIME", "DETAIL"}
	if withRun {
		headers = append([]string{"RUN"}, headers...)
	}
	t := newTable(w, headers...)
	for _, s := range steps {
		detail := s.Reason
		if s.Error != "" {
			detail = "ERROR: " + s.Error
		}
		row := []string{s.Name, s.Phase, strings.ToUpper(s.Status), duration(s.EndedAt.Sub(s.StartedAt)), detail}
		if withRun {
			row = append([]string{fmt.Sprint(s.Run)}, row...)
		}
		if err := t.Append(row); err != nil {
			return err
		}
	}
	return t.Render()
}

func evidenceTables(w io.Writer, m *evidence.Manifest, dryRun bool) error {
	if dryRun {
		return nil
	}
	if len(m.Artifacts) > 0 {
		fmt.Fprintln(w, "\nEvidence")
		t := newTable(w, "PATH", "SIZE", "SHA-256")
		for _, a := range m.Artifacts {
			if err := t.Append([]string{a.Path, fmt.Sprint(a.Size), a.SHA256}); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if len(m.Snapshots) > 0 {
		fmt.Fprintln(w, "\nSnapshots")
		t := newTable(w, "SNAPSHOT", "VOLUME", "STATE AT REQUEST", "RUN")
		for _, s := range m.Snapshots {
			if err := t.Append([]string{s.SnapshotID, s.VolumeID, s.State, fmt.Sprint(s.Run)}); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nCase record: %s\n", strings.TrimSuffix(m.Location, "/")+"/"+evidence.ManifestName)
	return nil
}

func duration(d time.Duration) string {
	if d < time.Millisecond {
		return "0ms"
	}
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
