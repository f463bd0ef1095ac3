package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A run of a case holds the case while it runs: two runs of the same case
// at once would each act on the instance and then collide on the record
// (the same run number), and the loser's evidence would be missing from it.
//
// The lock of run N is locks/case/<case-id>/run-NNN.json, written once by
// the run that takes the number. It is released by the record: once the
// record holds run N (or any later run), the next run takes another number.
// A run that dies before it records its end keeps its number. While it runs
// it writes a heartbeat every HeartbeatInterval
// (locks/case/<case-id>/run-NNN/<minute>.json), and a run not heard of for
// StaleAfter, or past its deadline (a Lambda invocation cannot outlive its
// own), is dead: the next run skips its number (the record then shows a
// gap, a run that started and never recorded its end).

// Heartbeats of a run lock: one per HeartbeatInterval, in slots of that
// length; a run with none in the last StaleAfter is dead.
const (
	HeartbeatInterval = time.Minute
	StaleAfter        = 3 * HeartbeatInterval
)

// RunLock is the lock object of one run of a case.
type RunLock struct {
	CaseID string `json:"case_id"`
	Run    int    `json:"run"`
	// Holder is who runs it (the caller's ARN), for the one who waits.
	Holder string    `json:"holder"`
	Taken  time.Time `json:"taken_at"`
	// Until is the run's deadline, when it has one: it cannot run past it.
	Until *time.Time `json:"until,omitempty"`
}

// alive reports whether the holder of a lock, last seen at seen, may still
// be running at now.
func (l RunLock) alive(seen, now time.Time) bool {
	if l.Until != nil && now.After(*l.Until) {
		return false
	}
	return now.Sub(seen) < StaleAfter
}

// TakenAt is when the run took the lock.
func (l RunLock) TakenAt() time.Time { return l.Taken }

// heartbeat is one sign of life of a run.
type heartbeat struct {
	At time.Time `json:"at"`
}

func (h heartbeat) TakenAt() time.Time { return h.At }

func runLockPath(caseID string, run int) string {
	return fmt.Sprintf("case/%s/run-%03d.json", caseID, run)
}

func heartbeatPath(caseID string, run int, at time.Time) string {
	return fmt.Sprintf("case/%s/run-%03d/%s.json", caseID, run, at.UTC().Truncate(HeartbeatInterval).Format("20060102T1504Z"))
}

// BusyError is returned when another run holds the case.
type BusyError struct {
	Lock RunLock
	// LastSeen is the holder's newest sign of life.
	LastSeen time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("case %s is held by run %d, started %s by %s and alive at %s: wait for it to end (it records its end in the case), "+
		"or, if it died, run again after %s", e.Lock.CaseID, e.Lock.Run, e.Lock.Taken.Format(time.RFC3339), e.Lock.Holder,
		e.LastSeen.Format(time.RFC3339), e.LastSeen.Add(StaleAfter).Format(time.RFC3339))
}

// maxClaims bounds the numbers a claim tries: each dead run skipped, or
// each record found newer, costs one.
const maxClaims = 20

// ClaimRun takes the lock of the run that continues the case: rec.Run, or
// a later number when that one is taken by a run that has ended (the record
// is then read again: it has moved on) or died (its number is skipped). The
// deadline of ctx, when it has one, is the run's. It returns the lock and
// the record the run continues; a *BusyError when a live run holds the
// case.
func ClaimRun(ctx context.Context, store Store, rec *Record, caseID, holder string, now func() time.Time) (*RunLock, *Record, error) {
	copied := *rec
	rec = &copied
	var until *time.Time
	if d, ok := ctx.Deadline(); ok {
		d = d.UTC()
		until = &d
	}
	for range maxClaims {
		want := RunLock{CaseID: caseID, Run: rec.Run, Holder: holder, Taken: now().UTC(), Until: until}
		took, err := putLock(ctx, store, runLockPath(caseID, rec.Run), want)
		if err != nil {
			return nil, rec, fmt.Errorf("case %s: %w", caseID, err)
		}
		if took {
			return &want, rec, nil
		}
		newer, err := LoadRecord(ctx, store, caseID)
		if err != nil {
			return nil, rec, err
		}
		if newer.Run > rec.Run {
			rec = newer // the holder ended and recorded its run
			continue
		}
		held, seen, err := lastSeen(ctx, store, caseID, rec.Run, now())
		if err != nil {
			return nil, rec, fmt.Errorf("case %s: %w", caseID, err)
		}
		if held.alive(seen, now()) {
			return nil, rec, &BusyError{Lock: held, LastSeen: seen}
		}
		rec.Run++ // a run that died without recording its end
	}
	return nil, rec, fmt.Errorf("case %s: no free run number after %d tries", caseID, maxClaims)
}

// lastSeen reads the lock of a run and its newest heartbeat within
// StaleAfter (older ones do not matter).
func lastSeen(ctx context.Context, store Store, caseID string, run int, now time.Time) (RunLock, time.Time, error) {
	held, err := readLock[RunLock](ctx, store, runLockPath(caseID, run))
	if err != nil {
		return held, time.Time{}, err
	}
	seen := held.Taken
	for at := now; now.Sub(at) < StaleAfter; at = at.Add(-HeartbeatInterval) {
		hb, err := readLock[heartbeat](ctx, store, heartbeatPath(caseID, run, at))
		switch {
		case err == nil && hb.At.After(seen):
			seen = hb.At
		case err != nil && !errors.Is(err, ErrNotFound):
			return held, seen, err
		}
	}
	return held, seen, nil
}

// Beat writes the run's sign of life for the minute of at (once a minute).
func (l *RunLock) Beat(ctx context.Context, store Store, at time.Time) error {
	_, err := putLock(ctx, store, heartbeatPath(l.CaseID, l.Run, at), heartbeat{At: at.UTC()})
	return err
}

// KeepAlive beats every HeartbeatInterval until stop is called. A beat that
// fails is tried again at the next tick: the store may come back, and a
// run is not stopped for it.
func (l *RunLock) KeepAlive(ctx context.Context, store Store, now func() time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = l.Beat(ctx, store, now())
			}
		}
	}()
	return func() { cancel(); <-done }
}
