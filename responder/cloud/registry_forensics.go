package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
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
