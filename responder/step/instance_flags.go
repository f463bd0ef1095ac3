package step

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// instanceAttributeAPI is what the steps that change an attribute of the
// instance call.
type instanceAttributeAPI interface {
	DescribeInstanceAttribute(context.Context, *ec2.DescribeInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
}

// protectionFlag is a protection of the instance that is a boolean
// attribute (termination protection, stop protection): a containment step
// turns it on and reads it back, its release turns it off again when it was
// off before the response. Each step keeps its own record shape (state).
type protectionFlag struct {
	what      string // "termination protection"
	attribute types.InstanceAttributeName
	// value picks the attribute out of DescribeInstanceAttribute's answer;
	// modify puts it into a ModifyInstanceAttribute request.
	value  func(*ec2.DescribeInstanceAttributeOutput) *types.AttributeBooleanValue
	modify func(in *ec2.ModifyInstanceAttributeInput, v *types.AttributeBooleanValue)
	// state is the step's record of the flag; on reads it back.
	state func(on bool) any
	on    func(state json.RawMessage) (bool, error)
}

func (f protectionFlag) read(ctx context.Context, api instanceAttributeAPI, id string) (bool, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: f.attribute})
	if err != nil {
		return false, err
	}
	return f.isOn(out), nil
}

func (f protectionFlag) isOn(out *ec2.DescribeInstanceAttributeOutput) bool {
	v := f.value(out)
	return v != nil && aws.ToBool(v.Value)
}

// enable is the step's run: take the flag as found at the start of the
// response, and turn it on unless it is.
func (f protectionFlag) enable(ctx context.Context, env *Env) Result {
	id := env.Target.InstanceID()
	out, err := env.describeAttribute(ctx, env.Clients.EC2, f.attribute)
	on := err == nil && f.isOn(out)
	if err != nil {
		return Failed(fmt.Errorf("read %s of %s: %w", f.what, id, err), nil)
	}
	before := f.state(on)
	if on {
		return Skipped(f.what+" already enabled", before).Held(true)
	}
	return f.set(ctx, env, true, before)
}

// set changes the flag and reads it back: an accepted call that changed
// nothing must not pass for containment.
func (f protectionFlag) set(ctx context.Context, env *Env, on bool, before any) Result {
	var api instanceAttributeAPI = env.Clients.EC2
	id := env.Target.InstanceID()
	in := &ec2.ModifyInstanceAttributeInput{InstanceId: &id, DryRun: aws.Bool(env.Target.DryRun)}
	f.modify(in, &types.AttributeBooleanValue{Value: aws.Bool(on)})
	_, err := api.ModifyInstanceAttribute(ctx, in)
	if env.Target.DryRun {
		return dryRunContainment(dryRun(err, fmt.Sprintf("set %s to %t", f.what, on), before))
	}
	if err != nil {
		return Failed(fmt.Errorf("set %s of %s to %t: %w", f.what, id, on, err), before)
	}
	got, err := f.read(ctx, api, id)
	if err != nil {
		return Failed(fmt.Errorf("read back %s of %s: %w", f.what, id, err), before).Unchecked()
	}
	if got != on {
		return Failed(fmt.Errorf("%s of %s is %t after it was set to %t", f.what, id, got, on), before).Held(false)
	}
	return OK(fmt.Sprintf("%s set to %t", f.what, on), before, f.state(on)).Held(true)
}

// release turns the flag off again, unless it was on before the response.
func (f protectionFlag) release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	wasOn, err := f.on(raw)
	if err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	before := f.state(wasOn)
	if wasOn {
		return Skipped(f.what+" was already enabled before the response", before)
	}
	return f.set(ctx, env, false, before)
}

// view is the report's view of the flag's record: field is its JSON name
// (a record without it is unreadable rather than "disabled"), disabled
// says what the instance can still have done to it.
func (f protectionFlag) view(field, disabled string) View {
	return func(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
		if err := requireField(raw, field); err != nil {
			return nil, err
		}
		on, err := f.on(raw)
		if err != nil {
			return nil, err
		}
		text := "disabled: " + disabled
		if on {
			text = "enabled"
		}
		return []SubjectState{{Subject: instanceID, Text: text}}, nil
	}
}
