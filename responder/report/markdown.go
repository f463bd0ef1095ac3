package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// Markdown writes the report as GitHub-flavoured Markdown. Every value from
// the record is escaped: tags, reasons and errors can carry text an attacker
// chose, and must not become links, HTML or table columns.
func Markdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	md := &mdWriter{w: bw}
	md.report(r)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

type mdWriter struct {
	w *bufio.Writer
}

func (m *mdWriter) line(format string, args ...any) {
	fmt.Fprintf(m.w, format+"\n", args...)
}

// table writes a table, or "None." when it has no rows.
func (m *mdWriter) table(headers []string, rows [][]string, none string) {
	if len(rows) == 0 {
		m.line("%s", none)
		m.line("")
		return
	}
	m.line("| %s |", strings.Join(headers, " | "))
	seps := make([]string, len(headers))
	for i := range seps {
		seps[i] = "---"
	}
	m.line("| %s |", strings.Join(seps, " | "))
	for _, r := range rows {
		m.line("| %s |", strings.Join(r, " | "))
	}
	m.line("")
}

func (m *mdWriter) report(r *Report) {
	c := r.Case
	m.line("# Incident response report: case %s", code(c.ID))
	m.line("")
	if c.Status != evidence.CaseContained && c.Status != evidence.CaseAcquired {
		m.line("> **%s**", text(c.StatusText))
		m.line("")
	}
	m.headline(r)
	summary := [][]string{
		{"Status", "**" + text(c.StatusText) + "**"},
		{"Instance", code(c.InstanceID) + " in account " + code(c.AccountID) + ", " + text(c.Region)},
		{"Started by", who(c.Actor, c.ActingAs)},
		{"Response", ts(c.StartedAt) + " to " + ts(c.EndedAt) + fmt.Sprintf(" (%d run(s))", len(r.Runs))},
		{"Evidence", code(c.Location)},
		{"Case record", code(c.Record) + " (schema " + text(c.RecordSchema) + ", written by " + text(c.RecordedBy) + ")"},
		{"Record SHA-256", code(c.RecordSHA256)},
		{"Report", "generated " + ts(r.GeneratedAt) + " by " + text(r.GeneratedBy)},
	}
	m.table([]string{"Case", text(c.ID)}, summary, "")
	m.line("This report shows what the case record says. It does not prove the evidence intact: " +
		"`responder verify --case-id " + text(c.ID) + "` re-hashes every artifact against the record and checks its seals.")
	m.line("")
	for _, n := range r.Notes {
		m.line("> **Note:** %s", text(n))
		m.line("")
	}

	m.line("## Runs")
	m.line("")
	var rows [][]string
	for _, run := range r.Runs {
		rows = append(rows, []string{fmt.Sprint(run.Number), ts(run.StartedAt), ts(run.EndedAt),
			who(run.Actor, run.ActingAs), text(run.Playbook), text(run.Status)})
	}
	m.table([]string{"Run", "Started", "Ended", "Who", "Playbook", "Outcome"}, rows, "No run is recorded.")

	m.line("## Failures and what they mean for the investigation")
	m.line("")
	rows = nil
	for _, f := range r.Failures {
		result := strings.ToUpper(f.Status)
		if f.ResolvedInRun > 0 {
			result += fmt.Sprintf(" (succeeded in run %d)", f.ResolvedInRun)
		}
		rows = append(rows, []string{fmt.Sprint(f.Run), text(f.Step), result, text(f.Detail), text(f.Meaning)})
	}
	m.table([]string{"Run", "Step", "Result", "Detail", "What it means"}, rows,
		"No step failed, and no evidence step was skipped without its evidence.")

	m.exposure(r)
	m.indicators(r)

	m.line("## State before and after containment")
	m.line("")
	m.line("Before: the first state the steps recorded in this case (what a release restores). After: the last state recorded.")
	m.line("")
	rows = nil
	for _, s := range r.State {
		changed := "no"
		if s.Changed {
			changed = "**yes**"
		}
		rows = append(rows, []string{text(s.Aspect), code(s.Subject), text(s.Before) + runTag(s.BeforeRun),
			text(s.After) + runTag(s.AfterRun), changed, text(s.Note)})
	}
	m.table([]string{"What", "Of", "Before", "After", "Changed", "Note"}, rows, "No step recorded a state.")

	m.line("## Evidence")
	m.line("")
	rows = nil
	for _, e := range r.Evidence {
		rows = append(rows, []string{code(e.Path), fmt.Sprint(e.Size), code(e.SHA256), ts(e.CollectedAt),
			text(e.Step), text(e.Source), code(e.Location)})
	}
	m.table([]string{"Artifact", "Bytes", "SHA-256", "Collected", "Step", "Source", "Location"}, rows, "The case holds no artifact.")

	m.line("## Snapshots")
	m.line("")
	rows = nil
	for _, s := range r.Snapshots {
		enc := "no"
		if s.Encrypted {
			enc = "yes"
		}
		rows = append(rows, []string{code(s.SnapshotID), code(s.VolumeID), text(s.StateAtRequest), ts(s.StartedAt), enc, fmt.Sprint(s.Run)})
	}
	m.table([]string{"Snapshot", "Volume", "State at request", "Point in time", "Encrypted", "Run"}, rows, "The case holds no snapshot.")

	m.line("## Snapshot copies in the forensics account")
	m.line("")
	rows = nil
	for _, c := range r.Copies {
		state := text(c.State)
		if c.Error != "" {
			state += ": " + text(c.Error)
		}
		via := "-"
		if c.IntermediateSnapshotID != "" {
			via = code(c.IntermediateSnapshotID) + " (re-encrypted in the source account)"
		}
		rows = append(rows, []string{code(c.SourceSnapshotID), code(c.SnapshotID), code(c.AccountID) + ", " + text(c.Region),
			code(c.KMSKeyID), via, state, ts(c.StartedAt), tsPtr(c.CompletedAt), fmt.Sprint(c.Run)})
	}
	m.table([]string{"Source snapshot", "Copy", "Account, Region", "KMS key", "Via", "State", "Started", "Completed", "Run"}, rows,
		"No snapshot has been copied into a forensics account (responder preserve).")

	m.investigation(r.Investigation, r.Evidence)
	m.cloudRecord(r.CloudRecord)

	m.line("## Console screenshot")
	m.line("")
	sc := r.Screenshot
	switch sc.Status {
	case ScreenshotShown:
		m.line("%s (%d bytes, SHA-256 %s): %s. The HTML report (`--format html`) shows it.", code(sc.Location), sc.Size, code(sc.SHA256), text(sc.Detail))
	case ScreenshotNotCollected:
		m.line("%s.", text(upperFirst(sc.Detail)))
	default:
		m.line("**%s:** %s.", strings.ToUpper(sc.Status), text(sc.Detail))
		if sc.Location != "" {
			m.line("")
			m.line("Stored at %s.", code(sc.Location))
		}
	}
	m.line("")

	m.line("## Timeline")
	m.line("")
	m.line("Every step of every run, oldest first (UTC), the actor said once per run. The AWS requests of each step follow below.")
	m.line("")
	for _, c := range r.Chart {
		m.runTimeline(r, c)
	}
	if len(r.Chart) == 0 {
		m.line("No run is recorded.")
		m.line("")
	}
	m.custodyTimeline(r)
	m.caseTimeline(r)

	m.line("## AWS requests")
	m.line("")
	m.line("Find each request in CloudTrail by its request ID (in the account and Region of the instance, " +
		"or of the evidence bucket).")
	m.line("")
	rows = nil
	for _, e := range r.Timeline {
		for _, c := range e.Calls {
			errCode := text(c.ErrorCode)
			if errCode == "" {
				errCode = "-"
			}
			reqID := code(c.RequestID)
			if c.RequestID == "" {
				reqID = "(none: not sent)"
			}
			rows = append(rows, []string{fmt.Sprint(e.Run), text(e.Action), text(c.Service), text(c.Operation), reqID, errCode,
				duration(c.Duration)})
		}
	}
	m.table([]string{"Run", "Step", "Service", "Operation", "Request ID", "Error", "Took"}, rows, "No AWS request is recorded.")
}

