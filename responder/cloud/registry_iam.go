package cloud

import (
	"context"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// IAM lists every AWS IAM operation the toolkit calls, in the workload
// account: the credential revocation finds the role of the suspect
// instance's profile and puts on it (and, on release, takes off) an inline
// deny for the sessions issued to that instance before the response.
type IAM interface {
	GetInstanceProfile(context.Context, *iam.GetInstanceProfileInput, ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	// The names of the role's policies, for the case record and report
	// (credential-revocation reads them beside the revocation).
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
}

var _ IAM = (*iam.Client)(nil)

func init() {
	Register("iam", WorkloadAccount, reflect.TypeFor[IAM]())
}
