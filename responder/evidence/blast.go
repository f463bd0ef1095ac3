package evidence

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sync/errgroup"
)

// The blast radius bounds how many instances the toolkit contains in one
// account in any 60 minutes, whoever runs it (the CLI, the Lambda, several
// at once): a runaway automation, or a wrong filter, cannot isolate a fleet.
//
// Each case that contains an instance takes one slot before it changes
// anything: the object
// locks/blast-radius/<account>/<YYYYMMDDTHHZ>/slot-NNN.json of the clock
// hour it runs in, written once (putLock), so that two runs racing for the
// last slot cannot both take it. The window slides: a run at time t of
// hour H reads the slots of H and of H-1 in one round, and may take slot k
// of H only if k <= limit - recent, recent being the slots of H-1 taken
// after t-60min (taken_at; a slot of H-1 being written counts). recent
// only falls as t grows and slot numbers of an hour are unique, so every
// 60-minute window holds at most limit slots (the highest-numbered slot of
// H in a window was taken when every slot of H-1 in that window was
// recent). A case takes one slot once: a later run of the case finds its
// slot (in the record, or among the slots of H and H-1 when the run that
// took it died) and takes no other. Slots are never freed: they age out.
//
// What this does not close: a slot of H-1 whose write lands after a run of
// H read H-1 (both runs within one store round trip of the hour's end, plus
// the skew between their clocks) is not counted by that run, so the window
// across the boundary can hold those in-flight slots above the limit. Within
// an hour, racing runs contend for the same objects and cannot overshoot.
// A run reads slots 1..limit of H-1 (its own limit): slots above it, taken
// by a run that raised the limit, are not counted.

// DefaultBlastRadius is the default limit: instances contained per account
// in any 60 minutes.
const DefaultBlastRadius = 20

// MaxBlastRadius bounds the limit a run may ask for (slots 1..limit of the
// hour and of the hour before are read before one is taken).
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

// BlastWindow is the span over which the limit counts slots.
const BlastWindow = time.Hour

// BlastHour names the hour of at, as slot paths and records write it.
func BlastHour(at time.Time) string { return at.UTC().Truncate(time.Hour).Format("20060102T15Z") }

// recentBlastSlot reports whether a slot taken at taken still counts in
// the window of a run at t.
func recentBlastSlot(taken, t time.Time) bool { return taken.After(t.Add(-BlastWindow)) }

func blastSlotPath(account, hour string, slot int) string {
	return fmt.Sprintf("blast-radius/%s/%s/slot-%03d.json", account, hour, slot)
}

// BlastRadiusError: the window holds the limit's slots.
type BlastRadiusError struct {
	AccountID string
	Hour      string
	Limit     int
	// At is when the run looked: the window is the 60 minutes before.
	At time.Time
	// Cases are the cases that hold the window's slots, oldest first.
	Cases []string
	// NextFree is when a slot frees at the latest, unless another run
	// takes it first: when enough of the window's slots have aged out.
	NextFree time.Time
}

func (e *BlastRadiusError) Error() string {
	return fmt.Sprintf("blast radius reached: %d instances of account %s were already contained in the 60 minutes before %s (cases %s); "+
		"the limit is %d per account in any 60 minutes; nothing was changed. Raise it for one run with --blast-radius N "+
		"(the Lambda: RESPONDER_BLAST_RADIUS), or wait until %s, when the oldest of these slots has aged out (unless another run takes it first)",
		len(e.Cases), e.AccountID, e.At.UTC().Format(time.RFC3339), strings.Join(e.Cases, ", "), e.Limit, e.NextFree.UTC().Format(time.RFC3339))
}

// blastRefusal is the refusal of want at want.Taken, given the slots that
// hold its window.
func blastRefusal(want BlastSlot, limit int, window []BlastSlot) *BlastRadiusError {
	sort.SliceStable(window, func(i, j int) bool { return window[i].Taken.Before(window[j].Taken) })
	e := &BlastRadiusError{AccountID: want.AccountID, Hour: want.Hour, Limit: limit, At: want.Taken, NextFree: want.Taken.Add(BlastWindow)}
	for _, s := range window {
		e.Cases = append(e.Cases, s.CaseID)
	}
	if n := len(window); n >= limit {
		// Below the limit once n-limit+1 of them have aged out.
		e.NextFree = window[n-limit].Taken.Add(BlastWindow)
	}
	return e
}

// blastReadsInFlight is how many slots of an hour are read at once.
const blastReadsInFlight = 32

// beingTaken stands for a slot taken but not readable as one (being
// written): taken by a case not known yet, at the latest at bound.
func beingTaken(k int, bound time.Time) *BlastSlot {
	return &BlastSlot{CaseID: "(being taken)", Slot: k, Taken: bound}
}

