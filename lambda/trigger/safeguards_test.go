package trigger_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/lambda/trigger"
)

// A protected instance: the respond task changes nothing and fails as bad
// input (not retried), saying why no case started.
func TestRespondTaskRefusesProtected(t *testing.T) {
	e := newEnv(t, func(c *trigger.Config) { c.ProtectedTag = "team:keep" })
	if _, err := e.cloud.EC2().CreateTags(context.Background(), &ec2.CreateTagsInput{
		Resources: []string{e.suspect.InstanceID}, Tags: []types.Tag{{Key: aws.String("team:keep"), Value: aws.String("true")}},
	}); err != nil {
		t.Fatal(err)
	}
	ex := e.startCase()
	_, err := e.handle(respondPayload(t, ex))
	var f *trigger.Failure
	if !errors.As(err, &f) || f.Type != trigger.ErrorInput || !strings.Contains(err.Error(), "team:keep=true") {
		t.Fatalf("err %v, want %s naming the tag", err, trigger.ErrorInput)
	}
	if n := len(e.cloud.Snapshots()); n != 0 || e.cloud.CallCount("ModifyNetworkInterfaceAttribute") != 0 {
		t.Errorf("a refused case acted: %d snapshots", n)
	}
}

func TestConfigSafeguards(t *testing.T) {
	env := map[string]string{
		trigger.EnvRegion: "eu-west-1", trigger.EnvEvidenceBucket: "evidence-bucket",
		trigger.EnvStateMachineARN: "arn:aws:states:eu-west-1:444455556666:stateMachine:r", trigger.EnvAllowedAccounts: "*",
		trigger.EnvProtectedTag: "team:keep", trigger.EnvBlastRadius: "50",
	}
	c, err := trigger.LoadConfig(func(k string) string { return env[k] })
	if err != nil || c.ProtectedTag != "team:keep" || c.BlastRadius != 50 {
		t.Fatalf("config %+v, %v", c, err)
	}
	for _, bad := range []string{"0", "-1", "x", "1001"} {
		env[trigger.EnvBlastRadius] = bad
		if _, err := trigger.LoadConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), trigger.EnvBlastRadius) {
			t.Errorf("%s=%s: %v", trigger.EnvBlastRadius, bad, err)
		}
	}
}

// "force": true in the API body carries through the execution's input to
// the respond task, which then contains the protected instance and records
// who forced it; without it the same instance is refused (above).
func TestAPIForceRespondsToAProtectedInstance(t *testing.T) {
	e := newEnv(t)
	if _, err := e.cloud.EC2().CreateTags(context.Background(), &ec2.CreateTagsInput{
		Resources: []string{e.suspect.InstanceID}, Tags: []types.Tag{{Key: aws.String("responder:protected"), Value: aws.String("true")}},
	}); err != nil {
		t.Fatal(err)
	}
	a := decodeAPI(t, e.mustHandle(e.postV1(`{"instance_id": "`+e.suspect.InstanceID+`", "force": true}`)))
	if a.Status != 202 {
		t.Fatalf("POST /cases with force: %d %s", a.Status, a.Raw)
	}
	ex := e.sfn.Executions()[0]
	if in := executionInput(t, ex); !in.Force {
		t.Fatalf("the execution's input does not carry force: %+v", in)
	}
	if _, err := e.handle(respondPayload(t, ex)); err != nil {
		t.Fatalf("respond task: %v", err)
	}
	if e.cloud.CallCount("ModifyNetworkInterfaceAttribute") == 0 {
		t.Error("the forced case did not contain the instance")
	}
	b := decodeAPI(t, e.mustHandle(e.postV1(`{"instance_id": "`+e.suspect.InstanceID+`", "force": "yes"}`)))
	if b.Status != 400 {
		t.Errorf(`"force": "yes": %d %s, want 400`, b.Status, b.Raw)
	}
}
