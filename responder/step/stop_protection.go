package step

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// StopProtection enables stop protection (DisableApiStop), so that the
// instance cannot be stopped through the API and its memory, the evidence
// only the running system holds, survives until it is captured.
type StopProtection struct{}

func (StopProtection) Name() string    { return "stop-protection" }
func (StopProtection) Phase() Phase    { return Contain }
func (StopProtection) Needs() []string { return []string{"metadata:read", "snapshots"} }
func (StopProtection) Isolates() bool  { return true }

type stopProtectionState struct {
	DisableAPIStop bool `json:"disable_api_stop"`
}

// stopFlag is stop protection, recorded as a stopProtectionState.
var stopFlag = protectionFlag{
	what:      "stop protection",
	attribute: types.InstanceAttributeNameDisableApiStop,
	value:     func(o *ec2.DescribeInstanceAttributeOutput) *types.AttributeBooleanValue { return o.DisableApiStop },
	modify:    func(in *ec2.ModifyInstanceAttributeInput, v *types.AttributeBooleanValue) { in.DisableApiStop = v },
	state:     func(on bool) any { return stopProtectionState{DisableAPIStop: on} },
	on: func(raw json.RawMessage) (bool, error) {
		var st stopProtectionState
		err := json.Unmarshal(raw, &st)
		return st.DisableAPIStop, err
	},
}

func (StopProtection) Run(ctx context.Context, env *Env) Result {
	return stopFlag.enable(ctx, env)
}

// Release restores the stop protection found before.
func (StopProtection) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	return stopFlag.release(ctx, env, raw)
}

// Describe: whether the instance can be stopped through the API.
func (StopProtection) Describe() Description {
	return Description{
		Aspect: "Stop protection (DisableApiStop)",
		View:   stopFlag.view("disable_api_stop", "the instance can be stopped through the API"),
		Order:  45,
		OnFailure: "The instance can still be stopped through the API: its memory, and any instance-store " +
			"data, would be lost before it is captured.",
	}
}
