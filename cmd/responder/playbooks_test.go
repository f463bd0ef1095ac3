package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/responder-ir/responder/playbooks"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

func TestPlaybooksGolden(t *testing.T) {
	c := fakeaws.New()
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"playbooks.golden", []string{"playbooks"}},
		{"playbooks-show-collect-before-isolate.golden", []string{"playbooks", "show", "collect-before-isolate"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errOut := runCLI(t, c, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tc.golden, out)
		})
	}
	if code, _, errOut := runCLI(t, c, "playbooks", "show", "nuke"); code != exitUsage || !strings.Contains(errOut, "collect, collect-before-isolate, default") {
		t.Errorf("show of an unknown playbook: exit %d, %q", code, errOut)
	}
}

// A playbook file with the network ACL path: show says so, and the plan
// runs network-acl after quarantine.
func TestPlaybookShowsTheNetworkACLPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl.yaml")
	body := "name: acl\nsummary: with the network ACL path\ntradeoff: changes shared ACLs\ncontainment: {network_acl: true}\n" +
		"steps: [metadata, snapshots, quarantine-group, quarantine]\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, fakeaws.New(), "playbooks", "show", path)
	if code != exitOK || !strings.Contains(out, "network ACL path") || !strings.Contains(out, "network-acl") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
}

// The help lists every playbook with its summary, from the package.
func TestRespondHelpListsThePlaybooks(t *testing.T) {
	code, out, _ := runCLI(t, fakeaws.New(), "respond", "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, p := range playbooks.All() {
		if !strings.Contains(out, p.Name) || !strings.Contains(out, p.Summary) {
			t.Errorf("help does not list playbook %s: %s", p.Name, p.Summary)
		}
	}
}

