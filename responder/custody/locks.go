package custody

import (
	"context"
	"time"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/step"
)

// verifyLocks checks, with DescribeLockedSnapshots, that every snapshot of
// ids is locked: a snapshot the record says was locked and is not any
// more was unlocked since (a mismatch); one never locked (a record before
// 1.5, or a lock that failed) can be deleted (a warning). kind names the
// check; recorded are the locks the record holds.
func verifyLocks(ctx context.Context, api SnapshotReader, kind string, ids []string, recorded map[string]evidence.SnapshotLock, now time.Time) []Check {
	reader, ok := api.(step.LockReader) // EC2 in the workload or forensics account
	if !ok || len(ids) == 0 {
		return nil
	}
	found, err := step.ReadLocks(ctx, reader, ids)
	if err != nil && len(ids) > 1 {
		found, err = readLocksOneByOne(ctx, reader, ids) // one snapshot gone fails the batch
	}
	var checks []Check
	for _, id := range ids {
		c := Check{Kind: kind, Subject: id}
		l, locked := found[id]
		_, wasLocked := recorded[id]
		switch {
		case err != nil:
			c.Status, c.Detail = CheckError, err.Error()
		case locked && l.Holds() && (l.ExpiresOn == nil || l.ExpiresOn.After(now)):
			c.Status, c.Detail = CheckOK, describeLock(l)
		case locked && wasLocked:
			c.Status, c.Detail = CheckWarning, "the lock recorded has ended: "+describeLock(l)
		case wasLocked:
			c.Status, c.Detail = CheckMismatch, "recorded locked ("+describeLock(recorded[id])+"), now not locked: it was unlocked since, and can be deleted"
		default:
			c.Status, c.Detail = CheckWarning, "not locked: anyone allowed to delete snapshots in its account can delete it"
		}
		checks = append(checks, c)
	}
	return checks
}

func describeLock(l evidence.SnapshotLock) string {
	s := l.State
	if l.ExpiresOn != nil {
		s += " until " + l.ExpiresOn.UTC().Format(time.RFC3339)
	}
	return s
}

// snapshotIDs are the case snapshots; copyIDs the copies made and their
// recorded locks.
func caseSnapshotIDs(m *evidence.Manifest) []string {
	var ids []string
	for _, s := range m.Snapshots {
		ids = append(ids, s.SnapshotID)
	}
	return ids
}

func copyLocks(m *evidence.Manifest) ([]string, map[string]evidence.SnapshotLock) {
	var ids []string
	recorded := map[string]evidence.SnapshotLock{}
	for _, cp := range m.SnapshotCopies {
		if cp.SnapshotID == "" {
			continue
		}
		ids = append(ids, cp.SnapshotID)
		if cp.Lock != nil {
			recorded[cp.SnapshotID] = *cp.Lock
		}
	}
	return ids, recorded
}

// readLocksOneByOne reads the locks of each snapshot on its own; a snapshot
// that no longer exists has no lock (its snapshot check says it is gone).
func readLocksOneByOne(ctx context.Context, api step.LockReader, ids []string) (map[string]evidence.SnapshotLock, error) {
	out := map[string]evidence.SnapshotLock{}
	for _, id := range ids {
		found, err := step.ReadLocks(ctx, api, []string{id})
		if cloud.IsErrorCode(err, "InvalidSnapshot.NotFound") {
			continue
		}
		if err != nil {
			return nil, err
		}
		for k, v := range found {
			out[k] = v
		}
	}
	return out, nil
}
