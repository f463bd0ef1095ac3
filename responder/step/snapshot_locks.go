package step

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
)

// EBS snapshot lock modes, as LockSnapshot names them.
const (
	LockGovernance = "governance"
	LockCompliance = "compliance"
)

// Limits of LockSnapshot (EC2 API reference): LockDuration 1 to 36500 days;
// CoolOffPeriod 1 to 72 hours, compliance mode only.
const (
	DefaultLockDays = 90
	MaxLockDays     = 36500
	MaxCoolOffHours = 72
)

// SnapshotLock is how the case snapshots and their copies are locked with
// EBS snapshot lock: a playbook's preserve.snapshot_lock. Zero values take
// the defaults (governance, 90 days): compliance mode, which nobody can undo
// once its cooling-off period is over, is only ever used when set.
type SnapshotLock struct {
	Mode string `yaml:"mode" json:"mode"`
	Days int    `yaml:"days" json:"days"`
	// CoolOffHours is the cooling-off period of a compliance lock, during
	// which it can still be removed (0: none, the lock holds at once).
	CoolOffHours int `yaml:"cool_off_hours" json:"cool_off_hours,omitempty"`
}

// WithDefaults fills what is not set.
func (l SnapshotLock) WithDefaults() SnapshotLock {
	if l.Mode == "" {
		l.Mode = LockGovernance
	}
	if l.Days == 0 {
		l.Days = DefaultLockDays
	}
	return l
}

// Validate checks the settings before any AWS call.
func (l SnapshotLock) Validate() error {
	l = l.WithDefaults()
	switch {
	case l.Mode != LockGovernance && l.Mode != LockCompliance:
		return fmt.Errorf("snapshot_lock: mode %q: want %s or %s", l.Mode, LockGovernance, LockCompliance)
	case l.Days < 1 || l.Days > MaxLockDays:
		return fmt.Errorf("snapshot_lock: days %d: want 1 to %d", l.Days, MaxLockDays)
	case l.CoolOffHours != 0 && l.Mode != LockCompliance:
		return fmt.Errorf("snapshot_lock: cool_off_hours applies to compliance mode only")
	case l.CoolOffHours < 0 || l.CoolOffHours > MaxCoolOffHours:
		return fmt.Errorf("snapshot_lock: cool_off_hours %d: want 0 to %d", l.CoolOffHours, MaxCoolOffHours)
	}
	return nil
}

// SnapshotLockAPI is what locking snapshots needs of EC2, in the workload
// account or the forensics account. There is no UnlockSnapshot: the
// toolkit never unlocks.
type SnapshotLockAPI interface {
	LockSnapshot(context.Context, *ec2.LockSnapshotInput, ...func(*ec2.Options)) (*ec2.LockSnapshotOutput, error)
	LockReader
}

// LockReader reads snapshot locks back.
type LockReader interface {
	DescribeLockedSnapshots(context.Context, *ec2.DescribeLockedSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeLockedSnapshotsOutput, error)
}

// LockSnapshot locks one snapshot (pending or completed) as l says.
func LockSnapshot(ctx context.Context, api SnapshotLockAPI, snapshotID string, l SnapshotLock, dryRun bool) error {
	l = l.WithDefaults()
	in := &ec2.LockSnapshotInput{SnapshotId: aws.String(snapshotID), LockMode: types.LockMode(l.Mode),
		LockDuration: aws.Int32(int32(l.Days)), DryRun: aws.Bool(dryRun)}
	if l.Mode == LockCompliance && l.CoolOffHours > 0 {
		in.CoolOffPeriod = aws.Int32(int32(l.CoolOffHours))
	}
	if _, err := api.LockSnapshot(ctx, in); err != nil {
		return fmt.Errorf("lock snapshot %s: %w", snapshotID, err)
	}
	return nil
}

