package cloudformation

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	forensicsTemplate = "forensics-account.yaml"
	memberTemplate    = "member-account.yaml"
)

func load(t *testing.T, path string) *Template {
	t.Helper()
	tmpl, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// Every template in this directory passes every general check.
func TestTemplatesPassChecks(t *testing.T) {
	paths, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{forensicsTemplate, memberTemplate} {
		if !contains(paths, want) {
			t.Fatalf("template %s not found (found %v)", want, paths)
		}
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			for _, f := range Check(load(t, path)) {
				t.Error(f)
			}
		})
	}
}

func TestEvidenceBucket(t *testing.T) {
	for _, f := range CheckEvidenceBucket(load(t, forensicsTemplate), "EvidenceBucket") {
		t.Error(f)
	}
}

// The member role is trusted only by the forensics account's responder and
// Lambda roles, with the ExternalId and the responder's session names,
// whatever the OrganizationId parameter.
func TestMemberRoleTrust(t *testing.T) {
	tmpl := load(t, memberTemplate)
	var trust []Statement
	for _, d := range tmpl.Documents() {
		if d.Resource == "ResponderMemberRole" && d.Kind == TrustPolicy {
			trust = append(trust, d.Statements...)
		}
	}
	if len(trust) == 0 {
		t.Fatal("ResponderMemberRole has no trust policy")
	}
	for _, s := range trust {
		if s.Effect != "Allow" {
			continue
		}
		if !reflect.DeepEqual(s.Actions, []string{"sts:AssumeRole"}) {
			t.Errorf("trust statement %q allows %v, want only sts:AssumeRole", s.Sid, s.Actions)
		}
		principal, _ := get(s.Principal, "AWS", "Fn::Sub").(string)
		if !strings.Contains(principal, ":iam::${ForensicsAccountId}:root") {
			t.Errorf("trust statement %q: principal %v is not the forensics account", s.Sid, s.Principal)
		}
		conditions := branches(s.Condition)
		if len(conditions) == 0 {
			t.Errorf("trust statement %q has no condition", s.Sid)
		}
		for _, c := range conditions {
			if !refersTo(get(c, "StringEquals", "sts:ExternalId"), "ExternalId") {
				t.Errorf("trust statement %q: a variant does not require sts:ExternalId: %v", s.Sid, c)
			}
			var principals []string
			for _, p := range branchesList(get(c, "ArnEquals", "aws:PrincipalArn")) {
				sub, _ := get(p, "Fn::Sub").(string)
				principals = append(principals, sub)
			}
			want := []string{
				"arn:${AWS::Partition}:iam::${ForensicsAccountId}:role/${ForensicsResponderRoleName}",
				"arn:${AWS::Partition}:iam::${ForensicsAccountId}:role/${ForensicsLambdaRoleName}",
			}
			if !reflect.DeepEqual(principals, want) {
				t.Errorf("trust statement %q: a variant limits aws:PrincipalArn to %v, want the responder and Lambda roles %v", s.Sid, principals, want)
			}
			if get(c, "StringLike", "sts:RoleSessionName") != "responder-*" {
				t.Errorf("trust statement %q: a variant does not require the responder-<case-id> session name: %v", s.Sid, c)
			}
		}
	}
}

// The two stacks agree on the role names they share (their defaults).
func TestStacksAgreeOnRoleNames(t *testing.T) {
	forensics, member := load(t, forensicsTemplate), load(t, memberTemplate)
	pairs := []struct{ forensicsParam, memberParam string }{
		{"ResponderRoleName", "ForensicsResponderRoleName"},
		{"LambdaRoleName", "ForensicsLambdaRoleName"},
		{"MemberRoleName", "MemberRoleName"},
	}
	for _, p := range pairs {
		f, m := forensics.Parameters[p.forensicsParam]["Default"], member.Parameters[p.memberParam]["Default"]
		if f == nil || f != m {
			t.Errorf("forensics %s default %v != member %s default %v", p.forensicsParam, f, p.memberParam, m)
		}
	}
}

