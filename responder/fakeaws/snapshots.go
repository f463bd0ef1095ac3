package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// snapshot is an EBS snapshot. Its progress (pending or completed) is not
// part of StateDigest: DescribeSnapshots, a read, may complete it.
type snapshot struct {
	ID          string
	VolumeID    string
	Description string
	SizeGiB     int32
	Encrypted   bool
	KmsKeyID    string
	StartTime   time.Time
	Tags        []types.Tag
	Seq         int
	// SharedWith are the accounts in its createVolumePermission.
	SharedWith []string `json:",omitempty"`
	// CopiedFrom is the source of a CopySnapshot copy ("account/snap-...").
	CopiedFrom string `json:",omitempty"`
	// Failed is the state message of a copy that failed (state "error").
	Failed string `json:",omitempty"`
	// Lock is its EBS snapshot lock, if any.
	Lock *snapshotLock `json:",omitempty"`

	Completed      bool      `json:"-"`
	CompletionTime time.Time `json:"-"`
	Seen           int       `json:"-"` // DescribeSnapshots calls that saw it pending
}

// CompleteSnapshots completes every pending snapshot.
func (c *Cloud) CompleteSnapshots() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.st.Snapshots {
		c.completeLocked(s)
	}
}

func (c *Cloud) completeLocked(s *snapshot) {
	if !s.Completed && s.Failed == "" {
		s.Completed = true
		s.CompletionTime = c.now()
	}
}

// Snapshots returns every snapshot as DescribeSnapshots shows it (without
// advancing SnapshotCompletesAfter), in creation order.
func (c *Cloud) Snapshots() []types.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []types.Snapshot
	for _, s := range sortedBySeq(c.st.Snapshots, func(s *snapshot) int { return s.Seq }) {
		out = append(out, c.renderSnapshot(s))
	}
	return out
}

func (c *Cloud) renderSnapshot(s *snapshot) types.Snapshot {
	out := types.Snapshot{
		SnapshotId:  aws.String(s.ID),
		VolumeId:    aws.String(s.VolumeID),
		VolumeSize:  aws.Int32(s.SizeGiB),
		Description: aws.String(s.Description),
		Encrypted:   aws.Bool(s.Encrypted),
		OwnerId:     aws.String(c.Account),
		StartTime:   aws.Time(s.StartTime),
		State:       types.SnapshotStatePending,
		Progress:    aws.String("0%"),
		StorageTier: types.StorageTierStandard,
		Tags:        copyTags(s.Tags),
	}
	if s.Encrypted {
		out.KmsKeyId = aws.String(s.KmsKeyID)
	}
	switch {
	case s.Failed != "":
		out.State, out.StateMessage = types.SnapshotStateError, aws.String(s.Failed)
	case s.Completed:
		out.State = types.SnapshotStateCompleted
		out.Progress = aws.String("100%")
		out.CompletionTime = aws.Time(s.CompletionTime)
	case c.SnapshotCompletesAfter > 0:
		// Progress grows with each DescribeSnapshots that sees it pending.
		out.Progress = aws.String(fmt.Sprintf("%d%%", s.Seen*100/(c.SnapshotCompletesAfter+1)))
	}
	return out
}

