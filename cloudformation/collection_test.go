package cloudformation

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/step"
	ssmdocuments "github.com/responder-ir/responder/ssm-documents"
)

// OS-level collection through Systems Manager (issue 5): what the member
// role may do with SSM and the forensic access group, what the forensic
// instance role must never hold, and the forensics account's side (multipart
// evidence uploads, the staging bucket).

// allowStatements returns the Allow statements of a role's identity
// policies.
func allowStatements(t *testing.T, tmpl *Template, role string) []Statement {
	t.Helper()
	docs, unchecked, err := tmpl.RoleDocuments(role)
	if err != nil {
		t.Fatal(err)
	}
	if len(unchecked) > 0 {
		t.Fatalf("%s: %v", role, unchecked)
	}
	var out []Statement
	for _, d := range docs {
		for _, s := range d.Statements {
			if s.Effect == "Allow" {
				out = append(out, s)
			}
		}
	}
	return out
}

// resourceNames writes a statement's resources as the template does: the
// string of an Fn::Sub, "GetAtt X.Y", "Ref X", or the literal.
func resourceNames(s Statement) []string {
	var out []string
	for _, r := range s.Resources {
		switch {
		case get(r, "Fn::Sub") != nil:
			out = append(out, fmt.Sprint(get(r, "Fn::Sub")))
		case get(r, "Fn::GetAtt") != nil:
			ga, _ := get(r, "Fn::GetAtt").([]any)
			out = append(out, fmt.Sprintf("GetAtt %v.%v", ga[0], ga[1]))
		case get(r, "Ref") != nil:
			out = append(out, fmt.Sprintf("Ref %v", get(r, "Ref")))
		default:
			out = append(out, fmt.Sprint(r))
		}
	}
	return out
}

// grantedOn returns, for each action, the sorted resources the statements
// grant it on.
func grantedOn(statements []Statement) map[string][]string {
	out := map[string][]string{}
	for _, s := range statements {
		for _, a := range s.Actions {
			for _, r := range resourceNames(s) {
				if !contains(out[a], r) {
					out[a] = append(out[a], r)
				}
			}
		}
	}
	for a := range out {
		sort.Strings(out[a])
	}
	return out
}

// refersToResource reports whether a value names a resource of the template
// (Ref, GetAtt, or ${ID} / ${ID.Attr} in an Fn::Sub).
func refersToResource(v any, id string) bool {
	if refersTo(v, id) {
		return true
	}
	if ga, ok := get(v, "Fn::GetAtt").([]any); ok && len(ga) == 2 && ga[0] == id {
		return true
	}
	sub, _ := get(v, "Fn::Sub").(string)
	return strings.Contains(sub, "${"+id+"}") || strings.Contains(sub, "${"+id+".")
}

