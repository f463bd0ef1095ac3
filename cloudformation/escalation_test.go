package cloudformation

import (
	"path/filepath"
	"strings"
	"testing"
)

// No role of any template in this directory holds a known escalation path
// (escalation.go), the templates taken together: the forensics account's
// roles may assume the member role.
func TestNoEscalationInTemplates(t *testing.T) {
	paths, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !contains(paths, forensicsTemplate) || !contains(paths, memberTemplate) {
		t.Fatalf("templates %v: want %s and %s", paths, forensicsTemplate, memberTemplate)
	}
	var templates []*Template
	for _, p := range paths {
		templates = append(templates, load(t, p))
	}
	for _, f := range CheckEscalations(templates...) {
		t.Error(f)
	}
}

// escalationTemplate is a template with one role, Suspect, whose identity
// policy has the statements (YAML, indented for a Statement list) and whose
// trust policy has the trust statements. parameters and resources are
// added to their sections as they are.
func escalationTemplate(statements, trust, parameters, resources string) string {
	if trust == "" {
		trust = `
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: sts:AssumeRole`
	}
	return `
Parameters:
  Unused: {Type: String, Default: ""}` + parameters + `
Resources:
  Suspect:
    Type: AWS::IAM::Role
    Properties:
      RoleName: suspect
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:` + trust + `
      Policies:
        - PolicyName: grants
          PolicyDocument:
            Version: "2012-10-17"
            Statement:` + statements + `
  ForensicRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: sts:AssumeRole` + resources + "\n"
}

