package evidence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// The run lock of a case: one holder per run number; released when the
// record holds the run; a holder past its deadline is dead at once.
func TestClaimRun(t *testing.T) {
	ctx := context.Background()
	store := &evidence.Folder{Root: t.TempDir()}
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	now := func() time.Time { return at }

	first, rec, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 1}, "case-1", "alice", now)
	if err != nil || first.Run != 1 || rec.Run != 1 {
		t.Fatalf("first claim: %+v %+v %v", first, rec, err)
	}
	var busy *evidence.BusyError
	if _, _, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 1}, "case-1", "bob", now); !errors.As(err, &busy) || busy.Lock.Holder != "alice" {
		t.Fatalf("second claim while the first runs: %v", err)
	}

	// The first run records its end: the next claim reads the record again
	// and takes run 2.
	m := &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: "case-1", InstanceID: "i-0123456789abcdef0", Runs: []evidence.Run{{Number: 1}}}
	must(t, evidence.SaveRun(ctx, store, m))
	second, rec, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 1}, "case-1", "bob", now)
	if err != nil || second.Run != 2 || rec.Manifest.LastRun() != 1 {
		t.Fatalf("claim after run 1 was recorded: %+v %+v %v", second, rec, err)
	}

	// A run with a deadline (a Lambda invocation) is dead once it passed.
	deadline, cancel := context.WithDeadline(ctx, at.Add(time.Minute))
	defer cancel()
	if _, _, err := evidence.ClaimRun(deadline, store, &evidence.Record{Run: 3}, "case-1", "lambda", now); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Minute)
	fourth, _, err := evidence.ClaimRun(ctx, store, &evidence.Record{Run: 3}, "case-1", "carol", now)
	if err != nil || fourth.Run != 4 {
		t.Fatalf("claim after the holder's deadline: %+v %v, want run 4", fourth, err)
	}
}
