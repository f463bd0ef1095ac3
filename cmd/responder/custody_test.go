package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/responder-ir/responder/responder/custody"
	"github.com/responder-ir/responder/responder/fakeaws"
)

func TestVerifyCommand(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-v", "--evidence-dir", dir); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	code, out, _ := runCLI(t, c, "verify", "--case-id", "case-v", "--evidence-dir", dir)
	if code != exitEvidenceIncomplete || !strings.Contains(out, "INTACT SO FAR") {
		t.Fatalf("pending snapshots: exit %d\n%s", code, out)
	}
	c.CompleteSnapshots()
	code, out, _ = runCLI(t, c, "verify", "--case-id", "case-v", "--evidence-dir", dir)
	// Not signed (no --signing-key): intact, but never "VERIFIED".
	if code != exitOK || !strings.Contains(out, "INTACT, UNSIGNED") || strings.Contains(out, "VERIFIED") {
		t.Fatalf("verified case: exit %d\n%s", code, out)
	}
	golden(t, "verify.golden", stable(out, dir))

	p := filepath.Join(dir, "case-v", s.InstanceID, "console-output.txt")
	_ = os.Chmod(p, 0o640)
	if err := os.WriteFile(p, []byte("tampered"), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, c, "verify", "--case-id", "case-v", "--evidence-dir", dir, "--no-snapshots", "-o", "json")
	var v custody.Verification
	if code != 1 || json.Unmarshal([]byte(out), &v) != nil || !v.Failed() {
		t.Fatalf("tampered case: exit %d\n%s", code, out)
	}
}

func TestHoldAndCasesCommands(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 30}})
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-h", "--evidence-bucket", "evidence"); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, c, "hold", "--case-id", "case-h", "--evidence-bucket", "evidence"); code != exitOK || !strings.Contains(out, "legal-hold-on") {
		t.Fatalf("hold: %d %s %s", code, out, errOut)
	}
	for key, o := range c.Objects("evidence") {
		// The case's objects; the locks beside the cases are no evidence.
		if strings.HasPrefix(key, "cases/case-h/") && o.LegalHold != s3types.ObjectLockLegalHoldStatusOn {
			t.Errorf("%s not held", key)
		}
	}
	if code, _, errOut := runCLI(t, c, "hold", "--case-id", "case-h", "--evidence-dir", t.TempDir()); code != exitUsage || !strings.Contains(errOut, "S3 evidence bucket") {
		t.Fatalf("hold on a folder: %d %s", code, errOut)
	}
	code, out, _ := runCLI(t, c, "cases", "list", "--evidence-bucket", "evidence", "-o", "json")
	var list []custody.CaseSummary
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].InstanceID != s.InstanceID {
		t.Fatalf("cases list: %d %s", code, out)
	}
}

// A hold that fails on one object says so in the table, counts it once,
// and exits 1.
func TestHoldShowsFailures(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	c.AddBucket("evidence", fakeaws.BucketOptions{ObjectLockDefaultRetention: &fakeaws.Retention{Mode: s3types.ObjectLockRetentionModeGovernance, Days: 30}})
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-hf", "--evidence-bucket", "evidence"); code != exitOK {
		t.Fatalf("respond: %d %s", code, errOut)
	}
	n := 0
	for key := range c.Objects("evidence") {
		if strings.HasPrefix(key, "cases/case-hf/") { // the case's objects; its run lock is beside the cases
			n++
		}
	}
	c.Fail("PutObjectLegalHold", "InternalError", 1)
	code, out, errOut := runCLI(t, c, "hold", "--case-id", "case-hf", "--evidence-bucket", "evidence")
	want := fmt.Sprintf("Objects   %d of %d done, 1 failed", n-1, n)
	if code != exitContainmentFailed || !strings.Contains(out, want) || !strings.Contains(out, "FAILED") ||
		!strings.Contains(errOut, fmt.Sprintf("1 of %d objects failed", n)) {
		t.Fatalf("exit %d, want %q in\n%s\n%s", code, want, out, errOut)
	}
}
