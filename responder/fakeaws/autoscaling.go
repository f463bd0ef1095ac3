package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

// AutoScaling is the account's Amazon EC2 Auto Scaling service; it
// implements cloud.AutoScaling.
//
// A group keeps its desired capacity: an instance put in standby or detached
// without decrementing it is replaced at once by a new InService member (an
// ID only, not an EC2 instance of the fake), registered with the group's
// target groups and Classic Load Balancers, from which the instance that
// left service is deregistered. ExitStandby and AttachInstances raise the
// desired capacity by one, and fail when that passes the maximum.
type AutoScaling struct{ c *Cloud }

const serviceAutoScaling = "Auto Scaling"

// Auto Scaling lifecycle states the fake uses.
const (
	lifecycleInService = string(astypes.LifecycleStateInService)
	lifecycleStandby   = string(astypes.LifecycleStateStandby)
)

// asGroup is an Auto Scaling group.
type asGroup struct {
	Name            string
	Min, Max        int32
	Desired         int32
	NewProtected    bool // NewInstancesProtectedFromScaleIn
	TargetGroupARNs []string
	LoadBalancers   []string // Classic Load Balancer names
	Members         map[string]*asMember
	Seq             int
}

// asMember is one instance of a group.
type asMember struct {
	ID        string
	State     string // lifecycle state
	Protected bool
	Seq       int
}

// AutoScalingGroupSpec describes a group for AddAutoScalingGroup: its
// instances are InService and its desired capacity is their number.
type AutoScalingGroupSpec struct {
	Name      string
	Min, Max  int32
	Instances []string
	// Protected sets scale-in protection on the instances and on new ones.
	Protected       bool
	TargetGroupARNs []string
	LoadBalancers   []string
}

// AddAutoScalingGroup adds a group (it does not register its instances with
// its load balancers: do that with RegisterTarget or AddClassicLoadBalancer).
func (c *Cloud) AddAutoScalingGroup(spec AutoScalingGroupSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := &asGroup{Name: spec.Name, Min: spec.Min, Max: spec.Max, Desired: int32(len(spec.Instances)),
		NewProtected: spec.Protected, TargetGroupARNs: slices.Clone(spec.TargetGroupARNs),
		LoadBalancers: slices.Clone(spec.LoadBalancers), Members: map[string]*asMember{}, Seq: c.nextSeqLocked()}
	if g.Max < g.Desired {
		g.Max = g.Desired
	}
	for _, id := range spec.Instances {
		g.Members[id] = &asMember{ID: id, State: lifecycleInService, Protected: spec.Protected, Seq: c.nextSeqLocked()}
	}
	c.st.AutoScalingGroups[g.Name] = g
}

// DeleteAutoScalingGroup removes a group (its instances stay).
func (c *Cloud) DeleteAutoScalingGroup(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.st.AutoScalingGroups, name)
}

// AutoScalingGroupView is what AutoScalingGroup returns.
type AutoScalingGroupView struct {
	Desired, Min, Max int32
	// Members are the group's instances by ID: lifecycle state and scale-in
	// protection.
	Members map[string]AutoScalingMember
}

// AutoScalingMember is one instance of a group.
type AutoScalingMember struct {
	State     string
	Protected bool
}

// InService counts the members in service.
func (v AutoScalingGroupView) InService() int {
	n := 0
	for _, m := range v.Members {
		if m.State == lifecycleInService {
			n++
		}
	}
	return n
}

// AutoScalingGroup returns a group as it is now; nil when there is none.
func (c *Cloud) AutoScalingGroup(name string) *AutoScalingGroupView {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.st.AutoScalingGroups[name]
	if !ok {
		return nil
	}
	v := &AutoScalingGroupView{Desired: g.Desired, Min: g.Min, Max: g.Max, Members: map[string]AutoScalingMember{}}
	for id, m := range g.Members {
		v.Members[id] = AutoScalingMember{State: m.State, Protected: m.Protected}
	}
	return v
}

// SetAutoScalingState sets the lifecycle state of a group's instance (a test
// puts one in Pending or Terminating).
func (c *Cloud) SetAutoScalingState(group, id, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.AutoScalingGroups[group].Members[id].State = state
}

func asValidation(format string, args ...any) error {
	return apiError("ValidationError", format, args...)
}

// groupOfLocked returns the group an instance is a member of.
func (c *Cloud) groupOfLocked(id string) (*asGroup, *asMember) {
	for _, g := range c.st.AutoScalingGroups {
		if m, ok := g.Members[id]; ok {
			return g, m
		}
	}
	return nil, nil
}

