package integration

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestRecordNamesRolePolicies: on moto, the case record names the lab
// role's inline and managed policies as moto lists them (the case's own
// revocation left out), and the report shows them.
func TestRecordNamesRolePolicies(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	ctx := context.Background()
	const inline = "app-read-config"
	_, err := f.aws.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(l.RoleName), PolicyName: aws.String(inline),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)})
	must(t, err)
	// moto holds no AWS managed policy unless told to load them: a
	// customer managed one.
	created, err := f.aws.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("app-logs"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}`)})
	must(t, err)
	managed := aws.ToString(created.Policy.Arn)
	_, err = f.aws.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(l.RoleName), PolicyArn: aws.String(managed)})
	must(t, err)

	caseID := "case-role-policies"
	if res := f.run("respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--evidence-dir", f.caseDir); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	var m struct {
		Steps []struct {
			Name   string          `json:"name"`
			Before json.RawMessage `json:"before"`
		} `json:"steps"`
	}
	must(t, json.Unmarshal(dirStore(f.caseDir, caseID)(t, "manifest.json"), &m))
	var rec struct {
		Inline  []string `json:"role_inline_policies"`
		Managed []string `json:"role_managed_policies"`
		Listed  bool     `json:"role_policies_listed"`
		Error   string   `json:"role_policies_error"`
	}
	for _, s := range m.Steps {
		if s.Name == "credential-revocation" {
			must(t, json.Unmarshal(s.Before, &rec))
		}
	}
	if !rec.Listed || !slices.Equal(rec.Inline, []string{inline}) || !slices.Equal(rec.Managed, []string{managed}) {
		t.Errorf("recorded role policies %+v; want inline [%s], managed [%s]", rec, inline, managed)
	}
	res := f.run("report", "--case-id", caseID, "--evidence-dir", f.caseDir, "--format", "json")
	var r struct {
		Profile struct {
			Policies []string `json:"policies"`
		} `json:"instance_profile"`
	}
	if res.Code != exitOK || json.Unmarshal([]byte(res.Stdout), &r) != nil || len(r.Profile.Policies) != 2 {
		t.Errorf("report: %+v\n%s", r, res)
	}
}
