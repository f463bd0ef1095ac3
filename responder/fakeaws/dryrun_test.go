package fakeaws

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

const unknownInstance = "i-0123456789abcdef0"

// dryRunCalls are the EC2 operations with a DryRun parameter. valid makes a
// call that would succeed on the suspect; invalid one that names a missing
// resource and must answer code even in a dry run.
var dryRunCalls = []struct {
	op      string
	mutates bool
	valid   func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error
	invalid func(ctx context.Context, c *Cloud, dry *bool) error
	code    string
}{
	{
		op:      "CreateSnapshots",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: dry,
				InstanceSpecification: &types.InstanceSpecification{InstanceId: &s.InstanceID}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: dry,
				InstanceSpecification: &types.InstanceSpecification{InstanceId: aws.String(unknownInstance)}})
			return err
		},
		code: "InvalidInstanceID.NotFound",
	},
	{
		op:      "CreateTags",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{DryRun: dry, Resources: []string{s.InstanceID},
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().CreateTags(ctx, &ec2.CreateTagsInput{DryRun: dry, Resources: []string{"vol-0123456789abcdef0"},
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		code: "InvalidVolume.NotFound",
	},
	{
		op:      "ModifyInstanceAttribute",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: dry, InstanceId: &s.InstanceID,
				DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: dry, InstanceId: aws.String(unknownInstance),
				DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
			return err
		},
		code: "InvalidInstanceID.NotFound",
	},
	{
		op:      "ModifyNetworkInterfaceAttribute",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: dry,
				NetworkInterfaceId: &s.InterfaceIDs[0], Groups: []string{s.DefaultGroup}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: dry,
				NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Groups: []string{"sg-0123456789abcdef0"}})
			return err
		},
		code: "InvalidNetworkInterfaceID.NotFound",
	},
	{
		op:      "CreateSecurityGroup",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{DryRun: dry, VpcId: &s.VpcID,
				GroupName: aws.String("isolation"), Description: aws.String("d")})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{DryRun: dry, VpcId: aws.String("vpc-0123456789abcdef0"),
				GroupName: aws.String("isolation"), Description: aws.String("d")})
			return err
		},
		code: "InvalidVpcID.NotFound",
	},
	{
		op:      "RevokeSecurityGroupEgress",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{DryRun: dry, GroupId: &s.GroupID, IpPermissions: DefaultEgress()})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{DryRun: dry,
				GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: DefaultEgress()})
			return err
		},
		code: "InvalidGroup.NotFound",
	},
	{
		op:      "RevokeSecurityGroupIngress",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{DryRun: dry, GroupId: &s.GroupID,
				IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
					IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			// A rule that does not exist is an input error too.
			g := c.AddSecurityGroup(c.AddVPC(), "empty", nil, nil)
			_, err := c.EC2().RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{DryRun: dry, GroupId: &g,
				IpPermissions: DefaultEgress()})
			return err
		},
		code: "InvalidPermission.NotFound",
	},
	{
		op: "DescribeInstances",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: dry, InstanceIds: []string{s.InstanceID}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: dry, InstanceIds: []string{unknownInstance}})
			return err
		},
		code: "InvalidInstanceID.NotFound",
	},
	{
		op:      "AuthorizeSecurityGroupEgress",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{DryRun: dry, GroupId: &s.DefaultGroup,
				IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
					PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String("pl-63a5400a")}}}}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{DryRun: dry,
				GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: DefaultEgress()})
			return err
		},
		code: "InvalidGroup.NotFound",
	},
	{
		op:      "AuthorizeSecurityGroupIngress",
		mutates: true,
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{DryRun: dry, GroupId: &s.DefaultGroup,
				IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{DryRun: dry,
				GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: DefaultEgress()})
			return err
		},
		code: "InvalidGroup.NotFound",
	},
	{
		op: "DescribeInstanceTypes",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{DryRun: dry, InstanceTypes: []types.InstanceType{"t3.micro"}})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{DryRun: dry, InstanceTypes: []types.InstanceType{"t9.nano"}})
			return err
		},
		code: "InvalidInstanceType",
	},
	{
		op: "DescribeVpcEndpoints",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{DryRun: dry})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{DryRun: dry, VpcEndpointIds: []string{"vpce-0123456789abcdef0"}})
			return err
		},
		code: "InvalidVpcEndpointId.NotFound",
	},
	{
		op: "DescribeNetworkInterfaces",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{DryRun: dry, NetworkInterfaceIds: s.InterfaceIDs})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{DryRun: dry, NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
			return err
		},
		code: "InvalidNetworkInterfaceID.NotFound",
	},
	{
		op: "DescribePrefixLists",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().DescribePrefixLists(ctx, &ec2.DescribePrefixListsInput{DryRun: dry})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().DescribePrefixLists(ctx, &ec2.DescribePrefixListsInput{DryRun: dry, PrefixListIds: []string{"pl-00000000"}})
			return err
		},
		code: "InvalidPrefixListID.NotFound",
	},
	{
		op: "GetConsoleScreenshot",
		valid: func(ctx context.Context, c *Cloud, s Suspect, dry *bool) error {
			_, err := c.EC2().GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{DryRun: dry, InstanceId: &s.InstanceID})
			return err
		},
		invalid: func(ctx context.Context, c *Cloud, dry *bool) error {
			_, err := c.EC2().GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{DryRun: dry, InstanceId: aws.String("i-bad")})
			return err
		},
		code: "InvalidInstanceID.Malformed",
	},
}

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	for _, tt := range dryRunCalls {
		t.Run(tt.op, func(t *testing.T) {
			c, s := NewSuspect()
			err := tt.valid(ctx, c, s, aws.Bool(true))
			wantCode(t, err, "DryRunOperation")
			if !strings.Contains(err.Error(), "Request would have succeeded, but DryRun flag is set.") {
				t.Errorf("dry run answered %v", err)
			}

			wantCode(t, tt.invalid(ctx, c, aws.Bool(true)), tt.code)
			wantCode(t, tt.invalid(ctx, c, nil), tt.code)

			c.Deny(tt.op)
			wantCode(t, tt.valid(ctx, c, s, aws.Bool(true)), "UnauthorizedOperation")
			wantCode(t, tt.valid(ctx, c, s, nil), "UnauthorizedOperation")
			wantCode(t, tt.invalid(ctx, c, aws.Bool(true)), tt.code) // input errors come first
			c.Allow(tt.op)

			if err := tt.valid(ctx, c, s, nil); err != nil {
				t.Errorf("the real call failed: %v", err)
			}
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	for _, tt := range dryRunCalls {
		t.Run(tt.op, func(t *testing.T) {
			c, s := NewSuspect()
			before := c.StateDigest()
			wantCode(t, tt.valid(ctx, c, s, aws.Bool(true)), "DryRunOperation")
			if after := c.StateDigest(); after != before {
				t.Errorf("dry run changed the state:\n%s", c.StateDump())
			}
			if err := tt.valid(ctx, c, s, nil); err != nil {
				t.Fatal(err)
			}
			if changed := c.StateDigest() != before; changed != tt.mutates {
				t.Errorf("the real call changed the digest: %v, want %v", changed, tt.mutates)
			}
		})
	}
}

func TestDigestTracksChangesNotReads(t *testing.T) {
	c, s := NewSuspect()
	ctx := context.Background()
	before := c.StateDigest()
	if _, err := c.EC2().DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EC2().GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: &s.InstanceID}); err != nil {
		t.Fatal(err)
	}
	if c.StateDigest() != before {
		t.Fatal("reads changed the digest")
	}
	if _, err := c.EC2().ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &s.InstanceID,
		DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		t.Fatal(err)
	}
	if c.StateDigest() == before {
		t.Fatal("enabling termination protection did not change the digest")
	}
}
