package step_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// scalingEnv describes the instance as the engine does and returns an Env
// with the Auto Scaling and load balancer clients.
func scalingEnv(t *testing.T, c *fakeaws.Cloud, id string) *step.Env {
	t.Helper()
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return &step.Env{
		Target: step.Target{CaseID: "case-1", Instance: out.Reservations[0].Instances[0], AccountID: c.Account, Region: c.Region, Run: 1},
		Clients: step.Clients{EC2: c.EC2(), Store: &evidence.Folder{Root: t.TempDir()},
			AutoScaling: c.AutoScaling(), ELBv2: c.ELBv2(), ELB: c.ELB()},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// scaledSuspect is a suspect in group "web" (desired 2, min 1, max 4) with
// another instance, both in the group's target group on port 80.
func scaledSuspect(t *testing.T) (*fakeaws.Cloud, string, string) {
	t.Helper()
	c := fakeaws.New()
	vpc := c.AddVPC()
	id := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc})
	other := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc})
	tg := c.AddTargetGroup(fakeaws.TargetGroupSpec{Name: "web", VpcID: vpc})
	c.RegisterTarget(tg, id, 0, "")
	c.RegisterTarget(tg, other, 0, "")
	c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "web", Min: 1, Max: 4, Instances: []string{id, other}, TargetGroupARNs: []string{tg}})
	return c, id, tg
}

type scalingState struct {
	Group                string `json:"group"`
	LifecycleState       string `json:"lifecycle_state"`
	ProtectedFromScaleIn bool   `json:"protected_from_scale_in"`
	DesiredCapacity      *int32 `json:"desired_capacity"`
	Mode                 string `json:"mode"`
	Note                 string `json:"note"`
}

