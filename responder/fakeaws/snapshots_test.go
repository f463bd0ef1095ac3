package fakeaws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func snapshotTags(key, value string) []types.TagSpecification {
	return []types.TagSpecification{{ResourceType: types.ResourceTypeSnapshot,
		Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(value)}}}}
}

func TestCreateSnapshots(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	if _, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{s.VolumeIDs[1]},
		Tags: []types.Tag{{Key: aws.String("data"), Value: aws.String("yes")}, {Key: aws.String("case"), Value: aws.String("old")}}}); err != nil {
		t.Fatal(err)
	}

	out, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID},
		Description:           aws.String("IR-1 evidence"),
		TagSpecifications:     snapshotTags("case", "IR-1"),
		CopyTagsFromSource:    types.CopyTagsFromSourceVolume,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Snapshots) != 2 {
		t.Fatalf("snapshots = %d, want one per volume", len(out.Snapshots))
	}
	for i, si := range out.Snapshots {
		if aws.ToString(si.VolumeId) != s.VolumeIDs[i] || si.State != types.SnapshotStatePending ||
			aws.ToString(si.OwnerId) != DefaultAccount || si.StartTime == nil || !hasTag(si.Tags, "case", "IR-1") {
			t.Errorf("snapshot %d = %+v", i, si)
		}
	}
	if !hasTag(out.Snapshots[1].Tags, "data", "yes") {
		t.Errorf("volume tags not copied: %v", out.Snapshots[1].Tags)
	}

	tests := []struct {
		name string
		spec types.InstanceSpecification
		tags []types.TagSpecification
		want int
		code string
	}{
		{name: "exclude boot", spec: types.InstanceSpecification{ExcludeBootVolume: aws.Bool(true)}, want: 1},
		{name: "exclude data", spec: types.InstanceSpecification{ExcludeDataVolumeIds: []string{s.VolumeIDs[1]}}, want: 1},
		{name: "exclude root as data", spec: types.InstanceSpecification{ExcludeDataVolumeIds: []string{s.VolumeIDs[0]}}, code: "InvalidParameterValue"},
		{name: "exclude unknown", spec: types.InstanceSpecification{ExcludeDataVolumeIds: []string{"vol-0123456789abcdef0"}}, code: "InvalidVolume.NotFound"},
		{name: "exclude everything", spec: types.InstanceSpecification{ExcludeBootVolume: aws.Bool(true), ExcludeDataVolumeIds: []string{s.VolumeIDs[1]}}, code: "InvalidParameterValue"},
		{name: "wrong tag type", tags: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume}}, code: "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.InstanceId = &s.InstanceID
			out, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &spec, TagSpecifications: tt.tags})
			wantCode(t, err, tt.code)
			if err == nil && len(out.Snapshots) != tt.want {
				t.Errorf("snapshots = %d, want %d", len(out.Snapshots), tt.want)
			}
		})
	}

	storeOnly := c.AddInstance(InstanceSpec{InstanceStore: true})
	_, err = c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: &storeOnly}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String("i-0123456789abcdef0")}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
}

func TestEncryptedSnapshots(t *testing.T) {
	c := New()
	id := c.AddInstance(InstanceSpec{Encrypted: true})
	out, err := c.EC2().CreateSnapshots(context.Background(), &ec2.CreateSnapshotsInput{InstanceSpecification: &types.InstanceSpecification{InstanceId: &id}})
	if err != nil {
		t.Fatal(err)
	}
	snaps := c.Snapshots()
	if !aws.ToBool(out.Snapshots[0].Encrypted) || len(snaps) != 1 || aws.ToString(snaps[0].KmsKeyId) == "" {
		t.Errorf("snapshot of an encrypted volume = %+v / %+v, want encrypted with the aws/ebs key", out.Snapshots[0], snaps)
	}
}

