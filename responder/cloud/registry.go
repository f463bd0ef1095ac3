package cloud

import (
	"context"
	"reflect"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/responder-ir/responder/responder/evidence"
)

// EC2 lists every Amazon EC2 operation the toolkit calls in a workload account.
// Add a method here when a step needs a new operation; the permission coverage
// test then asks for it in the member-account role.
type EC2 interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DescribeSnapshots(context.Context, *ec2.DescribeSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	GetConsoleScreenshot(context.Context, *ec2.GetConsoleScreenshotInput, ...func(*ec2.Options)) (*ec2.GetConsoleScreenshotOutput, error)
	CreateSnapshots(context.Context, *ec2.CreateSnapshotsInput, ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	RevokeSecurityGroupEgress(context.Context, *ec2.RevokeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	DisassociateIamInstanceProfile(context.Context, *ec2.DisassociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
	AssociateIamInstanceProfile(context.Context, *ec2.AssociateIamInstanceProfileInput, ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
	// Preserving snapshots in the forensics account: share a case snapshot
	// with it, or first copy it re-encrypted with a customer managed key.
	ModifySnapshotAttribute(context.Context, *ec2.ModifySnapshotAttributeInput, ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	CopySnapshot(context.Context, *ec2.CopySnapshotInput, ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error)
	// OS-level collection through SSM: the instance type's memory size, and
	// the forensic access group that lets a quarantined instance reach only
	// the VPC's Systems Manager and S3 endpoints.
	DescribeInstanceTypes(context.Context, *ec2.DescribeInstanceTypesInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypesOutput, error)
	DescribeVpcEndpoints(context.Context, *ec2.DescribeVpcEndpointsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribePrefixLists(context.Context, *ec2.DescribePrefixListsInput, ...func(*ec2.Options)) (*ec2.DescribePrefixListsOutput, error)
	AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
	// The untracking group of the two-step quarantine: all traffic in from
	// 0.0.0.0/0 and ::/0, so that the flows it carries are untracked.
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	// The network ACL path of containment (playbook setting network_acl):
	// deny entries for the instance's addresses in its VPC's ACLs, deleted
	// again by a release.
	DescribeNetworkAcls(context.Context, *ec2.DescribeNetworkAclsInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkAclsOutput, error)
	CreateNetworkAclEntry(context.Context, *ec2.CreateNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.CreateNetworkAclEntryOutput, error)
	DeleteNetworkAclEntry(context.Context, *ec2.DeleteNetworkAclEntryInput, ...func(*ec2.Options)) (*ec2.DeleteNetworkAclEntryOutput, error)
	// EBS snapshot lock of the case snapshots, read back; never
	// UnlockSnapshot.
	LockSnapshot(context.Context, *ec2.LockSnapshotInput, ...func(*ec2.Options)) (*ec2.LockSnapshotOutput, error)
	DescribeLockedSnapshots(context.Context, *ec2.DescribeLockedSnapshotsInput, ...func(*ec2.Options)) (*ec2.DescribeLockedSnapshotsOutput, error)
}

// S3 lists every Amazon S3 operation the evidence store calls.
type S3 interface {
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	// ListObjectVersions: verify sees every version written under a case.
	ListObjectVersions(context.Context, *s3.ListObjectVersionsInput, ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	PutObjectLegalHold(context.Context, *s3.PutObjectLegalHoldInput, ...func(*s3.Options)) (*s3.PutObjectLegalHoldOutput, error)
	// Evidence uploaded by the instance itself through presigned URLs: a
	// memory image arrives as a multipart upload the toolkit opens, checks
	// and completes (or aborts).
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	ListParts(context.Context, *s3.ListPartsInput, ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	// ListMultipartUploads finds the upload a retried stage of the
	// Lambda's collection opened before (it opens no second one).
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	// UploadPart: `responder image` streams a disk image into the bucket
	// itself.
	UploadPart(context.Context, *s3.UploadPartInput, ...func(*s3.Options)) (*s3.UploadPartOutput, error)
}

// SNS lists every Amazon SNS operation the toolkit calls.
type SNS interface {
	Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// STS lists every AWS STS operation the toolkit calls directly. AssumeRole is
// called by the credentials provider when a role is given (see Load).
type STS interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// The real clients must serve the registry.
var (
	_ EC2 = (*ec2.Client)(nil)
	_ S3  = (*s3.Client)(nil)
	_ SNS = (*sns.Client)(nil)
	_ STS = (*sts.Client)(nil)
)

// The registry must serve the evidence store's narrow interfaces: the IAM
// policies derived from it then cover every call the store makes.
var (
	_ evidence.UploadAPI = S3(nil)
	_ evidence.Presigner = Presigner(nil)
	_ evidence.PartAPI   = S3(nil)
)

// Where an operation's permission is needed.
const (
	// WorkloadAccount operations run with the (possibly assumed) role in the
	// account that owns the suspect instance.
	WorkloadAccount = "workload"
	// EvidenceAccount operations run with the caller's own credentials against
	// the evidence store, usually in the forensics account.
	EvidenceAccount = "evidence"
)

// Operation is one AWS API operation the toolkit calls, as an IAM action.
type Operation struct {
	API     string // service:Operation as the SDK names it, for example "s3:HeadObject"
	Action  string // the IAM action that authorises it, for example "s3:GetObject"
	Account string // WorkloadAccount or EvidenceAccount
}

// registry holds the interfaces registered by Register, in registration order.
var registry []registered

type registered struct {
	prefix, account string
	iface           reflect.Type
}

// Register adds a service interface to the operation registry. Each registry
// file registers its interface in an init function.
func Register(iamPrefix, account string, iface reflect.Type) {
	registry = append(registry, registered{iamPrefix, account, iface})
}

func init() {
	Register("ec2", WorkloadAccount, reflect.TypeFor[EC2]())
	Register("sts", WorkloadAccount, reflect.TypeFor[STS]())
	Register("sns", EvidenceAccount, reflect.TypeFor[SNS]())
	Register("s3", EvidenceAccount, reflect.TypeFor[S3]())
}

// Operations returns every operation in the registry, sorted by action. It is
// derived from the registered interfaces, so it cannot drift from the code.
// sts:AssumeRole is added for the caller (it is made by the credentials
// provider, not through the STS interface).
func Operations() []Operation {
	ops := []Operation{{API: "sts:AssumeRole", Action: "sts:AssumeRole", Account: EvidenceAccount}}
	for _, r := range registry {
		for i := 0; i < r.iface.NumMethod(); i++ {
			api := r.prefix + ":" + r.iface.Method(i).Name
			action := api
			if a, ok := iamActionFor[api]; ok {
				action = a
			}
			ops = append(ops, Operation{API: api, Action: action, Account: r.account})
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Action != ops[j].Action {
			return ops[i].Action < ops[j].Action
		}
		return ops[i].API < ops[j].API
	})
	return ops
}

// iamActionFor maps the operations whose IAM action has another name.
var iamActionFor = map[string]string{
	"s3:HeadObject":    "s3:GetObject",
	"s3:ListObjectsV2": "s3:ListBucket",
	// ListObjectVersions is authorised by s3:ListBucketVersions.
	"s3:ListObjectVersions": "s3:ListBucketVersions",
	// Multipart uploads are authorised by s3:PutObject.
	"s3:CreateMultipartUpload":   "s3:PutObject",
	"s3:CompleteMultipartUpload": "s3:PutObject",
	"s3:UploadPart":              "s3:PutObject",
	"s3:ListParts":               "s3:ListMultipartUploadParts",
	"s3:ListMultipartUploads":    "s3:ListBucketMultipartUploads",
}
