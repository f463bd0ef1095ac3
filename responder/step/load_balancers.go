package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
)

// LoadBalancers deregisters the instance from every target group
// (Application, Network and Gateway Load Balancers) that sends it traffic,
// by instance ID or, in an ip target group of its VPC, by one of its private
// IPs, and from every Classic Load Balancer that serves it, so that no load
// balancer sends it new requests. ELBv2 has no lookup by target: the step
// pages through the Region's target groups and reads each one's targets.
// Requests in flight drain for up to the deregistration delay (connection
// draining on a Classic Load Balancer): this change does not cut them, and
// the record says so. The step needs nothing and runs beside the
// quarantine.
type LoadBalancers struct{}

func (LoadBalancers) Name() string    { return "load-balancers" }
func (LoadBalancers) Phase() Phase    { return Contain }
func (LoadBalancers) Needs() []string { return nil }
func (LoadBalancers) Isolates() bool  { return true }

// lbState is where load balancers send the instance traffic.
type lbState struct {
	Targets              []lbTarget `json:"targets"`
	ClassicLoadBalancers []string   `json:"classic_load_balancers"`
	// NotCut says what deregistration does not stop.
	NotCut string `json:"not_cut,omitempty"`
}

// lbTarget is the instance (or one of its IPs) registered in a target group.
type lbTarget struct {
	TargetGroupARN   string `json:"target_group_arn"`
	TargetType       string `json:"target_type"`
	ID               string `json:"id"`
	Port             *int32 `json:"port,omitempty"`
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// State is the target's health state when read ("unused": not
	// registered; "draining": being deregistered).
	State string `json:"state,omitempty"`
}

// lbNotCut is what deregistration leaves going.
const lbNotCut = "requests and connections already going through a load balancer drain for up to the target group's " +
	"deregistration delay (300 s by default; a Classic Load Balancer's connection draining timeout): not cut by this change"

// describeConcurrency bounds the DescribeTargetHealth calls in flight.
const describeConcurrency = 8

// targetGone is the State of a target whose target group no longer exists.
const targetGone = "gone"

// serving: the target still gets new traffic.
func (t lbTarget) serving() bool {
	return t.State != string(elbv2types.TargetHealthStateEnumUnused) && t.State != string(elbv2types.TargetHealthStateEnumDraining) &&
		t.State != targetGone
}

func (t lbTarget) description() elbv2types.TargetDescription {
	d := elbv2types.TargetDescription{Id: aws.String(t.ID), Port: t.Port}
	if t.AvailabilityZone != "" {
		d.AvailabilityZone = aws.String(t.AvailabilityZone)
	}
	return d
}

func (LoadBalancers) clients(env *Env) (cloud.ELBv2, cloud.ELB, error) {
	if env.Clients.ELBv2 == nil || env.Clients.ELB == nil {
		return nil, nil, errors.New("no Elastic Load Balancing client: the load balancers serving the instance cannot be read")
	}
	return env.Clients.ELBv2, env.Clients.ELB, nil
}

func (s LoadBalancers) Run(ctx context.Context, env *Env) Result {
	v2, classic, err := s.clients(env)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	before, err := s.find(ctx, v2, classic, env.Target.Instance)
	if err != nil {
		return Failed(err, nil).Unchecked()
	}
	serving := servingTargets(before.Targets)
	if len(serving) == 0 && len(before.ClassicLoadBalancers) == 0 {
		reason := "no target group or Classic Load Balancer sends the instance traffic"
		if len(before.Targets) > 0 {
			reason = "every target group already drains or no longer lists the instance"
		}
		return Skipped(reason, before).Held(true)
	}
	before.NotCut = lbNotCut
	what := "deregister " + describeTargets(serving, before.ClassicLoadBalancers)
	if env.Target.DryRun {
		return Skipped("dry run: would "+what+" (Elastic Load Balancing has no dry run: nothing was checked)", before).Unchecked()
	}
	errs := s.deregister(ctx, v2, classic, env.Target.InstanceID(), serving, before.ClassicLoadBalancers)
	return s.readBack(ctx, v2, classic, env.Target.InstanceID(), before, errs, what, false)
}

