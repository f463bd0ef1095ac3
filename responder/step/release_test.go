package step_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// envFor describes the instance as the engine does and returns a step Env.
func envFor(t *testing.T, c *fakeaws.Cloud, id string) *step.Env {
	t.Helper()
	out, err := c.EC2().DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return &step.Env{
		Target: step.Target{
			CaseID: "case-1", Instance: out.Reservations[0].Instances[0], AccountID: c.Account, Region: c.Region, Run: 1,
		},
		Clients: step.Clients{EC2: c.EC2(), SNS: c.SNS(), IAM: c.IAM(), Store: &evidence.Folder{Root: t.TempDir()}},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// TestReleaseRestoresTheRecordedState contains the instance, then releases
// every containment step from the before it recorded, and checks that the
// instance is as it was.
func TestReleaseRestoresTheRecordedState(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	web := c.AddSecurityGroup(vpc, "web", nil, fakeaws.DefaultEgress())
	db := c.AddSecurityGroup(vpc, "db", nil, fakeaws.DefaultEgress())
	profile := "arn:aws:iam::" + c.Account + ":instance-profile/app"
	id := c.AddInstance(fakeaws.InstanceSpec{
		VpcID: vpc, NetworkInterfaces: 2, InterfaceGroupIDs: [][]string{{web}, {web, db}},
		InstanceProfileArn: profile, ShutdownBehavior: "terminate",
	})
	original := c.Instance(id)
	originalDelete := deleteOnTermination(t, c, id)

	plan, err := step.Plan([]string{"quarantine-group", "untracking-group", "quarantine", "termination-protection", "shutdown-behavior", "stop-protection", "delete-on-termination", "instance-profile", "case-tag"})
	if err != nil {
		t.Fatal(err)
	}
	recs := step.Execute(context.Background(), envFor(t, c, id), plan, 0)
	for _, r := range recs {
		if r.Status != evidence.StatusOK {
			t.Fatalf("contain %s: %s %s", r.Name, r.Status, r.Error)
		}
	}
	if v := c.Instance(id); v.ProfileAssociation != nil || !v.DisableAPITermination {
		t.Fatal("not contained")
	}

	// Release, with the instance as it is now.
	env := envFor(t, c, id)
	for i, s := range plan {
		rel, ok := s.(step.Releaser)
		if !ok {
			continue
		}
		if res := rel.Release(context.Background(), env, mustRaw(t, recs[i].Before)); res.Status == evidence.StatusFailed {
			t.Fatalf("release %s: %v", s.Name(), res.Err)
		}
	}
	v := c.Instance(id)
	if v.DisableAPITermination != original.DisableAPITermination || v.ShutdownBehavior != "terminate" || v.DisableAPIStop != original.DisableAPIStop {
		t.Errorf("attributes not restored: termination %t shutdown %s stop %t", v.DisableAPITermination, v.ShutdownBehavior, v.DisableAPIStop)
	}
	for vol, del := range deleteOnTermination(t, c, id) {
		if del != originalDelete[vol] {
			t.Errorf("%s: DeleteOnTermination %t after release, want %t", vol, del, originalDelete[vol])
		}
	}
	if v.ProfileAssociation == nil || aws.ToString(v.ProfileAssociation.IamInstanceProfile.Arn) != profile {
		t.Errorf("instance profile not associated again: %+v", v.ProfileAssociation)
	}
	groups := map[string][]string{}
	for _, n := range original.NetworkInterfaces {
		groups[aws.ToString(n.NetworkInterfaceId)] = ids(n)
	}
	for _, n := range v.NetworkInterfaces {
		if got, want := ids(n), groups[aws.ToString(n.NetworkInterfaceId)]; !slices.Equal(got, want) {
			t.Errorf("interface %s in %v after release, want %v", aws.ToString(n.NetworkInterfaceId), got, want)
		}
	}
}

func ids(n types.InstanceNetworkInterface) []string {
	var out []string
	for _, g := range n.Groups {
		out = append(out, aws.ToString(g.GroupId))
	}
	slices.Sort(out)
	return out
}

func mustRaw(t *testing.T, b []byte) []byte {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("step recorded no before-state")
	}
	return b
}

// TestQuarantineReleaseRefusesADetachedInterface: an interface recorded in
// the before-state and no longer attached is refused, naming it, and no
// interface is moved.
func TestQuarantineReleaseRefusesADetachedInterface(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	web := c.AddSecurityGroup(vpc, "web", nil, fakeaws.DefaultEgress())
	id := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, NetworkInterfaces: 2, SecurityGroupIDs: []string{web}})
	plan, err := step.Plan([]string{"quarantine-group", "quarantine"})
	if err != nil {
		t.Fatal(err)
	}
	recs := step.Execute(context.Background(), envFor(t, c, id), plan, 0)
	env := envFor(t, c, id)
	gone := aws.ToString(env.Target.Instance.NetworkInterfaces[1].NetworkInterfaceId)
	env.Target.Instance.NetworkInterfaces = env.Target.Instance.NetworkInterfaces[:1] // detached since
	before := c.StateDigest()
	res := step.Quarantine{}.Release(context.Background(), env, mustRaw(t, recs[1].Before))
	if res.Status != evidence.StatusFailed || res.Err == nil || !strings.Contains(res.Err.Error(), gone) || res.Containment != evidence.ContainmentNotHeld {
		t.Fatalf("release: %s %v %s", res.Status, res.Err, res.Containment)
	}
	if c.StateDigest() != before {
		t.Fatal("a refused release moved an interface")
	}
}