func (c *Cloud) asGroupLocked(name string) (*asGroup, error) {
	g, ok := c.st.AutoScalingGroups[name]
	if !ok {
		return nil, asValidation("AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	return g, nil
}

// membersLocked returns the group's members of ids, or the error AWS
// answers for an instance that is not one.
func membersLocked(g *asGroup, ids []string) ([]*asMember, error) {
	if len(ids) == 0 || len(ids) > 20 {
		return nil, asValidation("between 1 and 20 instance IDs are required")
	}
	var out []*asMember
	for _, id := range ids {
		m, ok := g.Members[id]
		if !ok {
			return nil, asValidation("The instance %s is not part of Auto Scaling group %s.", id, g.Name)
		}
		out = append(out, m)
	}
	return out, nil
}

// replaceLocked launches n new InService members, as a group does to keep
// its desired capacity.
func (c *Cloud) replaceLocked(g *asGroup, n int) {
	for range n {
		id := c.hexIDLocked("i")
		g.Members[id] = &asMember{ID: id, State: lifecycleInService, Protected: g.NewProtected, Seq: c.nextSeqLocked()}
		c.registerWithGroupLBsLocked(g, id)
	}
}

func (c *Cloud) registerWithGroupLBsLocked(g *asGroup, id string) {
	for _, arn := range g.TargetGroupARNs {
		if tg, ok := c.st.TargetGroups[arn]; ok {
			tg.register(elbTarget{ID: id, Port: tg.Port})
		}
	}
	for _, name := range g.LoadBalancers {
		if lb, ok := c.st.ClassicLoadBalancers[name]; ok && !slices.Contains(lb.Instances, id) {
			lb.Instances = append(lb.Instances, id)
		}
	}
}

func (c *Cloud) deregisterFromGroupLBsLocked(g *asGroup, id string) {
	for _, arn := range g.TargetGroupARNs {
		if tg, ok := c.st.TargetGroups[arn]; ok {
			tg.deregister(id, nil)
		}
	}
	for _, name := range g.LoadBalancers {
		if lb, ok := c.st.ClassicLoadBalancers[name]; ok {
			lb.Instances = slices.DeleteFunc(lb.Instances, func(s string) bool { return s == id })
		}
	}
}

func (c *Cloud) renderASInstanceLocked(g *asGroup, m *asMember) astypes.AutoScalingInstanceDetails {
	return astypes.AutoScalingInstanceDetails{
		AutoScalingGroupName: aws.String(g.Name), InstanceId: aws.String(m.ID),
		LifecycleState: aws.String(m.State), ProtectedFromScaleIn: aws.Bool(m.Protected),
		HealthStatus: aws.String("HEALTHY"), AvailabilityZone: aws.String(c.Region + "a"),
	}
}

// pageOf returns items[start:start+size] of a list and the token of the
// next page ("" on the last).
func pageOf[T any](items []T, token *string, size int32, def int32) ([]T, *string, error) {
	start := 0
	if t := aws.ToString(token); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(items) {
			return nil, nil, apiError("InvalidNextToken", "The token %q is invalid.", t)
		}
		start = n
	}
	if size <= 0 {
		size = def
	}
	end := min(start+int(size), len(items))
	var next *string
	if end < len(items) {
		next = aws.String(strconv.Itoa(end))
	}
	return items[start:end], next, nil
}

// DescribeAutoScalingInstances lists the group membership of instances (all
// when none is named), 50 a page by default.
func (a *AutoScaling) DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	c := a.c
	out := &autoscaling.DescribeAutoScalingInstancesOutput{}
	err := c.call(ctx, serviceAutoScaling, "DescribeAutoScalingInstances", false, &out.ResultMetadata, func() (func(), error) {
		if m := aws.ToInt32(in.MaxRecords); m > 50 {
			return nil, asValidation("MaxRecords %d: at most 50", m)
		}
		var all []astypes.AutoScalingInstanceDetails
		type entry struct {
			g *asGroup
			m *asMember
		}
		var found []entry
		for _, g := range c.st.AutoScalingGroups {
			for _, m := range g.Members {
				if len(in.InstanceIds) == 0 || slices.Contains(in.InstanceIds, m.ID) {
					found = append(found, entry{g, m})
				}
			}
		}
		sort.Slice(found, func(i, j int) bool { return found[i].m.Seq < found[j].m.Seq })
		for _, e := range found {
			all = append(all, c.renderASInstanceLocked(e.g, e.m))
		}
		page, next, err := pageOf(all, in.NextToken, aws.ToInt32(in.MaxRecords), 50)
		if err != nil {
			return nil, err
		}
		return func() { out.AutoScalingInstances, out.NextToken = page, next }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeAutoScalingGroups describes groups (all when none is named; a
// name that matches none is left out), 50 a page by default.
func (a *AutoScaling) DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	c := a.c
	out := &autoscaling.DescribeAutoScalingGroupsOutput{}
	err := c.call(ctx, serviceAutoScaling, "DescribeAutoScalingGroups", false, &out.ResultMetadata, func() (func(), error) {
		if m := aws.ToInt32(in.MaxRecords); m > 100 {
			return nil, asValidation("MaxRecords %d: at most 100", m)
		}
		var groups []*asGroup
		for _, g := range c.st.AutoScalingGroups {
			if len(in.AutoScalingGroupNames) == 0 || slices.Contains(in.AutoScalingGroupNames, g.Name) {
				groups = append(groups, g)
			}
		}
		sort.Slice(groups, func(i, j int) bool { return groups[i].Seq < groups[j].Seq })
		var all []astypes.AutoScalingGroup
		for _, g := range groups {
			all = append(all, c.renderASGroupLocked(g))
		}
		page, next, err := pageOf(all, in.NextToken, aws.ToInt32(in.MaxRecords), 50)
		if err != nil {
			return nil, err
		}
		return func() { out.AutoScalingGroups, out.NextToken = page, next }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) renderASGroupLocked(g *asGroup) astypes.AutoScalingGroup {
	out := astypes.AutoScalingGroup{
		AutoScalingGroupName: aws.String(g.Name),
		AutoScalingGroupARN: aws.String(fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:%s:autoScalingGroupName/%s",
			c.Region, c.Account, stableUUID("asg", g.Name), g.Name)),
		MinSize: aws.Int32(g.Min), MaxSize: aws.Int32(g.Max), DesiredCapacity: aws.Int32(g.Desired),
		NewInstancesProtectedFromScaleIn: aws.Bool(g.NewProtected),
		TargetGroupARNs:                  slices.Clone(g.TargetGroupARNs), LoadBalancerNames: slices.Clone(g.LoadBalancers),
		AvailabilityZones: []string{c.Region + "a"}, HealthCheckType: aws.String("EC2"),
	}
	members := slices.Collect(func(yield func(*asMember) bool) {
		for _, m := range g.Members {
			if !yield(m) {
				return
			}
		}
	})
	sort.Slice(members, func(i, j int) bool { return members[i].Seq < members[j].Seq })
	for _, m := range members {
		out.Instances = append(out.Instances, astypes.Instance{
			InstanceId: aws.String(m.ID), LifecycleState: astypes.LifecycleState(m.State),
			ProtectedFromScaleIn: aws.Bool(m.Protected), HealthStatus: aws.String("HEALTHY"),
			AvailabilityZone: aws.String(c.Region + "a"),
		})
	}
	return out
}

// EnterStandby puts InService instances in standby; they are deregistered
// from the group's load balancers, and replaced unless the desired capacity
// is decremented (which may not go below the minimum).
func (a *AutoScaling) EnterStandby(ctx context.Context, in *autoscaling.EnterStandbyInput, _ ...func(*autoscaling.Options)) (*autoscaling.EnterStandbyOutput, error) {
	c := a.c
	out := &autoscaling.EnterStandbyOutput{}
	err := c.call(ctx, serviceAutoScaling, "EnterStandby", false, &out.ResultMetadata, func() (func(), error) {
		g, err := c.asGroupLocked(aws.ToString(in.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		ms, err := membersLocked(g, in.InstanceIds)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.State != lifecycleInService {
				return nil, asValidation("The instance %s is not in InService.", m.ID)
			}
		}
		decrement := aws.ToBool(in.ShouldDecrementDesiredCapacity)
		if decrement && g.Desired-int32(len(ms)) < g.Min {
			return nil, asValidation("Cannot decrement desired capacity of %s below its minimum size %d", g.Name, g.Min)
		}
		return func() {
			for _, m := range ms {
				m.State = lifecycleStandby
				c.deregisterFromGroupLBsLocked(g, m.ID)
			}
			if decrement {
				g.Desired -= int32(len(ms))
			} else {
				c.replaceLocked(g, len(ms))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ExitStandby returns standby instances to service and raises the desired
// capacity by their number.
func (a *AutoScaling) ExitStandby(ctx context.Context, in *autoscaling.ExitStandbyInput, _ ...func(*autoscaling.Options)) (*autoscaling.ExitStandbyOutput, error) {
	c := a.c
	out := &autoscaling.ExitStandbyOutput{}
	err := c.call(ctx, serviceAutoScaling, "ExitStandby", false, &out.ResultMetadata, func() (func(), error) {
		g, err := c.asGroupLocked(aws.ToString(in.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		ms, err := membersLocked(g, in.InstanceIds)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.State != lifecycleStandby {
				return nil, asValidation("The instance %s is not in Standby.", m.ID)
			}
		}
		if g.Desired+int32(len(ms)) > g.Max {
			return nil, asValidation("Desired capacity:%d must be between the specified min size:%d and max size:%d", g.Desired+int32(len(ms)), g.Min, g.Max)
		}
		return func() {
			for _, m := range ms {
				m.State = lifecycleInService
				c.registerWithGroupLBsLocked(g, m.ID)
			}
			g.Desired += int32(len(ms))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DetachInstances removes InService or Standby instances from a group; they
// are deregistered from its load balancers and replaced unless the desired
// capacity is decremented.
func (a *AutoScaling) DetachInstances(ctx context.Context, in *autoscaling.DetachInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error) {
	c := a.c
	out := &autoscaling.DetachInstancesOutput{}
	err := c.call(ctx, serviceAutoScaling, "DetachInstances", false, &out.ResultMetadata, func() (func(), error) {
		g, err := c.asGroupLocked(aws.ToString(in.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		ms, err := membersLocked(g, in.InstanceIds)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.State != lifecycleInService && m.State != lifecycleStandby {
				return nil, asValidation("The instance %s is not in InService or Standby.", m.ID)
			}
		}
		decrement := aws.ToBool(in.ShouldDecrementDesiredCapacity)
		if decrement && g.Desired-int32(len(ms)) < g.Min {
			return nil, asValidation("Cannot decrement desired capacity of %s below its minimum size %d", g.Name, g.Min)
		}
		return func() {
			inService := 0
			for _, m := range ms {
				if m.State == lifecycleInService {
					inService++
				}
				delete(g.Members, m.ID)
				c.deregisterFromGroupLBsLocked(g, m.ID)
			}
			if decrement {
				g.Desired -= int32(len(ms))
			} else {
				c.replaceLocked(g, inService)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AttachInstances adds running instances that are in no group; the desired
// capacity rises by their number and may not pass the maximum.
func (a *AutoScaling) AttachInstances(ctx context.Context, in *autoscaling.AttachInstancesInput, _ ...func(*autoscaling.Options)) (*autoscaling.AttachInstancesOutput, error) {
	c := a.c
	out := &autoscaling.AttachInstancesOutput{}
	err := c.call(ctx, serviceAutoScaling, "AttachInstances", false, &out.ResultMetadata, func() (func(), error) {
		g, err := c.asGroupLocked(aws.ToString(in.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		for _, id := range in.InstanceIds {
			inst, ok := c.st.Instances[id]
			if !ok || inst.State != "running" {
				return nil, asValidation("Instance %s is not in correct state", id)
			}
			if other, _ := c.groupOfLocked(id); other != nil {
				return nil, asValidation("The instance %s is already part of Auto Scaling group %s", id, other.Name)
			}
		}
		if g.Desired+int32(len(in.InstanceIds)) > g.Max {
			return nil, asValidation("Cannot attach %d instance(s) to %s: desired capacity %d would exceed the max size %d",
				len(in.InstanceIds), g.Name, g.Desired+int32(len(in.InstanceIds)), g.Max)
		}
		return func() {
			for _, id := range in.InstanceIds {
				g.Members[id] = &asMember{ID: id, State: lifecycleInService, Protected: g.NewProtected, Seq: c.nextSeqLocked()}
				c.registerWithGroupLBsLocked(g, id)
			}
			g.Desired += int32(len(in.InstanceIds))
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetInstanceProtection sets scale-in protection on members of a group.
func (a *AutoScaling) SetInstanceProtection(ctx context.Context, in *autoscaling.SetInstanceProtectionInput, _ ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error) {
	c := a.c
	out := &autoscaling.SetInstanceProtectionOutput{}
	err := c.call(ctx, serviceAutoScaling, "SetInstanceProtection", false, &out.ResultMetadata, func() (func(), error) {
		g, err := c.asGroupLocked(aws.ToString(in.AutoScalingGroupName))
		if err != nil {
			return nil, err
		}
		if in.ProtectedFromScaleIn == nil {
			return nil, asValidation("ProtectedFromScaleIn is required")
		}
		ms, err := membersLocked(g, in.InstanceIds)
		if err != nil {
			return nil, err
		}
		return func() {
			for _, m := range ms {
				m.Protected = *in.ProtectedFromScaleIn
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
