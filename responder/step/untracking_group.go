package step

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
)

type untrackingGroupAPI interface {
	quarantineGroupAPI
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AuthorizeSecurityGroupEgress(context.Context, *ec2.AuthorizeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
}

// UntrackingGroup finds, for every VPC the instance has an interface in, the
// untracking security group (tagged responder:quarantine=untracking), or
// creates it, and makes sure it allows all traffic in from and out to
// 0.0.0.0/0 and ::/0. The quarantine step moves each interface into it
// first, then into the quarantine group.
//
// Why: a security group change does not cut a flow the group already
// tracks (a reverse shell stays up until it is idle for the established
// timeout, up to five days). AWS does not track a TCP or UDP flow when the
// rule that allows it is open to 0.0.0.0/0 or ::/0 and a rule in the other
// direction allows all response traffic on every port (EC2 User Guide,
// "Amazon EC2 security group connection tracking", "Untracked connections";
// ../shared/REFERENCE.md section 3). While the interface sits in this group
// its TCP and UDP flows become untracked; moved on into the empty quarantine
// group, they are evaluated against its rules, match none and are dropped.
// ICMP is always tracked, and so is traffic through Gateway Load Balancer,
// Global Accelerator, NAT gateways, Network Firewall, Network Load Balancers
// and transit gateway attachments, whatever the rules: the quarantine's
// record says so (untrackingLimits).
//
// It changes nothing on the instance and needs nothing, so it runs in the
// first round beside quarantine-group. Like quarantine-group it makes no
// containment claim of its own (a group ready is not an instance contained):
// the quarantine step's read-back carries it. When this step runs and the
// group of a VPC cannot be prepared, the quarantine still happens, in one
// move, and does not hold (tracked connections were not cut), so the case is
// partially-contained; a plan without this step (a playbook with
// containment.two_step false, or --steps without it) moves interfaces in one
// step and claims nothing about tracked connections. The group is shared by the cases of a VPC and never
// released; an interface is only ever in it between the quarantine's two
// moves.
type UntrackingGroup struct{}

func (UntrackingGroup) Name() string    { return "untracking-group" }
func (UntrackingGroup) Phase() Phase    { return Contain }
func (UntrackingGroup) Needs() []string { return nil }

// UntrackingGroupName is the name of the untracking group of a VPC.
func UntrackingGroupName(vpcID string) string { return "responder-untracking-" + vpcID }

// untrackingGroup is the untracking group of a VPC: all traffic in and out.
var untrackingGroup = caseGroup{kind: "untracking group", tagValue: UntrackingTagValue, name: UntrackingGroupName,
	description: "responder untracking: all traffic in and out, so that flows are untracked; " +
		"interfaces pass through it on their way into quarantine. Do not use."}

// untrackingGroupState is the untracking group of one VPC and the rules it
// has (after) or lacked (before).
type untrackingGroupState struct {
	VPC     string   `json:"vpc_id"`
	GroupID string   `json:"group_id,omitempty"`
	Created bool     `json:"created,omitempty"`
	Missing []string `json:"rules_missing,omitempty"`
}

// openRule is one of the four rules of the untracking group: all traffic,
// one direction, one address family.
type openRule struct {
	egress bool
	cidr   string
}

var openRules = []openRule{{false, "0.0.0.0/0"}, {false, "::/0"}, {true, "0.0.0.0/0"}, {true, "::/0"}}

func (r openRule) String() string {
	if r.egress {
		return "egress all to " + r.cidr
	}
	return "ingress all from " + r.cidr
}

// missingOpenRules lists the rules of openRules the group lacks.
func missingOpenRules(g types.SecurityGroup) []openRule {
	has := func(perms []types.IpPermission, cidr string) bool {
		for _, p := range perms {
			if aws.ToString(p.IpProtocol) != "-1" {
				continue
			}
			for _, r := range p.IpRanges {
				if aws.ToString(r.CidrIp) == cidr {
					return true
				}
			}
			for _, r := range p.Ipv6Ranges {
				if aws.ToString(r.CidrIpv6) == cidr {
					return true
				}
			}
		}
		return false
	}
	var missing []openRule
	for _, r := range openRules {
		perms := g.IpPermissions
		if r.egress {
			perms = g.IpPermissionsEgress
		}
		if !has(perms, r.cidr) {
			missing = append(missing, r)
		}
	}
	return missing
}

func ruleNames(rules []openRule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

func (s UntrackingGroup) Run(ctx context.Context, env *Env) Result {
	var api untrackingGroupAPI = env.Clients.EC2
	vpcs := instanceVPCs(env.Target.Instance)
	if len(vpcs) == 0 {
		return Skipped("the instance is in no VPC", nil)
	}
	var (
		before, after []untrackingGroupState
		done          []string
		errs          *multierror.Error
	)
	for _, vpc := range vpcs {
		b, a, what, err := s.ensure(ctx, api, env, vpc)
		before, after = append(before, b), append(after, a)
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("VPC %s: %w", vpc, err))
			if !env.Target.DryRun {
				env.SetUntrackingGroup(vpc, "") // wanted, not ready
			}
			continue
		}
		if what != "" {
			done = append(done, what)
		}
	}
	if err := errs.ErrorOrNil(); err != nil {
		r := Failed(fmt.Errorf("tracked connections will not be cut (the quarantine moves these interfaces in one step): %w", err), before)
		if !env.Target.DryRun {
			r.After = after
		}
		return r
	}
	switch {
	case len(done) == 0:
		return Skipped("the untracking group of every VPC is ready (all traffic in and out)", before)
	case env.Target.DryRun:
		return OK(strings.Join(done, "; "), before, nil)
	}
	return OK(strings.Join(done, "; "), before, after)
}

