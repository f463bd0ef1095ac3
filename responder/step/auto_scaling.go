package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
)

// AutoScaling takes an instance of an Auto Scaling group out of the group's
// service, so that the group can no longer terminate it (termination
// protection does not stop Auto Scaling: a failed health check after the
// quarantine, or a scale-in, would take the instance and the evidence on its
// instance-store and delete-on-termination volumes):
//
//   - standby (step auto-scaling, the default): EnterStandby keeps the
//     instance in the group, not health-checked, after scale-in protection
//     is set. Auto Scaling puts only an InService instance in standby.
//   - detach (step auto-scaling-detach): DetachInstances takes it out of the
//     group altogether.
//
// Either way the desired capacity is kept (ShouldDecrementDesiredCapacity
// false), so the group launches a clean replacement, and Auto Scaling
// deregisters the instance from the group's own target groups and Classic
// Load Balancers (after their deregistration delay). The step needs nothing:
// it starts with the first round, beside the quarantine, before a failing
// load balancer health check can make the group replace the instance.
type AutoScaling struct {
	Detach bool
}

// Names of the two ways of the step.
const (
	autoScalingStandby = "auto-scaling"
	autoScalingDetach  = "auto-scaling-detach"
)

// Auto Scaling lifecycle states the step reads.
const (
	asInService       = "InService"
	asStandby         = "Standby"
	asEnteringStandby = "EnteringStandby"
	asDetaching       = "Detaching"
	asDetached        = "Detached"
)

func (s AutoScaling) Name() string {
	if s.Detach {
		return autoScalingDetach
	}
	return autoScalingStandby
}

func (AutoScaling) Phase() Phase    { return Contain }
func (AutoScaling) Needs() []string { return nil }
func (AutoScaling) Isolates() bool  { return true }

func (s AutoScaling) mode() string {
	if s.Detach {
		return "detach"
	}
	return "standby"
}

// autoScalingState is the instance's membership of an Auto Scaling group.
type autoScalingState struct {
	// Group is "" when the instance is in no group.
	Group                string `json:"group"`
	LifecycleState       string `json:"lifecycle_state,omitempty"`
	ProtectedFromScaleIn bool   `json:"protected_from_scale_in"`
	DesiredCapacity      *int32 `json:"desired_capacity,omitempty"`
	MinSize              *int32 `json:"min_size,omitempty"`
	MaxSize              *int32 `json:"max_size,omitempty"`
	// Mode is how the step takes it out of service: standby or detach.
	Mode string `json:"mode,omitempty"`
	// Note says what follows for the group's capacity.
	Note string `json:"note,omitempty"`
}

func (s AutoScaling) api(env *Env) (cloud.AutoScaling, error) {
	if env.Clients.AutoScaling == nil {
		return nil, errors.New("no Auto Scaling client: the instance's group membership cannot be read")
	}
	return env.Clients.AutoScaling, nil
}

// readMembership reads the instance's group, lifecycle state, protection and
// the group's capacity (Group "" when it is in none).
func readMembership(ctx context.Context, api cloud.AutoScaling, id string) (autoScalingState, error) {
	st, err := readInstanceMembership(ctx, api, id)
	if err != nil || st.Group == "" {
		return st, err
	}
	found, err := readCapacity(ctx, api, &st)
	if err != nil {
		return st, err
	}
	if !found {
		return st, fmt.Errorf("describe Auto Scaling group %s of %s: not in the answer", st.Group, id)
	}
	return st, nil
}

// readBackMembership is readMembership for a read-back, which knows the
// group: the instance and the group's capacity are read at once (one round
// trip); the capacity is filled when the instance is in that group or none.
func readBackMembership(ctx context.Context, api cloud.AutoScaling, id, group string) (autoScalingState, error) {
	capacity := autoScalingState{Group: group}
	var (
		capErr error
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() { defer wg.Done(); _, capErr = readCapacity(ctx, api, &capacity) }()
	st, err := readInstanceMembership(ctx, api, id)
	wg.Wait()
	if err = joinErrs(err, capErr); err != nil {
		return st, err
	}
	if st.Group == "" || st.Group == group {
		st.DesiredCapacity, st.MinSize, st.MaxSize = capacity.DesiredCapacity, capacity.MinSize, capacity.MaxSize
	}
	return st, nil
}

// readInstanceMembership reads the instance's group, lifecycle state and
// protection.
func readInstanceMembership(ctx context.Context, api cloud.AutoScaling, id string) (autoScalingState, error) {
	out, err := api.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return autoScalingState{}, fmt.Errorf("describe Auto Scaling membership of %s: %w", id, err)
	}
	var st autoScalingState
	for _, d := range out.AutoScalingInstances {
		if aws.ToString(d.InstanceId) == id {
			st.Group, st.LifecycleState = aws.ToString(d.AutoScalingGroupName), aws.ToString(d.LifecycleState)
			st.ProtectedFromScaleIn = aws.ToBool(d.ProtectedFromScaleIn)
		}
	}
	return st, nil
}