// The member role runs only the toolkit's Responder-* documents, on EC2
// instances of its account; it reads those documents and writes none (the
// member documents stack creates them); it adds rules only to the forensic
// access group and creates and empties only the toolkit's groups, named by
// the tags the steps write.
func TestMemberCollectionScopes(t *testing.T) {
	tmpl := load(t, memberTemplate)
	statements := allowStatements(t, tmpl, "ResponderMemberRole")
	on := grantedOn(statements)

	const (
		documents      = "arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:document/Responder-*"
		instances      = "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:instance/*"
		securityGroups = "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:security-group/*"
	)
	want := map[string][]string{
		"ssm:SendCommand":      {documents, instances},
		"ssm:GetDocument":      {documents},
		"ssm:DescribeDocument": {documents},
		// No resource types (Service Authorization Reference): "*" only.
		"ssm:CancelCommand":                {"*"},
		"ssm:GetCommandInvocation":         {"*"},
		"ssm:DescribeInstanceInformation":  {"*"},
		"ec2:AuthorizeSecurityGroupEgress": {securityGroups},
		"ec2:RevokeSecurityGroupEgress":    {securityGroups},
	}
	for action, resources := range want {
		sort.Strings(resources)
		if !reflect.DeepEqual(on[action], resources) {
			t.Errorf("%s is granted on %v, want %v", action, on[action], resources)
		}
	}
	for _, d := range ssmdocuments.Documents() {
		if !strings.HasPrefix(d.Name, "Responder-") {
			t.Errorf("document %s does not match document/Responder-*: the member role cannot read or run it", d.Name)
		}
	}
	for _, write := range documentWriteActions {
		if _, ok := on[write]; ok {
			t.Errorf("the member role is granted %s: with SendCommand, that runs any script on every managed instance", write)
		}
	}

	// The tag values the steps write on the groups they create.
	ownGroups := []string{"true", step.ForensicAccessTagValue}
	createdGroups := []string{"true", step.ForensicAccessTagValue, step.UntrackingTagValue}
	tagCondition := func(s Statement, op, key string) []string {
		conds := branches(s.Condition)
		if len(conds) != 1 {
			t.Fatalf("statement %q: %d condition variants, want 1", s.Sid, len(conds))
		}
		return Strings(get(conds[0], op, key))
	}
	for _, s := range statements {
		switch {
		case contains(s.Actions, "ec2:AuthorizeSecurityGroupEgress"), contains(s.Actions, "ec2:AuthorizeSecurityGroupIngress"):
			// Never the quarantine group: it stays without rules. Egress
			// rules go on the forensic access group (HTTPS to the
			// endpoints) or the untracking group; ingress rules on the
			// untracking group alone.
			got := tagCondition(s, "StringEquals", "ec2:ResourceTag/"+step.TagQuarantine)
			allowed := []string{step.ForensicAccessTagValue, step.UntrackingTagValue}
			if contains(s.Actions, "ec2:AuthorizeSecurityGroupIngress") {
				allowed = []string{step.UntrackingTagValue}
			}
			if len(got) != 1 || !contains(allowed, got[0]) {
				t.Errorf("statement %q adds rules %v to groups tagged %s=%v, want one of %v",
					s.Sid, s.Actions, step.TagQuarantine, got, allowed)
			}
		case contains(s.Actions, "ec2:RevokeSecurityGroupEgress"), contains(s.Actions, "ec2:RevokeSecurityGroupIngress"):
			got := tagCondition(s, "StringEquals", "ec2:ResourceTag/"+step.TagQuarantine)
			if !reflect.DeepEqual(got, ownGroups) {
				t.Errorf("statement %q revokes rules of groups tagged %s=%v, want %v", s.Sid, step.TagQuarantine, got, ownGroups)
			}
		case contains(s.Actions, "ec2:CreateSecurityGroup") && contains(resourceNames(s), securityGroups):
			got := tagCondition(s, "StringEquals", "aws:RequestTag/"+step.TagQuarantine)
			if !reflect.DeepEqual(got, createdGroups) {
				t.Errorf("statement %q creates groups tagged %s=%v, want %v", s.Sid, step.TagQuarantine, got, createdGroups)
			}
		case contains(s.Actions, "ec2:CreateTags") && contains(resourceNames(s), securityGroups):
			// Tags on a group only as it is created: a responder:quarantine
			// tag put on any existing group would let the statements above
			// add rules to it (open it to the world).
			if got := tagCondition(s, "StringEquals", "ec2:CreateAction"); !contains(got, "CreateSecurityGroup") {
				t.Errorf("statement %q tags existing security groups (condition ec2:CreateAction %v)", s.Sid, got)
			}
		}
	}

	// PassRole: to EC2 only, and the forensic role alone.
	passes := 0
	for _, s := range statements {
		if !contains(s.Actions, "iam:PassRole") {
			continue
		}
		if len(s.Actions) != 1 {
			t.Errorf("statement %q grants iam:PassRole with %v", s.Sid, s.Actions)
		}
		if got := tagCondition(s, "StringEquals", "iam:PassedToService"); !reflect.DeepEqual(got, []string{"ec2.amazonaws.com"}) {
			t.Errorf("statement %q passes roles to %v, want ec2.amazonaws.com only", s.Sid, got)
		}
		if reflect.DeepEqual(resourceNames(s), []string{"GetAtt ForensicInstanceRole.Arn"}) {
			passes++
		}
	}
	if passes != 1 || len(on["iam:PassRole"]) != 1 {
		t.Errorf("iam:PassRole on %v (%d statements passing exactly the forensic instance role), want the forensic role alone",
			on["iam:PassRole"], passes)
	}
}

// runCommandMinimum is everything the forensic instance role may allow: the
// SSM Agent registering and serving Run Command. Not even the rest of
// AmazonSSMManagedInstanceCore: ssm:GetParameters, for one, would let the
// compromised instance read the account's parameters.
var runCommandMinimum = []string{
	"ssm:UpdateInstanceInformation",
	"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
	"ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
}

