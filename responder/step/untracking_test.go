package step_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
	"github.com/responder-ir/responder/responder/step"
)

// groupTagged is the one group of the VPC tagged responder:quarantine=value.
func groupTagged(t *testing.T, c *fakeaws.Cloud, value string) types.SecurityGroup {
	t.Helper()
	gs := c.SecurityGroupsByTag(step.TagQuarantine, value)
	if len(gs) != 1 {
		t.Fatalf("%d groups tagged %s=%s, want 1", len(gs), step.TagQuarantine, value)
	}
	return gs[0]
}

// openRules renders the all-traffic rules of a group: "ingress 0.0.0.0/0".
func openRules(g types.SecurityGroup) []string {
	var out []string
	add := func(dir string, perms []types.IpPermission) {
		for _, p := range perms {
			if aws.ToString(p.IpProtocol) != "-1" {
				continue
			}
			for _, r := range p.IpRanges {
				out = append(out, dir+" "+aws.ToString(r.CidrIp))
			}
			for _, r := range p.Ipv6Ranges {
				out = append(out, dir+" "+aws.ToString(r.CidrIpv6))
			}
		}
	}
	add("ingress", g.IpPermissions)
	add("egress", g.IpPermissionsEgress)
	slices.Sort(out)
	return out
}

var allOpen = []string{"egress 0.0.0.0/0", "egress ::/0", "ingress 0.0.0.0/0", "ingress ::/0"}

// The two-step quarantine: each interface goes into the untracking group
// (all traffic in and out), then into the quarantine group; the record says
// the order, and a release puts back the original groups without passing
// through the untracking group.
func TestQuarantineMovesThroughUntrackingGroup(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	web := c.AddSecurityGroup(vpc, "web", nil, fakeaws.DefaultEgress())
	db := c.AddSecurityGroup(vpc, "db", nil, fakeaws.DefaultEgress())
	id := c.AddInstance(fakeaws.InstanceSpec{VpcID: vpc, NetworkInterfaces: 2, InterfaceGroupIDs: [][]string{{web}, {web, db}}})
	original := map[string][]string{}
	for _, n := range c.Instance(id).NetworkInterfaces {
		original[aws.ToString(n.NetworkInterfaceId)] = ids(n)
	}

	_, recs := runSteps(t, c, id, "quarantine-group", "untracking-group", "quarantine")
	q := recs["quarantine"]
	if u := recs["untracking-group"]; u.Status != evidence.StatusOK || u.Containment != "" {
		t.Fatalf("untracking-group: %s %q %s", u.Status, u.Containment, u.Error)
	}
	if q.Status != evidence.StatusOK || q.Containment != evidence.ContainmentHeld {
		t.Fatalf("quarantine: %s %s %s %s", q.Status, q.Containment, q.Reason, q.Error)
	}
	untracking := groupTagged(t, c, step.UntrackingTagValue)
	quarantine := aws.ToString(groupTagged(t, c, "true").GroupId)
	if got := openRules(untracking); !slices.Equal(got, allOpen) {
		t.Errorf("untracking group rules %v, want %v", got, allOpen)
	}
	if got := openRules(groupTagged(t, c, "true")); len(got) != 0 {
		t.Errorf("quarantine group has rules %v", got)
	}
	want := [][]string{{aws.ToString(untracking.GroupId)}, {quarantine}}
	for eni := range original {
		if got := c.InterfaceGroupHistory(eni); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
			t.Errorf("%s moved %v, want %v", eni, got, want)
		}
	}
	var after struct {
		GroupOrder []struct {
			NetworkInterfaceID string     `json:"network_interface_id"`
			Groups             [][]string `json:"groups"`
		} `json:"group_order"`
		NotCut []string `json:"not_cut_by_groups"`
	}
	if err := json.Unmarshal(q.After, &after); err != nil || len(after.GroupOrder) != 2 {
		t.Fatalf("quarantine after %s (%v)", q.After, err)
	}
	for _, m := range after.GroupOrder {
		if !slices.EqualFunc(m.Groups, want, slices.Equal[[]string]) {
			t.Errorf("recorded order of %s %v, want %v", m.NetworkInterfaceID, m.Groups, want)
		}
	}
	for _, what := range []string{"ICMP", "NAT gateway", "Load Balancer", "Global Accelerator", "Network Firewall", "transit gateway"} {
		if !slices.ContainsFunc(after.NotCut, func(s string) bool { return strings.Contains(s, what) }) {
			t.Errorf("not_cut_by_groups %v does not name %s", after.NotCut, what)
		}
	}

	// Release: straight back to the original groups.
	if r := release(t, c, id, q); r.Status != evidence.StatusOK {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	for eni, groups := range original {
		h := c.InterfaceGroupHistory(eni)
		if last := h[len(h)-1]; !slices.Equal(last, groups) || len(h) != 3 {
			t.Errorf("%s after release: moves %v, want the original %v last, in one move", eni, h, groups)
		}
	}

	// A second run reuses the group as it is.
	_, recs = runSteps(t, c, id, "untracking-group")
	if u := recs["untracking-group"]; u.Status != evidence.StatusSkipped {
		t.Errorf("untracking-group again: %s (%s), want skipped", u.Status, u.Reason)
	}
}