// CreateSnapshots takes one crash-consistent set of snapshots of an
// instance's volumes. The snapshots start pending.
//
// AWS documents no error code for an instance left with no volume to
// snapshot (instance store, or everything excluded); the fake answers
// InvalidParameterValue, EC2's code for a request it cannot serve as given.
func (e *EC2) CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	if in == nil {
		in = &ec2.CreateSnapshotsInput{}
	}
	c := e.c
	out := &ec2.CreateSnapshotsOutput{}
	err := c.call(ctx, serviceEC2, "CreateSnapshots", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		spec := in.InstanceSpecification
		if spec == nil || spec.InstanceId == nil {
			return nil, missingParameter("InstanceSpecification.InstanceId")
		}
		switch {
		case in.OutpostArn != nil:
			return nil, notModelled("CreateSnapshots", "on Outposts")
		case in.CopyTagsFromSource != "" && in.CopyTagsFromSource != types.CopyTagsFromSourceVolume:
			return nil, apiError("InvalidParameterValue", "Value (%s) for parameter CopyTagsFromSource is invalid. Expected: 'volume'.", in.CopyTagsFromSource)
		}
		inst, err := c.liveInstanceLocked(aws.ToString(spec.InstanceId))
		if err != nil {
			return nil, err
		}
		tags, err := tagsFor(in.TagSpecifications, types.ResourceTypeSnapshot)
		if err != nil {
			return nil, err
		}
		if err := kindVolume.check(spec.ExcludeDataVolumeIds, c.hasVolume); err != nil {
			return nil, err
		}
		for _, id := range spec.ExcludeDataVolumeIds {
			switch {
			case !slices.Contains(inst.VolumeIDs, id):
				return nil, apiError("InvalidParameterValue", "The volume '%s' is not attached to instance '%s'.", id, inst.ID)
			case id == inst.VolumeIDs[0]:
				return nil, apiError("InvalidParameterValue", "The root volume '%s' cannot be excluded with ExcludeDataVolumeIds; use ExcludeBootVolume.", id)
			}
		}
		var vols []*volume
		for i, id := range inst.VolumeIDs {
			if (i == 0 && aws.ToBool(spec.ExcludeBootVolume)) || slices.Contains(spec.ExcludeDataVolumeIds, id) {
				continue
			}
			vols = append(vols, c.st.Volumes[id])
		}
		if len(vols) == 0 {
			return nil, apiError("InvalidParameterValue", "The instance '%s' has no EBS volume to snapshot.", inst.ID)
		}
		return func() {
			start := c.now().Truncate(time.Millisecond)
			for _, v := range vols {
				s := &snapshot{
					ID:          c.hexIDLocked("snap"),
					VolumeID:    v.ID,
					Description: aws.ToString(in.Description),
					SizeGiB:     v.SizeGiB,
					Encrypted:   v.Encrypted,
					KmsKeyID:    v.KmsKeyID,
					StartTime:   start,
					Seq:         c.nextSeqLocked(),
				}
				if in.CopyTagsFromSource == types.CopyTagsFromSourceVolume {
					s.Tags = mergeTags(v.Tags, tags) // the request's tags win
				} else {
					s.Tags = mergeTags(nil, tags)
				}
				c.st.Snapshots[s.ID] = s
				out.Snapshots = append(out.Snapshots, types.SnapshotInfo{
					SnapshotId:       aws.String(s.ID),
					VolumeId:         aws.String(s.VolumeID),
					VolumeSize:       aws.Int32(s.SizeGiB),
					Description:      aws.String(s.Description),
					Encrypted:        aws.Bool(s.Encrypted),
					OwnerId:          aws.String(c.Account),
					StartTime:        aws.Time(s.StartTime),
					State:            types.SnapshotStatePending,
					Progress:         aws.String("0%"),
					AvailabilityZone: aws.String(v.AZ),
					Tags:             copyTags(s.Tags),
				})
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) snapshotFields() fields[*snapshot] {
	return fields[*snapshot]{
		"snapshot-id": func(s *snapshot) []string { return one(s.ID) },
		"volume-id":   func(s *snapshot) []string { return one(s.VolumeID) },
		"description": func(s *snapshot) []string { return one(s.Description) },
		"encrypted":   func(s *snapshot) []string { return one(fmt.Sprint(s.Encrypted)) },
		"owner-id":    func(*snapshot) []string { return one(c.Account) },
		"status": func(s *snapshot) []string {
			if s.Failed != "" {
				return one(string(types.SnapshotStateError))
			}
			if s.Completed {
				return one(string(types.SnapshotStateCompleted))
			}
			return one(string(types.SnapshotStatePending))
		},
	}
}

// DescribeSnapshots describes the account's snapshots by ID, owner ("self"
// or the account ID) and filters (snapshot-id, volume-id, status,
// description, encrypted, owner-id, tag:<key>, tag-key, tag-value). With
// SnapshotCompletesAfter set, every call advances the snapshots it looks at
// (those selected by ID and owner, before filters).
func (e *EC2) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	if in == nil {
		in = &ec2.DescribeSnapshotsInput{}
	}
	c := e.c
	out := &ec2.DescribeSnapshotsOutput{}
	err := c.call(ctx, serviceEC2, "DescribeSnapshots", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if err := kindSnapshot.check(in.SnapshotIds, c.hasSnapshot); err != nil {
			return nil, err
		}
		f := c.snapshotFields()
		if err := checkFilters(in.Filters, f); err != nil {
			return nil, err
		}
		mine := len(in.OwnerIds) == 0
		for _, o := range in.OwnerIds {
			if o == "self" || o == c.Account {
				mine = true
			}
		}
		return func() {
			var snaps []*snapshot
			if mine {
				snaps = sortedBySeq(c.st.Snapshots, func(s *snapshot) int { return s.Seq })
				if len(in.SnapshotIds) > 0 {
					snaps = nil
					for _, id := range dedupe(in.SnapshotIds) {
						snaps = append(snaps, c.st.Snapshots[id])
					}
				}
			}
			for _, s := range snaps {
				c.advanceLocked(s)
			}
			out.Snapshots = []types.Snapshot{}
			for _, s := range filter(snaps, in.Filters, f, func(s *snapshot) []types.Tag { return s.Tags }) {
				out.Snapshots = append(out.Snapshots, c.renderSnapshot(s))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// advanceLocked counts one more DescribeSnapshots call seeing s, and
// completes it when SnapshotCompletesAfter calls have seen it pending.
func (c *Cloud) advanceLocked(s *snapshot) {
	if s.Completed || s.Failed != "" || c.SnapshotCompletesAfter <= 0 {
		return
	}
	if s.Seen >= c.SnapshotCompletesAfter {
		c.completeLocked(s)
		return
	}
	s.Seen++
}
