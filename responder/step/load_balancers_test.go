package step_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// servedSuspect is a suspect with two interfaces served by: an instance
// target group (port 8080 override), a second instance target group on its
// own port, an ip target group of its VPC (its second IP, zone "all"), and a
// Classic Load Balancer; beside them another instance in each, and an ip
// target group of another VPC that lists the same IP (another host).
type servedSuspect struct {
	c                              *fakeaws.Cloud
	id, other, ip                  string
	tgInstance, tgPlain, tgIP, tgX string
}

func newServedSuspect(t *testing.T) servedSuspect {
	t.Helper()
	c := fakeaws.New()
	vpc, otherVPC := c.AddVPC(), c.AddVPC()
	s := servedSuspect{c: c}
	s.id = c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, NetworkInterfaces: 2})
	s.other = c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc})
	s.ip = aws.ToString(c.Instance(s.id).NetworkInterfaces[1].PrivateIpAddress)
	s.tgInstance = c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "app", VpcID: vpc})
	c.RegisterTarget(s.tgInstance, s.id, 8080, "")
	c.RegisterTarget(s.tgInstance, s.other, 8080, "")
	s.tgPlain = c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "api", VpcID: vpc, Port: 443})
	c.RegisterTarget(s.tgPlain, s.id, 0, "")
	s.tgIP = c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "nlb", Type: "ip", VpcID: vpc, Port: 9000})
	c.RegisterTarget(s.tgIP, s.ip, 0, "all")
	s.tgX = c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "elsewhere", Type: "ip", VpcID: otherVPC})
	c.RegisterTarget(s.tgX, s.ip, 0, "")
	c.AddClassicLoadBalancer("legacy", s.id, s.other)
	c.AddClassicLoadBalancer("unrelated", s.other)
	return s
}

func hasTarget(ts []fakeaws.TargetView, id string) bool {
	return slices.ContainsFunc(ts, func(t fakeaws.TargetView) bool { return t.ID == id })
}

// TestLoadBalancersDeregisterEverywhere: the instance leaves every target
// group (by ID and by IP) and the Classic Load Balancer that served it, and
// nothing else changes: the other instance stays, and the ip group of
// another VPC keeps the same IP (another host's).
func TestLoadBalancersDeregisterEverywhere(t *testing.T) {
	s := newServedSuspect(t)
	c := s.c
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, s.id))
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	for _, tg := range []string{s.tgInstance, s.tgPlain} {
		if hasTarget(c.Targets(tg), s.id) {
			t.Errorf("%s still lists the instance", tg)
		}
	}
	if hasTarget(c.Targets(s.tgIP), s.ip) {
		t.Error("the ip target group still lists the instance's IP")
	}
	if !hasTarget(c.Targets(s.tgInstance), s.other) || !hasTarget(c.Targets(s.tgX), s.ip) {
		t.Error("a target that is not the instance was deregistered")
	}
	if got := c.ClassicInstances("legacy"); !slices.Equal(got, []string{s.other}) {
		t.Errorf("Classic Load Balancer serves %v, want only %s", got, s.other)
	}
	var before struct {
		Targets []struct {
			TargetGroupARN   string `json:"target_group_arn"`
			TargetType       string `json:"target_type"`
			ID               string `json:"id"`
			Port             int32  `json:"port"`
			AvailabilityZone string `json:"availability_zone"`
		} `json:"targets"`
		Classic []string `json:"classic_load_balancers"`
		NotCut  string   `json:"not_cut"`
	}
	if err := json.Unmarshal(raw(t, res.Before), &before); err != nil {
		t.Fatal(err)
	}
	if len(before.Targets) != 3 || !slices.Equal(before.Classic, []string{"legacy"}) || !strings.Contains(before.NotCut, "deregistration delay") {
		t.Errorf("before %+v", before)
	}
	for _, tgt := range before.Targets {
		if tgt.TargetGroupARN == s.tgIP && (tgt.TargetType != "ip" || tgt.Port != 9000 || tgt.AvailabilityZone != "all") {
			t.Errorf("ip target recorded as %+v", tgt)
		}
		if tgt.TargetGroupARN == s.tgInstance && tgt.Port != 8080 {
			t.Errorf("instance target recorded as %+v, want port 8080", tgt)
		}
	}
}

// TestLoadBalancersNothingServesTheInstance: recorded as nothing to do.
func TestLoadBalancersNothingServesTheInstance(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.AddClassicLoadBalancer("unrelated", c.AddInstance(fakeaws.InstanceSpec{}))
	digest := c.StateDigest()
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusSkipped || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	if c.StateDigest() != digest {
		t.Error("the step changed something")
	}
}

