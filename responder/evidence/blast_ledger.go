package evidence

import (
	"context"
	"fmt"
	"sync"
)

// BlastLedger takes the blast-radius slots of many cases of one process (a
// fleet) without racing itself: it reads an account's hour and the hour
// before once, in one round, then gives each case the next free slot it may
// take with one write. TakeBlastSlot alone would read both hours for each
// case and, with many cases at once, have them all race for the same first
// free slot. Slots another process takes meanwhile are found at the write
// (it fails) and skipped, so the limit holds across processes as with
// TakeBlastSlot.
type BlastLedger struct {
	Store Store

	mu    sync.Mutex
	hours map[string]*ledgerHour
}

// ledgerHour is the ledger's view of one account's hour and the hour before.
type ledgerHour struct {
	view *blastView
	// reserved: being written by a take of this ledger.
	reserved map[int]bool
}

// Take is TakeBlastSlot through the ledger.
func (l *BlastLedger) Take(ctx context.Context, want BlastSlot, limit int) (BlastSlot, bool, error) {
	want, err := blastWant(want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	h, err := l.hour(ctx, want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	for {
		k, mine, window := l.pick(h, want, limit)
		switch {
		case mine != nil:
			return *mine, true, nil
		case k == 0:
			return BlastSlot{}, false, blastRefusal(want, limit, window)
		}
		s, took, err := putBlastSlot(ctx, l.Store, want, k)
		if err != nil {
			l.settle(h, k, nil)
			return BlastSlot{}, false, err
		}
		l.settle(h, k, &s)
		if took || s.CaseID == want.CaseID {
			return s, !took, nil
		}
	}
}

// hour reads an account's hour and the hour before once (per limit).
func (l *BlastLedger) hour(ctx context.Context, want BlastSlot, limit int) (*ledgerHour, error) {
	key := fmt.Sprintf("%s/%s/%d", want.AccountID, want.Hour, limit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hours[key]; ok {
		return h, nil
	}
	v, err := readBlastView(ctx, l.Store, want, limit)
	if err != nil {
		return nil, err
	}
	if l.hours == nil {
		l.hours = map[string]*ledgerHour{}
	}
	h := &ledgerHour{view: v, reserved: map[int]bool{}}
	l.hours[key] = h
	return h, nil
}

// pick finds the case's own slot, or reserves the first free slot a run at
// want.Taken may take (0 when none is; window then holds the window's
// slots).
func (l *BlastLedger) pick(h *ledgerHour, want BlastSlot, limit int) (int, *BlastSlot, []BlastSlot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := h.view.mine(want.CaseID); s != nil {
		return 0, s, nil
	}
	allowed, window := h.view.allowed(limit, want.Taken)
	window = append(window, h.view.held()...)
	for k := range h.reserved {
		window = append(window, *beingTaken(k, want.Taken))
	}
	for k := 1; k <= allowed; k++ {
		if h.view.hour[k] == nil && !h.reserved[k] {
			h.reserved[k] = true
			return k, nil, nil
		}
	}
	return 0, nil, window
}

// settle records what a reserved slot turned out to be (nil: still free).
func (l *BlastLedger) settle(h *ledgerHour, k int, s *BlastSlot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(h.reserved, k)
	if s != nil {
		h.view.hour[k] = s
	}
}
