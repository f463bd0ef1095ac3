package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Locks are objects written once under the store's locks folder
// (cases/locks/ in a bucket, <dir>/locks/ in a folder): the first Put of a
// lock object wins, and whoever finds it taken reads who holds it. A lock
// object is never deleted (an evidence bucket under Object Lock cannot
// delete it), so a lock is released by time (Locker) or by the case record
// (RunLock).

// Lockable is what a lock object holds: the lock needs to know when its
// holder took it.
type Lockable interface {
	TakenAt() time.Time
}

// Locker gives a key to one holder at a time, window by window: the lock
// of key is the object locks/<key>/<window>.json, where <window> is the
// start of the Window-long time slot it was taken in. A holder also keeps
// the key in the next slot while it is younger than Window, so that a slot
// boundary does not split two close requests (only two requests racing
// across the boundary itself, both before either lock is written, can still
// both take it). The Lambda gives each instance to one case this way.
type Locker[L Lockable] struct {
	Store  Store
	Window time.Duration
}

func (l *Locker[L]) path(key string, at time.Time) string {
	return key + "/" + at.UTC().Truncate(l.Window).Format("20060102T1504Z") + ".json"
}

// Acquire takes the lock of key as of want.TakenAt(). It returns the lock
// that holds the key: want and true when this call took it, or the earlier
// holder and false.
func (l *Locker[L]) Acquire(ctx context.Context, key string, want L) (L, bool, error) {
	var none L
	now := want.TakenAt()
	prev, err := readLock[L](ctx, l.Store, l.path(key, now.Add(-l.Window)))
	switch {
	case err == nil && now.Sub(prev.TakenAt()) < l.Window:
		return prev, false, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return none, false, err
	}
	p := l.path(key, now)
	took, err := putLock(ctx, l.Store, p, want)
	switch {
	case err != nil:
		return none, false, err
	case took:
		return want, true, nil
	}
	held, err := readLock[L](ctx, l.Store, p)
	if err != nil {
		return none, false, fmt.Errorf("lock %s is taken but cannot be read: %w", p, err)
	}
	return held, false, nil
}

// putLock writes a lock object once: false when it is taken.
func putLock(ctx context.Context, store Store, path string, v any) (bool, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode lock %s: %w", path, err)
	}
	_, err = store.Put(ctx, LocksFolder, path, body, "application/json")
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrExists):
		return false, nil
	default:
		return false, fmt.Errorf("take lock %s: %w", path, err)
	}
}

// readLock reads a lock object; ErrNotFound when there is none.
func readLock[L Lockable](ctx context.Context, store Store, path string) (L, error) {
	var held L
	b, err := store.Get(ctx, LocksFolder, path)
	if err != nil {
		return held, fmt.Errorf("read lock %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &held); err != nil || held.TakenAt().IsZero() {
		return held, fmt.Errorf("lock %s holds no lock record (%v)", path, err)
	}
	return held, nil
}
