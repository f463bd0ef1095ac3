package fakeaws

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/responder-ir/responder/responder/cloud"
)

// The fake IAM answers as IAM does: the instance's profile and its role,
// the document URL-encoded, NoSuchEntity typed as the SDK types it,
// UnmodifiableEntity on a service-linked role, LimitExceeded past the
// role's inline policy quota, AccessDenied when denied.
func TestIAMRolePolicies(t *testing.T) {
	c, _ := NewSuspect()
	ctx := context.Background()
	s := c.IAM()
	prof, err := s.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String("web-server")})
	if err != nil || len(prof.InstanceProfile.Roles) != 1 || aws.ToString(prof.InstanceProfile.Roles[0].RoleName) != "web-server" {
		t.Fatalf("the suspect's profile: %+v %v", prof, err)
	}
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`
	put := func(role, name, d string) error {
		_, err := s.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(d)})
		return err
	}
	if err := put("web-server", "p", doc); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("web-server"), PolicyName: aws.String("p")})
	if err != nil || strings.Contains(aws.ToString(got.PolicyDocument), `"`) {
		t.Fatalf("GetRolePolicy %v: document %q is not URL-encoded", err, aws.ToString(got.PolicyDocument))
	}
	if d, _ := url.PathUnescape(aws.ToString(got.PolicyDocument)); d != doc {
		t.Errorf("decoded document %s, want %s", d, doc)
	}
	_, err = s.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("web-server"), PolicyName: aws.String("none")})
	var missing *iamtypes.NoSuchEntityException
	if !errors.As(err, &missing) {
		t.Errorf("a missing policy: %v, want NoSuchEntityException", err)
	}
	c.AddRole("AWSServiceRoleForX", ServiceLinkedRolePath)
	if err := put("AWSServiceRoleForX", "p", doc); !cloud.IsErrorCode(err, "UnmodifiableEntity") {
		t.Errorf("service-linked role: %v, want UnmodifiableEntity", err)
	}
	if err := put("web-server", "big", `{"Version":"2012-10-17","Statement":[{"Sid":"`+strings.Repeat("x", MaxRolePolicyChars)+`"}]}`); !cloud.IsErrorCode(err, "LimitExceeded") {
		t.Errorf("past the quota: %v, want LimitExceeded", err)
	}
	if err := put("web-server", "p", "not json"); !cloud.IsErrorCode(err, "MalformedPolicyDocument") {
		t.Errorf("not a policy: %v, want MalformedPolicyDocument", err)
	}
	c.Deny("DeleteRolePolicy")
	if _, err := s.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("web-server"), PolicyName: aws.String("p")}); !cloud.IsErrorCode(err, "AccessDenied") {
		t.Errorf("denied delete: %v, want AccessDenied", err)
	}
	if names := c.RolePolicyNames("web-server"); len(names) != 1 || names[0] != "p" {
		t.Errorf("role policies %v, want [p]", names)
	}
}