// forensicRoleProblems reports what makes the forensic instance role more
// than the SSM Agent's: any s3:, kms:, iam: or sts: action (the instance is
// compromised, and must never reach the evidence store or other roles), any
// action beyond runCommandMinimum, a policy the template cannot show, or a
// trust beyond EC2.
func forensicRoleProblems(tmpl *Template) []string {
	const role = "ForensicInstanceRole"
	docs, unchecked, err := tmpl.RoleDocuments(role)
	if err != nil {
		return []string{err.Error()}
	}
	out := unchecked
	for _, d := range docs {
		for _, s := range d.Statements {
			if s.Effect != "Allow" {
				continue
			}
			if len(s.NotActions) > 0 {
				out = append(out, fmt.Sprintf("%s: statement %q allows NotAction %v", d, s.Sid, s.NotActions))
			}
			for _, a := range s.Actions {
				svc, _, _ := strings.Cut(strings.ToLower(a), ":")
				switch {
				case svc == "s3" || svc == "kms" || svc == "iam" || svc == "sts":
					out = append(out, fmt.Sprintf("%s: statement %q grants %s: the instance under investigation must never reach the evidence store, keys or roles", d, s.Sid, a))
				case !contains(runCommandMinimum, a):
					out = append(out, fmt.Sprintf("%s: statement %q grants %s, beyond what the SSM Agent needs for Run Command", d, s.Sid, a))
				}
			}
		}
	}
	for _, d := range tmpl.Documents() {
		if d.Resource != role || d.Kind != TrustPolicy {
			continue
		}
		for _, s := range d.Statements {
			if s.Effect == "Allow" && !reflect.DeepEqual(Strings(get(s.Principal, "Service")), []string{"ec2.amazonaws.com"}) {
				out = append(out, fmt.Sprintf("%s: trust statement %q allows %v, want the EC2 service only", d, s.Sid, s.Principal))
			}
		}
	}
	sort.Strings(out)
	return out
}

