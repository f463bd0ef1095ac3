package fakeaws

import (
	"context"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// snapshotLock is an EBS snapshot lock (LockSnapshot).
type snapshotLock struct {
	Mode           types.LockMode
	Days           int32
	CoolOffHours   int32
	Created        time.Time
	Expires        time.Time
	CoolOffExpires time.Time
}

// state is the lock's state at now, as DescribeLockedSnapshots answers it.
func (l *snapshotLock) state(now time.Time) types.LockState {
	switch {
	case !now.Before(l.Expires):
		return types.LockStateExpired
	case l.Mode == types.LockModeCompliance && now.Before(l.CoolOffExpires):
		return types.LockStateComplianceCooloff
	case l.Mode == types.LockModeCompliance:
		return types.LockStateCompliance
	}
	return types.LockStateGovernance
}

// holds reports whether the lock still protects the snapshot.
func (l *snapshotLock) holds(now time.Time) bool {
	return l != nil && l.state(now) != types.LockStateExpired
}

// LockSnapshot locks a pending or completed snapshot in governance or
// compliance mode for LockDuration days (1 to 36500), with a CoolOffPeriod
// (1 to 72 hours, compliance only). It changes an existing lock as EBS
// allows: a governance lock, or a compliance lock in its cooling-off
// period, freely; a compliance lock after it only to a longer duration.
// ExpirationDate is not served.
func (e *EC2) LockSnapshot(ctx context.Context, in *ec2.LockSnapshotInput, _ ...func(*ec2.Options)) (*ec2.LockSnapshotOutput, error) {
	if in == nil {
		in = &ec2.LockSnapshotInput{}
	}
	c := e.c
	out := &ec2.LockSnapshotOutput{}
	err := c.call(ctx, serviceEC2, "LockSnapshot", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		id := aws.ToString(in.SnapshotId)
		if id == "" {
			return nil, missingParameter("SnapshotId")
		}
		if err := kindSnapshot.check([]string{id}, c.hasSnapshot); err != nil {
			return nil, err
		}
		lock, err := c.newLockLocked(in)
		if err != nil {
			return nil, err
		}
		s := c.st.Snapshots[id]
		if s.Failed != "" {
			return nil, apiError("IncorrectState", "The snapshot '%s' is in the error state and cannot be locked.", id)
		}
		if old := s.Lock; old != nil && old.state(c.now()) == types.LockStateCompliance &&
			(lock.Mode != types.LockModeCompliance || lock.Expires.Before(old.Expires)) {
			return nil, apiError("InvalidParameterCombination", "The snapshot '%s' is locked in compliance mode after its cooling-off period: the lock can only be extended.", id)
		}
		return func() {
			s.Lock = lock
			renderLock(id, lock, c.now(), &out.SnapshotId, &out.LockState, &out.LockDuration, &out.CoolOffPeriod,
				&out.LockCreatedOn, &out.LockExpiresOn, &out.CoolOffPeriodExpiresOn)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// newLockLocked checks a LockSnapshot request and makes its lock.
func (c *Cloud) newLockLocked(in *ec2.LockSnapshotInput) (*snapshotLock, error) {
	switch in.LockMode {
	case types.LockModeGovernance, types.LockModeCompliance:
	case "":
		return nil, missingParameter("LockMode")
	default:
		return nil, apiError("InvalidParameterValue", "Value (%s) for parameter lockMode is invalid.", in.LockMode)
	}
	if in.ExpirationDate != nil {
		return nil, notModelled("LockSnapshot", "with ExpirationDate")
	}
	days := aws.ToInt32(in.LockDuration)
	if days < 1 || days > 36500 {
		return nil, apiError("InvalidParameterValue", "Value (%d) for parameter lockDuration is invalid. It must be between 1 and 36500 days.", days)
	}
	coolOff := aws.ToInt32(in.CoolOffPeriod)
	if in.CoolOffPeriod != nil && (in.LockMode != types.LockModeCompliance || coolOff < 1 || coolOff > 72) {
		return nil, apiError("InvalidParameterValue", "Value (%d) for parameter coolOffPeriod is invalid. It applies to compliance mode only, from 1 to 72 hours.", coolOff)
	}
	now := c.now()
	return &snapshotLock{Mode: in.LockMode, Days: days, CoolOffHours: coolOff, Created: now,
		Expires: now.Add(time.Duration(days) * 24 * time.Hour), CoolOffExpires: now.Add(time.Duration(coolOff) * time.Hour)}, nil
}

func renderLock(id string, l *snapshotLock, now time.Time, snapshotID **string, state *types.LockState, days, coolOff **int32,
	created, expires, coolOffExpires **time.Time) {
	*snapshotID = aws.String(id)
	*state = l.state(now)
	*days = aws.Int32(l.Days)
	*created, *expires = aws.Time(l.Created), aws.Time(l.Expires)
	if l.CoolOffHours > 0 {
		*coolOff, *coolOffExpires = aws.Int32(l.CoolOffHours), aws.Time(l.CoolOffExpires)
	}
}

// DescribeLockedSnapshots describes the locks of the account's snapshots:
// those named by SnapshotIds (unknown IDs answer InvalidSnapshot.NotFound;
// an unlocked snapshot has no entry), or all; LockState and Filters other
// than lock-state are not served.
func (e *EC2) DescribeLockedSnapshots(ctx context.Context, in *ec2.DescribeLockedSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLockedSnapshotsOutput, error) {
	if in == nil {
		in = &ec2.DescribeLockedSnapshotsInput{}
	}
	c := e.c
	out := &ec2.DescribeLockedSnapshotsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeLockedSnapshots", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindSnapshot.check(in.SnapshotIds, c.hasSnapshot); len(in.SnapshotIds) > 0 && err != nil {
			return nil, err
		}
		if len(in.Filters) > 0 {
			return nil, notModelled("DescribeLockedSnapshots", "with Filters")
		}
		ids := in.SnapshotIds
		if len(ids) == 0 {
			for id := range c.st.Snapshots {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		now := c.now()
		var infos []types.LockedSnapshotsInfo
		for _, id := range ids {
			s := c.st.Snapshots[id]
			if s == nil || s.Lock == nil {
				continue
			}
			var info types.LockedSnapshotsInfo
			renderLock(id, s.Lock, now, &info.SnapshotId, &info.LockState, &info.LockDuration, &info.CoolOffPeriod,
				&info.LockCreatedOn, &info.LockExpiresOn, &info.CoolOffPeriodExpiresOn)
			info.OwnerId = aws.String(c.Account)
			infos = append(infos, info)
		}
		return func() { out.Snapshots = infos }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UnlockSnapshot removes a governance lock, or a compliance lock in its
// cooling-off period; an expired lock is removed too. Not in the registry:
// the toolkit never unlocks; tests play someone who tries.
func (e *EC2) UnlockSnapshot(ctx context.Context, in *ec2.UnlockSnapshotInput, _ ...func(*ec2.Options)) (*ec2.UnlockSnapshotOutput, error) {
	if in == nil {
		in = &ec2.UnlockSnapshotInput{}
	}
	c := e.c
	out := &ec2.UnlockSnapshotOutput{}
	err := c.call(ctx, serviceEC2, "UnlockSnapshot", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		id := aws.ToString(in.SnapshotId)
		if err := kindSnapshot.check([]string{id}, c.hasSnapshot); err != nil {
			return nil, err
		}
		s := c.st.Snapshots[id]
		if s.Lock == nil {
			return nil, apiError("SnapshotNotLocked", "The snapshot '%s' is not locked.", id)
		}
		if s.Lock.state(c.now()) == types.LockStateCompliance {
			return nil, apiError("SnapshotLocked", "The snapshot '%s' is locked in compliance mode and its cooling-off period has ended: it cannot be unlocked.", id)
		}
		return func() { s.Lock = nil; out.SnapshotId = aws.String(id) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSnapshot deletes a snapshot unless a lock holds it. Not in the
// registry: the toolkit never deletes evidence; tests play someone who
// tries. (The error code for a locked snapshot is the fake's own choice.)
func (e *EC2) DeleteSnapshot(ctx context.Context, in *ec2.DeleteSnapshotInput, _ ...func(*ec2.Options)) (*ec2.DeleteSnapshotOutput, error) {
	if in == nil {
		in = &ec2.DeleteSnapshotInput{}
	}
	c := e.c
	out := &ec2.DeleteSnapshotOutput{}
	err := c.call(ctx, serviceEC2, "DeleteSnapshot", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		id := aws.ToString(in.SnapshotId)
		if err := kindSnapshot.check([]string{id}, c.hasSnapshot); err != nil {
			return nil, err
		}
		if c.st.Snapshots[id].Lock.holds(c.now()) {
			return nil, apiError("SnapshotLocked", "The snapshot '%s' is locked and cannot be deleted.", id)
		}
		return func() { delete(c.st.Snapshots, id) }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