func scalingOf(t *testing.T, v any) scalingState {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var st scalingState
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func raw(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAutoScalingStandbyKeepsCapacityAndProtects: the instance goes to
// standby with scale-in protection, the desired capacity stays, the group
// has a replacement in service, and the group's target group no longer
// lists the instance.
func TestAutoScalingStandbyKeepsCapacityAndProtects(t *testing.T) {
	c, id, tg := scaledSuspect(t)
	res := step.AutoScaling{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	g := c.AutoScalingGroup("web")
	if m := g.Members[id]; m.State != "Standby" || !m.Protected {
		t.Errorf("instance is %+v in the group, want Standby and protected", m)
	}
	if g.Desired != 2 || g.InService() != 2 || len(g.Members) != 3 {
		t.Errorf("group desired %d, %d in service of %d members: want 2, 2 (a replacement), 3", g.Desired, g.InService(), len(g.Members))
	}
	for _, tgt := range c.Targets(tg) {
		if tgt.ID == id {
			t.Errorf("the group's target group still lists %s", id)
		}
	}
	before, after := scalingOf(t, res.Before), scalingOf(t, res.After)
	if before.Group != "web" || before.LifecycleState != "InService" || before.ProtectedFromScaleIn || aws.ToInt32(before.DesiredCapacity) != 2 || before.Mode != "standby" {
		t.Errorf("before %+v", before)
	}
	if after.LifecycleState != "Standby" || !after.ProtectedFromScaleIn || !strings.Contains(after.Note, "kept at 2") {
		t.Errorf("after %+v", after)
	}
	// A second run finds it done.
	again := step.AutoScaling{}.Run(context.Background(), scalingEnv(t, c, id))
	if again.Status != evidence.StatusSkipped || again.Containment != evidence.ContainmentHeld {
		t.Errorf("second run: %s %s %v", again.Status, again.Containment, again.Err)
	}
}

// TestAutoScalingDetachKeepsCapacity: detached, the instance is in no group
// and the group has launched a replacement.
func TestAutoScalingDetachKeepsCapacity(t *testing.T) {
	c, id, _ := scaledSuspect(t)
	res := step.AutoScaling{Detach: true}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusOK || res.Containment != evidence.ContainmentHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	g := c.AutoScalingGroup("web")
	if _, in := g.Members[id]; in {
		t.Error("the instance is still in the group")
	}
	if g.Desired != 2 || g.InService() != 2 {
		t.Errorf("group desired %d with %d in service, want 2 and 2", g.Desired, g.InService())
	}
	if after := scalingOf(t, res.After); after.LifecycleState != "Detached" || after.Group != "web" || after.Mode != "detach" {
		t.Errorf("after %+v", after)
	}
}

// TestAutoScalingNotInAGroup: nothing to do, recorded as such, nothing
// changed.
func TestAutoScalingNotInAGroup(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "other", Min: 0, Max: 2, Instances: []string{c.AddInstance(fakeaws.InstanceSpec{})}})
	digest := c.StateDigest()
	res := step.AutoScaling{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusSkipped || res.Containment != evidence.ContainmentHeld || scalingOf(t, res.Before).Group != "" {
		t.Fatalf("%s %s %s %+v", res.Status, res.Containment, res.Reason, res.Before)
	}
	if c.StateDigest() != digest {
		t.Error("the step changed something")
	}
}

// TestAutoScalingRefusesAnInstanceNotInService: Auto Scaling puts only an
// InService instance in standby; the step says so and claims nothing.
func TestAutoScalingRefusesAnInstanceNotInService(t *testing.T) {
	c, id, _ := scaledSuspect(t)
	c.SetAutoScalingState("web", id, "Pending")
	res := step.AutoScaling{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusFailed || res.Containment != evidence.ContainmentNotHeld || !strings.Contains(res.Err.Error(), "Pending") {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
}

// TestAutoScalingStandbyFailureIsNotHeld: EnterStandby refused; protection
// still set (one failure stops no other), and the step does not hold.
func TestAutoScalingStandbyFailureIsNotHeld(t *testing.T) {
	c, id, _ := scaledSuspect(t)
	c.Fail("EnterStandby", "ResourceContention", 1)
	res := step.AutoScaling{}.Run(context.Background(), scalingEnv(t, c, id))
	if res.Status != evidence.StatusFailed || res.Containment != evidence.ContainmentNotHeld {
		t.Fatalf("%s %s %v", res.Status, res.Containment, res.Err)
	}
	if m := c.AutoScalingGroup("web").Members[id]; m.State != "InService" || !m.Protected {
		t.Errorf("instance %+v: want InService (standby refused) and protected", m)
	}
}

// TestAutoScalingRoundTrip: respond then release gives back the recorded
// group, lifecycle state and protection; the record says the desired
// capacity grew by the instance, the replacement staying.
func TestAutoScalingRoundTrip(t *testing.T) {
	for _, detach := range []bool{false, true} {
		s := step.AutoScaling{Detach: detach}
		t.Run(s.Name(), func(t *testing.T) {
			c, id, tg := scaledSuspect(t)
			res := s.Run(context.Background(), scalingEnv(t, c, id))
			if res.Status != evidence.StatusOK {
				t.Fatalf("contain: %s %v", res.Status, res.Err)
			}
			rel := s.Release(context.Background(), scalingEnv(t, c, id), raw(t, res.Before))
			if rel.Status != evidence.StatusOK || rel.Containment != evidence.ContainmentHeld {
				t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
			}
			before := scalingOf(t, res.Before)
			g := c.AutoScalingGroup("web")
			m, in := g.Members[id]
			if !in || m.State != before.LifecycleState || m.Protected != before.ProtectedFromScaleIn {
				t.Errorf("after release %+v (in group %t), recorded %s protected %t", m, in, before.LifecycleState, before.ProtectedFromScaleIn)
			}
			if g.Desired != 3 || g.InService() != 3 {
				t.Errorf("desired %d with %d in service: want 3 and 3 (the replacement stays)", g.Desired, g.InService())
			}
			if note := scalingOf(t, rel.After).Note; !strings.Contains(note, "now 3 (2 before") {
				t.Errorf("release note %q", note)
			}
			registered := false
			for _, tgt := range c.Targets(tg) {
				registered = registered || tgt.ID == id
			}
			if !registered {
				t.Error("back in service, the instance is not in the group's target group")
			}
		})
	}
}

// TestAutoScalingReleaseRefusesWhatItCannotReconcile: the group deleted, or
// (detached) full to its maximum: refused with the reason, nothing changed.
func TestAutoScalingReleaseRefusesWhatItCannotReconcile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detach bool
		change func(c *fakeaws.Cloud)
		want   string
	}{
		{"group deleted", false, func(c *fakeaws.Cloud) { c.DeleteAutoScalingGroup("web") }, "no longer exists"},
		{"still draining into standby", false, func(c *fakeaws.Cloud) { c.SetAutoScalingState("web", instanceOf(c), "EnteringStandby") }, "still entering standby"},
		{"group at its maximum", true, func(c *fakeaws.Cloud) {
			c.DeleteAutoScalingGroup("web")
			c.AddAutoScalingGroup(fakeaws.AutoScalingGroupSpec{Name: "web", Min: 1, Max: 2, Instances: []string{c.AddInstance(fakeaws.InstanceSpec{}), c.AddInstance(fakeaws.InstanceSpec{})}})
		}, "above its maximum size 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, id, _ := scaledSuspect(t)
			s := step.AutoScaling{Detach: tc.detach}
			res := s.Run(context.Background(), scalingEnv(t, c, id))
			if res.Status != evidence.StatusOK {
				t.Fatalf("contain: %s %v", res.Status, res.Err)
			}
			tc.change(c)
			digest := c.StateDigest()
			rel := s.Release(context.Background(), scalingEnv(t, c, id), raw(t, res.Before))
			if rel.Status != evidence.StatusFailed || rel.Containment != evidence.ContainmentNotHeld || !strings.Contains(rel.Err.Error(), tc.want) {
				t.Fatalf("release: %s %s %v", rel.Status, rel.Containment, rel.Err)
			}
			if c.StateDigest() != digest {
				t.Error("a refused release changed something")
			}
		})
	}
}

// TestAutoScalingReleaseOfAnInstanceInNoGroup: nothing was done, nothing to
// undo.
func TestAutoScalingReleaseOfAnInstanceInNoGroup(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	rel := step.AutoScaling{}.Release(context.Background(), scalingEnv(t, c, id), json.RawMessage(`{"group":"","protected_from_scale_in":false}`))
	if rel.Status != evidence.StatusSkipped || c.CallCount("DescribeAutoScalingGroups") != 0 {
		t.Fatalf("%s %v", rel.Status, rel.Err)
	}
}

// instanceOf is the instance of group "web" in standby (scaledSuspect's
// suspect, after the response).
func instanceOf(c *fakeaws.Cloud) string {
	for id, m := range c.AutoScalingGroup("web").Members {
		if m.State == "Standby" {
			return id
		}
	}
	return ""
}

// TestPlanRefusesBothWaysOutOfAutoScaling: standby and detach in one plan
// would race on the same instance.
func TestPlanRefusesBothWaysOutOfAutoScaling(t *testing.T) {
	if _, err := step.Plan([]string{"auto-scaling", "auto-scaling-detach"}); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("err %v", err)
	}
}