// Every rule fires on a policy known to hold its escalation path, and stays
// quiet on the narrow form of the same grants: each rule is shown to work
// before the real templates are trusted to pass it.
func TestEscalationRulesFire(t *testing.T) {
	const associate = `
              - {Sid: Swap, Effect: Allow, Action: ec2:AssociateIamInstanceProfile, Resource: !Sub "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*"}`
	cases := []struct {
		name                              string
		statements, trust, params, others string
		rule                              string // "" for a policy that must pass
	}{
		// An SSM document written and run.
		{name: "document create and send", rule: RuleDocumentWriteAndRun, statements: `
              - {Sid: Write, Effect: Allow, Action: [ssm:CreateDocument, ssm:DescribeDocument], Resource: "*"}
              - {Sid: Run, Effect: Allow, Action: ssm:SendCommand, Resource: "*"}`},
		{name: "document default version and send", rule: RuleDocumentWriteAndRun, statements: `
              - {Sid: Both, Effect: Allow, Action: [ssm:UpdateDocumentDefaultVersion, ssm:SendCommand], Resource: "*"}`},
		{name: "ssm wildcard", rule: RuleDocumentWriteAndRun, statements: `
              - {Sid: All, Effect: Allow, Action: "ssm:*", Resource: "*"}`},
		{name: "documents read and run", statements: `
              - {Sid: Read, Effect: Allow, Action: [ssm:DescribeDocument, ssm:GetDocument, ssm:SendCommand], Resource: "*"}`},

		// Any role passed to an instance.
		{name: "pass any role", rule: RuleBroadPassRoleAndLaunch, statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: "*"}`},
		{name: "pass role/*", rule: RuleBroadPassRoleAndLaunch, statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}`},
		{name: "pass a path wildcard", rule: RuleBroadPassRoleAndLaunch,
			params: `
  RolePath: {Type: String, Default: /, AllowedPattern: "^/([\\w+=,.@-]+/)*$"}`,
			statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role${RolePath}*"}`},
		{name: "pass a name a parameter may make a wildcard", rule: RuleBroadPassRoleAndLaunch,
			params: `
  RoleName: {Type: String, Default: app}`,
			statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"}`},
		{name: "pass any role and run instances", rule: RuleBroadPassRoleAndLaunch, statements: `
              - {Sid: Launch, Effect: Allow, Action: ec2:RunInstances, Resource: "*"}
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, NotResource: !GetAtt ForensicRole.Arn}`},
		{name: "pass one role of the template", statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}`},
		{name: "pass named roles of a list", statements: associate + `
              - Sid: Pass
                Effect: Allow
                Action: iam:PassRole
                Resource: !Split [",", !Join ["", ["arn:*:iam::*:role/", !Join [",arn:*:iam::*:role/", !Ref Names]]]]`,
			params: `
  Names: {Type: CommaDelimitedList, Default: "app,web", AllowedPattern: "^[\\w+=.@-]+(/[\\w+=.@-]+)*$"}`},
		{name: "pass any role without launching", statements: `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: "*"}`},

		// Policies written on itself or on a role it may assume.
		{name: "inline policy on itself", rule: RulePolicyWriteOnAssumable, statements: `
              - {Sid: Self, Effect: Allow, Action: iam:PutRolePolicy, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect"}`},
		{name: "attach to an assumable role", rule: RulePolicyWriteOnAssumable, statements: `
              - {Sid: Assume, Effect: Allow, Action: sts:AssumeRole, Resource: "arn:aws:iam::*:role/member"}
              - {Sid: Attach, Effect: Allow, Action: "iam:Attach*", Resource: "arn:aws:iam::123456789012:role/member"}`},
		{name: "policy versions anywhere", rule: RulePolicyWriteOnAssumable, statements: `
              - {Sid: Versions, Effect: Allow, Action: iam:CreatePolicyVersion, Resource: "*"}`},
		{name: "inline policy on another role", statements: `
              - {Sid: Other, Effect: Allow, Action: iam:PutRolePolicy, Resource: !GetAtt ForensicRole.Arn}`},
		{name: "inline policy on a role it passes", rule: RulePolicyWriteOnAssumable, statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Write, Effect: Allow, Action: iam:PutRolePolicy, Resource: !GetAtt ForensicRole.Arn}`},
		// The analysis role's shape (forensics-account.yaml): policies
		// written on the role it passes, under a boundary it cannot change.
		{name: "inline policy on a role it passes, under a boundary", statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Write, Effect: Allow, Action: iam:PutRolePolicy, Resource: !GetAtt ForensicRole.Arn}`,
			others: boundedForensicRole},
		{name: "inline policy on a role it passes, whose boundary it may remove", rule: RulePolicyWriteOnAssumable, statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Write, Effect: Allow, Action: [iam:PutRolePolicy, iam:DeleteRolePermissionsBoundary], Resource: !GetAtt ForensicRole.Arn}`,
			others: boundedForensicRole},
		{name: "inline policy on a role it passes, under a boundary that writes documents", rule: RulePolicyWriteOnAssumable, statements: associate + `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Write, Effect: Allow, Action: iam:PutRolePolicy, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Run, Effect: Allow, Action: ssm:SendCommand, Resource: "*"}`,
			others: strings.Replace(boundedForensicRole, "s3:GetObject", "ssm:CreateDocument", 1)},
		// The credential revocation's shape (member-account.yaml,
		// ResponderMemberRevokePolicy): policies on every role, but an
		// unconditional deny on itself and on the role it passes.
		{name: "inline policy on every role, itself and the passed role denied", statements: associate + revokeEvery + `
              - Sid: NeverOwnOrPassable
                Effect: Deny
                Action: [iam:PutRolePolicy, iam:DeleteRolePolicy]
                Resource: [!Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect", !GetAtt ForensicRole.Arn]`},
		{name: "inline policy on every role, the passed role not denied", rule: RulePolicyWriteOnAssumable, statements: associate + revokeEvery + `
              - {Sid: NeverOwn, Effect: Deny, Action: iam:PutRolePolicy, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect"}`},
		{name: "inline policy on every role, the deny under a condition", rule: RulePolicyWriteOnAssumable, statements: associate + revokeEvery + `
              - Sid: NeverOwnOrPassable
                Effect: Deny
                Action: iam:PutRolePolicy
                Resource: [!Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect", !GetAtt ForensicRole.Arn]
                Condition: {Bool: {"aws:SecureTransport": "true"}}`},
		{name: "inline policy on every role, the deny on another action", rule: RulePolicyWriteOnAssumable, statements: associate + revokeEvery + `
              - Sid: NeverOwnOrPassable
                Effect: Deny
                Action: iam:DeleteRolePolicy
                Resource: [!Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect", !GetAtt ForensicRole.Arn]`},
		{name: "inline policy on a role it assumes, under a path pattern the deny does not name", rule: RulePolicyWriteOnAssumable, statements: `
              - {Sid: Assume, Effect: Allow, Action: sts:AssumeRole, Resource: "arn:aws:iam::123456789012:role/ops/member"}
              - {Sid: Write, Effect: Allow, Action: iam:PutRolePolicy, Resource: "arn:aws:iam::*:role/*"}
              - {Sid: NeverOwn, Effect: Deny, Action: iam:PutRolePolicy, Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/suspect"}`},

		// Legal holds lifted, governance retention bypassed.
		{name: "legal hold without condition", rule: RuleLegalHoldLiftOrBypass, statements: `
              - {Sid: Holds, Effect: Allow, Action: s3:PutObjectLegalHold, Resource: "arn:aws:s3:::evidence/*"}`},
		{name: "legal hold OFF", rule: RuleLegalHoldLiftOrBypass, statements: `
              - Sid: Holds
                Effect: Allow
                Action: s3:PutObjectLegalHold
                Resource: "arn:aws:s3:::evidence/*"
                Condition: {StringEquals: {"s3:object-lock-legal-hold": [ON, OFF]}}`},
		{name: "legal hold by pattern", rule: RuleLegalHoldLiftOrBypass, statements: `
              - Sid: Holds
                Effect: Allow
                Action: s3:PutObjectLegalHold
                Resource: "arn:aws:s3:::evidence/*"
                Condition: {StringLike: {"s3:object-lock-legal-hold": "O*"}}`},
		{name: "governance bypass", rule: RuleLegalHoldLiftOrBypass, statements: `
              - {Sid: Bypass, Effect: Allow, Action: s3:BypassGovernanceRetention, Resource: "arn:aws:s3:::evidence/*"}`},
		{name: "legal hold ON only", statements: `
              - Sid: Holds
                Effect: Allow
                Action: s3:PutObjectLegalHold
                Resource: "arn:aws:s3:::evidence/*"
                Condition: {StringEquals: {"s3:object-lock-legal-hold": "ON"}}`},

		// The account root trusted without a condition on who.
		{name: "root without conditions", rule: RuleRootTrustWithoutConditions, trust: `
          - {Sid: Root, Effect: Allow, Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}, Action: sts:AssumeRole}`},
		{name: "bare account ID", rule: RuleRootTrustWithoutConditions, trust: `
          - {Sid: Root, Effect: Allow, Principal: {AWS: ["123456789012"]}, Action: sts:AssumeRole}`},
		{name: "root with a condition on something else", rule: RuleRootTrustWithoutConditions, trust: `
          - Sid: Root
            Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            Action: sts:AssumeRole
            Condition: {Bool: {"aws:SecureTransport": "true"}}`},
		{name: "root with MFA", trust: `
          - Sid: Root
            Effect: Allow
            Principal: {AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
            Action: sts:AssumeRole
            Condition: {Bool: {"aws:MultiFactorAuthPresent": "true"}}`},
		{name: "root with named principals", trust: `
          - Sid: Root
            Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:root"}
            Action: sts:AssumeRole
            Condition: {ArnLike: {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_IR_*"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse([]byte(escalationTemplate(c.statements, c.trust, c.params, c.others)))
			if err != nil {
				t.Fatal(err)
			}
			tmpl.Path = "test.yaml"
			found := CheckEscalations(tmpl)
			if c.rule == "" {
				for _, f := range found {
					t.Errorf("a narrow grant is reported: %s", f)
				}
				return
			}
			if len(found) != 1 || !strings.Contains(found[0], "test.yaml: Suspect: "+c.rule+":") {
				t.Errorf("want one finding of rule %s on Suspect, got %q", c.rule, found)
			}
		})
	}
}

// boundedForensicRole gives ForensicRole a permissions boundary, Cap, that
// allows reading one bucket.
const boundedForensicRole = `
      PermissionsBoundary: !Ref Cap
  Cap:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Sid: Read, Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::evidence/cases/*"}`

// revokeEvery grants the credential revocation's writes on every role, and
// passes one role (ForensicRole) to instances.
const revokeEvery = `
              - {Sid: Pass, Effect: Allow, Action: iam:PassRole, Resource: !GetAtt ForensicRole.Arn}
              - {Sid: Revoke, Effect: Allow, Action: [iam:PutRolePolicy, iam:DeleteRolePolicy, iam:GetRolePolicy], Resource: "arn:*:iam::*:role/*"}`

// The member role writes inline policies on the instance roles (credential
// revocation) and passes the forensic role: it passes the escalation rules
// only because its explicit deny keeps out itself and the role it passes.
// Without that deny statement the same template is reported.
func TestMemberRoleRevocationNeedsItsDeny(t *testing.T) {
	member := load(t, memberTemplate)
	doc := member.Resources["ResponderMemberRevokePolicy"].Properties["PolicyDocument"].(map[string]any)
	var kept []any
	for _, st := range doc["Statement"].([]any) {
		if st.(map[string]any)["Effect"] != "Deny" {
			kept = append(kept, st)
		}
	}
	if len(kept) == len(doc["Statement"].([]any)) {
		t.Fatal("ResponderMemberRevokePolicy has no Deny statement")
	}
	doc["Statement"] = kept
	found := strings.Join(CheckEscalations(member), "\n")
	if !strings.Contains(found, memberTemplate+": ResponderMemberRole: "+RulePolicyWriteOnAssumable) {
		t.Errorf("the member role without its deny is not reported:\n%s", found)
	}
}

// The custodian alone may lift holds and bypass governance retention.
func TestCustodianMayLiftHolds(t *testing.T) {
	src := strings.Replace(escalationTemplate(`
              - {Sid: Manage, Effect: Allow, Action: [s3:PutObjectLegalHold, s3:BypassGovernanceRetention], Resource: "arn:aws:s3:::evidence/*"}`,
		"", "", ""), "  Suspect:\n", "  DataCustodianRole:\n", 1)
	tmpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if found := CheckEscalations(tmpl); len(found) > 0 {
		t.Errorf("the custodian's grants are reported: %q", found)
	}
}

// A role of one template that assumes a role of another and may write its
// policies is found across the two: the forensics account's responder
// assumes the member role.
func TestEscalationAcrossTemplates(t *testing.T) {
	forensics := load(t, forensicsTemplate)
	member := load(t, memberTemplate)
	policy := forensics.Resources["ResponderPolicy"]
	doc := policy.Properties["PolicyDocument"].(map[string]any)
	doc["Statement"] = append(doc["Statement"].([]any), map[string]any{
		"Sid": "Injected", "Effect": "Allow", "Action": "iam:PutRolePolicy",
		"Resource": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}"},
	})
	found := strings.Join(CheckEscalations(forensics, member), "\n")
	for _, role := range []string{"ResponderRole", "ResponderLambdaRole"} {
		if !strings.Contains(found, forensicsTemplate+": "+role+": "+RulePolicyWriteOnAssumable) {
			t.Errorf("%s may write the member role's policies, not reported:\n%s", role, found)
		}
	}
}
