package step

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/go-multierror"

	"github.com/responder-ir/responder/responder/cloud"
	"github.com/responder-ir/responder/responder/evidence"
)

// dryRun turns the answer to a call made with DryRun into a result:
// DryRunOperation means the call would have succeeded.
func dryRun(err error, would string, before any) Result {
	switch {
	case cloud.IsErrorCode(err, "DryRunOperation"):
		r := OK("dry run: permitted; would "+would, before, nil)
		r.Containment = evidence.ContainmentPermitted
		return r
	case err == nil:
		// An endpoint that ignores DryRun made the change: say so loudly.
		return Failed(fmt.Errorf("dry run: the endpoint did not honour DryRun and may have acted (%s)", would), before)
	default:
		return Failed(fmt.Errorf("dry run: %s: %w", would, err), before)
	}
}

// dryRunContainment marks what a containment step's dry run checked: a
// change EC2's DryRun permitted, or a state found already so (held);
// anything else (a step without a DryRun check) is unchecked.
func dryRunContainment(r Result) Result {
	switch r.Status {
	case evidence.StatusOK:
		r.Containment = evidence.ContainmentPermitted
	case evidence.StatusSkipped:
		if r.Containment == "" {
			r.Containment = evidence.ContainmentHeld
		}
	default:
		r.Containment = evidence.ContainmentUnchecked
	}
	return r
}

// failWith marks a result failed, adding err to any error it has.
func failWith(r Result, err error) Result {
	r.Status = evidence.StatusFailed
	if r.Err != nil {
		err = multierror.Append(r.Err, err)
	}
	r.Err = err
	return r
}

// joinErrs joins the errors that are not nil (nil when none is).
func joinErrs(errs ...error) error {
	var all *multierror.Error
	for _, err := range errs {
		if err != nil {
			all = multierror.Append(all, err)
		}
	}
	return all.ErrorOrNil()
}

// attachedVolumes lists the EBS volumes attached to the instance, sorted.
func attachedVolumes(inst types.Instance) []string {
	var ids []string
	for _, m := range inst.BlockDeviceMappings {
		if m.Ebs != nil && m.Ebs.VolumeId != nil {
			ids = append(ids, *m.Ebs.VolumeId)
		}
	}
	sort.Strings(ids)
	return ids
}

// groupIDs returns the IDs of security group identifiers.
func groupIDs(groups []types.GroupIdentifier) []string {
	ids := make([]string, 0, len(groups))
	for _, g := range groups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	sort.Strings(ids)
	return ids
}

// instanceGroupIDs is every security group on any interface of the instance.
func instanceGroupIDs(inst types.Instance) []string {
	seen := map[string]bool{}
	var ids []string
	add := func(gs []types.GroupIdentifier) {
		for _, id := range groupIDs(gs) {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	add(inst.SecurityGroups)
	for _, n := range inst.NetworkInterfaces {
		add(n.Groups)
	}
	sort.Strings(ids)
	return ids
}

// interfaceVPC is the VPC of an interface, falling back to the instance's.
func interfaceVPC(inst types.Instance, n types.InstanceNetworkInterface) string {
	if n.VpcId != nil {
		return *n.VpcId
	}
	return aws.ToString(inst.VpcId)
}

// instanceVPCs lists the VPCs of the instance's interfaces (an instance may
// have interfaces in more than one VPC).
func instanceVPCs(inst types.Instance) []string {
	seen := map[string]bool{}
	var vpcs []string
	for _, n := range inst.NetworkInterfaces {
		if v := interfaceVPC(inst, n); v != "" && !seen[v] {
			seen[v] = true
			vpcs = append(vpcs, v)
		}
	}
	if len(vpcs) == 0 && inst.VpcId != nil {
		vpcs = append(vpcs, *inst.VpcId)
	}
	sort.Strings(vpcs)
	return vpcs
}

func instanceFilter(id string) []types.Filter {
	return []types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}
}

type interfaceReader interface {
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
}

// readInterfaceGroups reads the security groups of interfaces as EC2 has
// them now: one entry per interface of want, in its order, with its VPC.
func readInterfaceGroups(ctx context.Context, api interfaceReader, want []InterfaceGroups) ([]InterfaceGroups, error) {
	ids := make([]string, len(want))
	for i, w := range want {
		ids[i] = w.NetworkInterfaceID
	}
	out, err := api.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids}, cloud.Urgent)
	if err != nil {
		return nil, fmt.Errorf("describe interfaces %s: %w", strings.Join(ids, ", "), err)
	}
	found := map[string][]string{}
	for _, n := range out.NetworkInterfaces {
		found[aws.ToString(n.NetworkInterfaceId)] = groupIDs(n.Groups)
	}
	got := make([]InterfaceGroups, len(want))
	for i, w := range want {
		groups, ok := found[w.NetworkInterfaceID]
		if !ok {
			return nil, fmt.Errorf("interface %s is not in the DescribeNetworkInterfaces answer", w.NetworkInterfaceID)
		}
		got[i] = InterfaceGroups{NetworkInterfaceID: w.NetworkInterfaceID, VPC: w.VPC, Groups: groups}
	}
	return got, nil
}

