package cloud

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// The methods of PacedEC2: each waits for its action's token (see pace);
// the reads that coalesce go through the batcher first (coalesce.go).

func (e *PacedEC2) DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, o ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error) {
	return pace(e, ctx, "DescribeInstanceAttribute", in, o, e.next.DescribeInstanceAttribute)
}

func (e *PacedEC2) DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, o ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error) {
	return pace(e, ctx, "DescribeSnapshots", in, o, e.next.DescribeSnapshots)
}

func (e *PacedEC2) GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, o ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	return pace(e, ctx, "GetConsoleOutput", in, o, e.next.GetConsoleOutput)
}

func (e *PacedEC2) GetConsoleScreenshot(ctx context.Context, in *ec2.GetConsoleScreenshotInput, o ...func(*ec2.Options)) (*ec2.GetConsoleScreenshotOutput, error) {
	return pace(e, ctx, "GetConsoleScreenshot", in, o, e.next.GetConsoleScreenshot)
}

func (e *PacedEC2) CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, o ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error) {
	return pace(e, ctx, "CreateSnapshots", in, o, e.next.CreateSnapshots)
}

func (e *PacedEC2) CreateTags(ctx context.Context, in *ec2.CreateTagsInput, o ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error) {
	return pace(e, ctx, "CreateTags", in, o, e.next.CreateTags)
}

func (e *PacedEC2) ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error) {
	return pace(e, ctx, "ModifyInstanceAttribute", in, o, e.next.ModifyInstanceAttribute)
}

func (e *PacedEC2) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	return pace(e, ctx, "ModifyNetworkInterfaceAttribute", in, o, e.next.ModifyNetworkInterfaceAttribute)
}

func (e *PacedEC2) RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, o ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error) {
	return pace(e, ctx, "RevokeSecurityGroupEgress", in, o, e.next.RevokeSecurityGroupEgress)
}

func (e *PacedEC2) RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, o ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error) {
	return pace(e, ctx, "RevokeSecurityGroupIngress", in, o, e.next.RevokeSecurityGroupIngress)
}

func (e *PacedEC2) DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, o ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error) {
	return pace(e, ctx, "DisassociateIamInstanceProfile", in, o, e.next.DisassociateIamInstanceProfile)
}

func (e *PacedEC2) AssociateIamInstanceProfile(ctx context.Context, in *ec2.AssociateIamInstanceProfileInput, o ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error) {
	return pace(e, ctx, "AssociateIamInstanceProfile", in, o, e.next.AssociateIamInstanceProfile)
}

func (e *PacedEC2) ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error) {
	return pace(e, ctx, "ModifySnapshotAttribute", in, o, e.next.ModifySnapshotAttribute)
}

func (e *PacedEC2) CopySnapshot(ctx context.Context, in *ec2.CopySnapshotInput, o ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error) {
	return pace(e, ctx, "CopySnapshot", in, o, e.next.CopySnapshot)
}

func (e *PacedEC2) DescribeVpcEndpoints(ctx context.Context, in *ec2.DescribeVpcEndpointsInput, o ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error) {
	return pace(e, ctx, "DescribeVpcEndpoints", in, o, e.next.DescribeVpcEndpoints)
}

func (e *PacedEC2) DescribePrefixLists(ctx context.Context, in *ec2.DescribePrefixListsInput, o ...func(*ec2.Options)) (*ec2.DescribePrefixListsOutput, error) {
	return pace(e, ctx, "DescribePrefixLists", in, o, e.next.DescribePrefixLists)
}

func (e *PacedEC2) AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, o ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error) {
	return pace(e, ctx, "AuthorizeSecurityGroupEgress", in, o, e.next.AuthorizeSecurityGroupEgress)
}

func (e *PacedEC2) AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, o ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error) {
	return pace(e, ctx, "AuthorizeSecurityGroupIngress", in, o, e.next.AuthorizeSecurityGroupIngress)
}

func (e *PacedEC2) DescribeNetworkAcls(ctx context.Context, in *ec2.DescribeNetworkAclsInput, o ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error) {
	return pace(e, ctx, "DescribeNetworkAcls", in, o, e.next.DescribeNetworkAcls)
}

func (e *PacedEC2) CreateNetworkAclEntry(ctx context.Context, in *ec2.CreateNetworkAclEntryInput, o ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error) {
	return pace(e, ctx, "CreateNetworkAclEntry", in, o, e.next.CreateNetworkAclEntry)
}

func (e *PacedEC2) DeleteNetworkAclEntry(ctx context.Context, in *ec2.DeleteNetworkAclEntryInput, o ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error) {
	return pace(e, ctx, "DeleteNetworkAclEntry", in, o, e.next.DeleteNetworkAclEntry)
}

func (e *PacedEC2) LockSnapshot(ctx context.Context, in *ec2.LockSnapshotInput, o ...func(*ec2.Options)) (*ec2.LockSnapshotOutput, error) {
	return pace(e, ctx, "LockSnapshot", in, o, e.next.LockSnapshot)
}

func (e *PacedEC2) DescribeLockedSnapshots(ctx context.Context, in *ec2.DescribeLockedSnapshotsInput, o ...func(*ec2.Options)) (*ec2.DescribeLockedSnapshotsOutput, error) {
	return pace(e, ctx, "DescribeLockedSnapshots", in, o, e.next.DescribeLockedSnapshots)
}
