package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/responder-ir/responder/responder/evidence"
)

// LockFolder is the folder of the evidence store that holds the per-instance
// locks (cases/locks/ in the bucket). It is reserved: no case may take its
// name.
const LockFolder = "locks"

// lockStore is what the lock needs of the evidence store: a write-once Put
// that fails with evidence.ErrExists when the path is taken, and Get.
type lockStore interface {
	Put(ctx context.Context, caseID, path string, body []byte, contentType string) (evidence.Stored, error)
	Get(ctx context.Context, caseID, path string) ([]byte, error)
}

// Lock is the record of the case that holds an instance.
type Lock struct {
	CaseID    string    `json:"case_id"`
	Target    Target    `json:"target"`
	CreatedAt time.Time `json:"created_at"`
	// Input is the input of the case's execution: an event that finds the
	// lock taken starts (or finds) the execution with exactly this input, so
	// a retried or duplicate event never makes a second execution.
	Input CaseInput `json:"input"`
}

// Locker gives each instance to one case at a time. Two events for the same
// instance at the same time produce one response: the first Put of the lock
// object wins, the other event reads it and joins that case.
//
// The lock is an object written once, cases/locks/<account>/<region>/
// <instance-id>/<window>.json, where <window> is the start of the
// Window-long time slot it was taken in. It is never deleted: an evidence
// bucket with Object Lock cannot delete objects before their retention ends,
// so a lock is released by time instead. An event also joins the case of the
// previous slot's lock while that lock is younger than Window, so a slot
// boundary does not split two close events (only two events racing across the
// boundary itself, both before either lock is written, can still make two
// cases).
//
// A case whose execution failed, timed out or was aborted (Alive says so)
// holds nothing: the next event takes the slot's next lock, <window>.1.json
// (then .2, ...), written once as well, and starts a new case, so that an
// instance is never left with a dead response.
type Locker struct {
	Store  lockStore
	Window time.Duration
	// Alive reports whether the case holding a lock still runs, or has yet
	// to start; nil: every holder is alive.
	Alive func(ctx context.Context, held Lock) (bool, error)
}

// MaxLocksPerSlot bounds the chain of locks of one slot: that many dead
// cases of one instance in one lock window is a fault to look at, not to
// retry.
const MaxLocksPerSlot = 8

func (l *Locker) path(t Target, at time.Time, n int) string {
	slot := at.UTC().Truncate(l.Window).Format("20060102T1504Z")
	if n > 0 {
		slot += "." + strconv.Itoa(n)
	}
	return t.AccountID + "/" + t.Region + "/" + t.InstanceID + "/" + slot + ".json"
}

// Acquire takes the lock for want.Target, as of want.CreatedAt. It returns
// the lock that holds the instance: want and true when this call took it,
// or the live earlier holder and false.
func (l *Locker) Acquire(ctx context.Context, want Lock) (Lock, bool, error) {
	now := want.CreatedAt
	prev, found, err := l.newest(ctx, want.Target, now.Add(-l.Window))
	if err != nil {
		return Lock{}, false, err
	}
	if found && now.Sub(prev.CreatedAt) < l.Window && prev.Target == want.Target {
		alive, err := l.alive(ctx, prev)
		if err != nil || alive {
			return prev, false, err
		}
	}
	body, err := json.Marshal(want)
	if err != nil {
		return Lock{}, false, fmt.Errorf("encode lock: %w", err)
	}
	for n := 0; n < MaxLocksPerSlot; n++ {
		path := l.path(want.Target, now, n)
		_, err = l.Store.Put(ctx, LockFolder, path, body, "application/json")
		switch {
		case err == nil:
			return want, true, nil
		case !errors.Is(err, evidence.ErrExists):
			return Lock{}, false, fmt.Errorf("take lock %s: %w", path, err)
		}
		held, err := l.read(ctx, path)
		if err != nil {
			return Lock{}, false, fmt.Errorf("lock %s is taken but cannot be read: %w", path, err)
		}
		alive, err := l.alive(ctx, held)
		if err != nil || alive {
			return held, false, err
		}
	}
	return Lock{}, false, fmt.Errorf("instance %s: %d cases in a row failed within one lock window; not starting another",
		want.Target.InstanceID, MaxLocksPerSlot)
}

// newest reads the last lock of the slot of at: the one that holds it, the
// earlier ones having died.
func (l *Locker) newest(ctx context.Context, t Target, at time.Time) (Lock, bool, error) {
	var last Lock
	found := false
	for n := 0; n < MaxLocksPerSlot; n++ {
		held, err := l.read(ctx, l.path(t, at, n))
		if errors.Is(err, evidence.ErrNotFound) {
			break
		}
		if err != nil {
			return Lock{}, false, err
		}
		last, found = held, true
	}
	return last, found, nil
}

func (l *Locker) alive(ctx context.Context, held Lock) (bool, error) {
	if l.Alive == nil {
		return true, nil
	}
	alive, err := l.Alive(ctx, held)
	if err != nil {
		return false, fmt.Errorf("is case %s still running: %w", held.CaseID, err)
	}
	return alive, nil
}

func (l *Locker) read(ctx context.Context, path string) (Lock, error) {
	b, err := l.Store.Get(ctx, LockFolder, path)
	if err != nil {
		return Lock{}, fmt.Errorf("read lock %s: %w", path, err)
	}
	var held Lock
	if err := json.Unmarshal(b, &held); err != nil || held.CaseID == "" {
		return Lock{}, fmt.Errorf("lock %s holds no case record (%v)", path, err)
	}
	return held, nil
}
