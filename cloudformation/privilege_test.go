package cloudformation

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// trustStatements returns the Allow statements of a role's trust policy.
func trustStatements(t *testing.T, tmpl *Template, role string) []Statement {
	t.Helper()
	var out []Statement
	for _, d := range tmpl.Documents() {
		if d.Resource == role && d.Kind == TrustPolicy {
			out = append(out, allowsOf(d.Statements)...)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no trust statement", role)
	}
	return out
}

// checkHumanTrust checks that a role people assume trusts an account's
// principals only as the named ones (the parameter's ArnLike patterns)
// when they are given, else only with MFA: never the account as a whole.
func checkHumanTrust(t *testing.T, tmpl *Template, role, namedParam, hasNamed, account string) {
	t.Helper()
	for _, s := range trustStatements(t, tmpl, role) {
		if !reflect.DeepEqual(s.Actions, []string{"sts:AssumeRole"}) {
			t.Errorf("%s: trust statement %q allows %v, want sts:AssumeRole alone", role, s.Sid, s.Actions)
		}
		if sub, _ := get(s.Principal, "AWS", "Fn::Sub").(string); sub != "arn:${AWS::Partition}:iam::"+account+":root" {
			t.Errorf("%s: trust statement %q trusts %v", role, s.Sid, s.Principal)
		}
		args, _ := get(s.Condition, "Fn::If").([]any)
		if len(args) != 3 || args[0] != hasNamed {
			t.Fatalf("%s: trust statement %q: condition %v, want Fn::If %s", role, s.Sid, s.Condition, hasNamed)
		}
		if !refersTo(get(args[1], "ArnLike", "aws:PrincipalArn"), namedParam) || len(args[1].(map[string]any)) != 1 {
			t.Errorf("%s: with %s, the condition is %v, want ArnLike aws:PrincipalArn !Ref %s alone", role, namedParam, args[1], namedParam)
		}
		if get(args[2], "Bool", "aws:MultiFactorAuthPresent") != "true" || len(args[2].(map[string]any)) != 1 {
			t.Errorf("%s: without %s, the condition is %v, want Bool aws:MultiFactorAuthPresent true", role, namedParam, args[2])
		}
	}
}

// The forensics account's roles that people assume trust the account's
// principals under a condition: MFA, or the principals (IAM Identity Center
// permission sets' roles, IAM roles) named in the stack's parameters.
func TestHumanRolesTrust(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	for _, c := range []struct{ role, param, condition string }{
		{"ResponderRole", "ResponderPrincipalArns", "HasResponderPrincipals"},
		{"InvestigatorRole", "InvestigatorPrincipalArns", "HasInvestigatorPrincipals"},
		{"DataCustodianRole", "CustodianPrincipalArns", "HasCustodianPrincipals"},
	} {
		checkHumanTrust(t, tmpl, c.role, c.param, c.condition, "${AWS::AccountId}")
		p := tmpl.Parameters[c.param]
		if str(p["Type"]) != "CommaDelimitedList" || p["Default"] != "" {
			t.Errorf("parameter %s: %v, want a CommaDelimitedList, empty by default (MFA)", c.param, p)
		}
		for _, v := range []string{"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_IR_*", ""} {
			if !admits(str(p["AllowedPattern"]), v) {
				t.Errorf("parameter %s refuses %q", c.param, v)
			}
		}
		for _, v := range []string{"*", "arn:aws:iam::111122223333:root", "111122223333"} {
			if admits(str(p["AllowedPattern"]), v) {
				t.Errorf("parameter %s admits %q: the whole account", c.param, v)
			}
		}
	}
}

// Only the data custodian lifts a legal hold: the responder and Lambda roles
// place holds (s3:object-lock-legal-hold ON) and nothing else, the bucket
// policy refuses every other status to everyone but the custodian, and the
// custodian alone may bypass governance retention.
func TestLegalHoldsLiftedByCustodianOnly(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	for _, role := range []string{"ResponderRole", "ResponderLambdaRole"} {
		for _, s := range allowStatements(t, tmpl, role) {
			if grantsAction(s, "s3:PutObjectLegalHold") && !placesHoldsOnly(s.Condition) {
				t.Errorf("%s: statement %q sets legal holds without s3:object-lock-legal-hold = ON", role, s.Sid)
			}
			if grantsAction(s, "s3:BypassGovernanceRetention") {
				t.Errorf("%s: statement %q bypasses governance retention", role, s.Sid)
			}
		}
	}
	custodian := grantedOn(allowStatements(t, tmpl, "DataCustodianRole"))
	if custodian["s3:PutObjectLegalHold"] == nil || custodian["s3:BypassGovernanceRetention"] == nil {
		t.Error("the data custodian cannot lift holds or manage retention")
	}
	denies := 0
	for _, s := range bucketPolicyStatements(tmpl, "EvidenceBucket") {
		if s.Effect != "Deny" || !slices.Equal(s.Actions, []string{"s3:PutObjectLegalHold"}) || !everyone(s.Principal) {
			continue
		}
		if Strings(get(s.Condition, "StringNotEquals", "s3:object-lock-legal-hold")) == nil ||
			!reflect.DeepEqual(get(s.Condition, "ArnNotEquals", "aws:PrincipalArn"), map[string]any{"Fn::GetAtt": []any{"DataCustodianRole", "Arn"}}) {
			t.Errorf("statement %q: condition %v, want StringNotEquals s3:object-lock-legal-hold ON, ArnNotEquals the custodian", s.Sid, s.Condition)
			continue
		}
		if got := Strings(get(s.Condition, "StringNotEquals", "s3:object-lock-legal-hold")); !reflect.DeepEqual(got, []string{"ON"}) {
			t.Errorf("statement %q refuses statuses other than %v", s.Sid, got)
		}
		denies++
	}
	if denies != 1 {
		t.Errorf("%d bucket policy statements refuse lifting holds outside the custodian, want 1", denies)
	}
}

// Release (restoring the instance profile a case removed) is a person's
// decision, under a role of its own that exists only when roles to restore
// are named: trusted like the human roles of the forensics account, it
// passes exactly the named roles to EC2 (no wildcard the names could make),
// associates profiles only with instances of a case, and holds nothing
// else. The member role passes no role but the forensic one
// (TestMemberCollectionScopes).
func TestReleaseRole(t *testing.T) {
	tmpl := load(t, memberTemplate)
	role := tmpl.Resources["ResponderReleaseRole"]
	if role.Condition != "HasRelease" {
		t.Fatalf("ResponderReleaseRole: condition %q, want HasRelease (no role without releasable roles)", role.Condition)
	}
	checkHumanTrust(t, tmpl, "ResponderReleaseRole", "ReleasePrincipalArns", "HasReleasePrincipals", "${ForensicsAccountId}")

	p := tmpl.Parameters["ReleasableInstanceRoles"]
	for _, bad := range []string{"*", "app*", "/", "a/*", "a?"} {
		if admits(str(p["AllowedPattern"]), bad) {
			t.Errorf("ReleasableInstanceRoles admits %q", bad)
		}
	}
	var actions []string
	for _, s := range allowStatements(t, tmpl, "ResponderReleaseRole") {
		actions = append(actions, s.Actions...)
		switch {
		case contains(s.Actions, "iam:PassRole"):
			if got := Strings(get(branches(s.Condition)[0], "StringEquals", "iam:PassedToService")); !reflect.DeepEqual(got, []string{"ec2.amazonaws.com"}) {
				t.Errorf("statement %q passes roles to %v", s.Sid, got)
			}
			resolved := valueResolver{tmpl}.strings(s.Resources)
			for _, r := range resolved {
				if passesAnyRole(r) {
					t.Errorf("statement %q passes %s: more than the named roles", s.Sid, r)
				}
			}
			if !slices.Contains(resolved, "arn:*:iam::*:role/{param:ReleasableInstanceRoles}") {
				t.Errorf("statement %q passes %v, want the named roles", s.Sid, resolved)
			}
		case contains(s.Actions, "ec2:AssociateIamInstanceProfile"):
			if get(s.Condition, "Null", "aws:ResourceTag/responder:case-id") != "false" {
				t.Errorf("statement %q associates profiles with instances that are in no case", s.Sid)
			}
		}
	}
	slices.Sort(actions)
	want := []string{"ec2:AssociateIamInstanceProfile", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstances", "iam:PassRole"}
	if !slices.Equal(actions, want) {
		t.Errorf("ResponderReleaseRole allows %v, want %v", actions, want)
	}
	if !strings.Contains(str(get(tmpl.Outputs["ReleaseRoleArn"], "Condition")), "HasRelease") {
		t.Error("output ReleaseRoleArn is not conditional on HasRelease")
	}
}
