package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// An instance is acted on by one case at a time: before a response changes
// anything, its case claims the instance (ClaimInstance), so that two cases
// (two fleets whose targets overlap, a fleet and a single respond) do not
// snapshot and move the same instance at once. The case's own run lock
// (ClaimRun) keeps two runs of one case apart; the claim keeps two cases
// apart.
//
// The claim of an instance is locks/instances/<account>/<region>/<instance-id>/<window>.json
// (Locker, windows of ClaimWindow). It holds while the case that wrote it is
// at work: its run lock is alive, or the claim is younger than StaleAfter
// (the run is starting). It ends when the case records a run that ended
// after the claim was taken, or when the run dies.

// ClaimWindow is the lock window of instance claims.
const ClaimWindow = 10 * time.Minute

// InstanceClaim is the lock object of an instance's claim.
type InstanceClaim struct {
	AccountID  string    `json:"account_id"`
	Region     string    `json:"region"`
	InstanceID string    `json:"instance_id"`
	CaseID     string    `json:"case_id"`
	Holder     string    `json:"holder"`
	Taken      time.Time `json:"taken_at"`
}

// TakenAt is when the case claimed the instance.
func (c InstanceClaim) TakenAt() time.Time { return c.Taken }

func (c InstanceClaim) key() string {
	return fmt.Sprintf("instances/%s/%s/%s", c.AccountID, c.Region, c.InstanceID)
}

// InstanceBusyError: another case is at work on the instance.
type InstanceBusyError struct {
	Held InstanceClaim
}

func (e *InstanceBusyError) Error() string {
	return fmt.Sprintf("instance %s is being acted on by case %s (claimed %s by %s): wait for that case's run to end, or continue that case",
		e.Held.InstanceID, e.Held.CaseID, e.Held.Taken.Format(time.RFC3339), e.Held.Holder)
}

// ClaimInstance claims want's instance for want's case: nil when the case
// holds it (now, or already), an *InstanceBusyError when another case at
// work does.
func ClaimInstance(ctx context.Context, store Store, want InstanceClaim, now func() time.Time) error {
	locker := &Locker[InstanceClaim]{Store: store, Window: ClaimWindow, Alive: func(ctx context.Context, held InstanceClaim) (bool, error) {
		if held.CaseID == want.CaseID {
			return true, nil
		}
		return caseAtWork(ctx, store, held, now().UTC())
	}}
	held, took, err := locker.Acquire(ctx, want.key(), want)
	if err != nil {
		return fmt.Errorf("claim instance %s: %w", want.InstanceID, err)
	}
	switch {
	case took:
		return nil
	case held.CaseID != want.CaseID:
		return &InstanceBusyError{Held: held}
	}
	return laterClaim(ctx, locker, store, want, now)
}

// laterClaim: the case's own claim answered the Locker first, but it may
// have ended, and another case may have claimed the instance after it in
// the same window (the chain's newest claim): that case, while at work,
// holds the instance.
func laterClaim(ctx context.Context, locker *Locker[InstanceClaim], store Store, want InstanceClaim, now func() time.Time) error {
	for _, at := range []time.Time{want.Taken, want.Taken.Add(-ClaimWindow)} {
		last, found, err := locker.newest(ctx, want.key(), at)
		if err != nil {
			return fmt.Errorf("claim instance %s: %w", want.InstanceID, err)
		}
		if !found || want.Taken.Sub(last.Taken) >= ClaimWindow {
			continue
		}
		if last.CaseID == want.CaseID {
			return nil
		}
		alive, err := caseAtWork(ctx, store, last, now().UTC())
		if err != nil {
			return fmt.Errorf("claim instance %s: is case %s still at work: %w", want.InstanceID, last.CaseID, err)
		}
		if alive {
			return &InstanceBusyError{Held: last}
		}
		return nil
	}
	return nil
}

// caseAtWork reports whether the case of a claim may still be acting on
// the instance.
func caseAtWork(ctx context.Context, store Store, held InstanceClaim, now time.Time) (bool, error) {
	rec, err := LoadRecord(ctx, store, held.CaseID)
	if err != nil {
		return false, err
	}
	if rec.Manifest != nil {
		for _, r := range rec.Manifest.Runs {
			if !r.EndedAt.Before(held.Taken) {
				return false, nil // the claimed run ended and is recorded
			}
		}
	}
	starting := now.Sub(held.Taken) < StaleAfter
	lock, seen, err := lastSeen(ctx, store, held.CaseID, rec.Run, now)
	switch {
	case errors.Is(err, ErrNotFound):
		return starting, nil
	case err != nil:
		return false, err
	}
	return starting || lock.alive(seen, now), nil
}
