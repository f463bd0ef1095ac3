package cloudformation

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

// analysisBoundaryActions are all the analysis role may ever hold: the SSM
// agent, the session logs, its case's evidence through S3 (read, list,
// analysis outputs) and the evidence key through S3.
var analysisBoundaryActions = []string{
	"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage", "ec2messages:GetEndpoint",
	"ec2messages:GetMessages", "ec2messages:SendReply",
	"kms:Decrypt", "kms:GenerateDataKey",
	"logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams", "logs:PutLogEvents",
	"s3:GetEncryptionConfiguration", "s3:GetObject", "s3:ListBucket", "s3:PutObject",
	"ssm:ListInstanceAssociations", "ssm:UpdateInstanceInformation",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
}

// The analysis role carries the stack's boundary, which allows no more
// than analysisBoundaryActions, its S3 grants on the evidence bucket's
// cases/ and the session logs only; its own stack policy holds no case
// data; the responder roles write its inline policies and nothing else of
// IAM on it.
func TestAnalysisRoleBoundary(t *testing.T) {
	tmpl := load(t, forensicsTemplate)
	role := principalRole{t: tmpl, id: "AnalysisRole"}
	if b, ok := role.boundary(); !ok || b != "AnalysisBoundary" {
		t.Fatalf("AnalysisRole's boundary: %q %v, want AnalysisBoundary", b, ok)
	}
	var actions []string
	for _, d := range tmpl.Documents() {
		if d.Resource != "AnalysisBoundary" {
			continue
		}
		for _, s := range d.Statements {
			if s.Effect != "Allow" || len(s.NotActions) > 0 || s.NotResources {
				t.Errorf("boundary statement %q: only plain Allow statements", s.Sid)
			}
			actions = append(actions, s.Actions...)
			for _, a := range s.Actions {
				if strings.HasPrefix(a, "s3:") && a != "s3:GetEncryptionConfiguration" {
					checkBoundaryS3(t, s, a)
				}
			}
		}
	}
	sort.Strings(actions)
	if !slices.Equal(slices.Compact(actions), analysisBoundaryActions) {
		t.Errorf("the boundary allows %v, want %v", actions, analysisBoundaryActions)
	}
	for _, st := range allowStatements(t, tmpl, "AnalysisRole") {
		if slices.ContainsFunc(st.Actions, func(a string) bool {
			return strings.HasPrefix(a, "s3:Get") && a != "s3:GetEncryptionConfiguration" || a == "s3:ListBucket"
		}) {
			t.Errorf("AnalysisRole's stack policy reads evidence (statement %q): that is the per-workspace policy's", st.Sid)
		}
	}
	for _, r := range []string{"ResponderRole", "ResponderLambdaRole"} {
		granted, err := tmpl.AllowedActions(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range granted {
			if strings.HasPrefix(a, "iam:") && !slices.Contains([]string{"iam:PassRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"}, a) {
				t.Errorf("%s is granted %s", r, a)
			}
		}
		for _, st := range allowStatements(t, tmpl, r) {
			if slices.Contains(st.Actions, "iam:PutRolePolicy") {
				if res := resourceNames(st); len(res) != 1 || !strings.HasSuffix(res[0], ":role/${AnalysisRoleName}") {
					t.Errorf("%s writes inline policies on %v, want the analysis role only", r, res)
				}
			}
		}
	}
}

func checkBoundaryS3(t *testing.T, s Statement, action string) {
	t.Helper()
	for _, res := range resourceNames(s) {
		ok := false
		switch action {
		case "s3:GetObject":
			ok = res == "${EvidenceBucket.Arn}/cases/*"
		case "s3:ListBucket":
			ok = res == "GetAtt EvidenceBucket.Arn" && slices.Equal(Strings(get(s.Condition, "StringLike", "s3:prefix")), []string{"cases/*"})
		case "s3:PutObject":
			ok = res == "${EvidenceBucket.Arn}/cases/*/analysis/*" || res == "${AccessLogBucket.Arn}/sessions/*"
		}
		if !ok {
			t.Errorf("the boundary allows %s on %s (statement %q)", action, res, s.Sid)
		}
	}
}

// The boundary is what keeps the responder's policy writes on the analysis
// role from being an escalation: the checks report the responder roles when
// the boundary is gone, set under a condition, or changeable by them, or when
// it grants what reaches further.
func TestAnalysisRoleBoundaryIsWhatHolds(t *testing.T) {
	responders := []string{"ResponderRole", "ResponderLambdaRole"}
	cases := []struct {
		name   string
		mutate func(t *testing.T, tmpl *Template)
	}{
		{"boundary removed", func(t *testing.T, tmpl *Template) {
			delete(tmpl.Resources["AnalysisRole"].Properties, "PermissionsBoundary")
		}},
		{"boundary under a condition", func(t *testing.T, tmpl *Template) {
			tmpl.Resources["AnalysisRole"].Properties["PermissionsBoundary"] = map[string]any{
				"Fn::If": []any{"HasOrganization", map[string]any{"Ref": "AnalysisBoundary"}, map[string]any{"Ref": "AWS::NoValue"}}}
		}},
		{"the responder may put the boundary", func(t *testing.T, tmpl *Template) {
			confineStatement(t, tmpl)["Action"] = []any{"iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"}
		}},
		{"the responder may delete the boundary", func(t *testing.T, tmpl *Template) {
			confineStatement(t, tmpl)["Action"] = []any{"iam:PutRolePolicy", "iam:DeleteRolePermissionsBoundary"}
		}},
		{"the responder may write a new version of the boundary", func(t *testing.T, tmpl *Template) {
			addInvestigationStatement(tmpl, map[string]any{"Sid": "Versions", "Effect": "Allow", "Action": "iam:CreatePolicyVersion",
				"Resource": map[string]any{"Ref": "AnalysisBoundary"}})
		}},
		{"the boundary lets the role pass roles", func(t *testing.T, tmpl *Template) {
			doc := tmpl.Resources["AnalysisBoundary"].Properties["PolicyDocument"].(map[string]any)
			doc["Statement"] = append(doc["Statement"].([]any), map[string]any{"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})
		}},
		{"the boundary lets the role lift legal holds", func(t *testing.T, tmpl *Template) {
			doc := tmpl.Resources["AnalysisBoundary"].Properties["PolicyDocument"].(map[string]any)
			doc["Statement"] = append(doc["Statement"].([]any), map[string]any{"Sid": "Holds", "Effect": "Allow", "Action": "s3:PutObjectLegalHold", "Resource": "*"})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl := load(t, forensicsTemplate)
			if found := CheckEscalations(tmpl); len(found) != 0 {
				t.Fatalf("the template itself is reported: %v", found)
			}
			c.mutate(t, tmpl)
			found := strings.Join(CheckEscalations(tmpl), "\n")
			for _, r := range responders {
				if !strings.Contains(found, forensicsTemplate+": "+r+": "+RulePolicyWriteOnAssumable) {
					t.Errorf("%s is not reported:\n%s", r, found)
				}
			}
		})
	}
}

// confineStatement is the responder's statement that writes the analysis
// role's inline policies.
func confineStatement(t *testing.T, tmpl *Template) map[string]any {
	t.Helper()
	doc := tmpl.Resources["ResponderInvestigationPolicy"].Properties["PolicyDocument"].(map[string]any)
	for _, st := range doc["Statement"].([]any) {
		if m := st.(map[string]any); m["Sid"] == "ConfineTheAnalysisRoleOnly" {
			return m
		}
	}
	t.Fatal("ResponderInvestigationPolicy has no statement ConfineTheAnalysisRoleOnly")
	return nil
}

func addInvestigationStatement(tmpl *Template, st map[string]any) {
	doc := tmpl.Resources["ResponderInvestigationPolicy"].Properties["PolicyDocument"].(map[string]any)
	doc["Statement"] = append(doc["Statement"].([]any), st)
}