func servingTargets(ts []lbTarget) []lbTarget {
	var out []lbTarget
	for _, t := range ts {
		if t.serving() {
			out = append(out, t)
		}
	}
	return out
}

func describeTargets(ts []lbTarget, classic []string) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s port %d from %s", t.ID, aws.ToInt32(t.Port), t.TargetGroupARN))
	}
	for _, n := range classic {
		parts = append(parts, "from Classic Load Balancer "+n)
	}
	return strings.Join(parts, "; ")
}

// instanceIPs lists the private IPv4 and IPv6 addresses of the instance.
func instanceIPs(inst types.Instance) []string {
	var ips []string
	for _, n := range inst.NetworkInterfaces {
		for _, a := range n.PrivateIpAddresses {
			ips = append(ips, aws.ToString(a.PrivateIpAddress))
		}
		if len(n.PrivateIpAddresses) == 0 && n.PrivateIpAddress != nil {
			ips = append(ips, *n.PrivateIpAddress)
		}
		for _, a := range n.Ipv6Addresses {
			ips = append(ips, aws.ToString(a.Ipv6Address))
		}
	}
	return ips
}

// find reads every target group and Classic Load Balancer that lists the
// instance.
func (s LoadBalancers) find(ctx context.Context, v2 cloud.ELBv2, classic cloud.ELB, inst types.Instance) (lbState, error) {
	st := lbState{Targets: []lbTarget{}, ClassicLoadBalancers: []string{}}
	var (
		wg         sync.WaitGroup
		terr, cerr error
	)
	wg.Add(2)
	go func() { defer wg.Done(); st.Targets, terr = s.findTargets(ctx, v2, inst) }()
	go func() {
		defer wg.Done()
		st.ClassicLoadBalancers, cerr = s.findClassic(ctx, classic, aws.ToString(inst.InstanceId))
	}()
	wg.Wait()
	var errs *multierror.Error
	for _, err := range []error{terr, cerr} {
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return st, errs.ErrorOrNil()
}

// findTargets pages through the target groups and reads the targets of
// those that can hold the instance: instance groups, and ip groups of its
// VPCs.
func (LoadBalancers) findTargets(ctx context.Context, v2 cloud.ELBv2, inst types.Instance) ([]lbTarget, error) {
	var groups []elbv2types.TargetGroup
	p := elbv2.NewDescribeTargetGroupsPaginator(v2, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(400)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe target groups: %w", err)
		}
		groups = append(groups, out.TargetGroups...)
	}
	id, ips, vpcs := aws.ToString(inst.InstanceId), instanceIPs(inst), instanceVPCs(inst)
	var (
		mu    sync.Mutex
		found = []lbTarget{}
		errs  *multierror.Error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, describeConcurrency)
	)
	for _, g := range groups {
		match := func(target string) bool { return target == id }
		switch {
		case g.TargetType == elbv2types.TargetTypeEnumInstance:
		case g.TargetType == elbv2types.TargetTypeEnumIp && slices.Contains(vpcs, aws.ToString(g.VpcId)):
			match = func(target string) bool { return slices.Contains(ips, target) }
		default:
			continue // lambda and alb targets, ip groups of other VPCs
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ts, err := targetsIn(ctx, v2, g, match)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = multierror.Append(errs, err)
			}
			found = append(found, ts...)
		}()
	}
	wg.Wait()
	sortTargets(found)
	return found, errs.ErrorOrNil()
}

func sortTargets(ts []lbTarget) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.TargetGroupARN != b.TargetGroupARN {
			return a.TargetGroupARN < b.TargetGroupARN
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return aws.ToInt32(a.Port) < aws.ToInt32(b.Port)
	})
}

