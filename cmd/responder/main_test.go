package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var epoch = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

// testDeps serves the commands from the fake cloud, with a clock that stands
// still so that the output is stable.
func testDeps(c *fakeaws.Cloud) deps {
	c.Clock = func() time.Time { return epoch }
	fakeaws.FastLookups(c)
	return deps{
		loadClients: func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), S3: c.S3(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(), SNS: c.SNS(), Signing: c.KMS(), Region: c.Region,
				CloudTrail: c.CloudTrail(), GuardDuty: c.GuardDuty(), SecurityHubFindings: c.SecurityHub()}, nil
		},
		now: func() time.Time { return epoch },
	}
}

func runCLI(t *testing.T, c *fakeaws.Cloud, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, testDeps(c))
	return code, out.String(), errOut.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var (
	// The fake numbers resources in call order, and steps call concurrently.
	resourceID = regexp.MustCompile(`\b(i|snap|sg|eni|vol|vpc|subnet)-[0-9a-f]{17}\b`)
	// metadata.json embeds those IDs, so its hash varies with them.
	sha256Hex = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
)

// stable replaces what differs between runs: the temporary directory,
// resource IDs and hashes (same length, so the table layout is kept).
func stable(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "<evidence-dir>")
	s = resourceID.ReplaceAllStringFunc(s, func(id string) string {
		i := strings.Index(id, "-")
		return id[:i+1] + strings.Repeat("x", len(id)-i-1)
	})
	return sha256Hex.ReplaceAllString(s, strings.Repeat("h", 64))
}

func TestRespondAndStatusGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	topic := c.AddTopic("responder")
	dir := t.TempDir()
	code, out, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-golden",
		"--evidence-dir", dir, "--topic-arn", topic)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "respond.golden", stable(out, dir))

	code, out, errOut = runCLI(t, c, "status", "--case-id", "case-golden", "--evidence-dir", dir)
	if code != exitOK {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	golden(t, "status.golden", stable(out, dir))

	code, out, _ = runCLI(t, c, "status", "--case-id", "case-golden", "--evidence-dir", dir, "--output", "json")
	var m evidence.Manifest
	if err := json.Unmarshal([]byte(out), &m); code != exitOK || err != nil || m.CaseID != "case-golden" {
		t.Fatalf("status json: exit %d, %v", code, err)
	}
}

func TestDryRunGolden(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	before := c.StateDigest()
	code, out, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-dry", "--evidence-dir", dir, "--dry-run")
	// Its own exit code and word, with what it could not check; never a
	// claim that anything was contained.
	if code != exitDryRun || !strings.Contains(errOut, "would-contain") || !strings.Contains(errOut, "not checked: instance-profile") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(strings.ToLower(out+errOut), "contained") {
		t.Errorf("a dry run claims containment:\n%s\n%s", out, errOut)
	}
	if c.StateDigest() != before {
		t.Fatal("dry run changed the cloud")
	}
	golden(t, "respond-dry-run.golden", stable(out, dir))
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(c *fakeaws.Cloud, id string)
		args    func(id, dir string) []string
		want    int
		stderr  string
	}{
		{"malformed instance", nil, func(id, dir string) []string {
			return []string{"respond", "--instance-id", "i-$(reboot)", "--evidence-dir", dir}
		}, exitUsage, "invalid instance ID"},
		{"unknown flag", nil, func(id, dir string) []string { return []string{"respond", "--instance", id} }, exitUsage, "did you mean --instance-id?"},
		{"unknown step", nil, func(id, dir string) []string {
			return []string{"respond", "--instance-id", id, "--steps", "snapshots,wipe", "--evidence-dir", dir}
		}, exitUsage, "unknown step"},
		{"bad output", nil, func(id, dir string) []string {
			return []string{"respond", "--instance-id", id, "--output", "yaml", "--evidence-dir", dir}
		}, exitUsage, "table, json or text"},
		{"both stores", nil, func(id, dir string) []string {
			return []string{"respond", "--instance-id", id, "--evidence-dir", dir, "--evidence-bucket", "b"}
		}, exitUsage, "exclusive"},
		{"not found", nil, func(id, dir string) []string {
			return []string{"respond", "--instance-id", "i-0fedcba9876543210", "--evidence-dir", dir}
		}, exitCannotStart, "does not exist"},
		{"containment failed", func(c *fakeaws.Cloud, id string) { c.Deny("ModifyNetworkInterfaceAttribute") }, func(id, dir string) []string {
			return []string{"respond", "--instance-id", id, "--evidence-dir", dir}
		}, exitContainmentFailed, "partially-contained: the instance may NOT be (fully) isolated; still open: quarantine"},
		{"evidence incomplete", func(c *fakeaws.Cloud, id string) { c.Throttle("CreateSnapshots", -1) }, func(id, dir string) []string {
			return []string{"respond", "--instance-id", id, "--evidence-dir", dir}
		}, exitEvidenceIncomplete, "RequestLimitExceeded"},
		{"status of unknown case", nil, func(id, dir string) []string {
			return []string{"status", "--case-id", "case-none", "--evidence-dir", dir}
		}, exitCannotStart, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			if tc.prepare != nil {
				tc.prepare(c, s.InstanceID)
			}
			code, _, errOut := runCLI(t, c, tc.args(s.InstanceID, t.TempDir())...)
			if code != tc.want || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.want, tc.stderr)
			}
			if tc.want == exitUsage && c.CallCount("DescribeInstances") != 0 {
				t.Fatal("bad input reached AWS")
			}
		})
	}
}