// text escapes a value for a Markdown table cell: the punctuation that could
// make a link, code, emphasis, HTML or a new column is backslash-escaped, and
// line breaks become spaces. ('_' is left alone: identifiers are full of it,
// and GitHub does not emphasise inside words.)
func text(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '[', ']', '<', '>', '|', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// code shows an identifier, a path or a hash as code. A value a code span
// cannot hold safely is escaped as text instead.
func code(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsAny(s, "`|\n\r") {
		return text(s)
	}
	return "`" + s + "`"
}

func who(actor, actingAs string) string {
	if actor == "" {
		actor = "unknown"
	}
	out := code(actor)
	if actingAs != "" && actingAs != actor {
		out += " as " + code(actingAs)
	}
	return out
}

func runTag(run int) string {
	if run == 0 {
		return ""
	}
	return fmt.Sprintf(" (run %d)", run)
}

// ts shows a time in UTC with milliseconds; "-" when unset.
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func tsPtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ts(*t)
}

func duration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "0ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// investigation renders the investigation workspaces: one block each.
func (m *mdWriter) investigation(wss []evidence.Workspace, stored []Evidence) {
	m.line("## Investigation")
	m.line("")
	if len(wss) == 0 {
		m.line("No investigation workspace was built for this case (responder investigate).")
		m.line("")
		return
	}
	for _, ws := range wss {
		m.line("### Workspace %s: %s", code(ws.ID), text(ws.State))
		m.line("")
		m.line("Instance %s (%s, %s, image %s) in %s, subnet %s, run %d; started %s, stopped %s.",
			code(ws.InstanceID), text(ws.InstanceState), text(ws.InstanceType), code(ws.AMIID), text(ws.AvailabilityZone),
			code(ws.SubnetID), ws.Run, ts(ws.StartedAt), tsPtr(ws.StoppedAt))
		m.line("")
		var rows [][]string
		for _, v := range ws.Volumes {
			state := text(v.State)
			if v.Error != "" {
				state += ": " + text(v.Error)
			}
			rows = append(rows, []string{code(v.SnapshotID), code(v.SourceSnapshotID), code(v.VolumeID), code(v.Device), state})
		}
		m.table([]string{"Snapshot copy", "Case snapshot", "Working volume", "Device", "State"}, rows, "No working volume.")
		rows = nil
		for _, mt := range ws.Mounts {
			rows = append(rows, []string{code(mt.VolumeID), text(mt.FSType), code(mt.MountPoint), code(mt.Options),
				text(mt.WritesBefore + " / " + mt.WritesAfter), code(mt.SHA256Before), fmt.Sprint(mt.Unchanged)})
		}
		m.table([]string{"Volume", "Filesystem", "Mount point", "Options", "Writes before / after", "SHA-256 before", "Unchanged"}, rows, "Nothing mounted.")
		if a := ws.Access; a != nil {
			m.line("Evidence access: policy %s on role %s, for %s only: %s (granted %s, revoked %s)%s.",
				code(a.PolicyName), code(a.Role), code(a.InstanceARN), text(a.State), tsPtr(a.GrantedAt), tsPtr(a.RevokedAt), accessError(a.Error))
			m.line("")
		}
		if mem := ws.Memory; mem != nil {
			m.line("Memory image %s copied to %s: SHA-256 %s, matches the record: %v.", code(mem.Artifact), code(mem.Path), code(mem.SHA256), mem.Matches)
			m.line("")
		}
		m.analysisJobs(ws.Jobs, stored)
		for _, d := range ws.Documents {
			m.line("- Document %s version %s, command %s: %s", code(d.Name), text(d.Version), code(d.CommandID), text(d.Status))
		}
		for _, p := range ws.Problems {
			m.line("- Problem: %s", text(p))
		}
		m.line("")
	}
}

// analysisJobs renders the analysis jobs of a workspace: each tool's status,
// then each run with its exit status and its output and log with the
// SHA-256 the case records for them.
func (m *mdWriter) analysisJobs(jobs []evidence.AnalysisJob, stored []Evidence) {
	sums := map[string]string{}
	for _, e := range stored {
		sums[e.Path] = e.SHA256
	}
	file := func(path string) string {
		if path == "" {
			return "-"
		}
		return code(path) + " " + code(sums[path])
	}
	var rows [][]string
	for _, j := range jobs {
		status := text(j.Status)
		if j.Reason != "" {
			status += ": " + text(j.Reason)
		}
		rows = append(rows, []string{text(j.Tool), text(j.Version), "-", status, "-", "-"})
		for _, r := range j.Runs {
			rows = append(rows, []string{text(j.Tool), "", text(r.Name), text(r.Status), fmt.Sprint(r.ExitStatus), file(r.Output) + "<br>" + file(r.Log)})
		}
	}
	m.table([]string{"Tool", "Version", "Run", "Status", "Exit status", "Output and log (SHA-256)"}, rows, "No analysis job was run.")
}

func accessError(e string) string {
	if e == "" {
		return ""
	}
	return ": " + text(e)
}
