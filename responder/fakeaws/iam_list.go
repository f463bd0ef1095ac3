package fakeaws

import (
	"context"
	"fmt"
	"path"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// AttachRolePolicy attaches a managed policy (by ARN) to a role directly
// (test setup). It panics when the role does not exist.
func (c *Cloud) AttachRolePolicy(roleName, policyARN string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.st.Roles[roleName]
	if !ok {
		panic(fmt.Sprintf("fakeaws: AttachRolePolicy: no role %q", roleName))
	}
	r.Attached = append(r.Attached, policyARN)
}

// roleLocked finds a role by a name given to an IAM call.
func (c *Cloud) roleLocked(roleName *string) (*role, error) {
	rn := aws.ToString(roleName)
	if roleName == nil || !iamNamePattern.MatchString(rn) {
		return nil, apiError("ValidationError", "1 validation error detected: Value at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
	}
	r, ok := c.st.Roles[rn]
	if !ok {
		return nil, apiError("NoSuchEntity", "The role with name %s cannot be found.", rn)
	}
	return r, nil
}

// ListRolePolicies lists the names of a role's inline policies, in one
// page (IsTruncated false).
func (s *IAM) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	c := s.c
	out := &iam.ListRolePoliciesOutput{}
	err := c.call(ctx, serviceIAM, "ListRolePolicies", false, &out.ResultMetadata, func() (func(), error) {
		r, err := c.roleLocked(in.RoleName)
		if err != nil {
			return nil, err
		}
		return func() {
			out.PolicyNames = []string{}
			for n := range r.Policies {
				out.PolicyNames = append(out.PolicyNames, n)
			}
			sort.Strings(out.PolicyNames)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAttachedRolePolicies lists the managed policies attached to a role,
// in one page (IsTruncated false).
func (s *IAM) ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	c := s.c
	out := &iam.ListAttachedRolePoliciesOutput{}
	err := c.call(ctx, serviceIAM, "ListAttachedRolePolicies", false, &out.ResultMetadata, func() (func(), error) {
		r, err := c.roleLocked(in.RoleName)
		if err != nil {
			return nil, err
		}
		return func() {
			out.AttachedPolicies = []types.AttachedPolicy{}
			for _, arn := range r.Attached {
				out.AttachedPolicies = append(out.AttachedPolicies, types.AttachedPolicy{PolicyArn: aws.String(arn), PolicyName: aws.String(path.Base(arn))})
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
