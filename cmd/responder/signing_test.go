package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/responder-ir/responder/internal/testenv"
	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

func cliSigningKey(t *testing.T, c *fakeaws.Cloud) string {
	t.Helper()
	out, err := c.KMS().CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// runOffline runs the CLI with no network: loading AWS clients fails, as
// it would with networking disabled.
func runOffline(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	d := deps{
		loadClients: func(context.Context, cloud.Options) (*cloud.Clients, error) {
			return nil, errors.New("networking is disabled in this test")
		},
		now: testDeps(fakeaws.New()).now,
	}
	code := run(context.Background(), append([]string{"responder"}, args...), &streams{Out: &out, Err: &errOut}, d)
	return code, out.String(), errOut.String()
}

// A signed case verifies with networking impossible, with the stored key
// and with the key pinned by --public-key; a run signed with another key
// fails with the pin. openssl alone accepts each signature, as README says.
func TestSignedCaseCommands(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	key := cliSigningKey(t, c)
	for range 2 {
		if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-s", "--evidence-dir", dir, "--signing-key", key); code != exitOK {
			t.Fatalf("respond: %d %s", code, errOut)
		}
	}
	caseDir := filepath.Join(dir, "case-s")
	pems, _ := filepath.Glob(filepath.Join(caseDir, "signing", "*.pem"))
	if len(pems) != 1 {
		t.Fatalf("stored public keys %v", pems)
	}
	code, out, errOut := runOffline(t, "verify", "--case-id", "case-s", "--evidence-dir", dir, "--no-snapshots", "--public-key", pems[0])
	if code != exitOK || !strings.Contains(out, "Result    VERIFIED") {
		t.Fatalf("offline verify: exit %d\n%s\n%s", code, out, errOut)
	}

	openssl := testenv.LookPath(t, "install the Debian package openssl", "openssl")
	for _, run := range []int{1, 2} {
		cmd := exec.Command(openssl, "dgst", "-sha256", "-verify", pems[0],
			"-signature", filepath.Join(caseDir, filepath.FromSlash(evidence.SignatureName(run))),
			filepath.Join(caseDir, filepath.FromSlash(evidence.HistoryName(run))))
		if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "Verified OK") {
			t.Fatalf("openssl on run %d: %v %s", run, err, b)
		}
	}
	// manifest.json is the last run's history copy, byte for byte.
	cmd := exec.Command(openssl, "dgst", "-sha256", "-verify", pems[0],
		"-signature", filepath.Join(caseDir, filepath.FromSlash(evidence.SignatureName(2))), filepath.Join(caseDir, evidence.ManifestName))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl on manifest.json: %v %s", err, b)
	}
	// openssl refuses a changed record.
	tampered := filepath.Join(t.TempDir(), "manifest.json")
	b, _ := os.ReadFile(filepath.Join(caseDir, evidence.ManifestName))
	_ = os.WriteFile(tampered, bytes.Replace(b, []byte(`"contained"`), []byte(`"released"`), 1), 0o600)
	cmd = exec.Command(openssl, "dgst", "-sha256", "-verify", pems[0],
		"-signature", filepath.Join(caseDir, filepath.FromSlash(evidence.SignatureName(2))), tampered)
	if b, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("openssl accepted a changed record: %s", b)
	}

	// A key the case was not signed with, pinned: FAILED.
	other := fakeaws.New()
	otherKey := cliSigningKey(t, other)
	otherOut, _ := other.KMS().GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: aws.String(otherKey)})
	pinned := filepath.Join(t.TempDir(), "other.der")
	_ = os.WriteFile(pinned, otherOut.PublicKey, 0o600)
	if code, out, _ := runOffline(t, "verify", "--case-id", "case-s", "--evidence-dir", dir, "--no-snapshots", "--public-key", pinned); code != 1 || !strings.Contains(out, "not the pinned public key") {
		t.Fatalf("other key pinned: exit %d\n%s", code, out)
	}
	// --online compares the stored key with KMS's.
	if code, out, _ := runCLI(t, c, "verify", "--case-id", "case-s", "--evidence-dir", dir, "--no-snapshots", "--online"); code != exitOK || !strings.Contains(out, "signing-key") {
		t.Fatalf("online verify: exit %d\n%s", code, out)
	}
}

func TestSigningKeyInput(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-k", "--evidence-dir", dir, "--signing-key", "not a key")
	if _, err := os.Stat(filepath.Join(dir, "case-k")); code != exitUsage || !strings.Contains(errOut, "--signing-key") || err == nil {
		t.Fatalf("bad key: exit %d %s (case folder: %v)", code, errOut, err)
	}
	bad := filepath.Join(t.TempDir(), "key.pem")
	_ = os.WriteFile(bad, []byte("not a key"), 0o600)
	if code, _, errOut := runOffline(t, "verify", "--case-id", "case-x", "--evidence-dir", t.TempDir(), "--no-snapshots", "--public-key", bad); code != exitUsage {
		t.Fatalf("bad public key: exit %d %s", code, errOut)
	}
}