// targetsIn lists a target group's targets that match.
func targetsIn(ctx context.Context, v2 cloud.ELBv2, g elbv2types.TargetGroup, match func(string) bool) ([]lbTarget, error) {
	arn := aws.ToString(g.TargetGroupArn)
	out, err := v2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: g.TargetGroupArn})
	if cloud.IsErrorCode(err, "TargetGroupNotFound") {
		return nil, nil // deleted since it was listed
	}
	if err != nil {
		return nil, fmt.Errorf("describe targets of %s: %w", arn, err)
	}
	var ts []lbTarget
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil || !match(aws.ToString(d.Target.Id)) {
			continue
		}
		t := lbTarget{TargetGroupARN: arn, TargetType: string(g.TargetType), ID: aws.ToString(d.Target.Id),
			Port: d.Target.Port, AvailabilityZone: aws.ToString(d.Target.AvailabilityZone)}
		if d.TargetHealth != nil {
			t.State = string(d.TargetHealth.State)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// findClassic pages through the Classic Load Balancers and names those
// that serve the instance.
func (LoadBalancers) findClassic(ctx context.Context, classic cloud.ELB, id string) ([]string, error) {
	names := []string{}
	p := elb.NewDescribeLoadBalancersPaginator(classic, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(400)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe Classic Load Balancers: %w", err)
		}
		for _, d := range out.LoadBalancerDescriptions {
			if servesInstance(d, id) {
				names = append(names, aws.ToString(d.LoadBalancerName))
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func servesInstance(d elbtypes.LoadBalancerDescription, id string) bool {
	return slices.ContainsFunc(d.Instances, func(i elbtypes.Instance) bool { return aws.ToString(i.InstanceId) == id })
}

// byGroup groups targets by target group ARN, in a stable order.
func byGroup(ts []lbTarget) ([]string, map[string][]lbTarget) {
	m := map[string][]lbTarget{}
	var arns []string
	for _, t := range ts {
		if _, ok := m[t.TargetGroupARN]; !ok {
			arns = append(arns, t.TargetGroupARN)
		}
		m[t.TargetGroupARN] = append(m[t.TargetGroupARN], t)
	}
	sort.Strings(arns)
	return arns, m
}

// parallel runs f for each of n items, at most describeConcurrency at once,
// and collects their errors: one failure stops no other.
func parallel(n int, f func(i int) error) error {
	var (
		mu   sync.Mutex
		errs *multierror.Error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, describeConcurrency)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = multierror.Append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs.ErrorOrNil()
}

func (LoadBalancers) deregister(ctx context.Context, v2 cloud.ELBv2, classic cloud.ELB, id string, ts []lbTarget, lbs []string) error {
	arns, groups := byGroup(ts)
	terr := parallel(len(arns), func(i int) error {
		var ds []elbv2types.TargetDescription
		for _, t := range groups[arns[i]] {
			ds = append(ds, t.description())
		}
		if _, err := v2.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arns[i]), Targets: ds}); err != nil {
			return fmt.Errorf("deregister from target group %s: %w", arns[i], err)
		}
		return nil
	})
	cerr := parallel(len(lbs), func(i int) error {
		_, err := classic.DeregisterInstancesFromLoadBalancer(ctx, &elb.DeregisterInstancesFromLoadBalancerInput{
			LoadBalancerName: aws.String(lbs[i]), Instances: []elbtypes.Instance{{InstanceId: aws.String(id)}}})
		if err != nil {
			return fmt.Errorf("deregister %s from Classic Load Balancer %s: %w", id, lbs[i], err)
		}
		return nil
	})
	return joinErrs(terr, cerr)
}

// reread reads the health of the recorded targets and which of the recorded
// Classic Load Balancers still serve the instance. A target group or Classic
// Load Balancer that is gone sends no traffic: its targets read "gone".
func (LoadBalancers) reread(ctx context.Context, v2 cloud.ELBv2, classic cloud.ELB, id string, ts []lbTarget, lbs []string) (lbState, error) {
	arns, groups := byGroup(ts)
	st := lbState{Targets: []lbTarget{}, ClassicLoadBalancers: []string{}}
	var mu sync.Mutex
	terr := parallel(len(arns), func(i int) error {
		var ds []elbv2types.TargetDescription
		for _, t := range groups[arns[i]] {
			ds = append(ds, elbv2types.TargetDescription{Id: aws.String(t.ID), Port: t.Port})
		}
		out, err := v2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arns[i]), Targets: ds})
		got := slices.Clone(groups[arns[i]])
		switch {
		case cloud.IsErrorCode(err, "TargetGroupNotFound"):
			for j := range got {
				got[j].State = targetGone
			}
		case err != nil:
			return fmt.Errorf("read back target group %s: %w", arns[i], err)
		default:
			for j := range got {
				got[j].State = healthOf(out.TargetHealthDescriptions, got[j])
			}
		}
		mu.Lock()
		st.Targets = append(st.Targets, got...)
		mu.Unlock()
		return nil
	})
	cerr := parallel(len(lbs), func(i int) error {
		out, err := classic.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{lbs[i]}})
		if cloud.IsErrorCode(err, "LoadBalancerNotFound") {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read back Classic Load Balancer %s: %w", lbs[i], err)
		}
		if slices.ContainsFunc(out.LoadBalancerDescriptions, func(d elbtypes.LoadBalancerDescription) bool { return servesInstance(d, id) }) {
			mu.Lock()
			st.ClassicLoadBalancers = append(st.ClassicLoadBalancers, lbs[i])
			mu.Unlock()
		}
		return nil
	})
	sortTargets(st.Targets)
	sort.Strings(st.ClassicLoadBalancers)
	return st, joinErrs(terr, cerr)
}

