package fakeaws

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// ELBv2 is the account's Elastic Load Balancing v2 service (target groups of
// Application, Network and Gateway Load Balancers); it implements
// cloud.ELBv2. A registered target is healthy; a deregistered one is gone at
// once (the fake does not drain).
type ELBv2 struct{ c *Cloud }

// ELB is the account's Classic Load Balancer service; it implements
// cloud.ELB.
type ELB struct{ c *Cloud }

const (
	serviceELBv2 = "Elastic Load Balancing v2"
	serviceELB   = "Elastic Load Balancing"
)

// targetGroup is an ELBv2 target group.
type targetGroup struct {
	ARN     string
	Name    string
	Type    string // instance, ip, lambda or alb
	VpcID   string
	Port    int32
	Targets []elbTarget
	Seq     int
}

// elbTarget is a registered target.
type elbTarget struct {
	ID   string
	Port int32
	AZ   string `json:",omitempty"`
}

func (tg *targetGroup) register(t elbTarget) {
	for _, have := range tg.Targets {
		if have.ID == t.ID && have.Port == t.Port {
			return
		}
	}
	tg.Targets = append(tg.Targets, t)
}

// deregister removes a target: on every port when port is nil.
func (tg *targetGroup) deregister(id string, port *int32) {
	tg.Targets = slices.DeleteFunc(tg.Targets, func(t elbTarget) bool {
		return t.ID == id && (port == nil || *port == t.Port)
	})
}

// classicLB is a Classic Load Balancer.
type classicLB struct {
	Name      string
	Instances []string
	Seq       int
}

// TargetGroupSpec describes a target group for AddTargetGroup.
type TargetGroupSpec struct {
	Name  string
	Type  string // "instance" (default) or "ip"
	VpcID string
	Port  int32 // default 80
}

// AddTargetGroup adds a target group and returns its ARN.
func (c *Cloud) AddTargetGroup(spec TargetGroupSpec) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	tg := &targetGroup{Name: spec.Name, Type: spec.Type, VpcID: spec.VpcID, Port: spec.Port, Seq: c.nextSeqLocked()}
	if tg.Type == "" {
		tg.Type = "instance"
	}
	if tg.Port == 0 {
		tg.Port = 80
	}
	tg.ARN = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/%016x", c.Region, c.Account, spec.Name, c.rng.Uint64())
	c.st.TargetGroups[tg.ARN] = tg
	return tg.ARN
}

// RegisterTarget registers a target (an instance ID or an IP) on a port
// (0: the group's) in a zone ("" for none given).
func (c *Cloud) RegisterTarget(arn, id string, port int32, az string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tg := c.st.TargetGroups[arn]
	if port == 0 {
		port = tg.Port
	}
	tg.register(elbTarget{ID: id, Port: port, AZ: az})
}

// TargetView is a registered target as Targets shows it.
type TargetView struct {
	ID   string
	Port int32
	AZ   string
}

// Targets returns the targets registered in a target group, sorted; nil
// when the group does not exist.
func (c *Cloud) Targets(arn string) []TargetView {
	c.mu.Lock()
	defer c.mu.Unlock()
	tg, ok := c.st.TargetGroups[arn]
	if !ok {
		return nil
	}
	out := []TargetView{}
	for _, t := range tg.Targets {
		out = append(out, TargetView(t))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Port < out[j].Port
	})
	return out
}

// DeleteTargetGroup removes a target group.
func (c *Cloud) DeleteTargetGroup(arn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.st.TargetGroups, arn)
}

// AddClassicLoadBalancer adds a Classic Load Balancer serving instances.
func (c *Cloud) AddClassicLoadBalancer(name string, instances ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.ClassicLoadBalancers[name] = &classicLB{Name: name, Instances: slices.Clone(instances), Seq: c.nextSeqLocked()}
}

// ClassicInstances returns the instances a Classic Load Balancer serves,
// sorted; nil when it does not exist.
func (c *Cloud) ClassicInstances(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lb, ok := c.st.ClassicLoadBalancers[name]
	if !ok {
		return nil
	}
	out := append([]string{}, lb.Instances...)
	sort.Strings(out)
	return out
}

