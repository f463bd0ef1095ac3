package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/report"
)

func reportJSON(t *testing.T, c *fakeaws.Cloud, args ...string) (int, report.Report, string) {
	t.Helper()
	code, out, errOut := runCLI(t, c, append([]string{"report", "--format", "json"}, args...)...)
	var r report.Report
	if code != exitUsage && code != exitCannotStart {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("exit %d, report is not JSON: %v\n%s", code, err, errOut)
		}
	}
	return code, r, errOut
}

// The headline says verified only when the report was made with a
// verification that passed: a signed case with --verify is verified; the
// same case without --verify is not; an unsigned one is intact, unsigned;
// a tampered artifact makes the verification fail, exit 1, the report
// still written and saying so.
func TestReportVerify(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-signed", "--evidence-dir", dir,
		"--signing-key", cliSigningKey(t, c)); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	code, r, errOut := reportJSON(t, c, "--case-id", "case-signed", "--evidence-dir", dir, "--verify")
	if code != exitOK || r.Headline.Verification != report.Verified || r.Verification == nil || r.Verification.Result != "verified" {
		t.Fatalf("signed case with --verify: exit %d, %q (%s) %s", code, r.Headline.Verification, r.Headline.VerificationDetail, errOut)
	}
	if _, r, _ = reportJSON(t, c, "--case-id", "case-signed", "--evidence-dir", dir); r.Headline.Verification != report.NotVerified || r.Verification != nil {
		t.Errorf("without --verify: %q", r.Headline.Verification)
	}

	unsigned := respondCase(t, c, s, "case-unsigned")
	if code, r, _ = reportJSON(t, c, "--case-id", "case-unsigned", "--evidence-dir", unsigned, "--verify"); code != exitOK || r.Headline.Verification != report.IntactUnsigned {
		t.Errorf("unsigned case: exit %d, %q", code, r.Headline.Verification)
	}

	meta := filepath.Join(dir, "case-signed", s.InstanceID, "metadata.json")
	if err := os.WriteFile(meta, []byte(`{"tampered":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.md")
	code, _, errOut = runCLI(t, c, "report", "--case-id", "case-signed", "--evidence-dir", dir, "--verify", "--out", out)
	md, err := os.ReadFile(out)
	if code != 1 || err != nil || !strings.Contains(string(md), "**VERIFICATION FAILED**") || !strings.Contains(errOut, "FAILED verification") {
		t.Fatalf("tampered: exit %d, %v, stderr %s\n%s", code, err, errOut, md)
	}
	// Nothing is drawn from the tampered metadata.
	if strings.Contains(string(md), "inbound 22/tcp from 0.0.0.0/0 removed") || !strings.Contains(string(md), "does NOT match the record") {
		t.Errorf("the report drew security groups from a tampered artifact:\n%s", md)
	}
}
