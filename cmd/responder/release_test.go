package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// runReleaseCLI runs a command with stdin, a terminal or not.
func runReleaseCLI(t *testing.T, c *fakeaws.Cloud, stdin string, terminal bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	s := &streams{Out: &out, Err: &errOut, In: strings.NewReader(stdin), InIsTerminal: terminal}
	code := run(context.Background(), append([]string{"responder"}, args...), s, testDeps(c))
	return code, out.String(), errOut.String()
}

func statusTag(c *fakeaws.Cloud, id string) string {
	for _, tg := range c.Instance(id).Tags {
		if aws.ToString(tg.Key) == step.TagStatus {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

func TestReleaseCommand(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	original := c.Instance(s.InstanceID)
	dir := respondCase(t, c, s, "case-rel")
	args := []string{"release", "--case-id", "case-rel", "--evidence-dir", dir}

	// Not a terminal and no --yes: refused before any AWS call.
	calls := c.CallCount("DescribeInstances")
	before := c.StateDigest()
	code, _, errOut := runReleaseCLI(t, c, "y\n", false, args...)
	if code != exitUsage || !strings.Contains(errOut, "--yes") || c.CallCount("DescribeInstances") != calls || c.StateDigest() != before {
		t.Fatalf("no terminal, no --yes: exit %d %q", code, errOut)
	}
	// A terminal, declined.
	code, _, errOut = runReleaseCLI(t, c, "n\n", true, args...)
	if code != exitUsage || !strings.Contains(errOut, "Release? [y/N]") || !strings.Contains(errOut, "not confirmed") || c.StateDigest() != before {
		t.Fatalf("declined: exit %d %q", code, errOut)
	}
	// Dry run: nothing changed, exit 5.
	code, out, errOut := runReleaseCLI(t, c, "", false, append(args, "--dry-run")...)
	if code != exitDryRun || !strings.Contains(out, "WOULD RELEASE") || c.StateDigest() != before {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	// A terminal, confirmed.
	code, out, errOut = runReleaseCLI(t, c, "yes\n", true, args...)
	if code != exitOK || !strings.Contains(out, "RELEASED") {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, errOut)
	}
	v := c.Instance(s.InstanceID)
	if v.ProfileAssociation == nil || v.DisableAPITermination != original.DisableAPITermination || statusTag(c, s.InstanceID) != evidence.CaseReleased {
		t.Errorf("not restored: profile %v, termination protection %t, tag %q", v.ProfileAssociation, v.DisableAPITermination, statusTag(c, s.InstanceID))
	}
	// --yes from a script; the record says released.
	if code, _, errOut := runReleaseCLI(t, c, "", false, append(args, "--yes")...); code != exitOK {
		t.Fatalf("--yes: exit %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, c, "status", "--case-id", "case-rel", "--evidence-dir", dir, "--output", "json")
	if code != exitOK || !strings.Contains(out, `"playbook": "release"`) || !strings.Contains(out, `"status": "released"`) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	// The record stays whole, and the report reads the release run.
	if code, out, errOut := runCLI(t, c, "verify", "--case-id", "case-rel", "--evidence-dir", dir, "--no-snapshots"); code != exitOK {
		t.Errorf("verify after release: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, c, "report", "--case-id", "case-rel", "--evidence-dir", dir); code != exitOK || !strings.Contains(out, "released") {
		t.Errorf("report after release: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestReleaseCommandExitCodes(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := respondCase(t, c, s, "case-rel")
	other := c.AddInstance(fakeaws.InstanceSpec{})
	for _, tc := range []struct {
		name string
		args []string
		prep func(t *testing.T)
		code int
		want string
	}{
		{"unknown case", []string{"--case-id", "case-none"}, nil, exitCannotStart, "case not found"},
		{"bad case ID", []string{"--case-id", "locks"}, nil, exitUsage, "reserved"},
		{"another instance", []string{"--case-id", "case-rel", "--instance-id", other}, nil, exitUsage, "another instance"},
		{"tampered record", []string{"--case-id", "case-rel"}, func(t *testing.T) {
			p := filepath.Join(dir, "case-rel", evidence.ManifestName)
			body, err := os.ReadFile(p)
			must(t, err)
			must(t, os.Chmod(p, 0o600))
			must(t, os.WriteFile(p, bytes.Replace(body, []byte(`"disable_api_termination": false`), []byte(`"disable_api_termination": true`), 1), 0o600))
		}, exitCannotStart, "seal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prep != nil {
				tc.prep(t)
			}
			before := c.StateDigest()
			code, _, errOut := runReleaseCLI(t, c, "", false, append([]string{"release", "--yes", "--evidence-dir", dir}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
			if c.StateDigest() != before {
				t.Error("a refused release changed the cloud")
			}
		})
	}
}

func TestReleaseHelpHasExamples(t *testing.T) {
	code, out, _ := runCLI(t, fakeaws.New(), "release", "--help")
	for _, want := range []string{"EXAMPLES", "--dry-run", "--yes", "EXIT CODES", "release-incomplete"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("release --help: exit %d, no %q", code, want)
		}
	}
}
