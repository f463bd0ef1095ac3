package fakeaws_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// The workspace operations keep AWS's rules: a volume attaches only in its
// instance's zone, only a completed snapshot restores, an attached volume
// cannot be deleted, a client token is at most 64 characters.
func TestWorkspaceOperationsKeepAWSRules(t *testing.T) {
	c := fakeaws.New()
	ctx := context.Background()
	vpc := c.AddVPC()
	subB := c.AddSubnetIn(vpc, c.Region+"b")
	src := c.AddInstance(fakeaws.InstanceSpec{})
	snaps, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(src)}})
	if err != nil {
		t.Fatal(err)
	}
	snap := aws.ToString(snaps.Snapshots[0].SnapshotId)
	if _, err := c.EC2().CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(c.Region + "b"), SnapshotId: aws.String(snap)}); cloud.ErrorCode(err) != "IncorrectState" {
		t.Errorf("volume from a pending snapshot: %v", err)
	}
	c.CompleteSnapshots()
	run, err := c.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-01234567"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(subB)})
	if err != nil {
		t.Fatal(err)
	}
	inst := aws.ToString(run.Instances[0].InstanceId)
	volA, err := c.EC2().CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(c.Region + "a"), SnapshotId: aws.String(snap)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EC2().AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: volA.VolumeId, InstanceId: aws.String(inst), Device: aws.String("/dev/sdf")}); cloud.ErrorCode(err) != "InvalidVolume.ZoneMismatch" {
		t.Errorf("attach across zones: %v", err)
	}
	volB, err := c.EC2().CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(c.Region + "b"), SnapshotId: aws.String(snap)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.EC2().AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: volB.VolumeId, InstanceId: aws.String(inst), Device: aws.String("/dev/sdf")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EC2().DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: volB.VolumeId}); cloud.ErrorCode(err) != "VolumeInUse" {
		t.Errorf("delete an attached volume: %v", err)
	}
	if _, err := c.EC2().RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-01234567"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subB), ClientToken: aws.String(strings.Repeat("x", 65))}); cloud.ErrorCode(err) != "InvalidParameterValue" {
		t.Errorf("65-character client token: %v", err)
	}
	if _, err := c.EC2().TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{inst}}); err != nil {
		t.Fatal(err)
	}
	// Termination detaches the restored volume (not delete-on-termination)
	// and keeps the snapshot.
	if v := c.Volume(aws.ToString(volB.VolumeId)); v == nil || v.State != "available" {
		t.Errorf("volume after termination: %+v", v)
	}
	if len(c.Snapshots()) != 1 {
		t.Errorf("snapshots %v", c.Snapshots())
	}
}
