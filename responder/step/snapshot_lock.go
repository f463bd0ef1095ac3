package step

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/responder-ir/responder/responder/evidence"
)

// SnapshotLocking locks every case snapshot with EBS snapshot lock, as the
// playbook's preserve.snapshot_lock says (default governance, 90 days), so
// that nobody without the right to unlock can delete it; EBS accepts a lock
// on a pending snapshot, so it runs as soon as the snapshot set is
// requested, beside containment. It records the locks it found and the
// locks it read back (DescribeLockedSnapshots); a lock already there is
// kept as it is. A release never unlocks: the step has no release.
type SnapshotLocking struct{}

func (SnapshotLocking) Name() string    { return "snapshot-lock" }
func (SnapshotLocking) Phase() Phase    { return Acquire }
func (SnapshotLocking) Needs() []string { return []string{"snapshots"} }

// snapshotLockState is the step's before and after.
type snapshotLockState struct {
	Settings SnapshotLock            `json:"settings"`
	Locks    []evidence.SnapshotLock `json:"locks"`
}

func (SnapshotLocking) Run(ctx context.Context, env *Env) Result {
	api := env.Clients.EC2
	settings := env.SnapshotLock.WithDefaults()
	ids := sortedIDs(env.Snapshots())
	before := snapshotLockState{Settings: settings, Locks: []evidence.SnapshotLock{}}
	if len(ids) == 0 {
		return Skipped("no case snapshot to lock", before)
	}
	if env.Target.DryRun {
		err := LockSnapshot(ctx, api, ids[0], settings, true)
		return dryRun(err, fmt.Sprintf("lock %d snapshot(s) in %s mode for %d days", len(ids), settings.Mode, settings.Days), before)
	}
	found, err := ReadLocks(ctx, api, ids)
	if err == nil {
		before.Locks = sortedLocks(found)
		if allHeld(before.Locks, ids) {
			return Skipped("already locked: "+describeLocks(before.Locks), before)
		}
	}
	locks, failed := LockSnapshotsOnce(ctx, api, ids, settings, found)
	after := snapshotLockState{Settings: settings, Locks: locks}
	if after.Locks == nil {
		after.Locks = []evidence.SnapshotLock{}
	}
	if len(failed) > 0 {
		r := Failed(fmt.Errorf("%d of %d snapshot(s) not locked: %s", len(failed), len(ids), joinErrors(failed)), before)
		r.After = after
		return r
	}
	return OK(fmt.Sprintf("%d snapshot(s) locked (%s), read back with DescribeLockedSnapshots", len(locks), describeLocks(locks)), before, after)
}

// allHeld reports whether every snapshot of ids has a lock that holds.
func allHeld(locks []evidence.SnapshotLock, ids []string) bool {
	held := 0
	for _, l := range locks {
		if l.Holds() {
			held++
		}
	}
	return held == len(ids) && len(locks) == len(ids)
}

func sortedLocks(m map[string]evidence.SnapshotLock) []evidence.SnapshotLock {
	out := make([]evidence.SnapshotLock, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SnapshotID < out[j].SnapshotID })
	return out
}

func joinErrors(m map[string]error) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = m[id].Error()
	}
	return strings.Join(parts, "; ")
}

func describeLocks(locks []evidence.SnapshotLock) string {
	parts := make([]string, len(locks))
	for i, l := range locks {
		parts[i] = l.SnapshotID + " " + l.State
		if l.ExpiresOn != nil {
			parts[i] += " until " + l.ExpiresOn.Format("2006-01-02")
		}
	}
	return strings.Join(parts, ", ")
}

// Describe: the locks of the case snapshots, before and after.
func (SnapshotLocking) Describe() Description {
	return Description{
		Aspect:     "EBS snapshot lock of the case snapshots",
		View:       viewSnapshotLocks,
		Order:      72,
		NoEvidence: true,
		OnFailure: "Some case snapshots are not locked: anyone allowed to delete snapshots in the account can " +
			"delete them. Lock them (respond again with the same case ID) or copy them out (responder preserve).",
	}
}

func viewSnapshotLocks(raw json.RawMessage, _ string) ([]SubjectState, error) {
	var v snapshotLockState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []SubjectState
	for _, l := range v.Locks {
		out = append(out, SubjectState{Subject: l.SnapshotID, Text: describeLocks([]evidence.SnapshotLock{l})})
	}
	if len(out) == 0 {
		out = append(out, SubjectState{Subject: "case snapshots", Text: "not locked"})
	}
	return out, nil
}