// An untracking group someone changed gets back its missing rules; one that
// cannot be opened does not stop the quarantine, which moves in one step and
// does not hold: the tracked connections were not cut.
func TestUntrackingGroupRepairedOrQuarantineWithoutIt(t *testing.T) {
	t.Run("repaired", func(t *testing.T) {
		c, s := fakeaws.NewSuspect()
		g := c.AddSecurityGroup(aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].VpcId), "half-open", nil, fakeaws.DefaultEgress())
		if _, err := c.EC2().CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{g},
			Tags: []types.Tag{{Key: aws.String(step.TagQuarantine), Value: aws.String(step.UntrackingTagValue)}}}); err != nil {
			t.Fatal(err)
		}
		_, recs := runSteps(t, c, s.InstanceID, "untracking-group")
		if u := recs["untracking-group"]; u.Status != evidence.StatusOK || !strings.Contains(string(u.Before), "rules_missing") {
			t.Fatalf("untracking-group: %s %s before %s", u.Status, u.Error, u.Before)
		}
		if got := openRules(*c.SecurityGroup(g)); !slices.Equal(got, allOpen) {
			t.Errorf("rules %v, want %v", got, allOpen)
		}
	})
	t.Run("cannot be opened", func(t *testing.T) {
		c, s := fakeaws.NewSuspect()
		c.Deny("AuthorizeSecurityGroupIngress")
		_, recs := runSteps(t, c, s.InstanceID, "quarantine-group", "untracking-group", "quarantine")
		if u := recs["untracking-group"]; u.Status != evidence.StatusFailed {
			t.Fatalf("untracking-group: %s, want failed", u.Status)
		}
		q := recs["quarantine"]
		if q.Status != evidence.StatusOK || q.Containment != evidence.ContainmentNotHeld || !strings.Contains(q.Reason, "NOT cut") {
			t.Fatalf("quarantine: %s %s %q", q.Status, q.Containment, q.Reason)
		}
		quarantine := aws.ToString(groupTagged(t, c, "true").GroupId)
		eni := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].NetworkInterfaceId)
		if got := c.InterfaceGroupHistory(eni); !slices.EqualFunc(got, [][]string{{quarantine}}, slices.Equal[[]string]) {
			t.Errorf("moves %v, want straight into %s", got, quarantine)
		}
		if st := evidence.CaseStatus([]evidence.StepRecord{q, {Name: "other", Containment: evidence.ContainmentHeld}}, evidence.Outcome{}); st != evidence.CasePartiallyContained {
			t.Errorf("case status %s, want %s", st, evidence.CasePartiallyContained)
		}
	})
	t.Run("not in the plan", func(t *testing.T) {
		c, s := fakeaws.NewSuspect()
		_, recs := runSteps(t, c, s.InstanceID, "quarantine-group", "quarantine")
		if q := recs["quarantine"]; q.Containment != evidence.ContainmentHeld {
			t.Fatalf("quarantine without the two-step move: %s %s", q.Containment, q.Reason)
		}
		eni := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].NetworkInterfaceId)
		if got := c.InterfaceGroupHistory(eni); len(got) != 1 {
			t.Errorf("moves %v, want one", got)
		}
	})
}

