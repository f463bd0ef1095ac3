package trigger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	shtypes "github.com/aws/aws-sdk-go-v2/service/securityhub/types"

	"github.com/responder-ir/responder/lambda/trigger"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// customActionEvent is the sample custom action event with other findings.
func (e *env) customActionEvent(findings ...map[string]any) []byte {
	e.t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(e.event("securityhub-custom-action.json"), &ev); err != nil {
		e.t.Fatal(err)
	}
	if findings != nil {
		list := make([]any, len(findings))
		for i, f := range findings {
			list[i] = f
		}
		ev["detail"].(map[string]any)["findings"] = list
	}
	return marshal(e.t, ev)
}

// sampleFindings are the findings of the sample event.
func (e *env) sampleFindings() []map[string]any {
	var ev struct {
		Detail struct {
			Findings []map[string]any `json:"findings"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(e.event("securityhub-custom-action.json"), &ev); err != nil {
		e.t.Fatal(err)
	}
	return ev.Detail.Findings
}

// ec2Finding is an ASFF finding naming EC2 instances by ARN (and other
// resources by type).
func ec2Finding(id string, instanceARNs []string, otherTypes ...string) map[string]any {
	var resources []any
	for _, arn := range instanceARNs {
		resources = append(resources, map[string]any{"Type": "AwsEc2Instance", "Id": arn, "Partition": "aws", "Region": "us-east-1"})
	}
	for _, typ := range otherTypes {
		resources = append(resources, map[string]any{"Type": typ, "Id": "arn:aws:s3:::" + strings.ToLower(id), "Partition": "aws", "Region": "us-east-1"})
	}
	return map[string]any{
		"SchemaVersion": "2018-10-08", "Id": id, "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
		"AwsAccountId": "111122223333", "Region": "us-east-1", "Title": "finding " + id, "Resources": resources,
		"Workflow": map[string]any{"Status": "NEW"},
	}
}

// inAccount sets a finding's AwsAccountId.
func inAccount(f map[string]any, account string) map[string]any {
	f["AwsAccountId"] = account
	return f
}

func instanceARN(account, id string) string {
	return "arn:aws:ec2:us-east-1:" + account + ":instance/" + id
}

// addFindings makes the findings of an event exist in the fake Security Hub.
func (e *env) addFindings(findings ...map[string]any) {
	for _, f := range findings {
		e.hub.AddFinding(f["Id"].(string), f["ProductArn"].(string))
	}
}

type customActionAnswer struct {
	FleetID string `json:"fleet_id"`
	Cases   []struct {
		CaseID     string `json:"case_id"`
		InstanceID string `json:"instance_id"`
		Joined     bool   `json:"joined"`
	} `json:"cases"`
	Findings                int `json:"findings"`
	FindingsUpdated         int `json:"findings_updated"`
	FindingsWithoutInstance int `json:"findings_without_instance"`
}

func TestCustomActionSampleEvent(t *testing.T) {
	e := newEnv(t)
	findings := e.sampleFindings()
	e.addFindings(findings...)
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent()), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Cases) != 1 || ans.Cases[0].InstanceID != e.suspect.InstanceID || ans.FindingsUpdated != 2 || ans.FindingsWithoutInstance != 1 {
		t.Fatalf("answer %+v", ans)
	}
	caseID := ans.Cases[0].CaseID

	exs := e.sfn.Executions()
	if len(exs) != 1 || exs[0].Name != caseID {
		t.Fatalf("executions %+v, want one named %s", exs, caseID)
	}
	if in := executionInput(t, exs[0]); in.Source != "securityhub" ||
		in.Actor != "securityhub-custom-action:arn:aws:securityhub:us-east-1:111122223333:action/custom/ResponderRespond" {
		t.Errorf("execution input %+v", in)
	}

	gd, _ := e.hub.Finding(findings[0]["Id"].(string))
	if gd.Workflow != shtypes.WorkflowStatusNotified || gd.UpdatedBy != "responder" ||
		!strings.Contains(gd.Note, "case "+caseID+" started for "+e.suspect.InstanceID) ||
		!strings.Contains(gd.Note, "s3://"+bucketName+"/cases/"+caseID+"/") {
		t.Errorf("EC2 finding: workflow %s, note %q", gd.Workflow, gd.Note)
	}
	s3, _ := e.hub.Finding(findings[1]["Id"].(string))
	if s3.Workflow != shtypes.WorkflowStatusNew || !strings.Contains(s3.Note, "names no EC2 instance (its resources: AwsS3Bucket)") {
		t.Errorf("S3 finding: workflow %s, note %q", s3.Workflow, s3.Note)
	}
}

// Several findings naming the same instances, an instance of an account not
// allowed, a malformed resource: one case per allowed instance, run as one
// fleet (whose input gives each case the findings that name its instance),
// and every finding told what became of it.
func TestCustomActionManyFindings(t *testing.T) {
	e := newEnv(t)
	second := e.cloud.AddInstance(fakeaws.InstanceSpec{VpcID: e.suspect.VpcID})
	a, b := instanceARN(e.cloud.Account, e.suspect.InstanceID), instanceARN(e.cloud.Account, second)
	findings := []map[string]any{
		ec2Finding("F1", []string{a}),
		ec2Finding("F2", []string{a, b}, "AwsS3Bucket"),
		ec2Finding("F3", []string{b, b}),
		inAccount(ec2Finding("F4", []string{instanceARN(otherAccount, "i-0aaaaaaaaaaaaaaaa")}), otherAccount),
		ec2Finding("F5", []string{"arn:aws:ec2:us-east-1:111122223333:instance/i-0123; reboot"}),
		ec2Finding("F6", nil, "AwsIamRole", "AwsIamRole"),
		ec2Finding("F1", []string{a}), // the same finding twice
	}
	e.addFindings(findings...)
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent(findings...)), &ans); err != nil {
		t.Fatal(err)
	}
	caseOf := map[string]string{}
	for _, c := range ans.Cases {
		caseOf[c.InstanceID] = c.CaseID
	}
	if len(ans.Cases) != 2 || caseOf[e.suspect.InstanceID] != evidence.FleetCaseID(ans.FleetID, e.suspect.InstanceID) ||
		caseOf[second] != evidence.FleetCaseID(ans.FleetID, second) {
		t.Fatalf("cases %+v of fleet %s, want one per instance, named after the fleet", ans.Cases, ans.FleetID)
	}
	exs := e.sfn.Executions()
	if len(exs) != 1 || exs[0].Name != ans.FleetID {
		t.Fatalf("executions %+v, want the fleet's", exs)
	}
	var in trigger.FleetInput
	if err := json.Unmarshal([]byte(exs[0].Input), &in); err != nil {
		t.Fatal(err)
	}
	asked := map[string][]string{}
	for _, target := range in.Targets {
		for _, f := range target.Findings {
			asked[target.InstanceID] = append(asked[target.InstanceID], f.ID)
		}
	}
	if fmt.Sprint(asked[e.suspect.InstanceID]) != "[F1 F2]" || fmt.Sprint(asked[second]) != "[F2 F3]" {
		t.Errorf("findings per case %v", asked)
	}
	// EventBridge's retry of the event finds the same fleet.
	e.mustHandle(e.customActionEvent(findings...))
	if n := len(e.sfn.Executions()); n != 1 {
		t.Errorf("%d executions after the event's retry, want 1", n)
	}

	for _, tc := range []struct {
		id       string
		notified bool
		contains []string
	}{
		{"F1", true, []string{"case " + caseOf[e.suspect.InstanceID], "Evidence: s3://" + bucketName + "/cases/" + caseOf[e.suspect.InstanceID] + "/"}},
		{"F2", true, []string{caseOf[e.suspect.InstanceID], caseOf[second], "Evidence: s3://" + bucketName + "/cases/<case-id>/"}},
		{"F3", true, []string{"case " + caseOf[second] + " started for " + second}},
		{"F4", false, []string{"i-0aaaaaaaaaaaaaaaa in account " + otherAccount + ": not an account this responder may act in"}},
		{"F5", false, []string{"invalid instance ID"}},
		{"F6", false, []string{"names no EC2 instance (its resources: AwsIamRole)"}},
	} {
		f, ok := e.hub.Finding(tc.id)
		if !ok || f.Updates == 0 {
			t.Errorf("%s not updated", tc.id)
			continue
		}
		if (f.Workflow == shtypes.WorkflowStatusNotified) != tc.notified {
			t.Errorf("%s: workflow %s, notified want %t", tc.id, f.Workflow, tc.notified)
		}
		for _, s := range tc.contains {
			if !strings.Contains(f.Note, s) {
				t.Errorf("%s: note %q lacks %q", tc.id, f.Note, s)
			}
		}
		if strings.Count(f.Note, "started for "+second) > 1 {
			t.Errorf("%s: note names an instance twice: %q", tc.id, f.Note)
		}
	}
}

// 100 findings, each naming its own instance: 100 cases in one fleet, 100
// findings noted (each note differs, so in calls of one finding each).
func TestCustomActionHundredFindings(t *testing.T) {
	e := newEnv(t)
	var findings []map[string]any
	for i := range 100 {
		id := fmt.Sprintf("i-0%016x", i+1)
		findings = append(findings, ec2Finding(fmt.Sprintf("F%03d", i), []string{instanceARN(e.cloud.Account, id)}))
	}
	e.addFindings(findings...)
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent(findings...)), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Cases) != 100 || ans.FindingsUpdated != 100 {
		t.Fatalf("answer: %d cases, %d findings updated", len(ans.Cases), ans.FindingsUpdated)
	}
	if exs := e.sfn.Executions(); len(exs) != 1 || exs[0].Name != ans.FleetID || strings.Count(exs[0].Input, `"case_id"`) != 100 {
		t.Errorf("%d executions, want the fleet's, of 100 cases", len(exs))
	}
	for _, f := range e.hub.Findings() {
		if f.Workflow != shtypes.WorkflowStatusNotified || len(f.Note) > trigger.MaxNoteLength {
			t.Errorf("%s: workflow %s, note of %d bytes", f.ID, f.Workflow, len(f.Note))
		}
	}
}

// 250 findings with the same note are updated in calls of at most 100 (the
// fake refuses more, as Security Hub does).
func TestCustomActionBatchesOfAHundred(t *testing.T) {
	e := newEnv(t)
	var findings []map[string]any
	for i := range 250 {
		findings = append(findings, ec2Finding(fmt.Sprintf("S%03d", i), nil, "AwsS3Bucket"))
	}
	e.addFindings(findings...)
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent(findings...)), &ans); err != nil {
		t.Fatal(err)
	}
	if ans.FindingsUpdated != 250 || ans.FindingsWithoutInstance != 250 || len(ans.Cases) != 0 {
		t.Fatalf("answer %+v", ans)
	}
	for _, f := range e.hub.Findings() {
		if f.Updates != 1 {
			t.Errorf("%s updated %d times", f.ID, f.Updates)
		}
	}
}

// An instance named by many findings makes a long note: it stays within
// Security Hub's 512 characters, counting what it leaves out.
func TestCustomActionLongNote(t *testing.T) {
	e := newEnv(t)
	var arns []string
	for i := range 40 {
		arns = append(arns, instanceARN(e.cloud.Account, fmt.Sprintf("i-0%016x", i+1)))
	}
	f := ec2Finding("BIG", arns)
	e.addFindings(f)
	e.mustHandle(e.customActionEvent(f))
	got, _ := e.hub.Finding("BIG")
	if len([]rune(got.Note)) > trigger.MaxNoteLength || !strings.Contains(got.Note, "more") || !strings.HasPrefix(got.Note, "responder: case ") {
		t.Errorf("note of %d characters: %q", len([]rune(got.Note)), got.Note)
	}
}

// A finding Security Hub reports as concurrently updated is tried again.
func TestCustomActionRetriesConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	findings := e.sampleFindings()
	e.addFindings(findings...)
	e.hub.Unprocess(findings[0]["Id"].(string), "ConcurrentUpdateError")
	e.mustHandle(e.customActionEvent())
	if f, _ := e.hub.Finding(findings[0]["Id"].(string)); f.Workflow != shtypes.WorkflowStatusNotified {
		t.Errorf("finding not updated after a concurrent update: %+v", f)
	}
}

// When the findings cannot be updated, the event fails (EventBridge retries
// it); the retry joins the case already started and writes the notes.
func TestCustomActionRetryAfterFailure(t *testing.T) {
	e := newEnv(t)
	findings := e.sampleFindings()
	e.addFindings(findings...)
	e.hub.FailNext(errors.New("connection reset by peer"))
	if _, err := e.handle(e.customActionEvent()); err == nil {
		t.Fatal("the event succeeded although no finding was updated")
	}
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent()), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Cases) != 1 || !ans.Cases[0].Joined || ans.FindingsUpdated != 2 {
		t.Errorf("retry answered %+v, want the case joined and both findings updated", ans)
	}
	if exs := e.sfn.Executions(); len(exs) != 1 {
		t.Errorf("%d executions after the retry, want 1", len(exs))
	}
}

func TestCustomActionMalformed(t *testing.T) {
	e := newEnv(t)
	for _, ev := range []string{
		`{"detail-type": "Security Hub Findings - Custom Action", "source": "aws.securityhub", "detail": {"findings": "all"}}`,
		`{"detail-type": "Security Hub Findings - Custom Action", "source": "aws.securityhub", "region": "../x", "detail": {"findings": []}}`,
	} {
		_, err := e.handle([]byte(ev))
		var f *trigger.Failure
		if !errors.As(err, &f) || f.Type != trigger.ErrorInput {
			t.Errorf("%s: error %v, want an input failure", ev, err)
		}
	}
}

// The target account comes from the instance ARN, and the ARN must agree with
// the finding: its account is the finding's AwsAccountId, its partition the
// function's (and the resource's own Partition field). Otherwise no case
// starts for it, and the finding's note says why; a good finding of the same
// event still gets its case.
func TestCustomActionARNMustMatchFinding(t *testing.T) {
	e := newEnv(t)
	id := e.suspect.InstanceID
	good := instanceARN(e.cloud.Account, id)
	otherPartition := ec2Finding("P1", []string{"arn:aws-cn:ec2:cn-north-1:" + e.cloud.Account + ":instance/" + id})
	otherPartition["Resources"].([]any)[0].(map[string]any)["Partition"] = "aws-cn"
	resourcePartition := ec2Finding("P2", []string{good})
	resourcePartition["Resources"].([]any)[0].(map[string]any)["Partition"] = "aws-us-gov"
	noAccount := ec2Finding("A2", []string{good})
	delete(noAccount, "AwsAccountId")
	findings := []map[string]any{
		inAccount(ec2Finding("A1", []string{good}), otherAccount), // the ARN's account is not the finding's
		noAccount,
		otherPartition,
		resourcePartition,
		inAccount(ec2Finding("OK", []string{good}), e.cloud.Account),
	}
	e.addFindings(findings...)
	var ans customActionAnswer
	if err := json.Unmarshal(e.mustHandle(e.customActionEvent(findings...)), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Cases) != 1 || ans.Cases[0].InstanceID != id {
		t.Fatalf("cases %+v, want one, for the finding whose ARN agrees", ans.Cases)
	}
	if exs := e.sfn.Executions(); len(exs) != 1 {
		t.Errorf("%d executions, want 1", len(exs))
	}
	for _, tc := range []struct{ id, reason string }{
		{"A1", "its ARN names account " + e.cloud.Account + ` but the finding is from account "` + otherAccount + `"`},
		{"A2", "the finding gives no AwsAccountId to check it against"},
		{"P1", `its ARN is in partition "aws-cn", not this responder's (aws)`},
		{"P2", `its ARN is in partition "aws" but the resource says "aws-us-gov"`},
	} {
		f, ok := e.hub.Finding(tc.id)
		switch {
		case !ok || f.Updates == 0:
			t.Errorf("%s not updated", tc.id)
		case f.Workflow == shtypes.WorkflowStatusNotified:
			t.Errorf("%s: workflow NOTIFIED, but no case runs for it", tc.id)
		case !strings.Contains(f.Note, tc.reason) || !strings.Contains(f.Note, "no response was started"):
			t.Errorf("%s: note %q does not say %q", tc.id, f.Note, tc.reason)
		}
	}
	if f, _ := e.hub.Finding("OK"); f.Workflow != shtypes.WorkflowStatusNotified || !strings.Contains(f.Note, "case "+ans.Cases[0].CaseID) {
		t.Errorf("OK: workflow %s, note %q", f.Workflow, f.Note)
	}
}