// healthOf finds a target's state in a DescribeTargetHealth answer
// ("unused" when the answer does not list it).
func healthOf(ds []elbv2types.TargetHealthDescription, t lbTarget) string {
	for _, d := range ds {
		if d.Target == nil || aws.ToString(d.Target.Id) != t.ID {
			continue
		}
		if d.Target.Port != nil && t.Port != nil && *d.Target.Port != *t.Port {
			continue
		}
		if d.TargetHealth == nil {
			return ""
		}
		return string(d.TargetHealth.State)
	}
	return string(elbv2types.TargetHealthStateEnumUnused)
}

// readBack checks the recorded targets and Classic Load Balancers: after a
// deregistration, held when none serves the instance; after a release
// (registered true), when every one does again.
func (s LoadBalancers) readBack(ctx context.Context, v2 cloud.ELBv2, classic cloud.ELB, id string, before lbState, errs error, what string, registered bool) Result {
	ts, lbs := servingTargets(before.Targets), before.ClassicLoadBalancers
	after, err := s.reread(ctx, v2, classic, id, ts, lbs)
	if err != nil {
		return failWith(Result{Err: errs, Before: before}, fmt.Errorf("read back: %w", err)).Unchecked()
	}
	after.NotCut = before.NotCut
	var wrong []string
	for _, t := range after.Targets {
		if t.serving() != registered {
			wrong = append(wrong, fmt.Sprintf("%s port %d in %s is %q", t.ID, aws.ToInt32(t.Port), t.TargetGroupARN, t.State))
		}
	}
	if registered && len(after.ClassicLoadBalancers) != len(lbs) {
		wrong = append(wrong, fmt.Sprintf("served by Classic Load Balancers %v of %v", after.ClassicLoadBalancers, lbs))
	}
	if !registered && len(after.ClassicLoadBalancers) > 0 {
		wrong = append(wrong, fmt.Sprintf("still served by Classic Load Balancers %v", after.ClassicLoadBalancers))
	}
	if len(wrong) > 0 {
		r := failWith(Result{Err: errs, Before: before, After: after}, fmt.Errorf("read back: %s", strings.Join(wrong, "; ")))
		return r.Held(false)
	}
	if errs != nil {
		r := Failed(errs, before)
		r.After = after
		return r.Held(true)
	}
	return OK(what, before, after).Held(true)
}

