package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// naclPlaybook is the default plan with the network ACL path turned on.
const naclPlaybook = `name: nacl-lab
summary: the default plan with the network ACL path
tradeoff: |
  The default plan, plus deny entries for the instance's addresses in the
  network ACLs of its VPC (moto tier test).
containment:
  network_acl: true
steps: [metadata, console-output, console-screenshot, snapshots, quarantine-group, quarantine,
  termination-protection, shutdown-behavior, stop-protection, delete-on-termination, instance-profile, case-tag]
`

// aclEntries lists the entries of every network ACL of a VPC, as
// "acl-... ingress 100 allow -1 0.0.0.0/0", sorted.
func aclEntries(t *testing.T, f *fixture, vpcID string) []string {
	t.Helper()
	out, err := f.aws.EC2.DescribeNetworkAcls(context.Background(), &ec2.DescribeNetworkAclsInput{
		Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	must(t, err)
	var entries []string
	for _, a := range out.NetworkAcls {
		for _, e := range a.Entries {
			dir := "ingress"
			if aws.ToBool(e.Egress) {
				dir = "egress"
			}
			entries = append(entries, fmt.Sprintf("%s %s %d %s %s %s%s", aws.ToString(a.NetworkAclId), dir, aws.ToInt32(e.RuleNumber),
				e.RuleAction, aws.ToString(e.Protocol), aws.ToString(e.CidrBlock), aws.ToString(e.Ipv6CidrBlock)))
		}
	}
	sort.Strings(entries)
	return entries
}

// TestNetworkACLPathRespondAndRelease runs the real binary with a playbook
// that turns the network ACL path on: the ACL of the lab's subnet gets a
// deny-all pair for each private address of the instance, numbered below
// every other entry; the release deletes exactly those, and the ACLs are
// as they were.
func TestNetworkACLPathRespondAndRelease(t *testing.T) {
	f := setup(t)
	l := f.buildLab()
	caseID := "case-nacl-1"
	before := aclEntries(t, f, l.VpcID)
	playbook := filepath.Join(t.TempDir(), "nacl-lab.yaml")
	must(t, os.WriteFile(playbook, []byte(naclPlaybook), 0o600))

	store := []string{"--evidence-dir", f.caseDir}
	if res := f.run(append([]string{"respond", "--instance-id", l.InstanceID, "--case-id", caseID, "--playbook", playbook}, store...)...); res.Code != exitOK {
		t.Fatalf("respond: want exit %d:\n%s", exitOK, res)
	}
	out, err := f.aws.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{l.InstanceID}})
	must(t, err)
	var addrs []string
	for _, n := range out.Reservations[0].Instances[0].NetworkInterfaces {
		addrs = append(addrs, aws.ToString(n.PrivateIpAddress)+"/32")
	}
	contained := aclEntries(t, f, l.VpcID)
	if len(contained) != len(before)+2*len(addrs) {
		t.Fatalf("entries after respond:\n%s\nbefore:\n%s", strings.Join(contained, "\n"), strings.Join(before, "\n"))
	}
	for _, a := range addrs {
		for _, dir := range []string{" ingress ", " egress "} {
			found := false
			for _, e := range contained {
				var acl, d, action, proto, cidr string
				var n int
				if _, err := fmt.Sscanf(e, "%s %s %d %s %s %s", &acl, &d, &n, &action, &proto, &cidr); err == nil &&
					" "+d+" " == dir && cidr == a && action == "deny" && proto == "-1" && n < 100 {
					found = true
				}
			}
			if !found {
				t.Errorf("no%sdeny-all entry below 100 for %s:\n%s", dir, a, strings.Join(contained, "\n"))
			}
		}
	}

	if res := f.run(append([]string{"release", "--case-id", caseID, "--yes"}, store...)...); res.Code != exitReleased {
		t.Fatalf("release: want exit %d:\n%s", exitReleased, res)
	}
	if got := aclEntries(t, f, l.VpcID); !reflect.DeepEqual(got, before) {
		t.Errorf("entries after release:\n%s\nbefore the response:\n%s", strings.Join(got, "\n"), strings.Join(before, "\n"))
	}
}
