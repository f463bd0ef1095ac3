package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// awsHome sets up shared config files with one profile, ir, that has a
// Region and no credentials, and an environment without credentials; IMDS
// is off, so nothing leaves the machine.
func awsHome(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte("[default]\nregion = eu-west-1\n\n[profile ir]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// runReal runs the CLI with the SDK's own configuration loading.
func runReal(args []string) (int, string, string) {
	var out, errOut bytes.Buffer
	d := deps{loadClients: cloud.Load, now: time.Now, getenv: os.Getenv}
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

// TestCredentialsProfileRegionGolden: each is one line, exit 4, before any
// AWS call (the configuration has no endpoint that could answer one).
func TestCredentialsProfileRegionGolden(t *testing.T) {
	awsHome(t)
	dir := t.TempDir()
	got := transcript(t, runReal, []errorCase{
		{[]string{"status", "--case-id", "case-x", "--evidence-bucket", "b", "--profile", "ir"}, exitCannotStart},
		{[]string{"cases", "list", "--evidence-bucket", "b"}, exitCannotStart},
		{[]string{"respond", "-i", "i-0123456789abcdef0", "--evidence-dir", dir, "--profile", "irr"}, exitCannotStart},
		{[]string{"respond", "-i", "i-0123456789abcdef0", "--evidence-dir", dir, "--profile", "production"}, exitCannotStart},
		{[]string{"respond", "-i", "i-0123456789abcdef0", "--evidence-dir", dir, "--region", "eu-wset-1"}, exitCannotStart},
		{[]string{"verify", "--case-id", "case-x", "--region", "eu-west-9"}, exitCannotStart},
	})
	t.Setenv("AWS_REGION", "us-est-1")
	got += transcript(t, runReal, []errorCase{
		{[]string{"release", "--case-id", "case-x", "--yes", "--evidence-dir", dir}, exitCannotStart},
	})
	golden(t, "preflight-errors.golden", strings.ReplaceAll(got, dir, "<dir>"))
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command left %d entries in the evidence folder", len(entries))
	}
}

// TestUnknownRegionChangesNothing: an unknown --region is refused before the
// clients are even built, whatever the cloud.
func TestUnknownRegionChangesNothing(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	before := c.StateDigest()
	code, out, errOut := runCLI(t, c, "respond", "-i", s.InstanceID, "--evidence-dir", t.TempDir(), "--region", "eu-wset-1")
	if code != exitCannotStart || out != "" || !strings.Contains(errOut, "did you mean eu-west-1?") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if c.StateDigest() != before {
		t.Error("the cloud changed")
	}
}