// The checks find what they are meant to find.
func TestChecksFindProblems(t *testing.T) {
	const roleWith = `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}]}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
`
	cases := []struct {
		name, yaml, want string
	}{
		{"star action", roleWith + `              - {Effect: Allow, Action: "*", Resource: "*"}`, `allows every action`},
		{"service star", roleWith + `              - {Effect: Allow, Action: logs:*, Resource: "*"}`, `allows every logs action`},
		{"sensitive prefix wildcard", roleWith + `              - {Effect: Allow, Action: ec2:Describe*, Resource: "*"}`, `wildcard action "ec2:Describe*"`},
		{"sensitive wildcard in If", roleWith + `              - {Effect: Allow, Action: !If [C, s3:Get*, s3:GetObject], Resource: arn:aws:s3:::b/*}`, `wildcard action "s3:Get*"`},
		{"statement behind If", roleWith + `              - !If [C, {Effect: Allow, Action: "kms:*", Resource: "*"}, !Ref AWS::NoValue]`, `allows every kms action`},
		{"not action", roleWith + `              - {Effect: Allow, NotAction: iam:PassRole, Resource: "*"}`, `NotAction`},
		{"mutation on star", roleWith + `              - {Effect: Allow, Action: ec2:CreateSnapshots, Resource: "*"}`, `grants ec2:CreateSnapshots on Resource "*"`},
		{"object read on star", roleWith + `              - {Effect: Allow, Action: s3:GetObject, Resource: "*"}`, `grants s3:GetObject on Resource "*"`},
		{"aws managed policy", `
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Statement: [{Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}]}
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore]`, `not defined in the template`},
		{"open principal", `
Resources:
  T:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [t]
      PolicyDocument: {Statement: [{Effect: Allow, Principal: "*", Action: sns:Publish, Resource: t}]}`, `allows Principal "*" without a condition`},
		{"bucket without encryption", `
Resources:
  B:
    Type: AWS::S3::Bucket`, `B: no default encryption`},
		{"bucket without TLS policy", `
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption: {ServerSideEncryptionConfiguration: [{ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}}]}`, `aws:SecureTransport`},
		{"bucket public", `
Resources:
  B:
    Type: AWS::S3::Bucket
    Properties:
      PublicAccessBlockConfiguration: {BlockPublicAcls: true, BlockPublicPolicy: false, IgnorePublicAcls: true, RestrictPublicBuckets: true}`, `BlockPublicPolicy is not true`},
		{"topic without key", `
Resources:
  T:
    Type: AWS::SNS::Topic`, `T: no KmsMasterKeyId`},
		{"log group without retention", `
Resources:
  L:
    Type: AWS::Logs::LogGroup`, `L: no RetentionInDays`},
		{"function without own log group", `
Resources:
  F:
    Type: AWS::Lambda::Function
    Properties: {Runtime: provided.al2023}`, `F: LoggingConfig.LogGroup`},
		{"managed policy over the quota", `
Resources:
  M:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: sns:Publish, Resource: !Sub "arn:aws:sns:::` + strings.Repeat("t", 6200) + `"}`, `M: the policy document is about`},
		{"action target id too long", `
Resources:
  A:
    Type: AWS::SecurityHub::ActionTarget
    Properties: {Id: Respond-To-Finding, Name: Respond, Description: d}`, `A: Id Respond-To-Finding`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			findings := Check(tmpl)
			for _, f := range findings {
				if strings.Contains(f, c.want) {
					return
				}
			}
			t.Errorf("no finding contains %q; findings: %q", c.want, findings)
		})
	}
}

func TestCheckEvidenceBucketFindsProblems(t *testing.T) {
	tmpl, err := Parse([]byte(`
Resources:
  E:
    Type: AWS::S3::Bucket
    Properties:
      BucketEncryption: {ServerSideEncryptionConfiguration: [{ServerSideEncryptionByDefault: {SSEAlgorithm: AES256}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	findings := strings.Join(CheckEvidenceBucket(tmpl, "E"), "\n")
	for _, want := range []string{"ObjectLockEnabled is not true", "default retention", "versioning", "not aws:kms",
		"server access logging", "encryption other than aws:kms", "aws:SecureTransport", "BlockPublicAcls",
		"without If-None-Match (s3:if-none-match): evidence can be written over"} {
		if !strings.Contains(findings, want) {
			t.Errorf("no finding mentions %q; findings:\n%s", want, findings)
		}
	}
}

func TestParseIntrinsics(t *testing.T) {
	tmpl, err := Parse([]byte(`
Resources:
  X:
    Type: AWS::SNS::Topic
    Properties:
      A: !Ref P
      B: !GetAtt K.Arn
      C: !Sub "${K.Arn}/*"
      D: !If [Cond, !Ref AWS::NoValue, [x, y]]
      E: !GetAtt [K, Arn]
      F: !Join ["", [a, !Ref P]]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := tmpl.Resources["X"].Properties
	want := map[string]any{
		"A": map[string]any{"Ref": "P"},
		"B": map[string]any{"Fn::GetAtt": []any{"K", "Arn"}},
		"C": map[string]any{"Fn::Sub": "${K.Arn}/*"},
		"D": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "AWS::NoValue"}, []any{"x", "y"}}},
		"E": map[string]any{"Fn::GetAtt": []any{"K", "Arn"}},
		"F": map[string]any{"Fn::Join": []any{"", []any{"a", map[string]any{"Ref": "P"}}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("properties\n got %#v\nwant %#v", got, want)
	}
	if s := Strings(got["D"]); !reflect.DeepEqual(s, []string{"x", "y"}) {
		t.Errorf("Strings(D) = %v, want [x y]", s)
	}
	if _, err := Parse([]byte("Resources:\n  X:\n    Type: T\n    Properties: {A: !Bogus x}\n")); err == nil {
		t.Error("unknown tag !Bogus accepted")
	}
}