// ReadLocks reads back the locks of snapshots (DescribeLockedSnapshots); a
// snapshot that is not locked has no entry.
func ReadLocks(ctx context.Context, api LockReader, ids []string) (map[string]evidence.SnapshotLock, error) {
	out := map[string]evidence.SnapshotLock{}
	in := &ec2.DescribeLockedSnapshotsInput{SnapshotIds: ids}
	for {
		page, err := api.DescribeLockedSnapshots(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read the locks of %v: %w", ids, err)
		}
		for _, s := range page.Snapshots {
			out[aws.ToString(s.SnapshotId)] = lockRecord(s)
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

func lockRecord(s types.LockedSnapshotsInfo) evidence.SnapshotLock {
	l := evidence.SnapshotLock{
		SnapshotID: aws.ToString(s.SnapshotId), State: string(s.LockState),
		Days: int(aws.ToInt32(s.LockDuration)), CoolOffHours: int(aws.ToInt32(s.CoolOffPeriod)),
		LockedAt: utcPtr(s.LockCreatedOn), ExpiresOn: utcPtr(s.LockExpiresOn),
	}
	return l
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// LockSnapshotsOnce locks every snapshot of ids that found (the locks read
// before; nil: read them now) does not show locked, then reads the locks
// back: it returns the locks read
// back (sorted by snapshot) and the snapshots that are not locked, with
// why. A snapshot already locked is left as it is (a lock is never
// shortened or changed).
func LockSnapshotsOnce(ctx context.Context, api SnapshotLockAPI, ids []string, l SnapshotLock, found map[string]evidence.SnapshotLock) ([]evidence.SnapshotLock, map[string]error) {
	failed := map[string]error{}
	if found == nil {
		var err error
		if found, err = ReadLocks(ctx, api, ids); err != nil {
			found = map[string]evidence.SnapshotLock{}
		}
	}
	for _, id := range ids {
		if lk, ok := found[id]; ok && lk.Holds() {
			continue
		}
		if err := LockSnapshot(ctx, api, id, l, false); err != nil {
			failed[id] = err
		}
	}
	back, err := ReadLocks(ctx, api, ids)
	if err != nil {
		for _, id := range ids {
			if failed[id] == nil {
				failed[id] = err
			}
		}
		return nil, failed
	}
	var locks []evidence.SnapshotLock
	for _, id := range ids {
		lk, ok := back[id]
		switch {
		case ok && lk.Holds():
			locks = append(locks, lk)
		case failed[id] == nil:
			failed[id] = fmt.Errorf("snapshot %s: not locked when read back", id)
		}
	}
	sort.Slice(locks, func(i, j int) bool { return locks[i].SnapshotID < locks[j].SnapshotID })
	return locks, failed
}

// sortedIDs is the sorted set of the snapshots' IDs.
func sortedIDs(snaps []evidence.Snapshot) []string {
	var ids []string
	for _, s := range snaps {
		if !slices.Contains(ids, s.SnapshotID) {
			ids = append(ids, s.SnapshotID)
		}
	}
	sort.Strings(ids)
	return ids
}

// RecordedSnapshotLock is the lock settings the case's snapshot-lock step
// recorded last (its before holds them), so that the copies of the case
// snapshots are locked as the playbook of the response said; the defaults
// when the case has none (a record before 1.5, or a plan without the step).
func RecordedSnapshotLock(m *evidence.Manifest) SnapshotLock {
	l := SnapshotLock{}
	for _, s := range m.Steps {
		if s.Name != "snapshot-lock" || len(s.Before) == 0 {
			continue
		}
		var v struct {
			Settings *SnapshotLock `json:"settings"`
		}
		if json.Unmarshal(s.Before, &v) == nil && v.Settings != nil && v.Settings.Validate() == nil {
			l = *v.Settings
		}
	}
	return l.WithDefaults()
}

// RecordedLocks are the locks of the case snapshots that snapshot-lock read
// back (its after), by snapshot, the newest record of each.
func RecordedLocks(m *evidence.Manifest) map[string]evidence.SnapshotLock {
	out := map[string]evidence.SnapshotLock{}
	for _, s := range m.Steps {
		if s.Name != "snapshot-lock" {
			continue
		}
		for _, raw := range [][]byte{s.Before, s.After} {
			var v struct {
				Locks []evidence.SnapshotLock `json:"locks"`
			}
			if len(raw) > 0 && json.Unmarshal(raw, &v) == nil {
				for _, l := range v.Locks {
					out[l.SnapshotID] = l
				}
			}
		}
	}
	return out
}