// ensure prepares the untracking group of one VPC, reads it back, and says
// what it did. The group is registered in env only when the read-back shows
// every rule.
func (s UntrackingGroup) ensure(ctx context.Context, api untrackingGroupAPI, env *Env, vpc string) (before, after untrackingGroupState, what string, err error) {
	before = untrackingGroupState{VPC: vpc}
	g, err := env.findCaseGroup(ctx, api, vpc, UntrackingTagValue)
	if err != nil {
		return before, before, "", fmt.Errorf("find untracking group: %w", err)
	}
	created := false
	if g == nil {
		if env.Target.DryRun {
			_, err := api.CreateSecurityGroup(ctx, untrackingGroup.createInput(env, vpc, UntrackingGroupName(vpc), true))
			r := dryRun(err, "create untracking group "+UntrackingGroupName(vpc), nil)
			return before, before, r.Reason, r.Err
		}
		id, c, err := untrackingGroup.create(ctx, api, env, vpc)
		if err != nil {
			return before, before, "", err
		}
		created = c
		if g, err = describeNewGroup(ctx, api, id); err != nil {
			return before, before, "", err
		}
	} else {
		before.GroupID = aws.ToString(g.GroupId)
		before.Missing = ruleNames(missingOpenRules(*g))
	}
	id := aws.ToString(g.GroupId)
	missing := missingOpenRules(*g)
	if len(missing) == 0 {
		if !env.Target.DryRun {
			env.SetUntrackingGroup(vpc, id)
		}
		return before, untrackingGroupState{VPC: vpc, GroupID: id}, "", nil
	}
	if err := s.authorize(ctx, api, id, missing, env.Target.DryRun); err != nil {
		return before, untrackingGroupState{VPC: vpc, GroupID: id, Created: created, Missing: ruleNames(missing)}, "", err
	}
	if env.Target.DryRun {
		return before, before, fmt.Sprintf("dry run: permitted; would add %s to %s", strings.Join(ruleNames(missing), ", "), id), nil
	}
	// Read back: the quarantine moves interfaces through the group only
	// when it has every rule.
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil || len(out.SecurityGroups) != 1 {
		return before, untrackingGroupState{VPC: vpc, GroupID: id, Created: created}, "", fmt.Errorf("read back %s: %v", id, err)
	}
	after = untrackingGroupState{VPC: vpc, GroupID: id, Created: created, Missing: ruleNames(missingOpenRules(out.SecurityGroups[0]))}
	if len(after.Missing) > 0 {
		return before, after, "", fmt.Errorf("%s read back without %s", id, strings.Join(after.Missing, ", "))
	}
	env.SetUntrackingGroup(vpc, id)
	verb := "reusing"
	if created {
		verb = "created"
	}
	return before, after, fmt.Sprintf("%s %s in %s; added %s", verb, id, vpc, strings.Join(ruleNames(missing), ", ")), nil
}

// authorize adds the missing rules, one call per direction. A rule another
// response added meanwhile (InvalidPermission.Duplicate) is what we wanted;
// the read-back decides.
func (UntrackingGroup) authorize(ctx context.Context, api untrackingGroupAPI, id string, missing []openRule, dryRun bool) error {
	perm := func(egress bool) []types.IpPermission {
		p := types.IpPermission{IpProtocol: aws.String("-1")}
		for _, r := range missing {
			if r.egress != egress {
				continue
			}
			desc := aws.String("responder untracking: all traffic, so that flows are untracked")
			if strings.Contains(r.cidr, ":") {
				p.Ipv6Ranges = append(p.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(r.cidr), Description: desc})
			} else {
				p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(r.cidr), Description: desc})
			}
		}
		if len(p.IpRanges)+len(p.Ipv6Ranges) == 0 {
			return nil
		}
		return []types.IpPermission{p}
	}
	ok := func(err error) bool {
		return err == nil || cloud.IsErrorCode(err, "InvalidPermission.Duplicate") || (dryRun && cloud.IsErrorCode(err, "DryRunOperation"))
	}
	var errs *multierror.Error
	if p := perm(false); p != nil {
		_, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: p, DryRun: aws.Bool(dryRun)})
		if !ok(err) {
			errs = multierror.Append(errs, fmt.Errorf("authorize ingress on %s: %w", id, err))
		}
	}
	if p := perm(true); p != nil {
		_, err := api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: p, DryRun: aws.Bool(dryRun)})
		if !ok(err) {
			errs = multierror.Append(errs, fmt.Errorf("authorize egress on %s: %w", id, err))
		}
	}
	return errs.ErrorOrNil()
}

// Describe: the untracking group of each VPC.
func (UntrackingGroup) Describe() Description {
	return Description{
		Aspect: "Untracking security group of the VPC (tracked connections cut)",
		View:   viewUntrackingGroups,
		Order:  21,
		OnFailure: "Tracked connections were NOT cut: the quarantine moved the interfaces straight into the empty " +
			"group, which stops new connections but lets flows it already tracked (a reverse shell, an open " +
			"session) go on until they are idle. Cut them with a network ACL deny on the subnet, or stop the " +
			"instance once memory is captured.",
	}
}

// viewUntrackingGroups reads the untrackingGroupState of each VPC.
func viewUntrackingGroups(raw json.RawMessage, _ string) ([]SubjectState, error) {
	var v []untrackingGroupState
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	var out []SubjectState
	for _, g := range v {
		text := "none"
		switch {
		case g.GroupID == "":
		case len(g.Missing) > 0:
			text = g.GroupID + " without " + strings.Join(g.Missing, ", ")
		case g.Created:
			text = g.GroupID + ", all traffic in and out (created for this case)"
		default:
			text = g.GroupID + ", all traffic in and out"
		}
		out = append(out, SubjectState{Subject: g.VPC, Text: text})
	}
	return out, nil
}