// readCapacity fills the group's capacity; false when the group is gone.
func readCapacity(ctx context.Context, api cloud.AutoScaling, st *autoScalingState) (bool, error) {
	out, err := api.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{st.Group}})
	if err != nil {
		return false, fmt.Errorf("describe Auto Scaling group %s: %w", st.Group, err)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) == st.Group {
			st.DesiredCapacity, st.MinSize, st.MaxSize = g.DesiredCapacity, g.MinSize, g.MaxSize
			return true, nil
		}
	}
	return false, nil
}

func (s AutoScaling) Run(ctx context.Context, env *Env) Result {
	api, err := s.api(env)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	id := env.Target.InstanceID()
	before, err := readMembership(ctx, api, id)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	if before.Group == "" {
		return Skipped("the instance is in no Auto Scaling group: nothing to take out of service", before).Held(true)
	}
	before.Mode = s.mode()
	if s.outOfService(before) {
		return Skipped(fmt.Sprintf("already out of service of %s (%s, scale-in protection %t)", before.Group, before.LifecycleState, before.ProtectedFromScaleIn), before).Held(true)
	}
	if why := s.cannot(before); why != "" {
		return Failed(errors.New(why), before).Held(false)
	}
	what := s.would(before)
	if env.Target.DryRun {
		return Skipped("dry run: would "+what+" (Auto Scaling has no dry run: nothing was checked)", before).Unchecked()
	}
	errs := s.act(ctx, api, id, before)
	return s.readBack(ctx, api, id, before, errs, what)
}

// outOfService: the group can no longer terminate the instance for health
// or scale-in (the detach step never finds it so: a detached instance is in
// no group).
func (s AutoScaling) outOfService(st autoScalingState) bool {
	return !s.Detach && (st.LifecycleState == asStandby || st.LifecycleState == asEnteringStandby) && st.ProtectedFromScaleIn
}

// cannot says why Auto Scaling would refuse ("" when it would not).
func (s AutoScaling) cannot(st autoScalingState) string {
	switch {
	case s.Detach && st.LifecycleState != asInService && st.LifecycleState != asStandby:
		return fmt.Sprintf("the instance is %s in Auto Scaling group %s: only an InService or Standby instance can be detached; the group may still terminate it", st.LifecycleState, st.Group)
	case !s.Detach && st.LifecycleState != asInService && st.LifecycleState != asStandby && st.LifecycleState != asEnteringStandby:
		return fmt.Sprintf("the instance is %s in Auto Scaling group %s: only an InService instance can be put in standby; the group may still terminate it", st.LifecycleState, st.Group)
	}
	return ""
}

func (s AutoScaling) would(st autoScalingState) string {
	if s.Detach {
		return fmt.Sprintf("detach the instance from Auto Scaling group %s keeping its desired capacity %d (the group launches a replacement)", st.Group, aws.ToInt32(st.DesiredCapacity))
	}
	return fmt.Sprintf("protect the instance from scale-in and put it in standby in Auto Scaling group %s keeping its desired capacity %d (the group launches a replacement)", st.Group, aws.ToInt32(st.DesiredCapacity))
}

// act takes the instance out of service: scale-in protection first (while
// it is InService), then standby; or detach.
func (s AutoScaling) act(ctx context.Context, api cloud.AutoScaling, id string, st autoScalingState) error {
	var errs *multierror.Error
	if s.Detach {
		_, err := api.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String(st.Group),
			InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(false)})
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("detach %s from %s: %w", id, st.Group, err))
		}
		return errs.ErrorOrNil()
	}
	if !st.ProtectedFromScaleIn {
		if err := setScaleInProtection(ctx, api, st.Group, id, true); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if st.LifecycleState == asInService {
		_, err := api.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(st.Group),
			InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(false)})
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("put %s in standby in %s: %w", id, st.Group, err))
		}
	}
	return errs.ErrorOrNil()
}

func setScaleInProtection(ctx context.Context, api cloud.AutoScaling, group, id string, on bool) error {
	_, err := api.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(group),
		InstanceIds: []string{id}, ProtectedFromScaleIn: aws.Bool(on)})
	if err != nil {
		return fmt.Errorf("set scale-in protection of %s in %s to %t: %w", id, group, on, err)
	}
	return nil
}

