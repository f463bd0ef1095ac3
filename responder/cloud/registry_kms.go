package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// KMS lists every AWS KMS operation the toolkit calls directly, in the
// workload account: DescribeKey tells the AWS managed key aws/ebs (whose
// snapshots cannot be shared) from a customer managed key.
type KMS interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ KMS = (*kms.Client)(nil)

func init() {
	Register("kms", WorkloadAccount, reflect.TypeFor[KMS]())
}
