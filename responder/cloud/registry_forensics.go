package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// ForensicsEC2 lists the Amazon EC2 operations the toolkit calls in the
// forensics account, with the caller's own credentials: copying the case
// snapshots shared with it, and checking the copies.
type ForensicsEC2 interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	CopySnapshot(context.Context, *ec2.CopySnapshotInput, ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error)
	// EBS snapshot lock of the copies, read back; never UnlockSnapshot.
	LockSnapshot(context.Context, *ec2.LockSnapshotInput, ...func(*ec2.Options)) (*ec2.LockSnapshotOutput, error)
	DescribeLockedSnapshots(context.Context, *ec2.DescribeLockedSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeLockedSnapshotsOutput, error)
}

var _ ForensicsEC2 = (*ec2.Client)(nil)

func init() {
	Register("ec2", EvidenceAccount, reflect.TypeFor[ForensicsEC2]())
}

// InvestigationEC2 lists the Amazon EC2 operations `responder investigate`
// calls in the forensics account, with the caller's own credentials: the
// analysis instance, and the working volumes restored from the case's
// snapshot copies. They are registered under their own account label
// (Investigation) because only the CLI's responder role runs them: the
// Lambda function's role, which shares the evidence-account grants, holds
// none of them.
type InvestigationEC2 interface {
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateVolume(context.Context, *ec2.CreateVolumeInput, ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error)
	DetachVolume(context.Context, *ec2.DetachVolumeInput, ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error)
	DeleteVolume(context.Context, *ec2.DeleteVolumeInput, ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error)
}

// InvestigationSSM lists the AWS Systems Manager operations `responder
// investigate` calls in the forensics account: it waits for the analysis
// instance to be a managed node, then runs the forensics stack's
// Responder-Analysis* documents on it (mount read-only, fetch the memory
// image, analysis jobs). Like SSM, it never writes a document.
type InvestigationSSM interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

// InvestigationIAM lists the AWS IAM operations `responder investigate`
// calls in the forensics account: the per-workspace inline policy on the
// analysis role that lets the workspace's instance, and only it
// (ec2:SourceInstanceARN), read its case's evidence and write its analysis
// outputs, put after the launch and deleted by --stop, each read back. The
// stack grants them on the analysis role only, whose permissions boundary
// the responder cannot change.
type InvestigationIAM interface {
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
}

// Investigation operations run with the caller's own credentials in the
// forensics account, by the CLI's `responder investigate` only.
const Investigation = "investigation"

var (
	_ InvestigationEC2 = (*ec2.Client)(nil)
	_ InvestigationSSM = (*ssm.Client)(nil)
	_ InvestigationIAM = (*iam.Client)(nil)
)

func init() {
	Register("ec2", Investigation, reflect.TypeFor[InvestigationEC2]())
	Register("ssm", Investigation, reflect.TypeFor[InvestigationSSM]())
	Register("iam", Investigation, reflect.TypeFor[InvestigationIAM]())
}