// failQuarantineMove refuses every move into one group.
type failQuarantineMove struct {
	cloud.EC2
	group string
}

func (f failQuarantineMove) ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, o ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error) {
	if slices.Equal(in.Groups, []string{f.group}) {
		return nil, &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "denied by the test"}
	}
	return f.EC2.ModifyNetworkInterfaceAttribute(ctx, in, o...)
}

// When the move into the quarantine group fails after the move into the
// untracking group, the interface is put back in its own groups: the
// all-open group never stays on an interface.
func TestUntrackingGroupNeverStays(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	env := envFor(t, c, s.InstanceID)
	plan, err := step.Plan([]string{"quarantine-group", "untracking-group"})
	if err != nil {
		t.Fatal(err)
	}
	step.Execute(context.Background(), env, plan, 0)
	vpc := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].VpcId)
	quarantine, _ := env.QuarantineGroup(vpc)
	untracking, _ := env.UntrackingGroup(vpc)
	env.Clients.EC2 = failQuarantineMove{EC2: c.EC2(), group: quarantine}

	res := step.Quarantine{}.Run(context.Background(), env)
	if res.Status != evidence.StatusFailed || res.Containment == evidence.ContainmentHeld {
		t.Fatalf("quarantine: %s %s", res.Status, res.Containment)
	}
	eni := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].NetworkInterfaceId)
	want := [][]string{{untracking}, {s.GroupID}}
	if got := c.InterfaceGroupHistory(eni); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Errorf("moves %v, want %v (back in its own group)", got, want)
	}
	if !strings.Contains(res.Err.Error(), "put back") {
		t.Errorf("error %v does not say the interface was put back", res.Err)
	}
}

// A before recorded while an interface sat in the untracking group (an
// interrupted run) is never restored into it.
func TestReleaseNeverRestoresTheUntrackingGroup(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	_, recs := runSteps(t, c, s.InstanceID, "quarantine-group", "untracking-group", "quarantine")
	untracking := aws.ToString(groupTagged(t, c, step.UntrackingTagValue).GroupId)
	eni := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].NetworkInterfaceId)
	vpc := aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].VpcId)
	rec := recs["quarantine"]
	rec.Before, _ = json.Marshal(map[string]any{"interfaces": []step.InterfaceGroups{{NetworkInterfaceID: eni, VPC: vpc, Groups: []string{untracking}}}})
	r := release(t, c, s.InstanceID, rec)
	if r.Status != evidence.StatusFailed || !strings.Contains(r.Err.Error(), "only the untracking group") {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	if g := ids(c.Instance(s.InstanceID).NetworkInterfaces[0]); slices.Contains(g, untracking) {
		t.Errorf("interface put in the untracking group: %v", g)
	}
}

// A dry run changes nothing: it checks that the group could be made, and
// says nothing is to do when it is ready.
func TestUntrackingGroupDryRun(t *testing.T) {
	c, s := fakeaws.NewSuspect()
	env := envFor(t, c, s.InstanceID)
	env.Target.DryRun = true
	res := step.UntrackingGroup{}.Run(context.Background(), env)
	if res.Status != evidence.StatusOK || !strings.Contains(res.Reason, "would create untracking group") {
		t.Fatalf("dry run: %s %q %v", res.Status, res.Reason, res.Err)
	}
	if gs := c.SecurityGroupsByTag(step.TagQuarantine, step.UntrackingTagValue); len(gs) != 0 {
		t.Fatalf("dry run created %d groups", len(gs))
	}
	if _, ok := env.UntrackingGroup(aws.ToString(c.Instance(s.InstanceID).NetworkInterfaces[0].VpcId)); ok {
		t.Error("dry run registered an untracking group")
	}
	runSteps(t, c, s.InstanceID, "untracking-group")
	if res := (step.UntrackingGroup{}).Run(context.Background(), env); res.Status != evidence.StatusSkipped {
		t.Errorf("dry run with the group ready: %s %q", res.Status, res.Reason)
	}
}
