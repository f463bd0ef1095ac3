package step

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TerminationProtection enables termination protection, so that the instance
// (and with it the evidence on its instance store and in memory) cannot be
// terminated through the API by mistake or by the attacker.
type TerminationProtection struct{}

func (TerminationProtection) Name() string    { return "termination-protection" }
func (TerminationProtection) Phase() Phase    { return Contain }
func (TerminationProtection) Needs() []string { return []string{"metadata:read", "snapshots"} }
func (TerminationProtection) Isolates() bool  { return true }

type terminationState struct {
	DisableAPITermination bool `json:"disable_api_termination"`
}

// terminationFlag is termination protection, recorded as a terminationState.
var terminationFlag = protectionFlag{
	what:      "termination protection",
	attribute: types.InstanceAttributeNameDisableApiTermination,
	value: func(o *ec2.DescribeInstanceAttributeOutput) *types.AttributeBooleanValue {
		return o.DisableApiTermination
	},
	modify: func(in *ec2.ModifyInstanceAttributeInput, v *types.AttributeBooleanValue) {
		in.DisableApiTermination = v
	},
	state: func(on bool) any { return terminationState{DisableAPITermination: on} },
	on: func(raw json.RawMessage) (bool, error) {
		var st terminationState
		err := json.Unmarshal(raw, &st)
		return st.DisableAPITermination, err
	},
}

func (TerminationProtection) Run(ctx context.Context, env *Env) Result {
	return terminationFlag.enable(ctx, env)
}

// Release restores the termination protection found before.
func (TerminationProtection) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	return terminationFlag.release(ctx, env, raw)
}

// ShutdownBehavior makes a shutdown from inside the instance stop it rather
// than terminate it, so that an attacker (or a panicking script) cannot
// destroy the instance and its instance-store evidence with `shutdown -h`.
type ShutdownBehavior struct{}

func (ShutdownBehavior) Name() string    { return "shutdown-behavior" }
func (ShutdownBehavior) Phase() Phase    { return Contain }
func (ShutdownBehavior) Needs() []string { return []string{"metadata:read", "snapshots"} }
func (ShutdownBehavior) Isolates() bool  { return true }

type shutdownState struct {
	Behavior string `json:"instance_initiated_shutdown_behavior"`
}

func (s ShutdownBehavior) Run(ctx context.Context, env *Env) Result {
	var api instanceAttributeAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	out, err := env.describeAttribute(ctx, api, types.InstanceAttributeNameInstanceInitiatedShutdownBehavior)
	if err != nil {
		return Failed(fmt.Errorf("read shutdown behavior of %s: %w", id, err), nil)
	}
	before := shutdownState{Behavior: attributeValue(out.InstanceInitiatedShutdownBehavior)}
	if before.Behavior == "stop" {
		return Skipped("instance-initiated shutdown already stops the instance", before).Held(true)
	}
	return s.set(ctx, api, env, "stop", before)
}

func (s ShutdownBehavior) set(ctx context.Context, api instanceAttributeAPI, env *Env, behavior string, before shutdownState) Result {
	id := env.Target.InstanceID()
	// The Attribute + Value form: documented for this attribute, and the one
	// every EC2-compatible endpoint we test against honours.
	_, err := api.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: &id,
		Attribute:  types.InstanceAttributeNameInstanceInitiatedShutdownBehavior,
		Value:      aws.String(behavior),
		DryRun:     aws.Bool(env.Target.DryRun),
	})
	if env.Target.DryRun {
		return dryRunContainment(dryRun(err, "set instance-initiated shutdown behavior to "+behavior, before))
	}
	if err != nil {
		return Failed(fmt.Errorf("set shutdown behavior of %s to %s: %w", id, behavior, err), before)
	}
	// Read it back: an accepted call that changed nothing must not pass for
	// a containment.
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior})
	if err != nil {
		return Failed(fmt.Errorf("read back shutdown behavior of %s: %w", id, err), before)
	}
	if got := attributeValue(out.InstanceInitiatedShutdownBehavior); got != behavior {
		return Failed(fmt.Errorf("shutdown behavior of %s is %q after it was set to %q", id, got, behavior), before).Held(false)
	}
	return OK("instance-initiated shutdown behavior set to "+behavior, before, shutdownState{Behavior: behavior}).Held(true)
}

// Release restores the shutdown behavior found before.
func (s ShutdownBehavior) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before shutdownState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	if before.Behavior == "" || before.Behavior == "stop" {
		return Skipped("shutdown behavior was already stop before the response", before)
	}
	return s.set(ctx, env.Clients.EC2, env, before.Behavior, before)
}

func attributeValue(v *types.AttributeValue) string {
	if v == nil {
		return ""
	}
	return aws.ToString(v.Value)
}

// Describe: whether the instance can be terminated through the API.
func (TerminationProtection) Describe() Description {
	return Description{
		Aspect: "Termination protection (DisableApiTermination)",
		View:   terminationFlag.view("disable_api_termination", "the instance can be terminated through the API"),
		Order:  40,
		OnFailure: "The instance can still be terminated through the API: its memory and every " +
			"volume set to delete on termination would be lost.",
	}
}

// Describe: what a shutdown from inside the instance does.
func (ShutdownBehavior) Describe() Description {
	return Description{
		Aspect: "Instance-initiated shutdown behaviour",
		View:   viewShutdownBehavior,
		Order:  50,
		OnFailure: "A shutdown from inside the instance may terminate it: its memory and every volume " +
			"set to delete on termination would be lost.",
	}
}

// viewShutdownBehavior reads a shutdownState.
func viewShutdownBehavior(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	var v shutdownState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.Behavior == "" {
		return nil, missingField("instance_initiated_shutdown_behavior")
	}
	return []SubjectState{{Subject: instanceID, Text: v.Behavior}}, nil
}
