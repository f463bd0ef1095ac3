package step_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/responder-ir/responder/responder/evidence"
	"github.com/responder-ir/responder/responder/fakeaws"
)

// denyEntries are the deny-all entries of an ACL, as "ingress 99 10.0.0.10/32".
func denyEntries(c *fakeaws.Cloud, acl string) []string {
	var out []string
	for _, e := range c.NACLEntries(acl) {
		if e.Action == "deny" && e.Protocol == "-1" && e.RuleNumber < 32767 {
			dir := "ingress"
			if e.Egress {
				dir = "egress"
			}
			out = append(out, dir+" "+itoa(e.RuleNumber)+" "+e.CIDR)
		}
	}
	return out
}

func itoa(n int32) string { b, _ := json.Marshal(n); return string(b) }

// addresses are the private addresses of the instance's interfaces, in
// device order.
func addresses(c *fakeaws.Cloud, id string) []string {
	var out []string
	for _, n := range c.Instance(id).NetworkInterfaces {
		out = append(out, aws.ToString(n.PrivateIpAddress)+"/32")
	}
	return out
}

// The entries go below every entry of the ACL, per direction, skipping
// numbers taken, the highest free first.
func TestNetworkACLRuleNumbersBelowEveryEntry(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{NetworkInterfaces: 2})
	inst := c.Instance(id)
	acl := c.NetworkACLOf(aws.ToString(inst.SubnetId))
	c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 4, Protocol: "6", Action: "allow", CIDR: "10.0.0.0/8"})
	c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 2, Protocol: "6", Action: "allow", CIDR: "192.168.0.0/16"}) // not the lowest? it is: 2
	c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 50, Egress: true, Protocol: "-1", Action: "allow", CIDR: "10.0.0.0/8"})
	c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 49, Egress: true, Protocol: "-1", Action: "deny", CIDR: "10.9.9.9/32"})

	// Ingress: the lowest entry is 2, so one free number (1) for two
	// addresses: refused.
	_, recs := runSteps(t, c, id, "network-acl")
	rec := recs["network-acl"]
	if rec.Status != evidence.StatusFailed || rec.Containment != evidence.ContainmentNotHeld ||
		!strings.Contains(rec.Error, "no free rule number below 2") {
		t.Fatalf("network-acl with no room: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	if got := denyEntries(c, acl); !slices.Equal(got, []string{"egress 49 10.9.9.9/32"}) {
		t.Fatalf("a refused plan made entries: %v", got)
	}

	c2 := fakeaws.New()
	id = c2.AddInstance(fakeaws.InstanceSpec{NetworkInterfaces: 2})
	acl = c2.NetworkACLOf(aws.ToString(c2.Instance(id).SubnetId))
	c2.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 90, Protocol: "6", Action: "allow", CIDR: "10.0.0.0/8"})
	c2.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 89, Protocol: "17", Action: "allow", CIDR: "10.0.0.0/8"})
	c2.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: 88, Egress: true, Protocol: "-1", Action: "allow", CIDR: "0.0.0.0/0"})
	_, recs = runSteps(t, c2, id, "network-acl")
	rec = recs["network-acl"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("network-acl: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	a := addresses(c2, id)
	slices.Sort(a)
	want := []string{"ingress 87 " + a[1], "ingress 88 " + a[0], "egress 86 " + a[1], "egress 87 " + a[0]}
	slices.Sort(want)
	got := denyEntries(c2, acl)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("deny entries %v, want %v", got, want)
	}
	var after struct {
		Used   bool     `json:"network_acl_path"`
		NotCut []string `json:"not_cut_by_network_acl"`
	}
	if err := json.Unmarshal(rec.After, &after); err != nil || !after.Used || len(after.NotCut) == 0 {
		t.Errorf("after %s: want network_acl_path and what it does not cut", rec.After)
	}
}

