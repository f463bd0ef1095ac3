package main

import (
	"context"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// A protected instance is refused (exit 4, nothing changed) unless --force,
// and the forced run names who forced it.
func TestRespondProtected(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{Volumes: 1, Tags: map[string]string{"team:keep": "true"}})
	dir := t.TempDir()
	args := []string{"respond", "--instance-id", id, "--case-id", "case-prot", "--evidence-dir", dir, "--protected-tag", "team:keep"}
	code, _, errOut := runCLI(t, c, args...)
	if code != exitCannotStart || !strings.Contains(errOut, "team:keep=true") || !strings.Contains(errOut, "--force") {
		t.Fatalf("exit %d, stderr %q; want %d naming the tag and --force", code, errOut, exitCannotStart)
	}
	if n := c.CallCount("CreateSnapshots") + c.CallCount("ModifyNetworkInterfaceAttribute"); n != 0 {
		t.Errorf("a refused run acted on the instance (%d calls)", n)
	}
	code, _, errOut = runCLI(t, c, append(args, "--force")...)
	if code != 0 {
		t.Fatalf("forced: exit %d: %s", code, errOut)
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, "case-prot")
	if err != nil {
		t.Fatal(err)
	}
	if f := m.Runs[0].Forced; f == nil || f.By != m.Runs[0].Actor || f.Tag != "team:keep=true" {
		t.Fatalf("forced %+v, want the actor %s", f, m.Runs[0].Actor)
	}
}

// The blast radius: --blast-radius N allows N for one run and is recorded;
// past it the run is refused with exit 4, naming the limit and the flag.
func TestRespondBlastRadius(t *testing.T) {
	c := fakeaws.New()
	dir := t.TempDir()
	a, b := c.AddInstance(fakeaws.InstanceSpec{}), c.AddInstance(fakeaws.InstanceSpec{})
	// Fill the hour's default slots, as other runs would have.
	for k := 1; k <= evidence.DefaultBlastRadius; k++ {
		if _, _, err := evidence.TakeBlastSlot(context.Background(), &evidence.Folder{Root: dir}, evidence.BlastSlot{
			AccountID: c.Account, CaseID: "case-other-" + string(rune('a'+k)), Taken: epoch,
		}, evidence.DefaultBlastRadius); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errOut := runCLI(t, c, "respond", "--instance-id", a, "--case-id", "case-a", "--evidence-dir", dir)
	if code != exitCannotStart || !strings.Contains(errOut, "the limit is 20 per account in any 60 minutes") || !strings.Contains(errOut, "--blast-radius") {
		t.Fatalf("exit %d, stderr %q; want %d naming the limit", code, errOut, exitCannotStart)
	}
	if n := c.CallCount("CreateSnapshots") + c.CallCount("ModifyNetworkInterfaceAttribute"); n != 0 {
		t.Errorf("a refused run acted on the instance (%d calls)", n)
	}
	code, _, errOut = runCLI(t, c, "respond", "--instance-id", a, "--case-id", "case-a", "--evidence-dir", dir, "--blast-radius", "21")
	if code != 0 {
		t.Fatalf("raised: exit %d: %s", code, errOut)
	}
	m, err := evidence.LoadManifest(context.Background(), &evidence.Folder{Root: dir}, "case-a")
	if err != nil {
		t.Fatal(err)
	}
	if br := m.Runs[0].BlastRadius; br == nil || br.Limit != 21 || br.Slot != 21 || br.RaisedBy != m.Runs[0].Actor {
		t.Fatalf("blast radius %+v", br)
	}
	if code, _, errOut := runCLI(t, c, "respond", "--instance-id", b, "--evidence-dir", dir, "--blast-radius", "21"); code != exitCannotStart {
		t.Fatalf("over the raised limit: exit %d: %s", code, errOut)
	}
	if code, _, _ := runCLI(t, c, "respond", "--instance-id", b, "--evidence-dir", dir, "--blast-radius", "0"); code != exitUsage {
		t.Fatalf("--blast-radius 0: exit %d, want %d", code, exitUsage)
	}
}
