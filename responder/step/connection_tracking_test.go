package step_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// connTrack reads the timeouts of every interface of the instance.
func connTrack(t *testing.T, c *fakeaws.Cloud, id string) map[string]*types.ConnectionTrackingConfiguration {
	t.Helper()
	out, err := c.EC2().DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*types.ConnectionTrackingConfiguration{}
	for _, n := range out.NetworkInterfaces {
		got[aws.ToString(n.NetworkInterfaceId)] = n.ConnectionTrackingConfiguration
	}
	return got
}

func TestConnectionTrackingTimeoutsSetToMinimumAndRestored(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{NetworkInterfaces: 2})
	ifaces := c.Instance(id).NetworkInterfaces
	// One interface already has timeouts of its own; the other has none.
	custom := aws.ToString(ifaces[1].NetworkInterfaceId)
	if _, err := c.EC2().ModifyNetworkInterfaceAttribute(context.Background(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: &custom,
		ConnectionTrackingSpecification: &types.ConnectionTrackingSpecificationRequest{
			TcpEstablishedTimeout: aws.Int32(3600), UdpStreamTimeout: aws.Int32(120), UdpTimeout: aws.Int32(45)},
	}); err != nil {
		t.Fatal(err)
	}

	_, recs := runSteps(t, c, id, "connection-tracking")
	rec := recs["connection-tracking"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("connection-tracking: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	for eni, ct := range connTrack(t, c, id) {
		if ct == nil || aws.ToInt32(ct.TcpEstablishedTimeout) != 60 || aws.ToInt32(ct.UdpStreamTimeout) != 60 || aws.ToInt32(ct.UdpTimeout) != 30 {
			t.Errorf("%s: timeouts %+v, want 60/60/30", eni, ct)
		}
	}

	if r := release(t, c, id, rec); r.Status != evidence.StatusOK {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	for eni, ct := range connTrack(t, c, id) {
		want := [3]int32{432000, 180, 30} // not set before: the documented defaults
		if eni == custom {
			want = [3]int32{3600, 120, 45}
		}
		if got := [3]int32{aws.ToInt32(ct.TcpEstablishedTimeout), aws.ToInt32(ct.UdpStreamTimeout), aws.ToInt32(ct.UdpTimeout)}; got != want {
			t.Errorf("%s after release: %v, want %v", eni, got, want)
		}
	}
}

// A Xen instance type cannot have the timeouts: recorded why, not a
// failure, and it does not keep the case from being contained.
func TestConnectionTrackingUnsupportedIsRecordedNotFailed(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{InstanceType: "t2.micro"})
	recs, byName := runSteps(t, c, id, "quarantine-group", "quarantine", "connection-tracking")
	rec := byName["connection-tracking"]
	if rec.Status != evidence.StatusSkipped || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("connection-tracking: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	if want := "not Nitro-based"; !strings.Contains(rec.Reason, want) || !strings.Contains(string(rec.Before), want) {
		t.Errorf("reason %q, before %s: want them to say %q", rec.Reason, rec.Before, want)
	}
	if got := evidence.CaseStatus(recs, evidence.Outcome{}); got != evidence.CaseContained {
		t.Errorf("case status %s, want contained", got)
	}
}

// Timeouts EC2 accepted but did not set are not held: the case is
// partially contained, never contained.
func TestConnectionTrackingNotReadBackIsPartiallyContained(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	plan, err := step.Plan([]string{"quarantine-group", "quarantine", "connection-tracking"})
	if err != nil {
		t.Fatal(err)
	}
	c.OnCall = func(op string) {
		if op == "DescribeInstanceTypes" {
			c.Ignore("ModifyNetworkInterfaceAttribute", -1) // after the quarantine moved the interfaces
		}
	}
	recs := step.Execute(context.Background(), envFor(t, c, s.InstanceID), plan, 0)
	for _, r := range recs {
		if r.Name == "connection-tracking" && (r.Status != evidence.StatusFailed || r.Containment != evidence.ContainmentNotHeld) {
			t.Errorf("connection-tracking: %s %s, want failed and not-held", r.Status, r.Containment)
		}
	}
	if got := evidence.CaseStatus(recs, evidence.Outcome{}); got != evidence.CasePartiallyContained {
		t.Errorf("case status %s, want %s", got, evidence.CasePartiallyContained)
	}
}

// On a Nitro v6 type an interface with no timeouts of its own idles TCP
// flows out after 350 s, not 432,000 s (API reference,
// ConnectionTrackingConfiguration): a release gives it back the type's
// defaults, as DescribeInstanceTypes gives them, never five days.
func TestConnectionTrackingReleaseRestoresTheTypesDefaults(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{InstanceType: "m8i.large"})
	_, recs := runSteps(t, c, id, "connection-tracking")
	rec := recs["connection-tracking"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("connection-tracking: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	if r := release(t, c, id, rec); r.Status != evidence.StatusOK || r.Containment != evidence.ContainmentHeld {
		t.Fatalf("release: %s %s %v", r.Status, r.Containment, r.Err)
	}
	for eni, ct := range connTrack(t, c, id) {
		if got, want := [3]int32{aws.ToInt32(ct.TcpEstablishedTimeout), aws.ToInt32(ct.UdpStreamTimeout), aws.ToInt32(ct.UdpTimeout)}, [3]int32{350, 180, 30}; got != want {
			t.Errorf("%s after release: %v, want the type's defaults %v", eni, got, want)
		}
	}
}
