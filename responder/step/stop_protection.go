package step

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type stopProtectionAPI interface {
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

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

func (s StopProtection) Run(ctx context.Context, env *Env) Result {
	var api stopProtectionAPI = env.Clients.EC2
	on, err := s.read(ctx, api, env.Target.InstanceID())
	if err != nil {
		return Failed(err, nil)
	}
	before := stopProtectionState{DisableAPIStop: on}
	if on {
		return Skipped("stop protection already enabled", before).Held(true)
	}
	return s.set(ctx, api, env, true, before)
}

func (StopProtection) read(ctx context.Context, api stopProtectionAPI, id string) (bool, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: types.InstanceAttributeNameDisableApiStop})
	if err != nil {
		return false, fmt.Errorf("read stop protection of %s: %w", id, err)
	}
	return out.DisableApiStop != nil && aws.ToBool(out.DisableApiStop.Value), nil
}

// set changes stop protection and reads it back: an accepted call that
// changed nothing must not pass for containment.
func (s StopProtection) set(ctx context.Context, api stopProtectionAPI, env *Env, on bool, before stopProtectionState) Result {
	id := env.Target.InstanceID()
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId:     &id,
		DisableApiStop: &types.AttributeBooleanValue{Value: aws.Bool(on)},
		DryRun:         aws.Bool(env.Target.DryRun),
	})
	if env.Target.DryRun {
		return dryRunContainment(dryRun(err, fmt.Sprintf("set stop protection to %t", on), before))
	}
	if err != nil {
		return Failed(fmt.Errorf("set stop protection of %s to %t: %w", id, on, err), before)
	}
	got, err := s.read(ctx, api, id)
	if err != nil {
		return Failed(fmt.Errorf("read back: %w", err), before).Unchecked()
	}
	if got != on {
		return Failed(fmt.Errorf("stop protection of %s is %t after it was set to %t", id, got, on), before).Held(false)
	}
	return OK(fmt.Sprintf("stop protection set to %t", on), before, stopProtectionState{DisableAPIStop: on}).Held(true)
}

// Release restores the stop protection found before.
func (s StopProtection) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before stopProtectionState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	if before.DisableAPIStop {
		return Skipped("stop protection was already enabled before the response", before)
	}
	return s.set(ctx, env.Clients.EC2, env, false, before)
}

// Describe: whether the instance can be stopped through the API.
func (StopProtection) Describe() Description {
	return Description{
		Aspect: "Stop protection (DisableApiStop)",
		View:   viewStopProtection,
		Order:  45,
		OnFailure: "The instance can still be stopped through the API: its memory, and any instance-store " +
			"data, would be lost before it is captured.",
	}
}

// viewStopProtection reads a stopProtectionState. A record without the
// attribute is unreadable rather than "disabled".
func viewStopProtection(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	if err := requireField(raw, "disable_api_stop"); err != nil {
		return nil, err
	}
	var v stopProtectionState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	text := "disabled: the instance can be stopped through the API"
	if v.DisableAPIStop {
		text = "enabled"
	}
	return []SubjectState{{Subject: instanceID, Text: text}}, nil
}
