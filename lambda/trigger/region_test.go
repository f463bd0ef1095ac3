package trigger_test

import (
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
