package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
)

// printResult shows the outcome of one respond (or release) run: this
// run's steps, the evidence of the case, and where it is.
func printResult(s *streams, o outputOptions, res *responder.Result) error {
	m := res.Manifest
	return o.print(s, result{
		value: m,
		table: func(w io.Writer) error {
			header(w, m, res.DryRun)
			if err := stepsTable(w, res.Steps, false); err != nil {
				return err
			}
			return evidenceTables(w, m, res.DryRun)
		},
		text: func(t *textWriter) { manifestText(t, m, res.Steps) },
	})
}

// printManifest shows a case record: who ran each run, every run's steps.
func printManifest(s *streams, o outputOptions, m *evidence.Manifest) error {
	return o.print(s, result{
		value: m,
		table: func(w io.Writer) error {
			header(w, m, false)
			if err := runsTable(w, m.Runs); err != nil {
				return err
			}
			fmt.Fprintln(w)
			if err := stepsTable(w, m.Steps, len(m.Runs) > 1); err != nil {
				return err
			}
			return evidenceTables(w, m, false)
		},
		text: func(t *textWriter) { manifestText(t, m, m.Steps) },
	})
}

// runsTable names who ran each run of a case, as whom, and how it ended.
func runsTable(w io.Writer, runs []evidence.Run) error {
	t := newTable(w, "RUN", "ACTOR", "PLAYBOOK", "STATUS", "STARTED", "ENDED")
	for _, r := range runs {
		if err := t.Append([]string{fmt.Sprint(r.Number), runActor(r), r.Playbook, paint(w, strings.ToUpper(r.Status)),
			r.StartedAt.Format(time.RFC3339), r.EndedAt.Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	return t.Render()
}

// runActor is who ran a run, and the role it acted as when it assumed one.
func runActor(r evidence.Run) string {
	if r.ActingAs != "" && r.ActingAs != r.Actor {
		return r.Actor + " as " + r.ActingAs
	}
	return r.Actor
}

// manifestText is the text form of a case: a CASE line, a RUN line per run,
// a STEP line per step, then ARTIFACT and SNAPSHOT lines.
func manifestText(t *textWriter, m *evidence.Manifest, steps []evidence.StepRecord) {
	t.line("CASE", m.CaseID, m.InstanceID, m.AccountID, m.Region, m.Status, m.Actor, m.Location)
	for _, r := range m.Runs {
		t.line("RUN", fmt.Sprint(r.Number), r.Actor, r.ActingAs, r.Playbook, r.Status, r.StartedAt.Format(time.RFC3339), r.EndedAt.Format(time.RFC3339))
	}
	for _, s := range steps {
		t.line("STEP", fmt.Sprint(s.Run), s.Name, s.Phase, s.Status, s.Containment, duration(s.EndedAt.Sub(s.StartedAt)), stepDetail(s))
	}
	for _, a := range m.Artifacts {
		t.line("ARTIFACT", a.Path, fmt.Sprint(a.Size), a.SHA256)
	}
	for _, sn := range m.Snapshots {
		t.line("SNAPSHOT", sn.SnapshotID, sn.VolumeID, sn.State, fmt.Sprint(sn.Run))
	}
}

func stepDetail(s evidence.StepRecord) string {
	if s.Error != "" {
		return "ERROR: " + s.Error
	}
	return s.Reason
}

func header(w io.Writer, m *evidence.Manifest, dryRun bool) {
	status := statusText(m.Status)
	fmt.Fprintf(w, "Case      %s\n", m.CaseID)
	fmt.Fprintf(w, "Instance  %s (account %s, %s)\n", m.InstanceID, m.AccountID, m.Region)
	fmt.Fprintf(w, "Actor     %s\n", m.Actor)
	fmt.Fprintf(w, "Status    %s\n", paint(w, status))
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

func stepsTable(w io.Writer, steps []evidence.StepRecord, withRun bool) error {
	headers := []string{"STEP", "PHASE", "STATUS", "TIME", "DETAIL"}
	if withRun {
		headers = append([]string{"RUN"}, headers...)
	}
	t := newTable(w, headers...)
	for _, s := range steps {
		row := []string{s.Name, s.Phase, paint(w, strings.ToUpper(s.Status)), duration(s.EndedAt.Sub(s.StartedAt)), stepDetail(s)}
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