// readBlastSlots reads the slots 1..limit of an account's hour: a slot not
// taken is nil; a slot being written is taken at the latest at bound.
func readBlastSlots(ctx context.Context, store Store, account, hour string, limit int, bound time.Time) ([]*BlastSlot, error) {
	held := make([]*BlastSlot, limit+1)
	var (
		g    errgroup.Group
		mu   sync.Mutex
		errs *multierror.Error
	)
	g.SetLimit(blastReadsInFlight)
	for k := 1; k <= limit; k++ {
		g.Go(func() error {
			s, err := readLock[BlastSlot](ctx, store, blastSlotPath(account, hour, k))
			switch {
			case err == nil:
				held[k] = &s
			case errors.Is(err, errNoLockRecord):
				held[k] = beingTaken(k, bound)
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

// blastView is what a run reads of its window: slots 1..limit of its hour
// and of the hour before (nil: free).
type blastView struct {
	hour, prev []*BlastSlot
}

// readBlastView reads want's hour and the hour before in one round.
func readBlastView(ctx context.Context, store Store, want BlastSlot, limit int) (*blastView, error) {
	start, err := time.Parse("20060102T15Z", want.Hour)
	if err != nil {
		return nil, fmt.Errorf("blast radius hour %q: %w", want.Hour, err)
	}
	v := &blastView{}
	var prevErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// A slot of the hour before is taken before this hour starts.
		v.prev, prevErr = readBlastSlots(ctx, store, want.AccountID, BlastHour(start.Add(-time.Hour)), limit, start)
	}()
	v.hour, err = readBlastSlots(ctx, store, want.AccountID, want.Hour, limit, want.Taken)
	<-done
	if err = errors.Join(err, prevErr); err != nil {
		return nil, fmt.Errorf("blast radius of account %s at %s: %w", want.AccountID, want.Hour, err)
	}
	return v, nil
}

// mine is the slot the case holds in the view, if any.
func (v *blastView) mine(caseID string) *BlastSlot {
	for _, held := range [][]*BlastSlot{v.hour, v.prev} {
		for _, s := range held {
			if s != nil && s.CaseID == caseID {
				return s
			}
		}
	}
	return nil
}

// allowed is the highest slot of the hour a run at t may take: the limit
// less the hour before's slots still in t's window; and those slots.
func (v *blastView) allowed(limit int, t time.Time) (int, []BlastSlot) {
	var recent []BlastSlot
	for _, s := range v.prev {
		if s != nil && recentBlastSlot(s.Taken, t) {
			recent = append(recent, *s)
		}
	}
	return limit - len(recent), recent
}

// held lists the taken slots of the hour, all in any window of it.
func (v *blastView) held() []BlastSlot {
	var out []BlastSlot
	for _, s := range v.hour {
		if s != nil {
			out = append(out, *s)
		}
	}
	return out
}

// TakeBlastSlot takes a slot of want's account and hour (the hour of
// want.Taken, which must be set) for want's case, within the limit over the
// 60 minutes before want.Taken. It returns the slot the case holds: a new
// one, or the one the case took earlier in the hour or the hour before
// (reused true). A *BlastRadiusError when the window holds the limit's
// slots of other cases. It reads the slots of the hour and of the hour
// before at once, then writes the first free one it may take: two round
// trips unless another run takes it first.
func TakeBlastSlot(ctx context.Context, store Store, want BlastSlot, limit int) (BlastSlot, bool, error) {
	want, err := blastWant(want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	v, err := readBlastView(ctx, store, want, limit)
	if err != nil {
		return BlastSlot{}, false, err
	}
	if s := v.mine(want.CaseID); s != nil {
		return *s, true, nil
	}
	allowed, window := v.allowed(limit, want.Taken)
	window = append(window, v.held()...)
	for k := 1; k <= allowed; k++ {
		if v.hour[k] != nil {
			continue
		}
		s, took, err := putBlastSlot(ctx, store, want, k)
		switch {
		case err != nil:
			return BlastSlot{}, false, err
		case took:
			return s, false, nil
		case s.CaseID == want.CaseID:
			return s, true, nil
		}
		window = append(window, s)
	}
	return BlastSlot{}, false, blastRefusal(want, limit, window)
}

// blastWant checks the limit and completes want.
func blastWant(want BlastSlot, limit int) (BlastSlot, error) {
	if limit < 1 || limit > MaxBlastRadius {
		return want, fmt.Errorf("blast radius %d: want 1 to %d", limit, MaxBlastRadius)
	}
	if want.Taken.IsZero() {
		return want, errors.New("blast radius slot: no time taken")
	}
	want.Hour = BlastHour(want.Taken) // the window is want.Taken's
	want.Limit = limit
	return want, nil
}

// putBlastSlot writes want as slot k of its hour, once: took true when it
// did; else the slot another run holds (being written: taken at the latest
// at want.Taken).
func putBlastSlot(ctx context.Context, store Store, want BlastSlot, k int) (BlastSlot, bool, error) {
	want.Slot = k
	p := blastSlotPath(want.AccountID, want.Hour, k)
	took, err := putLock(ctx, store, p, want)
	switch {
	case err != nil:
		return BlastSlot{}, false, err
	case took:
		return want, true, nil
	}
	s, err := readLock[BlastSlot](ctx, store, p)
	switch {
	case errors.Is(err, errNoLockRecord):
		return *beingTaken(k, want.Taken), false, nil
	case err != nil:
		return BlastSlot{}, false, fmt.Errorf("slot %s is taken but cannot be read: %w", p, err)
	}
	return s, false, nil
}
