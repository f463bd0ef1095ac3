package fleet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/fleet"
)

const (
	idA = "i-0a0000000000000a1"
	idB = "i-0b0000000000000b2"
)

func TestParseFilters(t *testing.T) {
	got, err := fleet.ParseFilters([]string{"tag:app=web", "image-id=ami-1,ami-2", "instance-state-name=running", "image-id=ami-3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("filters %v: want tag:app, image-id (merged), instance-state-name", got)
	}
	if aws.ToString(got[1].Name) != "image-id" || strings.Join(got[1].Values, ",") != "ami-1,ami-2,ami-3" {
		t.Errorf("image-id filter %v: want the values of both flags", got[1].Values)
	}
	for _, tc := range []struct{ raw, want string }{
		{"instance-type-name=t3.micro", `no filter "instance-type-name"`},
		{"vpc=vpc-1", `no filter "vpc"`},
		{"tag:=x", `no filter "tag:"`},
		{"vpc-id", "want Name=Value"},
		{"vpc-id=", "want Name=Value"},
	} {
		_, err := fleet.ParseFilters([]string{tc.raw})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--filter %s: error %v, want it to say %q", tc.raw, err, tc.want)
		}
	}
	_, err = fleet.ParseFilters([]string{"instance-typ=t3.micro"})
	if err == nil || !strings.Contains(err.Error(), `did you mean "instance-type"`) {
		t.Errorf("a near miss: %v, want a suggestion", err)
	}
}

const findingsJSON = `{"Findings": [
 {"Id": "f-1", "AwsAccountId": "111122223333", "Region": "us-east-1",
  "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-0a0000000000000a1"},
                {"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::b"}]},
 {"Id": "f-2", "AwsAccountId": "444455556666", "Region": "eu-west-1",
  "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:eu-west-1:444455556666:instance/i-0b0000000000000b2"}]},
 {"Id": "f-3", "AwsAccountId": "111122223333", "Region": "us-east-1",
  "Resources": [{"Type": "AwsIamRole", "Id": "arn:aws:iam::111122223333:role/x"}]}
]}`

func TestParseFindings(t *testing.T) {
	got, err := fleet.ParseFindings("f.json", []byte(findingsJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.FindingTarget{
		{FindingID: "f-1", InstanceID: idA, AccountID: "111122223333", Region: "us-east-1"},
		{FindingID: "f-2", InstanceID: idB, AccountID: "444455556666", Region: "eu-west-1"},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("targets %+v, want %+v", got, want)
	}
	list := `[{"Id": "f-9", "AwsAccountId": "111122223333", "Region": "us-east-1",
	  "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-0a0000000000000a1"}]}]`
	if got, err := fleet.ParseFindings("list.json", []byte(list)); err != nil || len(got) != 1 || got[0].InstanceID != idA {
		t.Errorf("a bare list: %+v, %v", got, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"Findings": [`, "not ASFF JSON"},
		{``, "empty file"},
		{`{"Items": []}`, `no "Findings" list`},
		{`{"Findings": [{"Id": "f", "Resources": [{"Type": "AwsIamRole", "Id": "x"}]}]}`, "none with an AwsEc2Instance"},
		{`[{"Id": "f", "Resources": [{"Type": "AwsEc2Instance", "Id": "i-0a0000000000000a1"}]}]`, "not an instance ARN"},
		{`[{"Id": "f", "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-xyz"}]}]`, "invalid instance ID"},
		{`[{"Id": "f", "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1::instance/i-0a0000000000000a1"}]}]`, "no account ID"},
	} {
		_, err := fleet.ParseFindings("bad.json", []byte(tc.body))
		var ie *responder.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("findings %s: error %v, want bad input saying %q", tc.body, err, tc.want)
		}
	}
}

func TestResolveRefusesBadInput(t *testing.T) {
	findings, err := fleet.ParseFindings("f.json", []byte(findingsJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec fleet.Spec
		want string
	}{
		{"no target", fleet.Spec{}, "no target"},
		{"bad instance", fleet.Spec{InstanceIDs: []string{"i-123"}}, "invalid instance ID"},
		{"unknown filter", fleet.Spec{Filters: []string{"colour=red"}}, `no filter "colour"`},
		{"bad account", fleet.Spec{InstanceIDs: []string{idA}, Accounts: []string{"1234"}, RoleARN: "arn:aws:iam::{account}:role/r"}, "not an account ID"},
		{"template without {account}", fleet.Spec{InstanceIDs: []string{idA}, Accounts: []string{"111122223333", "444455556666"},
			RoleARN: "arn:aws:iam::111122223333:role/r"}, "has no {account}"},
		{"several accounts, no role", fleet.Spec{InstanceIDs: []string{idA}, Accounts: []string{"111122223333", "444455556666"}}, "give --role-arn"},
		{"template, no account", fleet.Spec{InstanceIDs: []string{idA}, RoleARN: "arn:aws:iam::{account}:role/r"}, "give --accounts"},
		{"not a role", fleet.Spec{InstanceIDs: []string{idA}, Accounts: []string{"111122223333"}, RoleARN: "arn:aws:iam::{account}:user/r"}, "want arn:aws:iam"},
		{"finding account not allowed", fleet.Spec{Findings: findings, Accounts: []string{"111122223333"}, RoleARN: "arn:aws:iam::{account}:role/r"},
			"instance i-0b0000000000000b2 is in account 444455556666, which --accounts does not allow"},
		{"findings in two accounts, no template", fleet.Spec{Findings: findings}, "the findings are in 2 accounts"},
		{"bad region", fleet.Spec{InstanceIDs: []string{idA}, Regions: []string{"useast1"}}, "not a Region name"},
	} {
		_, err := tc.spec.Resolve()
		var ie *responder.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want bad input saying %q", tc.name, err, tc.want)
		}
	}
}

func TestResolveGroupsByAccountAndRegion(t *testing.T) {
	findings, err := fleet.ParseFindings("f.json", []byte(findingsJSON))
	if err != nil {
		t.Fatal(err)
	}
	spec := fleet.Spec{
		InstanceIDs: []string{idA, idA}, Findings: findings, Regions: []string{"us-east-1", "eu-west-1"},
		Accounts: []string{"111122223333", "444455556666"}, RoleARN: "arn:aws:iam::{account}:role/responder-member",
	}
	got, err := spec.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	var scopes []string
	for _, g := range got.Groups {
		scopes = append(scopes, g.AccountID+"/"+g.Region+"/"+g.RoleARN+"="+strings.Join(g.InstanceIDs, ","))
	}
	want := []string{
		"111122223333/eu-west-1/arn:aws:iam::111122223333:role/responder-member=" + idA,
		"111122223333/us-east-1/arn:aws:iam::111122223333:role/responder-member=" + idA, // the flag's and the finding's: once
		"444455556666/eu-west-1/arn:aws:iam::444455556666:role/responder-member=" + idA + "," + idB,
		"444455556666/us-east-1/arn:aws:iam::444455556666:role/responder-member=" + idA,
	}
	if strings.Join(scopes, "\n") != strings.Join(want, "\n") {
		t.Errorf("groups:\n%s\nwant:\n%s", strings.Join(scopes, "\n"), strings.Join(want, "\n"))
	}
	if got.Single() {
		t.Error("a fleet reported as a single target")
	}
	one, err := fleet.Spec{InstanceIDs: []string{idA}}.Resolve()
	if err != nil || !one.Single() {
		t.Errorf("one instance: single %v, %v", one != nil && one.Single(), err)
	}
}
