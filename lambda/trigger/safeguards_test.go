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