// TestLoadBalancersFindsTargetGroupsPastTheFirstPage: DescribeTargetGroups
// answers at most 400 a page.
func TestLoadBalancersFindsTargetGroupsPastTheFirstPage(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	id := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc})
	var last string
	for i := range 405 {
		last = c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: fmt.Sprintf("tg-%d", i), VpcID: vpc})
	}
	c.RegisterTarget(last, id, 0, "")
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusOK || hasTarget(c.Targets(last), id) {
		t.Fatalf("%s %v; still registered: %t", res.Status, res.Err, hasTarget(c.Targets(last), id))
	}
	if n := c.CallCount("DescribeTargetGroups"); n != 2 {
		t.Errorf("%d DescribeTargetGroups calls, want 2 pages", n)
	}
}

// TestLoadBalancersRoundTrip: release registers the instance again where it
// was, with the recorded port and zone.
func TestLoadBalancersRoundTrip(t *testing.T) {
	s := newServedSuspect(t)
	c := s.c
	want := map[string][]fakeaws.TargetView{}
	for _, tg := range []string{s.tgInstance, s.tgPlain, s.tgIP, s.tgX} {
		want[tg] = c.Targets(tg)
	}
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, s.id))
	if res.Status != evidence.StatusOK {
		t.Fatalf("contain: %s %v", res.Status, res.Err)
	}
	rel := step.LoadBalancers{}.Release(context.Background(), scalingEnv(t, c, s.id), raw(t, res.Before))
	if rel.Status != evidence.StatusOK || rel.Containment != evidence.ContainmentHeld {
		t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
	}
	for tg, targets := range want {
		if got := c.Targets(tg); !slices.Equal(got, targets) {
			t.Errorf("%s: targets %+v after release, want %+v", tg, got, targets)
		}
	}
	if got := c.ClassicInstances("legacy"); !slices.Equal(got, sortedPair(s.id, s.other)) {
		t.Errorf("Classic Load Balancer serves %v after release", got)
	}
}

func sortedPair(a, b string) []string {
	p := []string{a, b}
	slices.Sort(p)
	return p
}

// TestLoadBalancersReleaseAfterAPartialFailure: one deregistration failed
// (the step did not hold); release still restores everything recorded, and
// refuses, naming it, a target group deleted since, while restoring the
// others.
func TestLoadBalancersReleaseAfterAPartialFailure(t *testing.T) {
	s := newServedSuspect(t)
	c := s.c
	c.Fail("DeregisterInstancesFromLoadBalancer", "Throttling", 10)
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, s.id))
	if res.Status != evidence.StatusFailed || res.Containment != evidence.ContainmentNotHeld {
		t.Fatalf("contain: %s %s %v", res.Status, res.Containment, res.Err)
	}
	if hasTarget(c.Targets(s.tgPlain), s.id) {
		t.Fatal("a failed Classic deregistration stopped the target groups'")
	}
	c.ClearFaults()
	c.DeleteTargetGroup(s.tgPlain)
	rel := step.LoadBalancers{}.Release(context.Background(), scalingEnv(t, c, s.id), raw(t, res.Before))
	if rel.Status != evidence.StatusFailed || rel.Containment != evidence.ContainmentNotHeld || !strings.Contains(rel.Err.Error(), s.tgPlain+" no longer exists") {
		t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
	}
	if !hasTarget(c.Targets(s.tgInstance), s.id) || !hasTarget(c.Targets(s.tgIP), s.ip) {
		t.Error("the target groups that still exist were not restored")
	}
	if !slices.Contains(c.ClassicInstances("legacy"), s.id) {
		t.Error("the Classic Load Balancer does not serve the instance")
	}
}

// TestLoadBalancersReleaseRefusesAnIPNoLongerOnTheInstance: an ip target
// whose IP the instance no longer has is not registered again (it may be
// another host's now).
func TestLoadBalancersReleaseRefusesAnIPNoLongerOnTheInstance(t *testing.T) {
	s := newServedSuspect(t)
	c := s.c
	res := step.LoadBalancers{}.Run(context.Background(), scalingEnv(t, c, s.id))
	if res.Status != evidence.StatusOK {
		t.Fatalf("contain: %s %v", res.Status, res.Err)
	}
	env := scalingEnv(t, c, s.id)
	env.Target.Instance.NetworkInterfaces = env.Target.Instance.NetworkInterfaces[:1] // detached since
	rel := step.LoadBalancers{}.Release(context.Background(), env, raw(t, res.Before))
	if rel.Status != evidence.StatusFailed || rel.Containment != evidence.ContainmentNotHeld || !strings.Contains(rel.Err.Error(), s.ip) {
		t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
	}
	if hasTarget(c.Targets(s.tgIP), s.ip) {
		t.Error("an IP no longer on the instance was registered again")
	}
	if !hasTarget(c.Targets(s.tgInstance), s.id) {
		t.Error("the instance target was not restored")
	}
}