// An ACL whose direction would pass the quota of 20 entries (the default
// deny entry counts) is refused before any entry is made.
func TestNetworkACLRefusesPastTheQuota(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	acl := c.NetworkACLOf(aws.ToString(c.Instance(id).SubnetId))
	for n := int32(200); n < 218; n++ { // with 100 and 32767: 20 ingress entries
		c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: n, Protocol: "6", Action: "allow", CIDR: "10.0.0.0/8"})
	}
	_, recs := runSteps(t, c, id, "network-acl")
	rec := recs["network-acl"]
	if rec.Status != evidence.StatusFailed || rec.Containment != evidence.ContainmentNotHeld ||
		!strings.Contains(rec.Error, "quota of 20") || !strings.Contains(rec.Error, "ingress") {
		t.Fatalf("network-acl past the quota: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	if got := denyEntries(c, acl); len(got) != 0 {
		t.Fatalf("a refused plan made entries: %v", got)
	}
}

// Two interfaces in two subnets with their own ACLs, and a third subnet
// where the Systems Manager endpoints are: every ACL that serves a subnet
// gets a pair for each address; the instance can no longer reach the
// endpoints in the other subnet (its security groups still allow it), while
// the internet path through its own subnet is not cut (as the record says);
// the release deletes exactly the entries made and the endpoints are
// reachable again.
func TestNetworkACLTwoSubnetsCutsAndReleases(t *testing.T) {
	c := fakeaws.New()
	vpc := c.AddVPC()
	sa, sb, sc := c.AddSubnet(vpc), c.AddSubnet(vpc), c.AddSubnet(vpc)
	aclB := c.AddNetworkACL(vpc, sb)
	c.AddNACLEntry(aclB, fakeaws.NACLEntry{RuleNumber: 100, Protocol: "-1", Action: "allow", CIDR: "0.0.0.0/0"})
	c.AddNACLEntry(aclB, fakeaws.NACLEntry{RuleNumber: 100, Egress: true, Protocol: "-1", Action: "allow", CIDR: "0.0.0.0/0"})
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		c.AddVpcEndpoint(vpc, svc, fakeaws.EndpointSpec{SubnetIDs: []string{sc}})
	}
	id := c.AddInstance(fakeaws.InstanceSpec{SubnetID: sa, NetworkInterfaces: 2, InterfaceSubnetIDs: []string{"", sb}})
	aclDefault := c.NetworkACLOf(sa)
	before := map[string][]fakeaws.NACLEntry{aclDefault: c.NACLEntries(aclDefault), aclB: c.NACLEntries(aclB)}
	if ssm, s3 := c.CanReach(id); !ssm || !s3 {
		t.Fatalf("before: reaches ssm %v, s3 %v; want both", ssm, s3)
	}

	_, recs := runSteps(t, c, id, "network-acl")
	rec := recs["network-acl"]
	if rec.Status != evidence.StatusOK || rec.Containment != evidence.ContainmentHeld {
		t.Fatalf("network-acl: %s %s %s", rec.Status, rec.Containment, rec.Error)
	}
	a := addresses(c, id)
	for _, acl := range []string{aclDefault, aclB} {
		got := denyEntries(c, acl)
		for _, addr := range a {
			for _, dir := range []string{"ingress ", "egress "} {
				if !slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, dir) && strings.HasSuffix(e, " "+addr) }) {
					t.Errorf("%s: no %sdeny for %s in %v", acl, dir, addr, got)
				}
			}
		}
	}
	ssm, s3 := c.CanReach(id)
	if ssm {
		t.Error("after the NACL path the instance still reaches the endpoints in another subnet")
	}
	if !s3 {
		t.Error("the internet path through an internet gateway is cut, but the ACL cannot see the instance's address there")
	}

	if r := release(t, c, id, rec); r.Status != evidence.StatusOK || r.Containment != evidence.ContainmentHeld {
		t.Fatalf("release: %s %s %v", r.Status, r.Containment, r.Err)
	}
	for acl, want := range before {
		if got := c.NACLEntries(acl); !slices.Equal(got, want) {
			t.Errorf("%s after release: %v, want %v", acl, got, want)
		}
	}
	if ssm, _ := c.CanReach(id); !ssm {
		t.Error("after release the endpoints are still cut")
	}
}

