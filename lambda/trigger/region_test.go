package trigger_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/responder-ir/responder/lambda/trigger"
)

// The function's Region must be in its state machine's partition.
func TestLoadConfigRegionOfAnotherPartition(t *testing.T) {
	v := validVars()
	v["AWS_REGION"] = "cn-north-1"
	_, err := trigger.LoadConfig(getenv(v))
	var ce *trigger.ConfigError
	if !errors.As(err, &ce) || ce.Var != "AWS_REGION" || !strings.Contains(ce.Problem, "partition aws") {
		t.Fatalf("error %v, want one about AWS_REGION's partition", err)
	}
}

func TestValidateRegionIn(t *testing.T) {
	for _, tc := range []struct {
		region, partition string
		ok                bool
	}{
		{"eu-west-3", "aws", true},
		{"cn-northwest-1", "aws-cn", true},
		{"us-gov-east-1", "aws-us-gov", true},
		{"cn-north-1", "aws", false},
		{"eu-west-3", "aws-us-gov", false},
		{"us-east-1 ", "aws", false},
		{"US-EAST-1", "aws", false},
		{"", "aws", false},
	} {
		err := trigger.ValidateRegionIn(tc.region, tc.partition)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRegionIn(%q, %q) = %v, want ok %t", tc.region, tc.partition, err, tc.ok)
		}
	}
}

// Every way a target reaches the function holds it to the function's
// partition: a GuardDuty finding and the Step Functions tasks too. Each is
// refused as bad input, and nothing is started nor called.
func TestTargetsOfAnotherPartitionAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event func(e *env) []byte
	}{
		{"GuardDuty finding", func(e *env) []byte {
			var ev map[string]any
			if err := json.Unmarshal(e.event("guardduty-finding.json"), &ev); err != nil {
				t.Fatal(err)
			}
			ev["detail"].(map[string]any)["region"] = "cn-north-1"
			return marshal(t, ev)
		}},
		{"respond task", func(e *env) []byte {
			return marshal(t, map[string]any{"task": trigger.TaskRespond, "case_id": "case-1", "instance_id": e.suspect.InstanceID,
				"account_id": e.cloud.Account, "region": "us-gov-west-1", "playbook": "default", "actor": "x", "source": "api"})
		}},
		{"snapshot-status task", func(e *env) []byte {
			return snapshotPayload(t, trigger.CaseInput{CaseID: "case-1", InstanceID: e.suspect.InstanceID, AccountID: e.cloud.Account, Region: "cn-north-1"}, 0)
		}},
		{"preserve task", func(e *env) []byte {
			return marshal(t, map[string]any{"task": trigger.TaskPreserve, "case_id": "case-1", "account_id": e.cloud.Account, "region": "cn-north-1"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *trigger.Config) { c.GuardDutyEnabled = true })
			_, err := e.handle(tc.event(e))
			var f *trigger.Failure
			if !errors.As(err, &f) || f.Type != trigger.ErrorInput || !strings.Contains(f.Error(), "partition") {
				t.Fatalf("error %v, want a %s naming the partition", err, trigger.ErrorInput)
			}
			assertNothingStarted(t, e)
		})
	}
}

// A Security Hub finding whose instance is in a Region of another partition
// (an ARN of the function's partition naming such a Region, or a bare
// instance ID with such a Region) starts no case, and its note says why.
func TestCustomActionRegionOfAnotherPartition(t *testing.T) {
	e := newEnv(t)
	id := e.suspect.InstanceID
	byARN := ec2Finding("R1", []string{"arn:aws:ec2:cn-north-1:" + e.cloud.Account + ":instance/" + id})
	byID := ec2Finding("R2", []string{id})
	byID["Resources"].([]any)[0].(map[string]any)["Region"] = "us-gov-west-1"
	e.addFindings(byARN, byID)
	if _, err := e.handle(e.customActionEvent(byARN, byID)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if exs := e.sfn.Executions(); len(exs) != 0 {
		t.Fatalf("%d execution(s) started in another partition: %+v", len(exs), exs)
	}
	for _, finding := range []string{"R1", "R2"} {
		f, ok := e.hub.Finding(finding)
		if !ok || !strings.Contains(f.Note, "partition") || !strings.Contains(f.Note, "no response was started") {
			t.Errorf("%s: note %q, want why no response was started", finding, f.Note)
		}
	}
}
