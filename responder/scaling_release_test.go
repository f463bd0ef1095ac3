package responder_test

import (
	"slices"
	"testing"

	"github.com/responder-ir/responder/responder"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// TestDefaultPlanTakesTheInstanceOutOfScalingAndLoadBalancers: the default
// plan puts an instance of an Auto Scaling group in standby (the group
// replaces it) and deregisters it from a target group the group does not
// know and a Classic Load Balancer; the case is contained only with those
// read back; a release gives back membership, protection and registrations.
func TestDefaultPlanTakesTheInstanceOutOfScalingAndLoadBalancers(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	other := c.AddInstance(fakeaws.InstanceSpec{VpcID: s.VpcID})
	tg := c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "app", VpcID: s.VpcID, Port: 8443})
	c.RegisterTarget(tg, s.InstanceID, 0, "")
	c.RegisterTarget(tg, other, 0, "")
	c.AddClassicLoadBalancer("legacy", s.InstanceID)
	c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "web", Min: 1, Max: 3, Instances: []string{s.InstanceID, other}})
	targets, classic := c.Targets(tg), c.ClassicInstances("legacy")

	store := &evidence.Folder{Root: t.TempDir()}
	res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID})
	if res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	for _, name := range []string{"auto-scaling", "load-balancers"} {
		if rec := stepOf(t, res.Steps, name); rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
			t.Errorf("%s: %s %s %s", name, rec.Status, rec.Containment, rec.Error)
		}
	}
	g := c.AutoScalingGroup("web")
	if m := g.Members[s.InstanceID]; m.State != "Standby" || !m.Protected || g.Desired != 2 || g.InService() != 2 {
		t.Errorf("group: instance %+v, desired %d, in service %d", m, g.Desired, g.InService())
	}
	if hasTargetID(c.Targets(tg), s.InstanceID) || len(c.ClassicInstances("legacy")) != 0 {
		t.Error("a load balancer still serves the instance")
	}

	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status != evidence.CaseReleased {
		t.Fatalf("release: %s %v", rel.Status, rel.Err)
	}
	g = c.AutoScalingGroup("web")
	if m := g.Members[s.InstanceID]; m.State != "InService" || m.Protected || g.Desired != 3 {
		t.Errorf("after release: instance %+v, desired %d (want InService, unprotected, 3)", m, g.Desired)
	}
	if got := c.Targets(tg); !slices.Equal(got, targets) {
		t.Errorf("target group after release %+v, want %+v", got, targets)
	}
	if got := c.ClassicInstances("legacy"); !slices.Equal(got, classic) {
		t.Errorf("Classic Load Balancer after release %v, want %v", got, classic)
	}
}

func hasTargetID(ts []fakeaws.TargetView, id string) bool {
	return slices.ContainsFunc(ts, func(t fakeaws.TargetView) bool { return t.ID == id })
}

// TestReleaseKeepsTheInstanceOutOfServiceUntilItsNetworkIsBack: when the
// release cannot give the interfaces their groups back, it does not return
// the instance to its Auto Scaling group or its load balancers (in service
// but cut off, it would fail its health checks and be replaced): it stays
// in standby and deregistered, the release is incomplete, and a release
// once the network can be restored finishes it.
func TestReleaseKeepsTheInstanceOutOfServiceUntilItsNetworkIsBack(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	tg := c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "app", VpcID: s.VpcID, Port: 8443})
	c.RegisterTarget(tg, s.InstanceID, 0, "")
	c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "web", Min: 1, Max: 3, Instances: []string{s.InstanceID}})
	targets := c.Targets(tg)

	store := &evidence.Folder{Root: t.TempDir()}
	if res := respond(t, c, store, responder.Request{InstanceID: s.InstanceID}); res.Status != evidence.CaseContained {
		t.Fatalf("respond: %s %v", res.Status, res.Err)
	}
	c.Fail("ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", -1)
	rel := release(t, c, store, responder.ReleaseRequest{})
	if rel.Status == evidence.CaseReleased {
		t.Fatalf("release with the groups not restored: %s", rel.Status)
	}
	for _, name := range []string{"auto-scaling", "load-balancers"} {
		if rec := stepOf(t, rel.Steps, name); rec.Status != evidence.StatusSkipped || rec.Containment != evidence.ContainmentNotHeld {
			t.Errorf("%s: %s %s %s", name, rec.Status, rec.Containment, rec.Reason)
		}
	}
	if m := c.AutoScalingGroup("web").Members[s.InstanceID]; m.State != "Standby" {
		t.Errorf("instance returned to its group (%s) while cut off", m.State)
	}
	if hasTargetID(c.Targets(tg), s.InstanceID) {
		t.Error("instance registered again while cut off")
	}

	c.ClearFaults()
	if again := release(t, c, store, responder.ReleaseRequest{}); again.Status != evidence.CaseReleased {
		t.Fatalf("second release: %s %v", again.Status, again.Err)
	}
	if m := c.AutoScalingGroup("web").Members[s.InstanceID]; m.State != "InService" {
		t.Errorf("after the second release: %s", m.State)
	}
	if got := c.Targets(tg); !slices.Equal(got, targets) {
		t.Errorf("target group after the second release %+v, want %+v", got, targets)
	}
}
