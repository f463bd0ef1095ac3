package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/responder-ir/responder/responder/evidence"
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

// Signing lists the AWS KMS operations that sign case records, with the
// caller's own credentials, in the forensics account that holds the
// signing key (an ECC_NIST_P256 SIGN_VERIFY key): GetPublicKey reads the
// public key stored beside the record (and verify --online compares it),
// Sign signs the digest of each run's record.
type Signing interface {
	Sign(context.Context, *kms.SignInput, ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

var (
	_ Signing          = (*kms.Client)(nil)
	_ evidence.SignAPI = Signing(nil)
)

func init() {
	Register("kms", EvidenceAccount, reflect.TypeFor[Signing]())
}
