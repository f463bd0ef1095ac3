package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/preserve"
)

const forensicsAccount = "444455556666"

// runPreserveCLI runs `responder preserve` in an app of its own (app.go
// lists the commands), with the workload account src and the forensics
// account dst, and maps errors to exit codes as run does.
func runPreserveCLI(t *testing.T, src, dst *fakeaws.Cloud, args ...string) (int, string, string) {
	t.Helper()
	return runForensicsCLI(t, src, dst, append([]string{"preserve"}, args...)...)
}

// runForensicsCLI runs preserve or verify (args[0]) as runPreserveCLI does.
func runForensicsCLI(t *testing.T, src, dst *fakeaws.Cloud, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	d := deps{
		loadClients: func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
			// As with --role-arn: the member role in the workload account,
			// the caller's own credentials in the forensics account.
			return &cloud.Clients{EC2: src.EC2(), STS: src.STS(), IAM: src.IAM(), KMS: src.KMS(), AutoScaling: src.AutoScaling(), ELBv2: src.ELBv2(), ELB: src.ELB(), S3: dst.S3(), SNS: dst.SNS(),
				ForensicsEC2: dst.EC2(), CallerSTS: dst.STS(), Region: src.Region}, nil
		},
		now: func() time.Time { return epoch },
	}
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

func TestPreserveCommand(t *testing.T) {
	src, s := fakeaws.NewSuspect()
	dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	fakeaws.Link(src, dst)
	key := dst.AddKMSKey("alias/evidence")
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, src, "respond", "--instance-id", s.InstanceID, "--case-id", "case-p", "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	src.SnapshotCompletesAfter, dst.SnapshotCompletesAfter = 2, 2
	args := []string{"--case-id", "case-p", "--forensics-account", forensicsAccount, "--forensics-kms-key", key,
		"--evidence-dir", dir, "--wait", "--poll-interval", "1ms"}

	code, out, errOut := runPreserveCLI(t, src, dst, args...)
	if code != exitOK || !strings.Contains(out, "PRESERVED") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	// Standard error is not a terminal here: plain progress lines.
	for _, want := range []string{": source snap-", ": copy snap-", " 100%"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, "case-p")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.SnapshotCopies) != 2 {
		t.Fatalf("copies %+v", m.SnapshotCopies)
	}
	for _, cp := range m.SnapshotCopies {
		if cp.State != evidence.CopyCompleted || !strings.Contains(out, cp.SnapshotID) {
			t.Errorf("copy %+v not completed or not shown", cp)
		}
	}

	// Again, as JSON: nothing new is copied, and no run is recorded.
	code, out, _ = runPreserveCLI(t, src, dst, append(args, "-o", "json")...)
	var printed preserveOutput
	if code != exitOK || json.Unmarshal([]byte(out), &printed) != nil || printed.Run != 2 || !printed.Unchanged || len(printed.SnapshotCopies) != 2 {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	if n := len(dst.Snapshots()); n != 2 {
		t.Errorf("forensics account holds %d snapshots after a rerun, want 2", n)
	}

	// verify checks the copies in the forensics account; another
	// (empty) forensics account does not have them.
	code, out, _ = runForensicsCLI(t, src, dst, "verify", "--case-id", "case-p", "--evidence-dir", dir)
	if code != exitOK || strings.Count(out, "snapshot-copy") != 2 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	empty := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	code, out, _ = runForensicsCLI(t, src, empty, "verify", "--case-id", "case-p", "--evidence-dir", dir)
	if code != 1 || !strings.Contains(out, "missing") {
		t.Fatalf("verify without the copies: exit %d\n%s", code, out)
	}
}

func TestPreserveCommandExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(src, dst *fakeaws.Cloud)
		args    []string
		want    int
		stderr  string
	}{
		{name: "bad account", args: []string{"--forensics-account", "4444"}, want: exitUsage, stderr: "12 digits"},
		{name: "unknown case", args: []string{"--case-id", "case-none"}, want: exitCannotStart, stderr: "not found"},
		{name: "external id alone", args: []string{"--external-id", "x"}, want: exitUsage, stderr: "--role-arn"},
		{name: "copy fails", prepare: func(_, dst *fakeaws.Cloud) { dst.Deny("CopySnapshot") }, want: 1, stderr: "UnauthorizedOperation"},
		{name: "still pending", prepare: func(_, dst *fakeaws.Cloud) { dst.SnapshotCompletesAfter = 0 },
			args: []string{"--timeout", "100ms"}, want: exitEvidenceIncomplete, stderr: "still pending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, s := fakeaws.NewSuspect()
			dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
			fakeaws.Link(src, dst)
			dir := t.TempDir()
			if code, _, errOut := runCLI(t, src, "respond", "--instance-id", s.InstanceID, "--case-id", "case-x", "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
				t.Fatalf("respond: %d %s", code, errOut)
			}
			src.CompleteSnapshots()
			if tc.prepare != nil {
				tc.prepare(src, dst)
			}
			args := append([]string{"--case-id", "case-x", "--forensics-account", forensicsAccount, "--forensics-kms-key", "alias/aws/ebs",
				"--evidence-dir", dir, "--wait", "--poll-interval", "1ms"}, tc.args...)
			code, _, errOut := runPreserveCLI(t, src, dst, args...)
			if code != tc.want || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.want, tc.stderr)
			}
		})
	}
}

func TestProgressBarsOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := &progressPrinter{w: &buf, tty: true, lines: map[string]string{}}
	p.update(preserve.Progress{SourceSnapshotID: "snap-a", Stage: preserve.StageSource, SnapshotID: "snap-a", Percent: 50})
	p.update(preserve.Progress{SourceSnapshotID: "snap-b", Stage: preserve.StageCopy, SnapshotID: "snap-c", Percent: 10})
	p.update(preserve.Progress{SourceSnapshotID: "snap-a", Stage: preserve.StageSource, SnapshotID: "snap-a", Percent: 100})
	got := buf.String()
	for _, want := range []string{
		"[###############...............]  50%", // half a bar
		"\x1b[1A",                               // back up over one bar to redraw two
		"\x1b[2A",                               // then over two
		"[##############################] 100%",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
}

// The copies are made with the caller's own credentials: when those are of
// another account than --forensics-account, nothing is copied and nothing
// recorded, since the record would name an account the copies are not in.
func TestPreserveRefusesCredentialsOfAnotherAccount(t *testing.T) {
	src, s := fakeaws.NewSuspect()
	dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	fakeaws.Link(src, dst)
	key := dst.AddKMSKey("alias/evidence")
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, src, "respond", "--instance-id", s.InstanceID, "--case-id", "case-acct", "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	src.CompleteSnapshots()
	code, _, errOut := runPreserveCLI(t, src, dst, "--case-id", "case-acct", "--forensics-account", "999988887777",
		"--forensics-kms-key", key, "--evidence-dir", dir)
	if code != exitUsage || !strings.Contains(errOut, "not in the forensics account 999988887777") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := len(dst.Snapshots()); n != 0 {
		t.Errorf("%d snapshots copied into %s", n, forensicsAccount)
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, "case-acct")
	if err != nil || len(m.SnapshotCopies) != 0 || len(m.Runs) != 1 {
		t.Fatalf("record changed: %v %+v", err, m)
	}
}