// groupMismatches says, for each interface read (got) that is not in the
// groups of its target, where it is instead.
func groupMismatches(got, target []InterfaceGroups) []string {
	var wrong []string
	for i, t := range target {
		if !slices.Equal(got[i].Groups, t.Groups) {
			wrong = append(wrong, fmt.Sprintf("%s is in %s, not in %s", t.NetworkInterfaceID,
				joinOr(got[i].Groups, "no security group"), joinOr(t.Groups, "no security group")))
		}
	}
	return wrong
}

// InterfaceGroups is the security groups of one network interface.
type InterfaceGroups struct {
	NetworkInterfaceID string   `json:"network_interface_id"`
	VPC                string   `json:"vpc_id"`
	Groups             []string `json:"groups"`
}

// ProfileAssociation is an instance profile association as recorded.
type ProfileAssociation struct {
	AssociationID string `json:"association_id"`
	ProfileARN    string `json:"instance_profile_arn"`
	ProfileID     string `json:"instance_profile_id,omitempty"`
	State         string `json:"state"`
}

type profileLister interface {
	DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
}

func associatedProfiles(ctx context.Context, api profileLister, id string) ([]ProfileAssociation, error) {
	out, err := api.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: instanceFilter(id)})
	if err != nil {
		return nil, fmt.Errorf("list instance profile associations of %s: %w", id, err)
	}
	var found []ProfileAssociation
	for _, a := range out.IamInstanceProfileAssociations {
		if a.State != types.IamInstanceProfileAssociationStateAssociated && a.State != types.IamInstanceProfileAssociationStateAssociating {
			continue
		}
		pa := ProfileAssociation{AssociationID: aws.ToString(a.AssociationId), State: string(a.State)}
		if a.IamInstanceProfile != nil {
			pa.ProfileARN, pa.ProfileID = aws.ToString(a.IamInstanceProfile.Arn), aws.ToString(a.IamInstanceProfile.Id)
		}
		found = append(found, pa)
	}
	return found, nil
}

type quarantineGroupAPI interface {
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	RevokeSecurityGroupEgress(context.Context, *ec2.RevokeSecurityGroupEgressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
}

// findTaggedGroup returns the group of the VPC whose TagQuarantine tag has
// the value (the lowest ID when there are several), or nil.
func findTaggedGroup(ctx context.Context, api quarantineGroupAPI, vpc, value string) (*types.SecurityGroup, error) {
	out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("tag:" + TagQuarantine), Values: []string{value}},
	}})
	if err != nil {
		return nil, err
	}
	if len(out.SecurityGroups) == 0 {
		return nil, nil
	}
	groups := out.SecurityGroups
	sort.Slice(groups, func(i, j int) bool { return aws.ToString(groups[i].GroupId) < aws.ToString(groups[j].GroupId) })
	return &groups[0], nil
}

// ignorableRevokeError: a rule already gone (another response revoked it
// first) is what we wanted; DryRunOperation is the dry-run answer.
func ignorableRevokeError(err error, dryRun bool) bool {
	return cloud.IsErrorCode(err, "InvalidPermission.NotFound") || (dryRun && cloud.IsErrorCode(err, "DryRunOperation"))
}