// Release registers the instance again where it was served before the
// response, with the recorded port and zone. A target group or Classic Load
// Balancer that no longer exists, or an IP no longer on the instance, is
// refused, naming it; the others are still restored.
func (s LoadBalancers) Release(ctx context.Context, env *Env, raw json.RawMessage) Result {
	var before lbState
	if err := json.Unmarshal(raw, &before); err != nil {
		return Failed(fmt.Errorf("read recorded state: %w", err), nil)
	}
	ts, lbs := servingTargets(before.Targets), before.ClassicLoadBalancers
	if len(ts) == 0 && len(lbs) == 0 {
		return Skipped("no load balancer sent the instance traffic before the response", before)
	}
	v2, classic, err := s.clients(env)
	if err != nil {
		return Failed(err, before).Unchecked()
	}
	id := env.Target.InstanceID()
	var refused []string
	ips := instanceIPs(env.Target.Instance)
	ts = slices.DeleteFunc(slices.Clone(ts), func(t lbTarget) bool {
		gone := t.TargetType == string(elbv2types.TargetTypeEnumIp) && !slices.Contains(ips, t.ID)
		if gone {
			refused = append(refused, fmt.Sprintf("IP %s is no longer on the instance: not registered again in %s", t.ID, t.TargetGroupARN))
		}
		return gone
	})
	what := "register again " + describeTargets(ts, lbs)
	if env.Target.DryRun {
		return Skipped("dry run: would "+what, before)
	}
	errs := s.register(ctx, v2, classic, id, ts, lbs)
	if len(refused) > 0 {
		errs = joinErrs(errs, errors.New(strings.Join(refused, "; ")))
	}
	rb := before
	rb.Targets, rb.ClassicLoadBalancers = ts, lbs
	r := s.readBack(ctx, v2, classic, id, rb, errs, what, true)
	r.Before = before
	if len(refused) > 0 {
		r.Containment = ""
		return r.Held(false)
	}
	return r
}

func (LoadBalancers) register(ctx context.Context, v2 cloud.ELBv2, classic cloud.ELB, id string, ts []lbTarget, lbs []string) error {
	arns, groups := byGroup(ts)
	terr := parallel(len(arns), func(i int) error {
		var ds []elbv2types.TargetDescription
		for _, t := range groups[arns[i]] {
			ds = append(ds, t.description())
		}
		_, err := v2.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arns[i]), Targets: ds})
		if cloud.IsErrorCode(err, "TargetGroupNotFound") {
			return fmt.Errorf("target group %s no longer exists: the instance cannot be registered in it again", arns[i])
		}
		if err != nil {
			return fmt.Errorf("register in target group %s: %w", arns[i], err)
		}
		return nil
	})
	cerr := parallel(len(lbs), func(i int) error {
		_, err := classic.RegisterInstancesWithLoadBalancer(ctx, &elb.RegisterInstancesWithLoadBalancerInput{
			LoadBalancerName: aws.String(lbs[i]), Instances: []elbtypes.Instance{{InstanceId: aws.String(id)}}})
		if cloud.IsErrorCode(err, "LoadBalancerNotFound") {
			return fmt.Errorf("the Classic Load Balancer %s no longer exists: the instance cannot be registered with it again", lbs[i])
		}
		if err != nil {
			return fmt.Errorf("register %s with Classic Load Balancer %s: %w", id, lbs[i], err)
		}
		return nil
	})
	return joinErrs(terr, cerr)
}

// Describe: the load balancers that send the instance traffic.
func (LoadBalancers) Describe() Description {
	return Description{
		Aspect: "Load balancer targets",
		View:   viewLoadBalancers,
		Order:  53,
		OnFailure: "A load balancer may still send the instance requests: deregister it from the target groups " +
			"and Classic Load Balancers named in the record by hand.",
	}
}

func viewLoadBalancers(raw json.RawMessage, instanceID string) ([]SubjectState, error) {
	if err := requireField(raw, "targets"); err != nil {
		return nil, err
	}
	var v lbState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []SubjectState
	for _, t := range v.Targets {
		text := fmt.Sprintf("%s target %s port %d: %s", t.TargetType, t.ID, aws.ToInt32(t.Port), t.State)
		if t.AvailabilityZone != "" {
			text += " (zone " + t.AvailabilityZone + ")"
		}
		out = append(out, SubjectState{Subject: "target group " + t.TargetGroupARN, Text: text})
	}
	for _, n := range v.ClassicLoadBalancers {
		out = append(out, SubjectState{Subject: "Classic Load Balancer " + n, Text: "serves " + instanceID})
	}
	if len(out) == 0 {
		out = append(out, SubjectState{Subject: instanceID, Text: "no load balancer sends it traffic"})
	}
	if v.NotCut != "" {
		out = append(out, SubjectState{Subject: instanceID, Text: v.NotCut})
	}
	return out, nil
}
