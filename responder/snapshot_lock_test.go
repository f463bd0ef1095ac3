package responder_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// locksOf reads the fake's locks of the case snapshots.
func locksOf(t *testing.T, c *fakeaws.Cloud, ids []string) map[string]types.LockedSnapshotsInfo {
	t.Helper()
	out, err := c.EC2().DescribeLockedSnapshots(context.Background(), &ec2.DescribeLockedSnapshotsInput{SnapshotIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]types.LockedSnapshotsInfo{}
	for _, s := range out.Snapshots {
		m[aws.ToString(s.SnapshotId)] = s
	}
	return m
}

func snapshotIDsOf(m *evidence.Manifest) []string {
	var ids []string
	for _, s := range m.Snapshots {
		ids = append(ids, s.SnapshotID)
	}
	return ids
}

// The case snapshots are locked (governance, 90 days, by default) while
// still pending, the locks are recorded as read back, nobody can delete
// them, and a release leaves them locked.
func TestSnapshotsAreLockedAndStayLocked(t *testing.T) {
	c, id := releaseSuspect(t)
	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: id, Plan: append([]string{"snapshot-lock"}, releasePlan...)})
	ids := snapshotIDsOf(res.Manifest)
	locks := locksOf(t, c, ids)
	if len(ids) == 0 || len(locks) != len(ids) {
		t.Fatalf("snapshots %v, locks %v", ids, locks)
	}
	for _, l := range locks {
		if l.LockState != types.LockStateGovernance || aws.ToInt32(l.LockDuration) != step.DefaultLockDays {
			t.Fatalf("lock %+v", l)
		}
	}
	rec := stepOf(t, res.Steps, "snapshot-lock")
	if rec.Status != evidence.StatusOK || !strings.Contains(string(rec.After), `"state":"governance"`) {
		t.Fatalf("snapshot-lock: %s %s %s", rec.Status, rec.Error, rec.After)
	}
	if _, err := c.EC2().DeleteSnapshot(context.Background(), &ec2.DeleteSnapshotInput{SnapshotId: aws.String(ids[0])}); err == nil {
		t.Fatal("a locked snapshot was deleted")
	}
	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	if got := locksOf(t, c, ids); len(got) != len(ids) {
		t.Fatalf("after release, locks %v", got)
	}
}

// Compliance mode comes only from an explicit setting, with its cooling-off
// period; a refused lock fails the step, not the containment.
func TestSnapshotLockSettingsAndFailure(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID,
		SnapshotLock: step.SnapshotLock{Mode: step.LockCompliance, Days: 7, CoolOffHours: 24}})
	for _, l := range locksOf(t, c, snapshotIDsOf(res.Manifest)) {
		if l.LockState != types.LockStateComplianceCooloff || aws.ToInt32(l.LockDuration) != 7 || aws.ToInt32(l.CoolOffPeriod) != 24 {
			t.Fatalf("lock %+v", l)
		}
	}

	c2, s2 := fakeaws.NewSuspect()
	c2.Deny("LockSnapshot")
	res = respond(t, c2, &evidence.Folder{Root: t.TempDir()}, responder.Request{InstanceID: s2.InstanceID})
	rec := stepOf(t, res.Steps, "snapshot-lock")
	if rec.Status != evidence.StatusFailed || !strings.Contains(rec.Error, "UnauthorizedOperation") || res.Status != evidence.CaseContained {
		t.Fatalf("denied lock: step %s %q, case %s", rec.Status, rec.Error, res.Status)
	}
	if got := locksOf(t, c2, snapshotIDsOf(res.Manifest)); len(got) != 0 {
		t.Fatalf("locks %v", got)
	}

	bad := responder.Request{InstanceID: s.InstanceID, CaseID: "case-x", SnapshotLock: step.SnapshotLock{Mode: "governance", CoolOffHours: 3}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "cool_off_hours") {
		t.Fatalf("a cooling-off period in governance mode: %v", err)
	}
}