// readBack reads the membership again: held when the instance is in standby
// (or entering it, while its load balancers drain it) with scale-in
// protection, or, detached, in no group (or detaching).
func (s AutoScaling) readBack(ctx context.Context, api cloud.AutoScaling, id string, before autoScalingState, errs error, what string) Result {
	after, err := readBackMembership(ctx, api, id, before.Group)
	if err != nil {
		return failWith(Result{Err: errs, Before: before}, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	after.Mode = before.Mode
	if after.Group == "" {
		after.Group, after.LifecycleState = before.Group, asDetached
	}
	after.Note = replacementNote(before, after)
	held := s.outOfService(after) || (s.Detach && (after.LifecycleState == asDetached || after.LifecycleState == asDetaching))
	if !held {
		r := failWith(Result{Err: errs, Before: before, After: after}, fmt.Errorf("read back: %s in %s, scale-in protection %t",
			after.LifecycleState, after.Group, after.ProtectedFromScaleIn))
		return r.Held(false)
	}
	if errs != nil {
		r := Failed(errs, before)
		r.After = after
		return r.Held(true)
	}
	return OK(what, before, after).Held(true)
}

func replacementNote(before, after autoScalingState) string {
	if aws.ToInt32(after.DesiredCapacity) >= aws.ToInt32(before.DesiredCapacity) {
		return fmt.Sprintf("desired capacity kept at %d: the group replaces the instance with a new one", aws.ToInt32(after.DesiredCapacity))
	}
	return fmt.Sprintf("desired capacity fell from %d to %d: the group does not replace the instance", aws.ToInt32(before.DesiredCapacity), aws.ToInt32(after.DesiredCapacity))
}

// Release returns the instance to the group it was in, as it was: out of
// standby (ExitStandby) or attached again (AttachInstances), then its
// scale-in protection as recorded. Either raises the group's desired
// capacity by one, and the replacement stays: the record says so. It
// refuses when the group is gone, or the instance is now in another group.
func (s AutoScaling) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before autoScalingState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	if before.Group == "" {
		return Skipped("the instance was in no Auto Scaling group before the response", before)
	}
	api, err := s.api(env)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	id := env.Target.InstanceID()
	now, refusal, err := s.reconcile(ctx, api, id, before)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	if refusal != "" {
		r := Failed(errors.New(refusal), before)
		r.After = now
		return r.Held(false)
	}
	if now.Group == before.Group && now.LifecycleState == before.LifecycleState && now.ProtectedFromScaleIn == before.ProtectedFromScaleIn {
		return Skipped(fmt.Sprintf("already %s in %s with scale-in protection %t", now.LifecycleState, now.Group, now.ProtectedFromScaleIn), before).Held(true)
	}
	if env.Target.DryRun {
		return Skipped(fmt.Sprintf("dry run: would return %s to %s (%s, scale-in protection %t)", id, before.Group, before.LifecycleState, before.ProtectedFromScaleIn), before)
	}
	errs := s.restore(ctx, api, id, before, now)
	return s.readBackRelease(ctx, api, id, before, errs)
}

// reconcile reads the group and the instance now, and says why the recorded
// membership cannot be restored ("" when it can).
func (s AutoScaling) reconcile(ctx context.Context, api cloud.AutoScaling, id string, before autoScalingState) (autoScalingState, string, error) {
	group := autoScalingState{Group: before.Group}
	exists, err := readCapacity(ctx, api, &group)
	if err != nil {
		return autoScalingState{}, "", err
	}
	if !exists {
		return autoScalingState{}, fmt.Sprintf("Auto Scaling group %s no longer exists: the instance cannot be returned to it", before.Group), nil
	}
	now, err := readMembership(ctx, api, id)
	if err != nil {
		return autoScalingState{}, "", err
	}
	switch {
	case now.Group != "" && now.Group != before.Group:
		return now, fmt.Sprintf("the instance is now in Auto Scaling group %s, not %s as recorded: detach it from %s first", now.Group, before.Group, now.Group), nil
	case now.Group == "" && !s.attachable(before):
		return now, fmt.Sprintf("the instance is no longer in Auto Scaling group %s (detached since the response?): attach it yourself if it should serve again", before.Group), nil
	case now.Group == "":
		if d, m := aws.ToInt32(group.DesiredCapacity), aws.ToInt32(group.MaxSize); d+1 > m {
			return group, fmt.Sprintf("attaching the instance to %s raises its desired capacity from %d to %d, above its maximum size %d: raise the maximum (or lower the desired capacity) first", before.Group, d, d+1, m), nil
		}
	case now.LifecycleState == asEnteringStandby:
		return now, fmt.Sprintf("the instance is still entering standby in %s (its load balancers drain it): release again once it is Standby", now.Group), nil
	case now.LifecycleState != asStandby && now.LifecycleState != asInService:
		return now, fmt.Sprintf("the instance is %s in %s: wait until it is Standby or InService", now.LifecycleState, now.Group), nil
	}
	return now, "", nil
}

// attachable: the recorded state came from a detach, so a release attaches.
func (s AutoScaling) attachable(before autoScalingState) bool { return before.Mode == "detach" }

func (s AutoScaling) restore(ctx context.Context, api cloud.AutoScaling, id string, before, now autoScalingState) error {
	var errs *multierror.Error
	switch {
	case now.Group == "":
		if _, err := api.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(before.Group), InstanceIds: []string{id}}); err != nil {
			return fmt.Errorf("attach %s to %s: %w", id, before.Group, err)
		}
	case now.LifecycleState == asStandby && before.LifecycleState == asInService:
		if _, err := api.ExitStandby(ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String(before.Group), InstanceIds: []string{id}}); err != nil {
			errs = multierror.Append(errs, fmt.Errorf("return %s from standby in %s: %w", id, before.Group, err))
		}
	}
	// An attached instance takes the group's protection for new instances;
	// set the recorded one whatever it is now.
	if now.Group == "" || now.ProtectedFromScaleIn != before.ProtectedFromScaleIn {
		if err := setScaleInProtection(ctx, api, before.Group, id, before.ProtectedFromScaleIn); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}

