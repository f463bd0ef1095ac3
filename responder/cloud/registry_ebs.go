package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/ebs"
)

// EBS lists the EBS direct API operations the toolkit calls, in the
// forensics account with the caller's own credentials: `responder image`
// reads a snapshot copy block by block. Reading an encrypted copy also
// needs kms:Decrypt on its key (see dependentActions).
type EBS interface {
	ListSnapshotBlocks(context.Context, *ebs.ListSnapshotBlocksInput, ...func(*ebs.Options)) (*ebs.ListSnapshotBlocksOutput, error)
	GetSnapshotBlock(context.Context, *ebs.GetSnapshotBlockInput, ...func(*ebs.Options)) (*ebs.GetSnapshotBlockOutput, error)
}

var _ EBS = (*ebs.Client)(nil)

func init() {
	Register("ebs", EvidenceAccount, reflect.TypeFor[EBS]())
}