func TestRespondPlaybookInputErrors(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badFile, []byte("name: bad\nsummary: s\ntradeoff: t\nsteps: [metadata]\nwait: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"playbook and steps", []string{"--playbook", "default", "--steps", "snapshots", "--evidence-dir", dir}, "--playbook and --steps are exclusive"},
		{"unknown playbook", []string{"--playbook", "nuke", "--evidence-dir", dir}, `unknown playbook "nuke" (known: collect, collect-before-isolate, default)`},
		{"bad playbook file", []string{"--playbook", badFile, "--evidence-dir", dir}, `bad.yaml: line 5: unknown field "wait" in the playbook`},
		{"collect into a folder", []string{"--playbook", "collect", "--evidence-dir", dir},
			"playbook collect collects OS-level evidence, which the instance uploads to the evidence store through presigned S3 URLs: give --evidence-bucket"},
		{"collection steps into a folder", []string{"--steps", "metadata,snapshots,ssm-access,memory-capture"}, "the plan of --steps collects OS-level evidence"},
		{"bad forensic profile", []string{"--playbook", "collect", "--evidence-bucket", "evidence", "--forensic-profile", "responder-forensic"},
			`forensic profile "responder-forensic" is not an instance profile ARN`},
		{"bad staging bucket", []string{"--playbook", "collect-before-isolate", "--evidence-bucket", "evidence", "--staging-bucket", "Staging_Bucket"},
			`staging bucket "Staging_Bucket" is not a bucket name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := fakeaws.NewSuspect()
			code, _, errOut := runCLI(t, c, append([]string{"respond", "--instance-id", s.InstanceID}, tc.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, exitUsage, tc.stderr)
			}
			if c.CallCount("DescribeInstances") != 0 {
				t.Fatal("bad input reached AWS")
			}
		})
	}
}

// A playbook file of the responder's own runs its steps, and the case
// records its name.
func TestRespondOwnPlaybookFile(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	file := filepath.Join(dir, "snapshot-only.yaml")
	body := "name: snapshot-only\nsummary: keep the disks, touch nothing\ntradeoff: no containment at all\nsteps:\n  - metadata\n  - snapshots\n  - name: case-tag\n    after: [snapshots]\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--playbook", file, "--evidence-dir", filepath.Join(dir, "cases"), "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m evidence.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	var ran []string
	for _, st := range m.Steps {
		ran = append(ran, st.Name)
	}
	if len(m.Runs) != 1 || m.Runs[0].Playbook != "snapshot-only" || !slices.Equal(ran, []string{"metadata", "snapshots", "case-tag"}) {
		t.Fatalf("runs %+v, steps %v", m.Runs, ran)
	}
	if got := len(c.Snapshots()); got != len(s.VolumeIDs) {
		t.Errorf("%d snapshots, want %d", got, len(s.VolumeIDs))
	}
}

func TestStepProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := newStepProgress(&buf)
	for _, pr := range []step.Progress{
		{Step: "ssm-access", Message: "waiting for the SSM Agent of i-0123456789abcdef0 (ConnectionLost)"},
		{Step: "ssm-access", Message: "waiting for the SSM Agent of i-0123456789abcdef0 (ConnectionLost)"}, // a repeat: dropped
		{Step: "memory-capture", Message: "uploading part 3 of 12", Done: 3, Total: 12},
		{Step: "memory-capture", Message: "uploaded 1.2 GiB of 4.0 GiB", Done: 1288490188, Total: 4294967296},
		{Step: "memory-capture", Message: "verifying the image", Done: 13, Total: 12}, // capped
	} {
		p.print(pr)
	}
	want := "ssm-access: waiting for the SSM Agent of i-0123456789abcdef0 (ConnectionLost)\n" +
		"memory-capture: uploading part 3 of 12 (25%)\n" +
		"memory-capture: uploaded 1.2 GiB of 4.0 GiB (29%)\n" + // rounded down: 100% only when done
		"memory-capture: verifying the image (100%)\n"
	if buf.String() != want {
		t.Errorf("progress lines:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// collectLab is a suspect whose VPC has the SSM and S3 endpoints and whose
// fake SSM Agent uploads to the forensics account's buckets through the
// presigned URLs the CLI's clients sign.
type collectLab struct {
	c, forensics *fakeaws.Cloud
	s            fakeaws.Suspect
	deps         deps
	playbook     string // a playbook file: collect's steps, with test timings
}

func newCollectLab(t *testing.T) *collectLab {
	t.Helper()
	c, s := fakeaws.NewSuspect()
	forensics := fakeaws.New(fakeaws.WithAccount("444455556666"))
	forensics.AddBucket("evidence", fakeaws.BucketOptions{Versioning: true})
	forensics.AddBucket("staging", fakeaws.BucketOptions{})
	avml := []byte("#!/bin/sh\necho avml\n")
	if _, err := forensics.S3().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("staging"), Key: aws.String("tools/avml-x86_64"), Body: bytes.NewReader(avml),
	}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		c.AddVpcEndpoint(s.VpcID, svc)
	}
	c.AddVpcEndpoint(s.VpcID, "s3", fakeaws.EndpointSpec{Gateway: true})
	c.SetAgent(s.InstanceID, fakeaws.Agent{Online: true, NeedsProfile: true, PlatformType: "Linux", OnlineAfterCalls: 2,
		Memory: bytes.Repeat([]byte("RAM!"), 2<<20)})
	c.AgentS3(forensics.S3())
	c.DeployMemberDocuments() // as the member documents stack does
	creds := credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")
	presign := s3.NewPresignClient(s3.New(s3.Options{
		Region: c.Region, BaseEndpoint: aws.String("https://s3.fake.test"), UsePathStyle: true, Credentials: creds,
	}))
	l := &collectLab{c: c, forensics: forensics, s: s}
	l.deps = deps{
		loadClients: func(ctx context.Context, opts cloud.Options) (*cloud.Clients, error) {
			return &cloud.Clients{EC2: c.EC2(), STS: c.STS(), IAM: c.IAM(), SNS: c.SNS(), SSM: c.SSM(), AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB(), S3: forensics.S3(),
				Presign: presign, EvidenceCredentials: creds, Region: c.Region}, nil
		},
		now: time.Now,
	}

	// The collect playbook's steps and order, with timings for a test: a
	// 1 ms poll, 5 MiB parts, the staged AVML.
	collect, err := playbooks.Lookup("collect")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("name: collect-lab\nsummary: collect, fast\ntradeoff: a test\nsteps:\n")
	for _, e := range collect.Steps {
		fmt.Fprintf(&b, "  - name: %s\n    after: [%s]\n", e.Name, strings.Join(e.After, ", "))
	}
	sum := sha256.Sum256(avml)
	fmt.Fprintf(&b, "collection:\n  order: isolate-first\n  poll_interval: 1ms\n  registration_timeout: 5s\n"+
		"  memory:\n    part_size_mib: 5\n    tools:\n      avml-x86_64: {key: tools/avml-x86_64, sha256: %s}\n", hex.EncodeToString(sum[:]))
	l.playbook = filepath.Join(t.TempDir(), "collect-lab.yaml")
	if err := os.WriteFile(l.playbook, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return l
}

// The collect playbook through the CLI: the SSM client, the presigner, the
// staging bucket and the receiving evidence bucket reach the steps, the
// account-specific flags fill in what the playbook leaves out, and progress
// reaches standard error only on a terminal or with --verbose.
func TestRespondCollectPlaybook(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tty      bool
		args     []string
		progress bool
	}{
		{name: "terminal", tty: true, progress: true},
		{name: "verbose", args: []string{"--verbose"}, progress: true},
		{name: "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newCollectLab(t)
			var out, errOut bytes.Buffer
			args := append([]string{"responder", "respond", "--instance-id", l.s.InstanceID, "--case-id", "case-collect",
				"--playbook", l.playbook, "--evidence-bucket", "evidence", "--staging-bucket", "staging",
				"--forensic-profile", "arn:aws:iam::" + l.c.Account + ":instance-profile/responder-forensic-ssm", "-o", "json"}, tc.args...)
			code := run(context.Background(), args, &streams{Out: &out, Err: &errOut, ErrIsTerminal: tc.tty}, l.deps)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			var m evidence.Manifest
			if err := json.Unmarshal(out.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			status := map[string]string{}
			for _, st := range m.Steps {
				status[st.Name] = st.Status + " " + st.Error
			}
			for _, name := range []string{"ssm-access", "volatile-data", "memory-capture", "forensic-access-close", "quarantine"} {
				if status[name] != evidence.StatusOK+" " {
					t.Errorf("%s: %s", name, status[name])
				}
			}
			if len(m.Runs) != 1 || m.Runs[0].Playbook != "collect-lab" {
				t.Errorf("runs %+v", m.Runs)
			}
			image := false
			for _, a := range m.Artifacts {
				image = image || strings.HasSuffix(a.Path, "/memory-image")
			}
			objects := l.forensics.Objects("evidence")
			if _, stored := objects[evidence.Prefix+"case-collect/"+evidence.ManifestName]; !image || !stored {
				t.Errorf("memory image recorded %v, case record stored %v", image, stored)
			}
			waiting := "ssm-access: waiting for the SSM Agent of " + l.s.InstanceID
			if got := strings.Contains(errOut.String(), waiting); got != tc.progress {
				t.Errorf("progress on stderr %v, want %v:\n%s", got, tc.progress, errOut.String())
			}
		})
	}
}
