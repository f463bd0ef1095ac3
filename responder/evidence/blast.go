package evidence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"
)

// The blast radius bounds how many instances the toolkit contains in one
// account in one hour, whoever runs it (the CLI, the Lambda, several at
// once): a runaway automation, or a wrong filter, cannot isolate a fleet.
//
// Each case that contains an instance takes one slot of its account's hour
// before it changes anything: the object
// locks/blast-radius/<account>/<YYYYMMDDTHHZ>/slot-NNN.json for NNN in
// 1..limit, written once (putLock), so that two runs racing for the last
// slot cannot both take it. A case takes one slot once: a later run of the
// case finds its slot (in the record, or in the hour's slots when the run
// that took it died) and takes no other. Slots are never freed: the next
// hour has its own.

// DefaultBlastRadius is the default limit: instances contained per account
// per hour.
const DefaultBlastRadius = 20

// MaxBlastRadius bounds the limit a run may ask for (each slot of the hour
// is read before one is taken).
const MaxBlastRadius = 1000

// BlastSlot is the lock object of one slot.
type BlastSlot struct {
	AccountID  string    `json:"account_id"`
	Hour       string    `json:"hour"`
	Slot       int       `json:"slot"`
	CaseID     string    `json:"case_id"`
	InstanceID string    `json:"instance_id"`
	Holder     string    `json:"holder"`
	Limit      int       `json:"limit"`
	Taken      time.Time `json:"taken_at"`
}

// TakenAt is when the slot was taken.
func (s BlastSlot) TakenAt() time.Time { return s.Taken }

// BlastHour names the hour of at, as slot paths and records write it.
func BlastHour(at time.Time) string { return at.UTC().Truncate(time.Hour).Format("20060102T15Z") }

func blastSlotPath(account, hour string, slot int) string {
	return fmt.Sprintf("blast-radius/%s/%s/slot-%03d.json", account, hour, slot)
}

// BlastRadiusError: every slot of the hour is taken.
type BlastRadiusError struct {
	AccountID string
	Hour      string
	Limit     int
	// Cases are the cases that hold the slots.
	Cases []string
}

func (e *BlastRadiusError) Error() string {
	hour, _ := time.Parse("20060102T15Z", e.Hour)
	return fmt.Sprintf("blast radius reached: %d instances of account %s were already contained in the hour from %s (cases %s); "+
		"the limit is %d per account per hour; nothing was changed. Raise it for one run with --blast-radius N "+
		"(the Lambda: RESPONDER_BLAST_RADIUS), or wait until %s",
		len(e.Cases), e.AccountID, hour.Format(time.RFC3339), strings.Join(e.Cases, ", "), e.Limit, hour.Add(time.Hour).Format(time.RFC3339))
}

// blastReadsInFlight is how many slots of an hour are read at once.
const blastReadsInFlight = 32

// readBlastSlots reads the slots 1..limit of want's account and hour: a
// slot not taken is nil; a slot taken but not readable as one (being
// written) counts as taken by a case not known yet.
func readBlastSlots(ctx context.Context, store Store, want BlastSlot, limit int) ([]*BlastSlot, error) {
	held := make([]*BlastSlot, limit+1)
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs *multierror.Error
	)
	g.SetLimit(blastReadsInFlight)
	for k := 1; k <= limit; k++ {
		g.Go(func() error {
			s, err := readLock[BlastSlot](ctx, store, blastSlotPath(want.AccountID, want.Hour, k))
			switch {
			case err == nil:
				held[k] = &s
			case errors.Is(err, errNoLockRecord):
				held[k] = &BlastSlot{CaseID: "(being taken)", Slot: k}
			case !errors.Is(err, ErrNotFound):
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait() // each read's failure is gathered in errs
	return held, errs.ErrorOrNil()
}

// TakeBlastSlot takes a slot of want's account and hour (want.Hour, set
// from want.Taken when empty) among 1..limit for want's case. It returns
// the slot the case holds: a new one, or the one the case took earlier in
// the hour (reused true). A *BlastRadiusError when all are taken by other
// cases. It reads every slot of the hour at once, then writes the first
// free one: two round trips unless another run takes it first.
func TakeBlastSlot(ctx context.Context, store Store, want BlastSlot, limit int) (BlastSlot, bool, error) {
	if limit < 1 || limit > MaxBlastRadius {
		return BlastSlot{}, false, fmt.Errorf("blast radius %d: want 1 to %d", limit, MaxBlastRadius)
	}
	if want.Hour == "" {
		want.Hour = BlastHour(want.Taken)
	}
	want.Limit = limit
	held, err := readBlastSlots(ctx, store, want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	var cases []string
	for k := 1; k <= limit; k++ {
		if held[k] != nil {
			if held[k].CaseID == want.CaseID {
				return *held[k], true, nil
			}
			cases = append(cases, held[k].CaseID)
		}
	}
	for k := 1; k <= limit; k++ {
		if held[k] != nil {
			continue
		}
		want.Slot = k
		p := blastSlotPath(want.AccountID, want.Hour, k)
		took, err := putLock(ctx, store, p, want)
		if err != nil {
			return BlastSlot{}, false, err
		}
		if took {
			return want, false, nil
		}
		s, err := readLock[BlastSlot](ctx, store, p)
		switch {
		case errors.Is(err, errNoLockRecord):
			cases = append(cases, "(being taken)")
			continue
		case err != nil:
			return BlastSlot{}, false, fmt.Errorf("slot %s is taken but cannot be read: %w", p, err)
		}
		if s.CaseID == want.CaseID {
			return s, true, nil
		}
		cases = append(cases, s.CaseID)
	}
	return BlastSlot{}, false, &BlastRadiusError{AccountID: want.AccountID, Hour: want.Hour, Limit: limit, Cases: cases}
}
