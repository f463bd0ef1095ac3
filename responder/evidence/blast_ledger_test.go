package evidence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// A ledger gives concurrent cases distinct slots, never more than the
// limit, and skips a slot another process took after it read the hour.
func TestBlastLedger(t *testing.T) {
	ctx := context.Background()
	store := &evidence.Folder{Root: t.TempDir()}
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	slot := func(caseID string) evidence.BlastSlot {
		return evidence.BlastSlot{AccountID: "111122223333", CaseID: caseID, InstanceID: "i-0123456789abcdef0", Holder: "alice", Taken: at}
	}
	const limit = 10
	ledger := &evidence.BlastLedger{Store: store}
	if _, _, err := ledger.Take(ctx, slot("case-first"), limit); err != nil {
		t.Fatal(err)
	}
	// Another process takes the next slot, unknown to the ledger's view.
	if s, _, err := evidence.TakeBlastSlot(ctx, store, slot("case-elsewhere"), limit); err != nil || s.Slot != 2 {
		t.Fatalf("other process: slot %d, %v", s.Slot, err)
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		slots = map[int]string{}
		full  int
	)
	for i := range 12 {
		wg.Go(func() {
			id := fmt.Sprintf("case-%02d", i)
			s, _, err := ledger.Take(ctx, slot(id), limit)
			mu.Lock()
			defer mu.Unlock()
			var br *evidence.BlastRadiusError
			switch {
			case errors.As(err, &br):
				full++
			case err != nil:
				t.Error(err)
			case slots[s.Slot] != "":
				t.Errorf("slot %d given to %s and %s", s.Slot, slots[s.Slot], id)
			default:
				slots[s.Slot] = id
			}
		})
	}
	wg.Wait()
	if len(slots) != limit-2 || full != 12-(limit-2) {
		t.Errorf("%d slots taken, %d refused; want %d and %d", len(slots), full, limit-2, 12-(limit-2))
	}
	if slots[1] != "" || slots[2] != "" {
		t.Errorf("slots 1 and 2 were held already, yet given again: %v", slots)
	}
	if s, reused, err := ledger.Take(ctx, slot("case-first"), limit); err != nil || !reused || s.Slot != 1 {
		t.Errorf("the first case again: slot %d, reused %v, %v; want its slot 1", s.Slot, reused, err)
	}
}
