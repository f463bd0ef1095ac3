package evidence

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// BlastLedger takes the blast-radius slots of many cases of one process (a
// fleet) without racing itself: it reads an account's hour once, then gives
// each case the next free slot with one write. TakeBlastSlot alone would
// read every slot of the hour for each case and, with many cases at once,
// have them all race for the same first free slot. Slots another process
// takes meanwhile are found at the write (it fails) and skipped, so the
// limit holds across processes as with TakeBlastSlot.
type BlastLedger struct {
	Store Store

	mu    sync.Mutex
	hours map[string]*ledgerHour
}

// ledgerHour is the ledger's view of one account's hour.
type ledgerHour struct {
	held []*BlastSlot // 1..limit; nil: free
	// reserved: being written by a take of this ledger.
	reserved map[int]bool
}

// Take is TakeBlastSlot through the ledger.
func (l *BlastLedger) Take(ctx context.Context, want BlastSlot, limit int) (BlastSlot, bool, error) {
	if limit < 1 || limit > MaxBlastRadius {
		return BlastSlot{}, false, fmt.Errorf("blast radius %d: want 1 to %d", limit, MaxBlastRadius)
	}
	if want.Hour == "" {
		want.Hour = BlastHour(want.Taken)
	}
	want.Limit = limit
	h, err := l.hour(ctx, want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	for {
		k, mine, cases := l.pick(h, want, limit)
		switch {
		case mine != nil:
			return *mine, true, nil
		case k == 0:
			return BlastSlot{}, false, &BlastRadiusError{AccountID: want.AccountID, Hour: want.Hour, Limit: limit, Cases: cases}
		}
		want.Slot = k
		p := blastSlotPath(want.AccountID, want.Hour, k)
		took, err := putLock(ctx, l.Store, p, want)
		if err != nil {
			l.settle(h, k, nil)
			return BlastSlot{}, false, err
		}
		if took {
			l.settle(h, k, &want)
			return want, false, nil
		}
		s, err := readLock[BlastSlot](ctx, l.Store, p)
		switch {
		case errors.Is(err, errNoLockRecord):
			s = BlastSlot{CaseID: "(being taken)", Slot: k}
		case err != nil:
			l.settle(h, k, nil)
			return BlastSlot{}, false, fmt.Errorf("slot %s is taken but cannot be read: %w", p, err)
		}
		l.settle(h, k, &s)
		if s.CaseID == want.CaseID {
			return s, true, nil
		}
	}
}

// hour reads an account's hour once (per limit).
func (l *BlastLedger) hour(ctx context.Context, want BlastSlot, limit int) (*ledgerHour, error) {
	key := fmt.Sprintf("%s/%s/%d", want.AccountID, want.Hour, limit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hours[key]; ok {
		return h, nil
	}
	held, err := readBlastSlots(ctx, l.Store, want, limit)
	if err != nil {
		return nil, err
	}
	if l.hours == nil {
		l.hours = map[string]*ledgerHour{}
	}
	h := &ledgerHour{held: held, reserved: map[int]bool{}}
	l.hours[key] = h
	return h, nil
}

// pick finds the case's own slot, or reserves the first free one (0 when
// none is free; cases then names the holders).
func (l *BlastLedger) pick(h *ledgerHour, want BlastSlot, limit int) (int, *BlastSlot, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cases []string
	free := 0
	for k := 1; k <= limit; k++ {
		switch s := h.held[k]; {
		case s != nil && s.CaseID == want.CaseID:
			return 0, s, nil
		case s != nil:
			cases = append(cases, s.CaseID)
		case h.reserved[k]:
			cases = append(cases, "(being taken)")
		case free == 0:
			free = k
		}
	}
	if free > 0 {
		h.reserved[free] = true
	}
	return free, nil, cases
}

// settle records what a reserved slot turned out to be (nil: still free).
func (l *BlastLedger) settle(h *ledgerHour, k int, s *BlastSlot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(h.reserved, k)
	if s != nil {
		h.held[k] = s
	}
}