// The step run again finds its entries (an earlier run of the case): it
// makes none, and the release of the first run's record deletes them.
func TestNetworkACLRerunFindsItsEntries(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	acl := c.NetworkACLOf(aws.ToString(c.Instance(id).SubnetId))
	_, recs := runSteps(t, c, id, "network-acl")
	first := recs["network-acl"]
	made := denyEntries(c, acl)
	_, recs = runSteps(t, c, id, "network-acl")
	if r := recs["network-acl"]; r.Status != evidence.StatusOK || r.Containment != evidence.ContainmentHeld || !strings.Contains(r.Reason, "there already") {
		t.Fatalf("second run: %s %s %s %s", r.Status, r.Containment, r.Reason, r.Error)
	}
	if got := denyEntries(c, acl); !slices.Equal(got, made) || len(made) != 2 {
		t.Fatalf("second run: entries %v, want %v", got, made)
	}
	if r := release(t, c, id, first); r.Status != evidence.StatusOK {
		t.Fatalf("release: %s %v", r.Status, r.Err)
	}
	if got := denyEntries(c, acl); len(got) != 0 {
		t.Fatalf("after release: %v", got)
	}
}

// An entry changed since the response (same number, now something else) is
// not deleted: the release says so and does not hold; the others are
// deleted.
func TestNetworkACLReleaseRefusesAChangedEntry(t *testing.T) {
	c := fakeaws.New()
	id := c.AddInstance(fakeaws.InstanceSpec{})
	acl := c.NetworkACLOf(aws.ToString(c.Instance(id).SubnetId))
	_, recs := runSteps(t, c, id, "network-acl")
	rec := recs["network-acl"]
	var before struct {
		Deny []struct {
			RuleNumber int32 `json:"rule_number"`
			Egress     bool  `json:"egress"`
		} `json:"deny_entries"`
	}
	if err := json.Unmarshal(rec.Before, &before); err != nil || len(before.Deny) != 2 {
		t.Fatalf("before %s: %v", rec.Before, err)
	}
	var ingress int32
	for _, d := range before.Deny {
		if !d.Egress {
			ingress = d.RuleNumber
		}
	}
	// Someone replaced the ingress entry with an allow of the same number.
	if _, err := c.EC2().DeleteNetworkAclEntry(t.Context(), deleteInput(acl, ingress, false)); err != nil {
		t.Fatal(err)
	}
	c.AddNACLEntry(acl, fakeaws.NACLEntry{RuleNumber: ingress, Protocol: "6", Action: "allow", CIDR: "10.1.0.0/16"})

	r := release(t, c, id, rec)
	if r.Status != evidence.StatusFailed || r.Containment != evidence.ContainmentNotHeld || !strings.Contains(r.Err.Error(), "left as it is") {
		t.Fatalf("release: %s %s %v", r.Status, r.Containment, r.Err)
	}
	if got := denyEntries(c, acl); len(got) != 0 {
		t.Errorf("the unchanged egress entry was not deleted: %v", got)
	}
	if !slices.ContainsFunc(c.NACLEntries(acl), func(e fakeaws.NACLEntry) bool { return e.RuleNumber == ingress && e.Action == "allow" }) {
		t.Error("the entry changed since was deleted")
	}
}

func deleteInput(acl string, n int32, egress bool) *ec2.DeleteNetworkAclEntryInput {
	return &ec2.DeleteNetworkAclEntryInput{NetworkAclId: aws.String(acl), RuleNumber: aws.Int32(n), Egress: aws.Bool(egress)}
}