func TestSnapshotProgress(t *testing.T) {
	take := func(c *Cloud, id string) string {
		out, err := c.EC2().CreateSnapshots(context.Background(), &ec2.CreateSnapshotsInput{
			InstanceSpecification: &types.InstanceSpecification{InstanceId: &id}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Snapshots[0].SnapshotId)
	}
	describe := func(c *Cloud, id string) types.Snapshot {
		out, err := c.EC2().DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}, OwnerIds: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Snapshots[0]
	}

	t.Run("pending until CompleteSnapshots", func(t *testing.T) {
		c := New()
		snap := take(c, c.AddInstance(InstanceSpec{}))
		for range 3 {
			if s := describe(c, snap); s.State != types.SnapshotStatePending || aws.ToString(s.Progress) != "0%" {
				t.Fatalf("state = %s %s, want pending 0%%", s.State, aws.ToString(s.Progress))
			}
		}
		c.CompleteSnapshots()
		if s := describe(c, snap); s.State != types.SnapshotStateCompleted || aws.ToString(s.Progress) != "100%" || s.CompletionTime == nil {
			t.Errorf("after CompleteSnapshots: %s %s", s.State, aws.ToString(s.Progress))
		}
	})
	t.Run("SnapshotCompletesAfter", func(t *testing.T) {
		c := New()
		c.SnapshotCompletesAfter = 2
		snap := take(c, c.AddInstance(InstanceSpec{}))
		var states []types.SnapshotState
		for range 3 {
			states = append(states, describe(c, snap).State)
		}
		want := []types.SnapshotState{types.SnapshotStatePending, types.SnapshotStatePending, types.SnapshotStateCompleted}
		for i := range want {
			if states[i] != want[i] {
				t.Fatalf("states = %v, want %v", states, want)
			}
		}
	})
	t.Run("status filter still advances", func(t *testing.T) {
		c := New()
		c.SnapshotCompletesAfter = 1
		take(c, c.AddInstance(InstanceSpec{}))
		completed := func() int {
			out, err := c.EC2().DescribeSnapshots(context.Background(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
				Filters: []types.Filter{{Name: aws.String("status"), Values: []string{"completed"}}}})
			if err != nil {
				t.Fatal(err)
			}
			return len(out.Snapshots)
		}
		if n := completed(); n != 0 {
			t.Fatalf("completed at first look = %d", n)
		}
		if n := completed(); n != 1 {
			t.Fatalf("completed at second look = %d, want 1", n)
		}
	})
}

func TestDescribeSnapshots(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	if _, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID},
		TagSpecifications:     snapshotTags("case", "IR-1")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   ec2.DescribeSnapshotsInput
		want int
		code string
	}{
		{name: "self", in: ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}}, want: 2},
		{name: "account", in: ec2.DescribeSnapshotsInput{OwnerIds: []string{DefaultAccount}}, want: 2},
		{name: "other owner", in: ec2.DescribeSnapshotsInput{OwnerIds: []string{"999999999999"}}, want: 0},
		{name: "tag", in: ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("tag:case"), Values: []string{"IR-1"}}}}, want: 2},
		{name: "tag mismatch", in: ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("tag:case"), Values: []string{"IR-2"}}}}, want: 0},
		{name: "volume", in: ec2.DescribeSnapshotsInput{Filters: []types.Filter{{Name: aws.String("volume-id"), Values: []string{s.VolumeIDs[1]}}}}, want: 1},
		{name: "unknown id", in: ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-0123456789abcdef0"}}, code: "InvalidSnapshot.NotFound"},
		{name: "malformed id", in: ec2.DescribeSnapshotsInput{SnapshotIds: []string{"snap-x"}}, code: "InvalidSnapshotID.Malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.EC2().DescribeSnapshots(ctx, &tt.in)
			wantCode(t, err, tt.code)
			if err == nil && len(out.Snapshots) != tt.want {
				t.Errorf("got %d snapshots, want %d", len(out.Snapshots), tt.want)
			}
		})
	}
}