// The forensic instance role holds no s3:, kms:, iam: (or sts:) action, only
// what the SSM Agent needs, and the breakage of that is found wherever it
// comes from: an inline statement, a policy attached to the role, a managed
// policy. The profile holding it is the stack's output.
func TestForensicInstanceRoleIsMinimal(t *testing.T) {
	text, err := os.ReadFile(memberTemplate)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if p := forensicRoleProblems(tmpl); len(p) > 0 {
		t.Errorf("%s: %s", memberTemplate, strings.Join(p, "\n"))
	}
	if got := Strings(get(tmpl.Resources["ForensicInstanceProfile"].Properties, "Roles")); len(got) != 1 ||
		!refersTo(get(tmpl.Resources["ForensicInstanceProfile"].Properties, "Roles").([]any)[0], "ForensicInstanceRole") {
		t.Errorf("ForensicInstanceProfile holds %v, want ForensicInstanceRole alone", got)
	}

	const (
		inlineAt   = "              - Sid: RegisterWithSsm\n"
		resourceAt = "  ForensicInstanceProfile:\n"
		roleAt     = "      RoleName: !Sub ${MemberRoleName}-forensic-ssm\n"
	)
	// Each case inserts text before a line of the real template (after it,
	// for the role's own properties).
	cases := []struct {
		name, at, insert, want string
	}{
		{"inline evidence read", inlineAt,
			"              - {Sid: Injected, Effect: Allow, Action: s3:GetObject, Resource: \"*\"}\n",
			`grants s3:GetObject`},
		{"inline role passing", inlineAt,
			"              - {Sid: Injected, Effect: Allow, Action: [iam:PassRole], Resource: \"*\"}\n",
			`grants iam:PassRole`},
		{"inline parameter read", inlineAt,
			"              - {Sid: Injected, Effect: Allow, Action: ssm:GetParameters, Resource: \"*\"}\n",
			`grants ssm:GetParameters, beyond`},
		{"attached key use", resourceAt,
			"  Injected:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyName: injected\n" +
				"      Roles: [!Ref ForensicInstanceRole]\n      PolicyDocument:\n        Statement:\n" +
				"          - {Effect: Allow, Action: kms:Decrypt, Resource: \"*\"}\n",
			`grants kms:Decrypt`},
		{"AWS managed policy", roleAt,
			"      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore]\n",
			`not defined in the template`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := string(text)
			if strings.Count(src, c.at) != 1 {
				t.Fatalf("%q is not once in %s", c.at, memberTemplate)
			}
			if c.at == roleAt {
				src = strings.Replace(src, c.at, c.at+c.insert, 1)
			} else {
				src = strings.Replace(src, c.at, c.insert+c.at, 1)
			}
			broken, err := Parse([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			problems := strings.Join(forensicRoleProblems(broken), "\n")
			if !strings.Contains(problems, c.want) {
				t.Errorf("no problem mentions %q; problems:\n%s", c.want, problems)
			}
		})
	}

	out, _ := tmpl.Outputs["ForensicInstanceProfileArn"].(map[string]any)
	if !reflect.DeepEqual(get(out, "Value", "Fn::GetAtt"), []any{"ForensicInstanceProfile", "Arn"}) {
		t.Errorf("output ForensicInstanceProfileArn is %v, want !GetAtt ForensicInstanceProfile.Arn", out["Value"])
	}
	if d, _ := out["Description"].(string); !strings.Contains(d, "--forensic-profile") || !strings.Contains(d, "RESPONDER_FORENSIC_PROFILE") {
		t.Errorf("output ForensicInstanceProfileArn does not name --forensic-profile and RESPONDER_FORENSIC_PROFILE: %q", d)
	}
}

// The responder role (the CLI) alone lists and aborts multipart uploads, on
// the cases/ objects of the evidence bucket; in the staging bucket it writes
// part lists under parts/ and reads parts/ and tools/ (the GETs it presigns
// for the instance), nothing else. The Lambda role reaches neither. Only the
// responder role may read or write the part lists (bucket policy).
func TestResponderCollectionScopes(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	responder := grantedOn(allowStatements(t, tmpl, "ResponderRole"))
	for _, a := range []string{"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"} {
		if want := []string{"${EvidenceBucket.Arn}/cases/*"}; !reflect.DeepEqual(responder[a], want) {
			t.Errorf("ResponderRole: %s on %v, want %v", a, responder[a], want)
		}
	}
	staging := func(role string) []string {
		var out []string
		for _, s := range allowStatements(t, tmpl, role) {
			for _, r := range s.Resources {
				if refersToResource(r, "StagingBucket") {
					for _, a := range s.Actions {
						out = append(out, a+" "+resourceNames(Statement{Resources: []any{r}})[0])
					}
				}
			}
		}
		sort.Strings(out)
		return out
	}
	want := []string{
		"s3:GetObject ${StagingBucket.Arn}/parts/*",
		"s3:GetObject ${StagingBucket.Arn}/tools/*",
		"s3:PutObject ${StagingBucket.Arn}/parts/*",
	}
	// The CLI's role and the function's (the collect task) alike.
	for _, role := range []string{"ResponderRole", "ResponderLambdaRole"} {
		if got := staging(role); !reflect.DeepEqual(got, want) {
			t.Errorf("%s's grants on the staging bucket:\n got %v\nwant %v", role, got, want)
		}
	}
	lambda := grantedOn(allowStatements(t, tmpl, "ResponderLambdaRole"))
	for api := range lambdaNeverCalls {
		for _, p := range cloud.Permissions() {
			if contains(p.For, api) && len(p.For) == 1 && lambda[p.Action] != nil {
				t.Errorf("ResponderLambdaRole is granted %s, needed only by %s, which the function never calls", p.Action, api)
			}
		}
	}

	guarded := false
	for _, s := range bucketPolicyStatements(tmpl, "StagingBucket") {
		if s.Effect != "Deny" || !everyone(s.Principal) || !reflect.DeepEqual(resourceNames(s), []string{"${StagingBucket.Arn}/parts/*"}) {
			continue
		}
		conds := branches(s.Condition)
		if len(conds) == 1 && contains(s.Actions, "s3:GetObject") && contains(s.Actions, "s3:PutObject") &&
			reflect.DeepEqual(get(conds[0], "ArnNotEquals", "aws:PrincipalArn"), []any{
				map[string]any{"Fn::GetAtt": []any{"ResponderRole", "Arn"}},
				map[string]any{"Fn::GetAtt": []any{"ResponderLambdaRole", "Arn"}},
			}) {
			guarded = true
		}
	}
	if !guarded {
		t.Error("no StagingBucket policy statement denies GetObject and PutObject on parts/* to every principal but ResponderRole and ResponderLambdaRole")
	}
}

// The staging bucket passes its checks and is the stack's output.
func TestStagingBucket(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	for _, f := range CheckStagingBucket(tmpl, "StagingBucket") {
		t.Error(f)
	}
	out, _ := tmpl.Outputs["StagingBucketName"].(map[string]any)
	if !refersTo(out["Value"], "StagingBucket") {
		t.Errorf("output StagingBucketName is %v, want !Ref StagingBucket", out["Value"])
	}
	if d, _ := out["Description"].(string); !strings.Contains(d, "--staging-bucket") || !strings.Contains(d, "RESPONDER_STAGING_BUCKET") {
		t.Errorf("output StagingBucketName does not name --staging-bucket and RESPONDER_STAGING_BUCKET: %q", d)
	}
}

func TestCheckStagingBucketFindsProblems(t *testing.T) {
	tmpl, err := Parse([]byte(`
Resources:
  S:
    Type: AWS::S3::Bucket
    Properties:
      ObjectLockEnabled: true
      VersioningConfiguration: {Status: Enabled}
      LifecycleConfiguration:
        Rules:
          - {Id: everything, Status: Enabled, ExpirationInDays: 30}
          - {Id: parts, Status: Enabled, Prefix: parts/, ExpirationInDays: 7}
`))
	if err != nil {
		t.Fatal(err)
	}
	findings := strings.Join(CheckStagingBucket(tmpl, "S"), "\n")
	for _, want := range []string{"Object Lock is configured", "versioning is Enabled", `rule everything expires objects outside parts/`,
		"no lifecycle rule expires parts/ within 1 day", "aborts incomplete multipart uploads", "no default encryption", "aws:SecureTransport"} {
		if !strings.Contains(findings, want) {
			t.Errorf("no finding mentions %q; findings:\n%s", want, findings)
		}
	}
}

// A bucket policy that denies PUTs without an encryption header (the
// pattern from before S3 encrypted every object by default) would refuse the
// instance's UploadPart and presigned PUTs; CheckEvidenceBucket finds it,
// and accepts the "Null": "false" form the template uses.
func TestCheckEvidenceBucketRefusesHeaderlessDenies(t *testing.T) {
	const bucket = `
Resources:
  E:
    Type: AWS::S3::Bucket
  P:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref E
      PolicyDocument:
        Statement:
`
	cases := []struct {
		name, statement string
		found           bool
	}{
		{"not-equals alone", `{Sid: S, Effect: Deny, Principal: "*", Action: s3:PutObject, Resource: !Sub "${E.Arn}/*",
            Condition: {StringNotEquals: {s3:x-amz-server-side-encryption: aws:kms}}}`, true},
		{"header required", `{Sid: S, Effect: Deny, Principal: "*", Action: s3:PutObject, Resource: !Sub "${E.Arn}/*",
            Condition: {"Null": {s3:x-amz-server-side-encryption: "true"}}}`, true},
		{"key compared alone", `{Sid: S, Effect: Deny, Principal: "*", Action: "s3:*", Resource: !Sub "${E.Arn}/*",
            Condition: {StringNotEquals: {s3:x-amz-server-side-encryption-aws-kms-key-id: k}}}`, true},
		{"only when present", `{Sid: S, Effect: Deny, Principal: "*", Action: s3:PutObject, Resource: !Sub "${E.Arn}/*",
            Condition: {StringNotEquals: {s3:x-amz-server-side-encryption: aws:kms}, "Null": {s3:x-amz-server-side-encryption: "false"}}}`, false},
		{"IfExists", `{Sid: S, Effect: Deny, Principal: "*", Action: s3:PutObject, Resource: !Sub "${E.Arn}/*",
            Condition: {StringNotEqualsIfExists: {s3:x-amz-server-side-encryption: aws:kms}}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse([]byte(bucket + "          - " + c.statement + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			findings := strings.Join(CheckEvidenceBucket(tmpl, "E"), "\n")
			if got := strings.Contains(findings, "denies a PutObject without the"); got != c.found {
				t.Errorf("header-less deny found: %v, want %v; findings:\n%s", got, c.found, findings)
			}
		})
	}
}

// The write-once deny of the evidence bucket: present, limited to object
// creations (else multipart uploads break), exempting manifest.json (else
// every save breaks) and nothing beyond the instance's presigned uploads.
func TestCheckEvidenceBucketWriteOnce(t *testing.T) {
	const bucket = `
Resources:
  E:
    Type: AWS::S3::Bucket
  P:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref E
      PolicyDocument:
        Statement:
`
	const exempt = `NotResource: [!Sub "${E.Arn}/cases/*/manifest.json", !Sub "${E.Arn}/cases/*/volatile/run-*"]`
	const cond = `Condition: {"Null": {s3:if-none-match: "true"}, Bool: {s3:ObjectCreationOperation: "true"}}`
	cases := []struct {
		name, statement, want string // want "": no write-once finding
	}{
		{"as the template has it", `{Sid: W, Effect: Deny, Principal: "*", Action: s3:PutObject, ` + exempt + `, ` + cond + `}`, ""},
		{"no deny", `{Sid: W, Effect: Deny, Principal: "*", Action: s3:GetObject, Resource: !Sub "${E.Arn}/*"}`, "evidence can be written over"},
		{"multipart not exempt", `{Sid: W, Effect: Deny, Principal: "*", Action: s3:PutObject, ` + exempt + `,
            Condition: {"Null": {s3:if-none-match: "true"}}}`, "every multipart upload would fail"},
		{"manifest not exempt", `{Sid: W, Effect: Deny, Principal: "*", Action: s3:PutObject, Resource: !Sub "${E.Arn}/*", ` + cond + `}`,
			"exempt cases/*/manifest.json"},
		{"too much exempt", `{Sid: W, Effect: Deny, Principal: "*", Action: s3:PutObject,
            NotResource: [!Sub "${E.Arn}/cases/*/manifest.json", !Sub "${E.Arn}/cases/*"], ` + cond + `}`, "from the write-once deny"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse([]byte(bucket + "          - " + c.statement + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, f := range CheckEvidenceBucket(tmpl, "E") {
				if strings.Contains(f, "If-None-Match") || strings.Contains(f, "write-once") || strings.Contains(f, "manifest.json") {
					found = append(found, f)
				}
			}
			switch {
			case c.want == "" && len(found) > 0:
				t.Errorf("findings %q, want none", found)
			case c.want != "" && !strings.Contains(strings.Join(found, "\n"), c.want):
				t.Errorf("no finding contains %q; findings %q", c.want, found)
			}
		})
	}
}

// The collection's ssm: operations are workload-account operations (the
// member role), and responder investigate's are account Investigation's:
// the CLI responder role and the function (the investigate task) run them.
// The function's role holds no other ssm: action, and sends commands only
// of the Responder-Analysis* documents, to analysis instances.
func TestLambdaRoleSSMIsTheInvestigations(t *testing.T) {
	perms := cloud.Permissions()
	member, investigation := 0, map[string]bool{}
	for _, p := range perms {
		if !strings.HasPrefix(strings.ToLower(p.Action), "ssm:") {
			continue
		}
		switch p.Account {
		case cloud.WorkloadAccount:
			member++
		case cloud.Investigation:
			investigation[p.Action] = true
		default:
			t.Errorf("%s is needed in account %q (for %v): only the member role and the investigation may need it",
				p.Action, p.Account, p.For)
		}
	}
	if member == 0 {
		t.Error("no ssm: action in the workload account's permissions: the collection's operations are not where this test expects")
	}
	tmpl := load(t, forensicsTemplate)
	for _, st := range allowStatements(t, tmpl, "ResponderLambdaRole") {
		for _, a := range st.Actions {
			if !strings.HasPrefix(strings.ToLower(a), "ssm:") {
				continue
			}
			if !investigation[a] {
				t.Errorf("ResponderLambdaRole is granted %s, which the investigation does not call", a)
			}
			if a != "ssm:SendCommand" {
				continue
			}
			res := fmt.Sprint(resourceNames(st))
			tagged := fmt.Sprint(get(st.Condition, "StringEquals", "ssm:resourceTag/responder:role")) == "analysis"
			if !strings.Contains(res, ":document/Responder-Analysis*") && !(strings.Contains(res, ":instance/*") && tagged) {
				t.Errorf("ResponderLambdaRole sends commands on %s (condition %v)", res, st.Condition)
			}
		}
	}
}
