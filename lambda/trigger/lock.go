package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
type Locker struct {
	Store  lockStore
	Window time.Duration
}

func (l *Locker) path(t Target, at time.Time) string {
	slot := at.UTC().Truncate(l.Window)
	return t.AccountID + "/" + t.Region + "/" + t.InstanceID + "/" + slot.Format("20060102T1504Z") + ".json"
}

// Acquire takes the lock for want.Target, as of want.CreatedAt. It returns
// the lock that holds the instance: want and true when this call took it,
// or the earlier holder and false.
func (l *Locker) Acquire(ctx context.Context, want Lock) (Lock, bool, error) {
	now := want.CreatedAt
	prevPath := l.path(want.Target, now.Add(-l.Window))
	prev, err := l.read(ctx, prevPath)
	switch {
	case err == nil && now.Sub(prev.CreatedAt) < l.Window && prev.Target == want.Target:
		return prev, false, nil
	case err != nil && !errors.Is(err, evidence.ErrNotFound):
		return Lock{}, false, err
	}

	body, err := json.Marshal(want)
	if err != nil {
		return Lock{}, false, fmt.Errorf("encode lock: %w", err)
	}
	path := l.path(want.Target, now)
	_, err = l.Store.Put(ctx, LockFolder, path, body, "application/json")
	switch {
	case err == nil:
		return want, true, nil
	case errors.Is(err, evidence.ErrExists):
		held, err := l.read(ctx, path)
		if err != nil {
			return Lock{}, false, fmt.Errorf("lock %s is taken but cannot be read: %w", path, err)
		}
		return held, false, nil
	default:
		return Lock{}, false, fmt.Errorf("take lock %s: %w", path, err)
	}
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