// DeleteClassicLoadBalancer removes a Classic Load Balancer.
func (c *Cloud) DeleteClassicLoadBalancer(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.st.ClassicLoadBalancers, name)
}

func tgNotFound(arn string) error {
	return apiError("TargetGroupNotFound", "Target groups '%s' not found", arn)
}

func (c *Cloud) targetGroupLocked(arn *string) (*targetGroup, error) {
	tg, ok := c.st.TargetGroups[aws.ToString(arn)]
	if !ok {
		return nil, tgNotFound(aws.ToString(arn))
	}
	return tg, nil
}

func (c *Cloud) renderTargetGroup(tg *targetGroup) elbv2types.TargetGroup {
	return elbv2types.TargetGroup{
		TargetGroupArn: aws.String(tg.ARN), TargetGroupName: aws.String(tg.Name),
		TargetType: elbv2types.TargetTypeEnum(tg.Type), VpcId: aws.String(tg.VpcID), Port: aws.Int32(tg.Port),
		Protocol: elbv2types.ProtocolEnumHttp,
	}
}

// DescribeTargetGroups describes target groups (by ARN or name, or all),
// 400 a page at most.
func (e *ELBv2) DescribeTargetGroups(ctx context.Context, in *elbv2.DescribeTargetGroupsInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error) {
	c := e.c
	out := &elbv2.DescribeTargetGroupsOutput{}
	err := c.call(ctx, serviceELBv2, "DescribeTargetGroups", false, &out.ResultMetadata, func() (func(), error) {
		if n := aws.ToInt32(in.PageSize); n < 0 || n > 400 {
			return nil, apiError("ValidationError", "PageSize %d: between 1 and 400", n)
		}
		var groups []*targetGroup
		for _, arn := range in.TargetGroupArns {
			tg, err := c.targetGroupLocked(aws.String(arn))
			if err != nil {
				return nil, err
			}
			groups = append(groups, tg)
		}
		for _, name := range in.Names {
			var found *targetGroup
			for _, tg := range c.st.TargetGroups {
				if tg.Name == name {
					found = tg
				}
			}
			if found == nil {
				return nil, tgNotFound(name)
			}
			groups = append(groups, found)
		}
		if len(in.TargetGroupArns) == 0 && len(in.Names) == 0 {
			for _, tg := range c.st.TargetGroups {
				groups = append(groups, tg)
			}
		}
		sort.Slice(groups, func(i, j int) bool { return groups[i].Seq < groups[j].Seq })
		var all []elbv2types.TargetGroup
		for _, tg := range groups {
			all = append(all, c.renderTargetGroup(tg))
		}
		page, next, err := pageOf(all, in.Marker, aws.ToInt32(in.PageSize), 400)
		if err != nil {
			return nil, err
		}
		return func() { out.TargetGroups, out.NextMarker = page, next }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DescribeTargetHealth lists the registered targets of a group, or the
// health of the named ones: a named target that is not registered is
// "unused", reason Target.NotRegistered.
func (e *ELBv2) DescribeTargetHealth(ctx context.Context, in *elbv2.DescribeTargetHealthInput, _ ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error) {
	c := e.c
	out := &elbv2.DescribeTargetHealthOutput{}
	err := c.call(ctx, serviceELBv2, "DescribeTargetHealth", false, &out.ResultMetadata, func() (func(), error) {
		tg, err := c.targetGroupLocked(in.TargetGroupArn)
		if err != nil {
			return nil, err
		}
		healthy := func(t elbTarget) elbv2types.TargetHealthDescription {
			d := elbv2types.TargetHealthDescription{
				Target:       &elbv2types.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)},
				TargetHealth: &elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumHealthy},
			}
			if t.AZ != "" {
				d.Target.AvailabilityZone = aws.String(t.AZ)
			}
			return d
		}
		var descs []elbv2types.TargetHealthDescription
		if len(in.Targets) == 0 {
			for _, t := range tg.Targets {
				descs = append(descs, healthy(t))
			}
		}
		for _, want := range in.Targets {
			found := false
			for _, t := range tg.Targets {
				if t.ID == aws.ToString(want.Id) && (want.Port == nil || *want.Port == t.Port) {
					descs, found = append(descs, healthy(t)), true
				}
			}
			if !found {
				descs = append(descs, elbv2types.TargetHealthDescription{
					Target: &elbv2types.TargetDescription{Id: want.Id, Port: want.Port, AvailabilityZone: want.AvailabilityZone},
					TargetHealth: &elbv2types.TargetHealth{State: elbv2types.TargetHealthStateEnumUnused,
						Reason: elbv2types.TargetHealthReasonEnumNotRegistered, Description: aws.String("Target is not registered to the target group")},
				})
			}
		}
		return func() { out.TargetHealthDescriptions = descs }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkTargetsLocked checks targets against the group's type.
func (c *Cloud) checkTargetsLocked(tg *targetGroup, targets []elbv2types.TargetDescription) error {
	if len(targets) == 0 {
		return apiError("ValidationError", "Targets is required")
	}
	for _, t := range targets {
		id := aws.ToString(t.Id)
		if tg.Type == "instance" {
			if inst, ok := c.st.Instances[id]; !ok || inst.State != "running" {
				return apiError("InvalidTarget", "The following targets are not in a running state and cannot be registered: '%s'", id)
			}
		}
	}
	return nil
}

// RegisterTargets registers targets (on the group's port unless given).
func (e *ELBv2) RegisterTargets(ctx context.Context, in *elbv2.RegisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.RegisterTargetsOutput, error) {
	c := e.c
	out := &elbv2.RegisterTargetsOutput{}
	err := c.call(ctx, serviceELBv2, "RegisterTargets", false, &out.ResultMetadata, func() (func(), error) {
		tg, err := c.targetGroupLocked(in.TargetGroupArn)
		if err != nil {
			return nil, err
		}
		if err := c.checkTargetsLocked(tg, in.Targets); err != nil {
			return nil, err
		}
		return func() {
			for _, t := range in.Targets {
				port := tg.Port
				if t.Port != nil {
					port = *t.Port
				}
				tg.register(elbTarget{ID: aws.ToString(t.Id), Port: port, AZ: aws.ToString(t.AvailabilityZone)})
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeregisterTargets deregisters targets (on the group's port unless given);
// as in AWS, a target that is not registered is no error.
func (e *ELBv2) DeregisterTargets(ctx context.Context, in *elbv2.DeregisterTargetsInput, _ ...func(*elbv2.Options)) (*elbv2.DeregisterTargetsOutput, error) {
	c := e.c
	out := &elbv2.DeregisterTargetsOutput{}
	err := c.call(ctx, serviceELBv2, "DeregisterTargets", false, &out.ResultMetadata, func() (func(), error) {
		tg, err := c.targetGroupLocked(in.TargetGroupArn)
		if err != nil {
			return nil, err
		}
		if len(in.Targets) == 0 {
			return nil, apiError("ValidationError", "Targets is required")
		}
		return func() {
			for _, t := range in.Targets {
				port := tg.Port
				if t.Port != nil {
					port = *t.Port
				}
				tg.deregister(aws.ToString(t.Id), &port)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func lbNotFound(name string) error {
	return apiError("LoadBalancerNotFound", "There is no ACTIVE Load Balancer named '%s'", name)
}

// DescribeLoadBalancers describes Classic Load Balancers (by name, or all),
// 400 a page at most.
func (e *ELB) DescribeLoadBalancers(ctx context.Context, in *elb.DescribeLoadBalancersInput, _ ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error) {
	c := e.c
	out := &elb.DescribeLoadBalancersOutput{}
	err := c.call(ctx, serviceELB, "DescribeLoadBalancers", false, &out.ResultMetadata, func() (func(), error) {
		if n := aws.ToInt32(in.PageSize); n < 0 || n > 400 {
			return nil, apiError("ValidationError", "PageSize %d: between 1 and 400", n)
		}
		var lbs []*classicLB
		for _, name := range in.LoadBalancerNames {
			lb, ok := c.st.ClassicLoadBalancers[name]
			if !ok {
				return nil, lbNotFound(name)
			}
			lbs = append(lbs, lb)
		}
		if len(in.LoadBalancerNames) == 0 {
			for _, lb := range c.st.ClassicLoadBalancers {
				lbs = append(lbs, lb)
			}
		}
		sort.Slice(lbs, func(i, j int) bool { return lbs[i].Seq < lbs[j].Seq })
		var all []elbtypes.LoadBalancerDescription
		for _, lb := range lbs {
			d := elbtypes.LoadBalancerDescription{LoadBalancerName: aws.String(lb.Name)}
			for _, id := range lb.Instances {
				d.Instances = append(d.Instances, elbtypes.Instance{InstanceId: aws.String(id)})
			}
			all = append(all, d)
		}
		page, next, err := pageOf(all, in.Marker, aws.ToInt32(in.PageSize), 400)
		if err != nil {
			return nil, err
		}
		return func() { out.LoadBalancerDescriptions, out.NextMarker = page, next }, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Cloud) classicLocked(name *string) (*classicLB, error) {
	lb, ok := c.st.ClassicLoadBalancers[aws.ToString(name)]
	if !ok {
		return nil, lbNotFound(aws.ToString(name))
	}
	return lb, nil
}

func renderClassicInstances(lb *classicLB) []elbtypes.Instance {
	out := []elbtypes.Instance{}
	for _, id := range lb.Instances {
		out = append(out, elbtypes.Instance{InstanceId: aws.String(id)})
	}
	return out
}

// RegisterInstancesWithLoadBalancer adds running instances to a Classic Load
// Balancer.
func (e *ELB) RegisterInstancesWithLoadBalancer(ctx context.Context, in *elb.RegisterInstancesWithLoadBalancerInput, _ ...func(*elb.Options)) (*elb.RegisterInstancesWithLoadBalancerOutput, error) {
	c := e.c
	out := &elb.RegisterInstancesWithLoadBalancerOutput{}
	err := c.call(ctx, serviceELB, "RegisterInstancesWithLoadBalancer", false, &out.ResultMetadata, func() (func(), error) {
		lb, err := c.classicLocked(in.LoadBalancerName)
		if err != nil {
			return nil, err
		}
		for _, i := range in.Instances {
			if inst, ok := c.st.Instances[aws.ToString(i.InstanceId)]; !ok || inst.State != "running" {
				return nil, apiError("InvalidInstance", "The instance %s is not in a valid state", aws.ToString(i.InstanceId))
			}
		}
		return func() {
			for _, i := range in.Instances {
				if id := aws.ToString(i.InstanceId); !slices.Contains(lb.Instances, id) {
					lb.Instances = append(lb.Instances, id)
				}
			}
			out.Instances = renderClassicInstances(lb)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeregisterInstancesFromLoadBalancer removes instances from a Classic Load
// Balancer.
func (e *ELB) DeregisterInstancesFromLoadBalancer(ctx context.Context, in *elb.DeregisterInstancesFromLoadBalancerInput, _ ...func(*elb.Options)) (*elb.DeregisterInstancesFromLoadBalancerOutput, error) {
	c := e.c
	out := &elb.DeregisterInstancesFromLoadBalancerOutput{}
	err := c.call(ctx, serviceELB, "DeregisterInstancesFromLoadBalancer", false, &out.ResultMetadata, func() (func(), error) {
		lb, err := c.classicLocked(in.LoadBalancerName)
		if err != nil {
			return nil, err
		}
		return func() {
			for _, i := range in.Instances {
				id := aws.ToString(i.InstanceId)
				lb.Instances = slices.DeleteFunc(lb.Instances, func(s string) bool { return s == id })
			}
			out.Instances = renderClassicInstances(lb)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
