package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/investigate/investigatetest"
)

// runInvestigateCLI runs `responder investigate` with dst as the forensics
// account (the caller's own credentials) and agent as its SSM.
func runInvestigateCLI(t *testing.T, dst *fakeaws.Cloud, agent *investigatetest.Agent, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	d := deps{
		loadClients: func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
			return &cloud.Clients{STS: dst.STS(), S3: dst.S3(), InvestigationEC2: dst.EC2(), InvestigationSSM: agent, Region: dst.Region}, nil
		},
		now: time.Now,
	}
	code := run(context.Background(), append([]string{"responder", "investigate"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

// The command end to end on the fake cloud: refused before the copies
// complete (exit 4), a ready workspace (exit 0, recorded), a second one
// refused (exit 4), --shell without the plugin prints the command, --stop
// tears it down (exit 0) and the copies remain.
func TestInvestigateCommand(t *testing.T) {
	src, s := fakeaws.NewSuspect()
	dst := fakeaws.New(fakeaws.WithAccount(forensicsAccount))
	fakeaws.Link(src, dst)
	key := dst.AddKMSKey("alias/evidence")
	subnet := dst.AddSubnetIn(dst.AddVPC(), dst.Region+"c")
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, src, "respond", "--instance-id", s.InstanceID, "--case-id", "case-i", "--evidence-dir", dir, "--steps", "snapshots"); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	src.CompleteSnapshots()
	if code, _, errOut := runPreserveCLI(t, src, dst, "--case-id", "case-i", "--forensics-account", forensicsAccount,
		"--forensics-kms-key", key, "--evidence-dir", dir); code != exitOK {
		t.Fatalf("preserve: %d %s", code, errOut)
	}
	agent := &investigatetest.Agent{}
	start := []string{"--case-id", "case-i", "--subnet-id", subnet, "--ami-id", "ami-0123456789abcdef0", "--evidence-dir", dir, "--poll-interval", "1ms", "--timeout", "10s"}

	if code, _, errOut := runInvestigateCLI(t, dst, agent, start...); code != exitCannotStart || !strings.Contains(errOut, "no completed snapshot copy") {
		t.Fatalf("copies pending: exit %d %s", code, errOut)
	}
	dst.CompleteSnapshots()
	if code, _, errOut := runPreserveCLI(t, src, dst, "--case-id", "case-i", "--forensics-account", forensicsAccount,
		"--forensics-kms-key", key, "--evidence-dir", dir); code != exitOK {
		t.Fatalf("preserve: %d %s", code, errOut)
	}
	code, out, errOut := runInvestigateCLI(t, dst, agent, append(start, "--output", "json")...)
	var got investigateOutput
	if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Workspace.State != evidence.WorkspaceReady ||
		got.Workspace.AvailabilityZone != dst.Region+"c" || len(got.Workspace.Volumes) != 2 {
		t.Fatalf("start: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runInvestigateCLI(t, dst, agent, start...); code != exitCannotStart || !strings.Contains(errOut, "--new") {
		t.Fatalf("second workspace: exit %d %s", code, errOut)
	}
	lookPath = func(string) (string, error) { return "", errors.New("not found") }
	t.Cleanup(func() { lookPath = defaultLookPath })
	code, out, _ = runInvestigateCLI(t, dst, agent, "--case-id", "case-i", "--evidence-dir", dir, "--shell")
	if code != exitOK || !strings.Contains(out, "aws ssm start-session --target "+got.Workspace.InstanceID) {
		t.Fatalf("shell: exit %d %s", code, out)
	}
	code, out, errOut = runInvestigateCLI(t, dst, agent, "--case-id", "case-i", "--evidence-dir", dir, "--stop", "--poll-interval", "1ms")
	if code != exitOK || !strings.Contains(out, "STOPPED") {
		t.Fatalf("stop: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, v := range got.Workspace.Volumes {
		if dst.Volume(v.VolumeID) != nil {
			t.Errorf("volume %s left", v.VolumeID)
		}
	}
	for _, snap := range dst.Snapshots() {
		if snap.State != "completed" {
			t.Errorf("snapshot %s is %s", *snap.SnapshotId, snap.State)
		}
	}
	if n := len(dst.Snapshots()); n != 2 {
		t.Errorf("%d snapshots in the forensics account, want the 2 copies", n)
	}
}

func TestInvestigateRejectsBadInput(t *testing.T) {
	dst := fakeaws.New()
	for _, args := range [][]string{
		{"--case-id", "c", "--subnet-id", "subnet-1;x", "--ami-id", "ami-01234567"},
		{"--case-id", "c", "--ami-id", "ami-01234567"},
		{"--case-id", "c", "--stop", "--shell"},
		{"--case-id", "c", "--stop", "--workspace-id", "1"},
	} {
		if code, _, errOut := runInvestigateCLI(t, dst, &investigatetest.Agent{}, append(args, "--evidence-dir", t.TempDir())...); code != exitUsage {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}
