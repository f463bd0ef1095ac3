package evidence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// The claim of an instance: one case at a time while its run is at work;
// free for another case once the run is recorded, or once it died.
func TestClaimInstance(t *testing.T) {
	ctx := context.Background()
	store := &evidence.Folder{Root: t.TempDir()}
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	now := func() time.Time { return at }
	claim := func(caseID string) error {
		return evidence.ClaimInstance(ctx, store, evidence.InstanceClaim{AccountID: "111122223333", Region: "us-east-1",
			InstanceID: "i-0123456789abcdef0", CaseID: caseID, Holder: "alice", Taken: now()}, now)
	}
	if err := claim("case-a"); err != nil {
		t.Fatal(err)
	}
	if err := claim("case-a"); err != nil {
		t.Errorf("the same case again: %v", err)
	}
	var busy *evidence.InstanceBusyError
	if err := claim("case-b"); !errors.As(err, &busy) || busy.Held.CaseID != "case-a" {
		t.Fatalf("another case while case-a starts: %v; want busy, held by case-a", err)
	}
	lock, _, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 1}, "case-a", "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * evidence.StaleAfter)
	if err := lock.Beat(ctx, store, at); err != nil {
		t.Fatal(err)
	}
	if err := claim("case-b"); !errors.As(err, &busy) {
		t.Fatalf("another case while case-a's run beats: %v; want busy", err)
	}
	m := &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: "case-a", InstanceID: "i-0123456789abcdef0",
		Runs: []evidence.Run{{Number: 1, StartedAt: at, EndedAt: at}}}
	if err := evidence.SaveRun(ctx, store, m); err != nil {
		t.Fatal(err)
	}
	if err := claim("case-b"); err != nil {
		t.Errorf("another case once case-a's run is recorded: %v", err)
	}
	// case-a's own, dead, claim comes first in the window: case-b's,
	// taken after it, holds (a rerun or a release of case-a waits).
	if err := claim("case-a"); !errors.As(err, &busy) || busy.Held.CaseID != "case-b" {
		t.Errorf("case-a again while case-b starts: %v; want busy, held by case-b", err)
	}
	at = at.Add(evidence.StaleAfter / 2)
	if err := claim("case-c"); !errors.As(err, &busy) || busy.Held.CaseID != "case-b" {
		t.Errorf("a third case while case-b starts: %v; want busy, held by case-b", err)
	}
	at = at.Add(evidence.StaleAfter)
	if err := claim("case-c"); err != nil {
		t.Errorf("a third case once case-b died before its run started: %v", err)
	}
}
