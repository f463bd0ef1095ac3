package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
//
// A holder that Alive says is dead (its case execution failed, timed out or
// was aborted) holds nothing: the next request takes the slot's next lock,
// <window>.1.json (then .2, ...), written once as well, so that a key is
// never left with a dead holder.
type Locker[L Lockable] struct {
	Store  Store
	Window time.Duration
	// Alive reports whether the holder of a lock still works, or has yet to
	// start; nil: every holder is alive.
	Alive func(ctx context.Context, held L) (bool, error)
}

// MaxLocksPerSlot bounds the chain of locks of one slot: that many dead
// holders of one key in one window is a fault to look at, not to retry.
const MaxLocksPerSlot = 8

func (l *Locker[L]) path(key string, at time.Time, n int) string {
	slot := at.UTC().Truncate(l.Window).Format("20060102T1504Z")
	if n > 0 {
		slot += "." + strconv.Itoa(n)
	}
	return key + "/" + slot + ".json"
}

// Acquire takes the lock of key as of want.TakenAt(). It returns the lock
// that holds the key: want and true when this call took it, or the live
// earlier holder and false.
func (l *Locker[L]) Acquire(ctx context.Context, key string, want L) (L, bool, error) {
	var none L
	now := want.TakenAt()
	prev, found, err := l.newest(ctx, key, now.Add(-l.Window))
	if err != nil {
		return none, false, err
	}
	if found && now.Sub(prev.TakenAt()) < l.Window {
		if alive, err := l.alive(ctx, prev); err != nil || alive {
			return prev, false, err
		}
	}
	for n := range MaxLocksPerSlot {
		p := l.path(key, now, n)
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
		if alive, err := l.alive(ctx, held); err != nil || alive {
			return held, false, err
		}
	}
	return none, false, fmt.Errorf("%s: %d holders in a row died within one lock window; not taking another", key, MaxLocksPerSlot)
}

// newest reads the last lock of the slot of at: the one that holds it, the
// earlier ones having died.
func (l *Locker[L]) newest(ctx context.Context, key string, at time.Time) (L, bool, error) {
	var last L
	found := false
	for n := range MaxLocksPerSlot {
		held, err := readLock[L](ctx, l.Store, l.path(key, at, n))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return last, false, err
		}
		last, found = held, true
	}
	return last, found, nil
}

func (l *Locker[L]) alive(ctx context.Context, held L) (bool, error) {
	if l.Alive == nil {
		return true, nil
	}
	alive, err := l.Alive(ctx, held)
	if err != nil {
		return false, fmt.Errorf("is the holder of the lock still at work: %w", err)
	}
	return alive, nil
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

// errNoLockRecord is a lock object that holds no lock: one a store without
// atomic writes shows before its writer is done, or one that is damaged.
var errNoLockRecord = errors.New("not a lock record")

// readLock reads a lock object; ErrNotFound when there is none.
func readLock[L Lockable](ctx context.Context, store Store, path string) (L, error) {
	var held L
	b, err := store.Get(ctx, LocksFolder, path)
	if err != nil {
		return held, fmt.Errorf("read lock %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &held); err != nil || held.TakenAt().IsZero() {
		return held, fmt.Errorf("lock %s holds no lock record (%v): %w", path, err, errNoLockRecord)
	}
	return held, nil
}
