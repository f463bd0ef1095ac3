package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// respond --case-id after a run whose save stopped before manifest.json:
// the case goes on from the history copy (run 2), instead of failing for
// ever on run 1's history.
func TestRespondContinuesAnInterruptedSave(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	args := []string{"respond", "--instance-id", s.InstanceID, "--case-id", "case-cut", "--evidence-dir", dir}
	if code, _, errOut := runCLI(t, c, args...); code != exitOK {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	manifest := filepath.Join(dir, "case-cut", evidence.ManifestName)
	must(t, os.Chmod(manifest, 0o640))
	must(t, os.Remove(manifest))

	code, _, errOut := runCLI(t, c, args...)
	if code != exitOK {
		t.Fatalf("next run: exit %d: %s", code, errOut)
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, "case-cut")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Runs) != 2 || m.Runs[1].Number != 2 {
		t.Fatalf("runs %+v, want 1 and 2", m.Runs)
	}
}

// respond --case-id while another run of the case is at work: refused
// before any change (exit 4), saying who holds the case.
func TestRespondRefusesAHeldCase(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	dir := t.TempDir()
	store := &evidence.Folder{Root: dir}
	if _, _, err := evidence.ClaimRun(context.Background(), store, &evidence.Record{Run: 1}, "case-held", "arn:aws:iam::111122223333:user/alice", testDeps(c).now); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, c, "respond", "--instance-id", s.InstanceID, "--case-id", "case-held", "--evidence-dir", dir)
	if code != exitCannotStart || !strings.Contains(errOut, "held by run 1") || !strings.Contains(errOut, "alice") {
		t.Fatalf("exit %d, stderr %q; want %d and who holds the case", code, errOut, exitCannotStart)
	}
	if n := c.CallCount("CreateSnapshots") + c.CallCount("ModifyNetworkInterfaceAttribute"); n != 0 {
		t.Errorf("a refused run acted on the instance (%d calls)", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
