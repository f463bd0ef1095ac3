package step

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

type snapshotAPI interface {
	CreateSnapshots(context.Context, *ec2.CreateSnapshotsInput, ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// Snapshots takes one crash-consistent, multi-volume snapshot set of every
// EBS volume attached to the instance (CreateSnapshots), tagged with the case
// and the source instance in the same call. The point in time is fixed when
// the call returns; the snapshots complete in the background, and nothing
// waits for them.
type Snapshots struct{}

func (Snapshots) Name() string    { return "snapshots" }
func (Snapshots) Phase() Phase    { return Acquire }
func (Snapshots) Needs() []string { return nil }

func (s Snapshots) Run(ctx context.Context, env *Env) Result {
	var api snapshotAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	vols := attachedVolumes(env.Target.Instance)
	before := map[string]any{"volumes": vols}
	if len(vols) == 0 {
		return Skipped("no EBS volume is attached to the instance", before)
	}
	if prior := priorSnapshots(env); len(prior) > 0 {
		env.AddSnapshots(prior...)
		return Skipped(fmt.Sprintf("already taken in this case: %s", snapshotIDs(prior)), before)
	}
	if env.Target.CaseIDGiven && !env.Target.DryRun {
		// The case may have been started by a run that did not get to write
		// its record; its snapshots carry the case tag. The engine looks them
		// up beside DescribeInstances; look again only if that failed.
		found, err := env.Target.CaseSnapshots, env.Target.CaseSnapshotsErr
		if err != nil || found == nil {
			found, err = CaseSnapshots(ctx, api, env.Target.CaseID, id)
		}
		if err != nil {
			return Failed(fmt.Errorf("look for snapshots of case %s: %w", env.Target.CaseID, err), before)
		}
		if len(found) > 0 {
			for i := range found {
				found[i].Run = env.Target.Run
			}
			env.AddSnapshots(found...)
			return Skipped(fmt.Sprintf("already taken in this case: %s", snapshotIDs(found)), before)
		}
	}
	in := &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &id, ExcludeBootVolume: aws.Bool(false)},
		Description:           aws.String(fmt.Sprintf("responder case %s: %s", env.Target.CaseID, id)),
		CopyTagsFromSource:    types.CopyTagsFromSourceVolume,
		TagSpecifications: env.caseTags(types.ResourceTypeSnapshot,
			types.Tag{Key: aws.String("Name"), Value: aws.String("responder " + env.Target.CaseID)}),
		DryRun: aws.Bool(env.Target.DryRun),
	}
	out, err := api.CreateSnapshots(ctx, in, cloud.Urgent)
	if env.Target.DryRun {
		return dryRun(err, fmt.Sprintf("snapshot %d volume(s): %s", len(vols), strings.Join(vols, ", ")), before)
	}
	if err != nil {
		return Failed(fmt.Errorf("create snapshots of %s: %w", id, err), before)
	}
	var taken []evidence.Snapshot
	for _, si := range out.Snapshots {
		taken = append(taken, snapshotRecord(si.SnapshotId, si.VolumeId, id, string(si.State), si.StartTime, si.Encrypted, env.Target.Run))
	}
	sort.Slice(taken, func(i, j int) bool { return taken[i].VolumeID < taken[j].VolumeID })
	env.AddSnapshots(taken...)
	return OK(fmt.Sprintf("snapshot set of %d volume(s) started: %s", len(taken), snapshotIDs(taken)), before,
		map[string]any{"snapshots": taken})
}

// priorSnapshots are the snapshots an earlier run of the case recorded.
func priorSnapshots(env *Env) []evidence.Snapshot {
	if env.Target.Prior == nil {
		return nil
	}
	var out []evidence.Snapshot
	for _, s := range env.Target.Prior.Snapshots {
		if s.InstanceID == env.Target.InstanceID() {
			out = append(out, s)
		}
	}
	return out
}

// SnapshotFinder is what CaseSnapshots needs of EC2.
type SnapshotFinder interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
}

// CaseSnapshots finds the snapshots tagged with a case and source instance.
// It returns an empty, non-nil slice when there are none.
func CaseSnapshots(ctx context.Context, api SnapshotFinder, caseID, instanceID string) ([]evidence.Snapshot, error) {
	out, err := api.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"},
		Filters: []types.Filter{
			{Name: aws.String("tag:" + TagCaseID), Values: []string{caseID}},
			{Name: aws.String("tag:" + TagSourceInstance), Values: []string{instanceID}},
		},
	})
	if err != nil {
		return nil, err
	}
	found := []evidence.Snapshot{}
	for _, s := range out.Snapshots {
		found = append(found, snapshotRecord(s.SnapshotId, s.VolumeId, instanceID, string(s.State), s.StartTime, s.Encrypted, 0))
	}
	sort.Slice(found, func(i, j int) bool { return found[i].VolumeID < found[j].VolumeID })
	return found, nil
}

// snapshotRecord is how the case records a snapshot, from either answer
// (CreateSnapshots' SnapshotInfo or DescribeSnapshots' Snapshot).
func snapshotRecord(snapshotID, volumeID *string, instanceID, state string, started *time.Time, encrypted *bool, run int) evidence.Snapshot {
	return evidence.Snapshot{
		SnapshotID: aws.ToString(snapshotID),
		VolumeID:   aws.ToString(volumeID),
		InstanceID: instanceID,
		State:      state,
		StartedAt:  aws.ToTime(started).UTC(),
		Encrypted:  aws.ToBool(encrypted),
		Run:        run,
	}
}

func snapshotIDs(s []evidence.Snapshot) string {
	ids := make([]string, len(s))
	for i, x := range s {
		ids[i] = x.SnapshotID
	}
	return strings.Join(ids, ", ")
}

// snapshotsState is the before Run records: the EBS volumes attached.
type snapshotsState struct {
	Volumes []string `json:"volumes"`
}

// Describe: the volumes attached, which the snapshots leave attached.
func (Snapshots) Describe() Description {
	return Description{
		Aspect:    "EBS volumes attached",
		View:      viewAttachedVolumes,
		Order:     70,
		Unchanged: true,
		OnFailure: "No disk image of that point in time: the volumes keep changing while the instance runs. " +
			"Snapshot the volumes as soon as possible (respond again with the same case ID) and account for the gap.",
		OnSkip: "No disk image exists for this case (see the reason).",
		Holds:  func(m *evidence.Manifest) bool { return len(m.Snapshots) > 0 },
	}
}

// viewAttachedVolumes reads a snapshotsState.
func viewAttachedVolumes(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	var v snapshotsState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return []SubjectState{{Subject: instanceID, Text: joinOr(v.Volumes, "none")}}, nil
}
