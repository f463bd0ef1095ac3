package fakeaws_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/fakeaws"
)

func Example() {
	c, s := fakeaws.NewSuspect()
	ctx := context.Background()

	// A dry run answers DryRunOperation and changes nothing.
	before := c.StateDigest()
	_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: aws.Bool(true),
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
	fmt.Println(cloud.ErrorCode(err), c.StateDigest() == before)

	// The real call makes one pending snapshot per volume.
	c.Throttle("CreateSnapshots", 1)
	_, err = c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
	fmt.Println(cloud.ErrorCode(err))
	out, _ := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{
		InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
	fmt.Println(len(out.Snapshots), out.Snapshots[0].State)
	c.CompleteSnapshots()
	fmt.Println(c.Snapshots()[0].State)
	// Output:
	// DryRunOperation true
	// RequestLimitExceeded
	// 2 pending
	// completed
}
