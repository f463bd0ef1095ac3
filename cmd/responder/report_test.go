package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/report"
	"github.com/responder-ir/responder/responder/step"
)

// respondCase contains the fake suspect into a new case folder.
func respondCase(t *testing.T, c *fakeaws.Cloud, s fakeaws.Suspect, caseID string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"respond", "--instance-id", s.InstanceID, "--case-id", caseID, "--evidence-dir", dir}, extra...)
	code, _, errOut := runCLI(t, c, args...)
	if code != exitOK && code != exitEvidenceIncomplete && code != exitContainmentFailed {
		t.Fatalf("respond: exit %d: %s", code, errOut)
	}
	return dir
}

var (
	requestUUID = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	tookCell    = regexp.MustCompile(`\| (\d+ms|\d+\.\ds) \|$`)
)

// stableReport makes a Markdown report comparable between runs: besides what
// stable replaces, request IDs and call durations vary, and a step that makes
// calls concurrently records them in the order they finish, so the rows of
// the AWS requests table are sorted.
func stableReport(s, dir string) string {
	s = stable(s, dir)
	s = requestUUID.ReplaceAllString(s, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
	lines := strings.Split(s, "\n")
	start := -1
	for i, l := range lines {
		if l == "## AWS requests" {
			start = i
		}
		if start >= 0 && i > start && strings.HasPrefix(l, "| ") {
			lines[i] = tookCell.ReplaceAllString(l, "| <took> |")
		}
	}
	if start >= 0 {
		// Header and separator stay; the rows after them are sorted.
		first := start
		for first < len(lines) && !strings.HasPrefix(lines[first], "| ---") {
			first++
		}
		last := first + 1
		for last < len(lines) && strings.HasPrefix(lines[last], "| ") {
			last++
		}
		if first < len(lines) {
			sort.Strings(lines[first+1 : last])
		}
	}
	return strings.Join(lines, "\n")
}

func TestReportMarkdownGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	dir := respondCase(t, c, s, "case-report", "--topic-arn", topic)
	code, out, errOut := runCLI(t, c, "report", "--case-id", "case-report", "--evidence-dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "report.md.golden", stableReport(out, dir))
}

// A case with failures shows what each means, and the state a failed step
// could not change.
func TestReportFailuresGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.Throttle("CreateSnapshots", -1)
	c.Deny("ModifyNetworkInterfaceAttribute")
	c.Fail("GetConsoleScreenshot", "UnsupportedOperation", -1)
	dir := respondCase(t, c, s, "case-failures")
	code, out, errOut := runCLI(t, c, "report", "--case-id", "case-failures", "--evidence-dir", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "report.failures.md.golden", stableReport(out, dir))
	for _, want := range []string{
		"No disk image of that point in time",
		"The instance may still be reachable",
		"No console screenshot exists for this case",
		"PARTIALLY CONTAINED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// A second run that succeeds where the first failed is shown against the
// failure, and the state's before stays the one found first.
func TestReportSecondRunResolvesFailure(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.Throttle("CreateSnapshots", -1)
	dir := respondCase(t, c, s, "case-twice")
	c.ClearFaults()
	code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-twice", "--evidence-dir", dir)
	if code != exitOK {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, c, "report", "--case-id", "case-twice", "--evidence-dir", dir, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// Each run of the default plan puts each of its steps on the timeline.
	if want := 2 * len(step.DefaultPlan); len(r.Runs) != 2 || len(r.Timeline) != want || len(r.Snapshots) != 2 {
		t.Fatalf("runs %d, timeline %d, snapshots %d; want 2, %d, 2", len(r.Runs), len(r.Timeline), len(r.Snapshots), want)
	}
	if len(r.Failures) != 1 || r.Failures[0].Step != "snapshots" || r.Failures[0].ResolvedInRun != 2 {
		t.Fatalf("failures %+v; want snapshots of run 1, resolved in run 2", r.Failures)
	}
	for _, row := range r.State {
		if row.Step == "termination-protection" {
			if row.Before != "disabled: the instance can be terminated through the API" || row.BeforeRun != 1 ||
				row.After != "enabled" || row.AfterRun != 2 || !row.Changed {
				t.Fatalf("termination protection row %+v", row)
			}
			return
		}
	}
	t.Fatal("no termination-protection row")
}

func TestReportJSONIsTheModel(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-json")
	code, out, errOut := runCLI(t, c, "report", "--case-id", "case-json", "--evidence-dir", dir, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for _, key := range []string{"report_version", "generated_at", "generated_by", "case", "runs", "timeline", "state", "evidence", "snapshots", "screenshot", "failures", "notes"} {
		if _, ok := top[key]; !ok {
			t.Errorf("no %q in the JSON report", key)
		}
	}
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	m := readManifest(t, dir, "case-json")
	if r.Case.ID != "case-json" || r.Case.InstanceID != s.InstanceID || len(r.Evidence) != len(m.Artifacts) || len(r.Timeline) != len(m.Steps) {
		t.Fatalf("report %+v does not match the record", r.Case)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "case-json", evidence.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if r.Case.RecordSHA256 != evidence.SHA256(raw) {
		t.Fatalf("record SHA-256 %s, want %s", r.Case.RecordSHA256, evidence.SHA256(raw))
	}
	if r.Screenshot.Status != report.ScreenshotShown || r.GeneratedBy != "responder "+responder.Version || !r.GeneratedAt.Equal(epoch) {
		t.Fatalf("screenshot %+v, generated by %q at %s", r.Screenshot, r.GeneratedBy, r.GeneratedAt)
	}
	if strings.Contains(out, "/9j/") {
		t.Fatal("the JSON report carries the image; it should only point at it")
	}
}

func readManifest(t *testing.T, dir, caseID string) *evidence.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, caseID, evidence.ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := evidence.DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReportOutRefusesToOverwrite(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-out")
	out := filepath.Join(t.TempDir(), "report.html")
	code, stdout, errOut := runCLI(t, c, "report", "--case-id", "case-out", "--evidence-dir", dir, "--format", "html", "--out", out)
	if code != exitOK || stdout != "" || !strings.Contains(errOut, "written to "+out) {
		t.Fatalf("exit %d, stdout %d bytes, stderr %q", code, len(stdout), errOut)
	}
	first, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(first, []byte("<!DOCTYPE html>")) {
		t.Fatalf("report file: %v %.40q", err, first)
	}
	code, _, errOut = runCLI(t, c, "report", "--case-id", "case-out", "--evidence-dir", dir, "--format", "md", "--out", out)
	if code != exitUsage || !strings.Contains(errOut, "never overwrites") {
		t.Fatalf("second write: exit %d, stderr %q", code, errOut)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, first) {
		t.Fatal("the report file was changed")
	}
}

func TestReportExitCodes(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-codes")
	for _, tc := range []struct {
		name   string
		args   []string
		want   int
		stderr string
	}{
		{"unknown format", []string{"--case-id", "case-codes", "--evidence-dir", dir, "--format", "pdf"}, exitUsage, "md, html, json"},
		{"bad case ID", []string{"--case-id", "../etc", "--evidence-dir", dir}, exitUsage, "invalid case ID"},
		{"both stores", []string{"--case-id", "case-codes", "--evidence-dir", dir, "--evidence-bucket", "b"}, exitUsage, "exclusive"},
		{"no case ID", []string{"--evidence-dir", dir}, exitUsage, "case-id"},
		{"unknown case", []string{"--case-id", "case-none", "--evidence-dir", dir}, exitCannotStart, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, c, append([]string{"report"}, tc.args...)...)
			if code != tc.want || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.want, tc.stderr)
			}
			// A missing required flag makes the CLI library print the usage.
			if out != "" && tc.name != "no case ID" {
				t.Fatalf("stdout %q on error", out)
			}
		})
	}
}

// A screenshot changed after collection is not shown; the report says so,
// and so does standard error.
func TestReportTamperedScreenshot(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-tamper")
	path := filepath.Join(dir, "case-tamper", s.InstanceID, "console-screenshot.jpg")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0xFF
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, c, "report", "--case-id", "case-tamper", "--evidence-dir", dir, "--format", "html")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "<img") || !strings.Contains(out, "does NOT match the record") {
		t.Fatal("the HTML report shows a screenshot that does not match its hash, or does not say so")
	}
	if !strings.Contains(errOut, "warning: console screenshot: the stored file") {
		t.Fatalf("stderr %q", errOut)
	}
}
