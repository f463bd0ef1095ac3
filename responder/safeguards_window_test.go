package responder_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/internal/casetest"
)

// The blast radius slides over 60 minutes: the limit contained at 09:59
// refuses a case at 10:01 (not freed by the clock hour), which is
// contained at 10:59:30 once those slots aged out; alone and in a fleet
// (the ledger).
func TestBlastRadiusWindow(t *testing.T) {
	at := func(hh, mm, ss int) time.Time { return time.Date(2026, 11, 23, hh, mm, ss, 0, time.UTC) }
	for _, fleet := range []bool{false, true} {
		t.Run(map[bool]string{false: "alone", true: "fleet"}[fleet], func(t *testing.T) {
			c := fakeaws.New()
			store := &evidence.Folder{Root: t.TempDir()}
			ledger := &evidence.BlastLedger{Store: store}
			const limit = 2
			respond := func(now time.Time, id string) (*responder.Result, string, error) {
				r := casetest.NewResponder(c, store)
				r.Now = func() time.Time { return now }
				if fleet {
					r.BlastLedger = ledger
				}
				caseID := responder.NewCaseID(now)
				res, err := r.Respond(context.Background(), responder.Request{InstanceID: id, CaseID: caseID, BlastRadius: limit})
				return res, caseID, err
			}
			var held []string
			for range limit {
				res, caseID, err := respond(at(9, 59, 0), c.AddInstance(fakeaws.InstanceSpec{}))
				if err != nil || res.Status != evidence.CaseContained {
					t.Fatalf("at 09:59: %v %v", err, res)
				}
				held = append(held, caseID)
			}
			late := c.AddInstance(fakeaws.InstanceSpec{})
			_, _, err := respond(at(10, 1, 0), late)
			var full *evidence.BlastRadiusError
			if !errors.Is(err, responder.ErrBlastRadius) || !errors.As(err, &full) {
				t.Fatalf("at 10:01: %v, want the blast radius refusal", err)
			}
			msg := err.Error()
			for _, want := range append(held, "the limit is 2 per account in any 60 minutes", "wait until 2026-11-23T10:59:00Z") {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q does not say %q", msg, want)
				}
			}
			if strings.Count(msg, "blast radius reached") != 1 {
				t.Errorf("refusal %q says it is reached more than once", msg)
			}
			if v := c.Instance(late); v.DisableAPITermination {
				t.Error("the refused case changed its instance")
			}
			res, _, err := respond(at(10, 59, 30), late)
			if err != nil || res.Status != evidence.CaseContained {
				t.Fatalf("at 10:59:30: %v %v", err, res)
			}
			if b := res.Manifest.Runs[0].BlastRadius; b == nil || b.Hour != "20261123T10Z" || b.Slot != 1 {
				t.Errorf("at 10:59:30 records %+v, want slot 1 of 10:00", b)
			}
			assertQuarantined(t, c, late)
		})
	}
}
