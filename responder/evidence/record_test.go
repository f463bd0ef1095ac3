package evidence_test

import (
	"context"
	"testing"

	"github.com/responder-ir/responder/responder/evidence"
)

// LoadRecord finds the record a new run continues, whatever a stopped save
// left: the newest usable history copy, and a run number past every number
// history holds.
func TestLoadRecord(t *testing.T) {
	ctx := context.Background()
	record := func(runs ...int) (*evidence.Manifest, []byte) {
		m := &evidence.Manifest{SchemaVersion: evidence.SchemaVersion, CaseID: "case-1", InstanceID: "i-0123456789abcdef0"}
		for _, n := range runs {
			m.Runs = append(m.Runs, evidence.Run{Number: n})
		}
		b, err := evidence.EncodeManifest(m)
		must(t, err)
		return m, b
	}
	seal := func(b []byte) []byte { return []byte(evidence.SHA256(b) + "\n") }
	for _, tc := range []struct {
		name            string
		prepare         func(store evidence.Store)
		wantLast        int // last run of the record (0: none)
		wantRun         int
		wantInterrupted int
	}{
		{name: "new case", prepare: func(evidence.Store) {}, wantRun: 1},
		{name: "saved", prepare: func(s evidence.Store) {
			m, _ := record(1)
			must(t, s.SaveManifest(ctx, m))
		}, wantLast: 1, wantRun: 2},
		{name: "stopped before the seal", prepare: func(s evidence.Store) {
			m, _ := record(1)
			must(t, s.SaveManifest(ctx, m))
			_, b := record(1, 2)
			_, err := s.Put(ctx, "case-1", evidence.HistoryName(2), b, "application/json")
			must(t, err)
		}, wantLast: 2, wantRun: 3, wantInterrupted: 2},
		{name: "stopped before manifest.json", prepare: func(s evidence.Store) {
			_, b := record(1)
			_, err := s.Put(ctx, "case-1", evidence.HistoryName(1), b, "application/json")
			must(t, err)
			_, err = s.Put(ctx, "case-1", evidence.SealName(1), seal(b), "text/plain")
			must(t, err)
		}, wantLast: 1, wantRun: 2, wantInterrupted: 1},
		{name: "history copy that does not match its seal", prepare: func(s evidence.Store) {
			m, _ := record(1)
			must(t, s.SaveManifest(ctx, m))
			_, b := record(1, 2)
			_, err := s.Put(ctx, "case-1", evidence.HistoryName(2), b, "application/json")
			must(t, err)
			_, err = s.Put(ctx, "case-1", evidence.SealName(2), seal([]byte("other")), "text/plain")
			must(t, err)
		}, wantLast: 1, wantRun: 3},
		{name: "a seal without its history copy", prepare: func(s evidence.Store) {
			m, _ := record(1)
			must(t, s.SaveManifest(ctx, m))
			_, err := s.Put(ctx, "case-1", evidence.SealName(2), seal([]byte("x")), "text/plain")
			must(t, err)
		}, wantLast: 1, wantRun: 3},
		{name: "manifest.json unreadable, history sealed", prepare: func(s evidence.Store) {
			_, b := record(1)
			_, err := s.Put(ctx, "case-1", evidence.HistoryName(1), b, "application/json")
			must(t, err)
			_, err = s.Put(ctx, "case-1", evidence.SealName(1), seal(b), "text/plain")
			must(t, err)
			_, err = s.Put(ctx, "case-1", evidence.ManifestName, []byte("{not json"), "application/json")
			must(t, err)
		}, wantLast: 1, wantRun: 2, wantInterrupted: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &evidence.Folder{Root: t.TempDir()}
			tc.prepare(store)
			rec, err := evidence.LoadRecord(ctx, store, "case-1")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Manifest.LastRun() != tc.wantLast || rec.Run != tc.wantRun || rec.Interrupted != tc.wantInterrupted {
				t.Fatalf("record of run %d, next run %d, interrupted %d; want %d, %d, %d",
					rec.Manifest.LastRun(), rec.Run, rec.Interrupted, tc.wantLast, tc.wantRun, tc.wantInterrupted)
			}
			// Completing the stopped save leaves the store consistent.
			must(t, evidence.RepairRecord(ctx, store, rec))
			if tc.wantInterrupted > 0 {
				again, err := evidence.LoadRecord(ctx, store, "case-1")
				if err != nil || again.Interrupted != 0 || again.Manifest.LastRun() != tc.wantLast {
					t.Fatalf("after the repair: %+v %v", again, err)
				}
			}
		})
	}
}