// inService: the lifecycle states of an instance on its way back in service.
var inService = []string{asInService, "Pending", "Pending:Wait", "Pending:Proceed"}

func (s AutoScaling) readBackRelease(ctx context.Context, api cloud.AutoScaling, id string, before autoScalingState, errs error) Result {
	after, err := readBackMembership(ctx, api, id, before.Group)
	if err != nil {
		return failWith(Result{Err: errs, Before: before}, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	after.Mode = before.Mode
	if after.Group != "" {
		after.Note = fmt.Sprintf("desired capacity now %d (%d before the response): the replacement stays; lower the desired capacity when ready, and Auto Scaling chooses which instance to terminate by its termination policy",
			aws.ToInt32(after.DesiredCapacity), aws.ToInt32(before.DesiredCapacity))
	}
	state := after.LifecycleState == before.LifecycleState || (before.LifecycleState == asInService && slices.Contains(inService, after.LifecycleState))
	if after.Group != before.Group || !state || after.ProtectedFromScaleIn != before.ProtectedFromScaleIn {
		r := failWith(Result{Err: errs, Before: before, After: after}, fmt.Errorf("read back: %q in %q with scale-in protection %t; recorded %s in %s with %t",
			after.LifecycleState, after.Group, after.ProtectedFromScaleIn, before.LifecycleState, before.Group, before.ProtectedFromScaleIn))
		return r.Held(false)
	}
	if errs != nil {
		r := Failed(errs, before)
		r.After = after
		return r.Held(true)
	}
	return OK(fmt.Sprintf("returned to %s (%s, scale-in protection %t)", before.Group, after.LifecycleState, after.ProtectedFromScaleIn), before, after).Held(true)
}

// order places the detach step's rows just after the standby step's.
func (s AutoScaling) order() int {
	if s.Detach {
		return 51
	}
	return 52
}

// Describe: the instance's Auto Scaling membership.
func (s AutoScaling) Describe() Description {
	return Description{
		Aspect: "Auto Scaling group membership",
		View:   viewAutoScaling,
		Order:  s.order(),
		OnFailure: "The instance is still in service in its Auto Scaling group: the group may terminate it " +
			"(termination protection does not stop Auto Scaling) when its health checks fail after the quarantine, " +
			"or on scale-in, and the evidence on instance-store and delete-on-termination volumes goes with it. " +
			"Put it in standby or detach it by hand.",
	}
}

func viewAutoScaling(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	if err := requireField(raw, "group"); err != nil {
		return nil, err
	}
	var v autoScalingState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if v.Group == "" {
		return []SubjectState{{Subject: instanceID, Text: "in no Auto Scaling group"}}, nil
	}
	text := fmt.Sprintf("%s, scale-in protection %t; group desired %d (min %d, max %d)", v.LifecycleState, v.ProtectedFromScaleIn,
		aws.ToInt32(v.DesiredCapacity), aws.ToInt32(v.MinSize), aws.ToInt32(v.MaxSize))
	if v.Note != "" {
		text += "; " + v.Note
	}
	return []SubjectState{{Subject: "Auto Scaling group " + v.Group, Text: text}}, nil
}