func TestJSONOutputIsTheCaseRecord(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	code, out, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--evidence-dir", t.TempDir(), "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m evidence.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^case-20261123-093000-[0-9a-f]{8}$`).MatchString(m.CaseID) || m.InstanceID != s.InstanceID || len(m.Steps) != len(step.DefaultPlan) {
		t.Fatalf("case record %+v", m)
	}
}

func TestLogLinesCarryTheCaseID(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-logs", "--evidence-dir", t.TempDir(), "--verbose")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(l, "case_id=case-logs") {
			t.Errorf("log line without the case ID: %s", l)
		}
	}
}

// Ctrl-C (a cancelled context): the run records interrupted, exits with its
// own code, and prints the command that resumes the case, which does.
func TestInterruptPrintsTheResumeCommand(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.OnCall = func(op string) {
		if op == "ModifyNetworkInterfaceAttribute" {
			cancel() // as the first SIGINT does (main.go)
		}
	}
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"responder", "respond", "--instance-id", s.InstanceID, "--case-id", "case-int",
		"--evidence-dir", dir, "--playbook", "default", "--region", c.Region},
		&streams{Out: &out, Err: &errOut}, testDeps(c))
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d: %s", code, exitInterrupted, errOut.String())
	}
	if !strings.Contains(out.String(), "Status    INTERRUPTED") {
		t.Errorf("the table does not say interrupted:\n%s", out.String())
	}
	store := &evidence.Folder{Root: dir}
	m, err := evidence.LoadManifest(context.Background(), store, "case-int")
	if err != nil || m.Status != evidence.CaseInterrupted {
		t.Fatalf("record: %v, status %v", err, m)
	}
	_, resume, ok := strings.Cut(errOut.String(), "resume the case with:\n  ")
	if !ok {
		t.Fatalf("no resume command in:\n%s", errOut.String())
	}
	resume = strings.TrimSpace(resume)
	want := "responder respond --case-id case-int --instance-id " + s.InstanceID + " --region " + c.Region +
		" --playbook default --evidence-dir " + dir
	if resume != want {
		t.Fatalf("resume command\n  %s\nwant\n  %s", resume, want)
	}

	c.OnCall = nil
	code, out2, errOut2 := runCLI(t, c, strings.Fields(resume)[1:]...)
	if code != exitOK {
		t.Fatalf("resume: exit %d: %s\n%s", code, errOut2, out2)
	}
	if m, err = evidence.LoadManifest(context.Background(), store, "case-int"); err != nil || m.Status != evidence.CaseContained || len(m.Runs) != 2 {
		t.Fatalf("record after resuming: %v %+v", err, m)
	}
}

// A plan without containment says acquired, never contained, and exits 0
// only because every step it ran succeeded.
func TestEvidenceOnlyPlanIsAcquired(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	code, out, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--evidence-dir", t.TempDir(),
		"--steps", "metadata,snapshots,case-tag")
	if code != exitOK || !strings.Contains(out, "Status    ACQUIRED") || strings.Contains(out, "CONTAINED") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}