// describeRules renders a group's rules for the record.
func describeRules(g types.SecurityGroup) []string {
	var rules []string
	render := func(dir string, perms []types.IpPermission) {
		for _, p := range perms {
			var peers []string
			for _, r := range p.IpRanges {
				peers = append(peers, aws.ToString(r.CidrIp))
			}
			for _, r := range p.Ipv6Ranges {
				peers = append(peers, aws.ToString(r.CidrIpv6))
			}
			for _, r := range p.UserIdGroupPairs {
				peers = append(peers, aws.ToString(r.GroupId))
			}
			for _, r := range p.PrefixListIds {
				peers = append(peers, aws.ToString(r.PrefixListId))
			}
			rules = append(rules, fmt.Sprintf("%s %s %d-%d %s", dir, aws.ToString(p.IpProtocol),
				aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort), strings.Join(peers, ",")))
		}
	}
	render("ingress", g.IpPermissions)
	render("egress", g.IpPermissionsEgress)
	return rules
}

// describeNewGroup describes a group just created, waiting out EC2's
// eventual consistency (InvalidGroup.NotFound right after creation).
func describeNewGroup(ctx context.Context, api quarantineGroupAPI, id string) (*types.SecurityGroup, error) {
	var g *types.SecurityGroup
	err := retryEventual(ctx, func() error {
		out, err := api.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
		if err == nil && len(out.SecurityGroups) == 1 {
			g = &out.SecurityGroups[0]
		} else if err == nil {
			err = fmt.Errorf("group %s not described", id)
		}
		return err
	}, "InvalidGroup.NotFound")
	if err != nil {
		return nil, fmt.Errorf("describe new group %s: %w", id, err)
	}
	return g, nil
}

// networkACLStep names the network ACL path's step, whose presence in the
// plan the quarantine records (network_acl_path).
const networkACLStep = "network-acl"

// quarantineStep names the quarantine step, which the SSM access step looks
// for in the finished records (it refuses to reopen a closed quarantine).
const quarantineStep = "quarantine"

// caseGroup is one kind of security group the toolkit keeps per VPC (the
// quarantine, untracking and forensic access groups): found by its
// TagQuarantine value, created under a fixed name when the VPC has none.
type caseGroup struct {
	kind        string // "quarantine group", in errors
	tagValue    string // its TagQuarantine value
	description string
	name        func(vpc string) string
}

// createInput is the CreateSecurityGroup request of the group of a VPC,
// tagged with its kind, its name and the case that made it.
func (g caseGroup) createInput(env *Env, vpc, name string, dryRun bool) *ec2.CreateSecurityGroupInput {
	return &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String(g.description),
		VpcId:       aws.String(vpc),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{
				{Key: aws.String(TagQuarantine), Value: aws.String(g.tagValue)},
				{Key: aws.String("Name"), Value: aws.String(name)},
				{Key: aws.String(TagCaseID), Value: aws.String(env.Target.CaseID)},
			},
		}},
		DryRun: aws.Bool(dryRun),
	}
}

// create makes the group of a VPC and returns its ID, and whether this call
// made it. When the name is taken, a group of the kind (another response
// made it meanwhile) is used; a lookalike without the tag is not ours to
// change, so the group is made under a name that carries the case ID.
func (g caseGroup) create(ctx context.Context, api quarantineGroupAPI, env *Env, vpc string) (string, bool, error) {
	name := g.name(vpc)
	out, err := api.CreateSecurityGroup(ctx, g.createInput(env, vpc, name, false))
	if err == nil {
		return aws.ToString(out.GroupId), true, nil
	}
	if !cloud.IsErrorCode(err, "InvalidGroup.Duplicate") {
		return "", false, fmt.Errorf("create %s: %w", g.kind, err)
	}
	if found, ferr := findTaggedGroup(ctx, api, vpc, g.tagValue); ferr == nil && found != nil {
		return aws.ToString(found.GroupId), false, nil
	}
	name += "-" + env.Target.CaseID
	out, err = api.CreateSecurityGroup(ctx, g.createInput(env, vpc, name, false))
	if err != nil {
		return "", false, fmt.Errorf("create %s %s (the usual name is taken by an untagged group): %w", g.kind, name, err)
	}
	return aws.ToString(out.GroupId), true, nil
}
